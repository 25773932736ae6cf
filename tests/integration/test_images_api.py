"""Image routes: errors in each dialect, money per image, untrusted inputs refused."""

from __future__ import annotations

import asyncio
import base64
import io
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from PIL import Image

from omnirelay.store.s3 import S3FileStore
from tests.conftest import GatewayFactory
from tests.support.moto import MotoS3
from tests.support.server import HTTP, GatewayServer
from tests.upstreams.imaging import image_sim_in_thread, make_image
from tests.upstreams.replicate.sim import Sim as ReplicateSim
from tests.upstreams.replicate.sim import channel_base_url

MODELS = ["302ai-flux-schnell-t2i", "302ai-kolors-i2i", "302ai-sdxl-t2i"]


@pytest.fixture
def replicate() -> Iterator[ReplicateSim]:
    with image_sim_in_thread(ReplicateSim()) as sim:
        yield sim


@pytest.fixture
def server(gateway_factory: GatewayFactory, replicate: ReplicateSim) -> GatewayServer:
    channel = {
        "name": "replicate",
        "provider": "replicate",
        "base_url": channel_base_url(replicate),
        "api_key": "sk-upstream-test",
        "models": MODELS,
        "timeout_s": 10,
    }
    gateway = gateway_factory([channel])
    for ch in gateway.gw.router.channels():
        ch.adapter.poll_interval_s = 0.01
        ch.adapter.poll_max_interval_s = 0.02
    return gateway


def post(server: GatewayServer, path: str, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    resp = HTTP.post(f"{server.base_url}{path}", json=body, headers={"Authorization": f"Bearer {key}"})
    assert "request-id" in resp.headers
    return resp.status_code, resp.json()


def balance(server: GatewayServer, account_id: int) -> Decimal:
    return Decimal(server.admin("GET", f"/admin/accounts/{account_id}").json()["balance"])


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "302ai-sdxl-t2i"}, "prompt"),
        ({"prompt": "x"}, "model"),
        ({"prompt": "x", "model": "no-such-model"}, "model"),
        ({"prompt": "x", "model": "302ai-kolors-i2i"}, "image"),
        ({"prompt": "x", "model": "302ai-sdxl-t2i", "width": "wide"}, "width"),
        ({"prompt": "x", "model": "302ai-sdxl-t2i", "output_format": "tiff"}, "output_format"),
        ({"prompt": "x", "model": "302ai-kolors-i2i", "image": "not-an-image"}, "image"),
        ({"prompt": "x", "model": "302ai-kolors-i2i", "image": "data:image/png;base64,AAAA"}, "image"),
    ],
)
def test_v1_parameter_errors_are_422_in_the_302_body(
    server: GatewayServer, replicate: ReplicateSim, body: dict[str, Any], param: str
) -> None:
    _, key = server.account_key()
    status, payload = post(server, "/302/image/generate", key, body)
    assert status == 422, payload
    assert payload["error"]["err_code"] == -10011
    assert param in payload["error"]["message"] or param == "image"
    assert replicate.requests == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9/cat.png", "127.0.0.1"),
        ("http://localhost/cat.png", "127.0.0.1"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
        ("http://10.1.2.3/x.png", "10.1.2.3"),
        ("ftp://example.com/x.png", "ftp"),
    ],
)
def test_private_image_urls_are_refused_with_the_reason(
    server: GatewayServer, replicate: ReplicateSim, url: str, reason: str
) -> None:
    _, key = server.account_key()
    status, payload = post(
        server, "/302/image/generate", key, {"prompt": "x", "model": "302ai-kolors-i2i", "image": url}
    )
    assert status == 422
    assert reason in payload["error"]["message"]
    assert replicate.requests == []


def test_key_errors_are_401(server: GatewayServer) -> None:
    status, payload = post(
        server, "/302/image/generate", "sk-bogus", {"prompt": "x", "model": "302ai-sdxl-t2i"}
    )
    assert status == 401 and payload["error"]["err_code"] == -10001


def test_failed_generation_is_500_and_costs_nothing(server: GatewayServer, replicate: ReplicateSim) -> None:
    account_id, key = server.account_key("1")
    replicate.config.fail_jobs_next = 1
    status, payload = post(server, "/302/image/generate", key, {"prompt": "x", "model": "302ai-sdxl-t2i"})
    assert status == 500 and payload["error"]["type"] == "generation_failed"
    assert balance(server, account_id) == Decimal("1")


def test_moderated_generation_is_422(server: GatewayServer, replicate: ReplicateSim) -> None:
    _, key = server.account_key("1")
    replicate.config.moderate_jobs_next = 1
    status, _ = post(server, "/302/image/generate", key, {"prompt": "x", "model": "302ai-sdxl-t2i"})
    assert status == 422


def test_n_images_cost_n_times(server: GatewayServer) -> None:
    account_id, key = server.account_key("1")
    status, payload = post(
        server, "/302/images/generations", key, {"prompt": "x", "model": "302ai-sdxl-t2i", "n": 3}
    )
    assert status == 200, payload
    assert len(payload["data"]) == 3
    assert balance(server, account_id) == Decimal("1") - 3 * Decimal("0.01")


def test_v2_failure_is_a_failed_task(server: GatewayServer, replicate: ReplicateSim) -> None:
    account_id, key = server.account_key("1")
    replicate.config.fail_jobs_next = 1
    status, task = post(server, "/302/v2/image/generate", key, {"prompt": "x", "model": "302ai-sdxl-t2i"})
    assert status == 200
    assert task["status"] == "failed" and task["image_urls"] == []
    assert task["error"]["error_type"] == "generation_failed"
    assert balance(server, account_id) == Decimal("1")


def test_openai_route_errors_use_the_openai_shape(server: GatewayServer) -> None:
    _, key = server.account_key()
    status, payload = post(server, "/v1/images/generations", key, {"prompt": "x", "model": "nope"})
    assert status == 404 and payload["error"]["code"] == "model_not_found"
    status, payload = post(server, "/v1/images/generations", key, {"model": "302ai-sdxl-t2i"})
    assert status == 422 and payload["error"]["param"] == "prompt"


def test_files_are_served_with_caching_headers(server: GatewayServer) -> None:
    _, key = server.account_key()
    status, payload = post(server, "/302/image/generate", key, {"prompt": "x", "model": "302ai-sdxl-t2i"})
    assert status == 200
    first = HTTP.get(payload["image_url"])
    etag = first.headers["etag"]
    again = HTTP.get(payload["image_url"], headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert HTTP.get(f"{server.base_url}/files/20200101/{'0' * 32}.png").status_code == 404
    assert HTTP.get(f"{server.base_url}/files/..%2F..%2Fetc/passwd").status_code == 404
    name = payload["image_url"].rsplit("/", 1)[-1]
    assert len(name.split(".")[0]) == 32


def test_upload_too_big_and_data_url_ok(server: GatewayServer) -> None:
    _, key = server.account_key()
    data_url = "data:image/png;base64," + base64.b64encode(make_image(16, 16)).decode()
    status, _ = post(
        server, "/302/image/generate", key, {"prompt": "x", "model": "302ai-kolors-i2i", "image": data_url}
    )
    assert status == 200


def test_results_stored_in_s3_are_served_by_the_gateway(
    gateway_factory: GatewayFactory, replicate: ReplicateSim, moto_s3: MotoS3
) -> None:
    bucket = f"omnirelay-{uuid.uuid4().hex[:12]}"

    async def make_bucket() -> None:
        async with aiohttp.ClientSession() as http:
            await S3FileStore(
                moto_s3.endpoint, bucket, moto_s3.access_key, moto_s3.secret_key, http=http
            ).create_bucket()

    asyncio.run(make_bucket())
    storage = {
        "backend": "s3",
        "s3": {
            "endpoint_url": moto_s3.endpoint,
            "bucket": bucket,
            "access_key": moto_s3.access_key,
            "secret_key": moto_s3.secret_key,
            "prefix": "results/",
        },
        "public_base_url": "https://cdn.example.test",
    }
    channel = {
        "name": "replicate",
        "provider": "replicate",
        "base_url": channel_base_url(replicate),
        "api_key": "sk-upstream-test",
        "models": MODELS,
    }
    server = gateway_factory([channel], storage=storage)
    for ch in server.gw.router.channels():
        ch.adapter.poll_interval_s = 0.01
    _, key = server.account_key()
    status, payload = post(server, "/302/image/generate", key, {"prompt": "x", "model": "302ai-sdxl-t2i"})
    assert status == 200, payload
    url = payload["image_url"]
    assert url.startswith("https://cdn.example.test/files/")
    served = HTTP.get(server.base_url + url.removeprefix("https://cdn.example.test"))
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(served.content)) as img:
        img.verify()
