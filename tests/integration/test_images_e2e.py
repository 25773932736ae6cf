"""Every model of the image table, through the real gateway, against its vendor's simulator.

One gateway with one channel per adapter, each pointing at that vendor's simulator; every model id
answers /302/image/generate with a real image file that omnirelay stores and serves back.
"""

from __future__ import annotations

import base64
import importlib
import io
import warnings
from collections.abc import Iterator
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from omnirelay.core.image_catalog import load_image_catalog
from tests.support.server import HTTP, GatewayServer, make_settings
from tests.upstreams.imaging import ImageSim, image_sim_in_thread, make_image

ROWS = load_image_catalog()
ADAPTERS = sorted({row["adapter"] for row in ROWS})


def sim_module(adapter: str) -> Any:
    return importlib.import_module(f"tests.upstreams.{adapter}.sim")


def channel_for(adapter: str, sim: ImageSim) -> dict[str, Any]:
    module = sim_module(adapter)
    key = module.channel_api_key(sim) if hasattr(module, "channel_api_key") else "sk-upstream-test"
    return {
        "name": f"ch-{adapter.replace('_', '-')}",
        "provider": adapter,
        "base_url": module.channel_base_url(sim),
        "api_key": key,
        "models": [row["id"] for row in ROWS if row["adapter"] == adapter],
        "timeout_s": 30,
    }


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, ImageSim]]:
    with ExitStack() as stack:
        running = {}
        for adapter in ADAPTERS:
            sim = sim_module(adapter).Sim()
            for attribute in ("poll_interval_s",):
                if hasattr(sim, attribute):
                    setattr(sim, attribute, 0.01)
            running[adapter] = stack.enter_context(image_sim_in_thread(sim))
        yield running


@pytest.fixture(scope="module")
def server(sims: dict[str, ImageSim], tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    data = tmp_path_factory.mktemp("images")
    settings = make_settings(str(Path(data)), None, [channel_for(a, s) for a, s in sims.items()])
    gateway = GatewayServer(settings).start()
    # Asynchronous vendors poll quickly in tests.
    for channel in gateway.gw.router.channels():
        adapter = channel.adapter
        if hasattr(adapter, "poll_interval_s"):
            adapter.poll_interval_s = 0.01
            adapter.poll_max_interval_s = 0.05
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def key(server: GatewayServer) -> str:
    return server.account_key("1000", allow_manage_key=True)[1]


def png_data_url() -> str:
    return "data:image/png;base64," + base64.b64encode(make_image(32, 32, "png")).decode()


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_every_model_answers_with_a_hosted_image(
    server: GatewayServer, key: str, row: dict[str, Any]
) -> None:
    body: dict[str, Any] = {"prompt": "a lighthouse at dawn", "model": row["id"]}
    if row.get("mode") == "i2i":
        body["image"] = png_data_url()
    if "finetuned" in row["id"]:
        body["finetune_id"] = "ft-0123"  # the vendor requires the id of the customer's fine-tune
    resp = HTTP.post(
        f"{server.base_url}/302/image/generate", json=body, headers={"Authorization": f"Bearer {key}"}
    )
    assert resp.status_code == 200, resp.text
    payload = resp.json()
    assert set(payload) == {"image_url", "data"}
    assert payload["image_url"].startswith(f"{server.base_url}/files/")
    served = HTTP.get(payload["image_url"])
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("image/")
    assert "immutable" in served.headers["cache-control"]
    with Image.open(io.BytesIO(served.content)) as img:
        img.verify()
    record = HTTP.get(
        f"{server.base_url}/dashboard/record/{resp.headers['request-id']}",
        headers={"Authorization": f"Bearer {key}"},
    ).json()["data"]
    assert Decimal(str(record["cost"])) == Decimal(row["price"]["per_image"])
    assert record["model"] == row["id"]


def test_v2_sync_task_object(server: GatewayServer, key: str) -> None:
    resp = HTTP.post(
        f"{server.base_url}/302/v2/image/generate",
        json={"prompt": "a fox", "model": "302ai-flux-schnell-t2i", "aspect_ratio": "16:9"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert resp.status_code == 200, resp.text
    task = resp.json()
    assert task["status"] == "completed" and task["task_type"] == "image"
    assert task["image_url"] == task["image_urls"][0]
    assert task["req"] == {"prompt": "a fox", "model": "302ai-flux-schnell-t2i", "aspect_ratio": "16:9"}
    assert task["upstream_task_id"]
    assert float(task["execution_time"]) >= 0
    assert task["ai302_cost_request_ids"] == [resp.headers["request-id"]]
    assert HTTP.get(task["image_url"]).status_code == 200


def test_openai_generations_url_and_b64(server: GatewayServer, key: str) -> None:
    import openai

    client = openai.OpenAI(api_key=key, base_url=server.base_url + "/v1", max_retries=0)
    result = client.images.generate(model="dall-e-3", prompt="a red cube", size="1024x1024")
    assert result.data and result.data[0].url and result.data[0].url.startswith(server.base_url)
    b64 = client.images.generate(model="dall-e-2", prompt="a blue cube", n=2, response_format="b64_json")
    assert b64.data is not None and len(b64.data) == 2
    for item in b64.data:
        assert item.b64_json
        with Image.open(io.BytesIO(base64.b64decode(item.b64_json))) as img:
            img.verify()
    any_vendor = openai.OpenAI(api_key=key, base_url=server.base_url + "/302", max_retries=0)
    other = any_vendor.images.generate(model="cogview-4-t2i", prompt="a pagoda")
    assert other.data and other.data[0].url


def test_openai_edits_and_variations(server: GatewayServer, key: str) -> None:
    import openai

    client = openai.OpenAI(api_key=key, base_url=server.base_url + "/v1", max_retries=0)
    png = make_image(64, 64, "png")
    edited = client.images.edit(model="dall-e-2", image=("in.png", png, "image/png"), prompt="add a hat")
    assert edited.data and edited.data[0].url
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the SDK marks variations deprecated
        varied = client.images.create_variation(model="dall-e-2", image=("in.png", png, "image/png"), n=1)
    assert varied.data and varied.data[0].url


def test_v1_multipart_with_a_file_part(server: GatewayServer, key: str) -> None:
    resp = httpx.post(
        f"{server.base_url}/302/image/generate",
        data={"prompt": "make it real", "model": "302ai-kolors-i2i"},
        files={"image": ("in.jpg", make_image(40, 30, "jpeg"), "image/jpeg")},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["image_url"]
