"""Baidu Qianfan iRAG adapter: pure mapping, then every catalog row against the simulator."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from PIL import Image

from omnirelay.core.images import GeneratedImage, ImageJob, ImageModelSpec
from omnirelay.providers.baidu_irag.images import (
    BaiduIragImageAdapter,
    classify_error,
    error_fields,
    from_response,
    pick_size,
    to_request,
)
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.registry import adapter_class
from omnirelay.settings import ChannelConfig
from tests.upstreams.baidu_irag.sim import BaiduIragSim, channel_base_url
from tests.upstreams.imaging import DEFAULT_KEY
from tests.upstreams.imaging import catalog_specs as catalog_rows

# imaging.py keys its request storage with a plain string, which aiohttp >= 3.12 warns about once per
# process (NotAppKeyWarning); the suite's "error" filter would turn that into a 500 inside the simulator.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


ROWS = catalog_rows("baidu_irag")


def spec(model: str = "irag-1.0") -> ImageModelSpec:
    return ImageModelSpec(id="baidu-irag-t2i", adapter="baidu_irag", upstream_model=model)


def job_for(row: ImageModelSpec, **kw: Any) -> ImageJob:
    fields: dict[str, Any] = {
        "spec": row,
        "prompt": "画一只小狗",
        "size": (row.rules.get("size") or {}).get("default"),
    }
    fields.update(kw)
    return ImageJob(**fields)


async def decode_all(images: list[GeneratedImage], http: aiohttp.ClientSession) -> list[Image.Image]:
    out: list[Image.Image] = []
    for image in images:
        assert image.url is not None and image.data is None
        async with http.get(image.url) as resp:
            assert resp.status == 200
            decoded = Image.open(io.BytesIO(await resp.read()))
        decoded.load()
        out.append(decoded)
    return out


@pytest.fixture
async def sim() -> AsyncIterator[BaiduIragSim]:
    server = BaiduIragSim()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def adapter(sim: BaiduIragSim, http: aiohttp.ClientSession) -> BaiduIragImageAdapter:
    channel = ChannelConfig(name="qianfan", provider="baidu_irag", base_url=channel_base_url(sim))
    return BaiduIragImageAdapter(channel, http)


# --- pure mapping ----------------------------------------------------------------------------------


def test_registry_and_catalog() -> None:
    assert adapter_class("baidu_irag") is BaiduIragImageAdapter
    assert [row.upstream_model for row in ROWS] == ["irag-1.0"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "1024x1024"),
        ({"size": "768x1024"}, "768x1024"),
        ({"width": 1024, "height": 576}, "1024x576"),
        ({"width": 256, "height": 4096}, "512x2048"),
    ],
)
def test_pick_size(fields: dict[str, Any], expected: str) -> None:
    assert pick_size(ImageJob(spec=spec(), prompt="p", **fields)) == expected


def test_to_request() -> None:
    job = ImageJob(
        spec=spec(),
        prompt="画一只小狗",
        n=2,
        negative_prompt="cats",
        seed=3,
        extra={"refer_image": "https://img.example/ref.png", "user": "u-1", "steps": 20},
    )
    assert to_request(job) == {
        "model": "irag-1.0",
        "prompt": "画一只小狗",
        "n": 2,
        "size": "1024x1024",
        "refer_image": "https://img.example/ref.png",
        "user": "u-1",
    }


def test_from_response() -> None:
    recorded = {
        "id": "as-bcmt5ct4td",
        "created": 1724941564,
        "data": [
            {"url": "https://qianfan-image.example/1.png"},
            {"url": "https://qianfan-image.example/2.png"},
        ],
    }
    assert from_response(recorded) == [
        GeneratedImage(url="https://qianfan-image.example/1.png"),
        GeneratedImage(url="https://qianfan-image.example/2.png"),
    ]
    assert from_response({"id": "as-1", "data": []}) == []


def test_error_fields() -> None:
    nested = {
        "error": {"code": "invalid_iam_token", "message": "IAM Certification failed", "type": "x"},
        "id": "a",
    }
    assert error_fields(nested) == ("invalid_iam_token", "IAM Certification failed")
    assert error_fields({"code": "rate_limit_exceeded", "message": "slow"}) == ("rate_limit_exceeded", "slow")
    assert error_fields({"error_code": 336003, "error_msg": "invalid params"}) == ("336003", "invalid params")
    assert error_fields(None) == (None, None)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (401, "invalid_iam_token", (True, False)),
        (400, "invalid_model", (True, False)),
        (400, "malformed_json", (False, True)),
        (400, "characters_too_long", (False, True)),
        (400, "invalid_argument", (False, True)),
        (400, "sensitive_content", (False, True)),
        (429, "rate_limit_exceeded", (True, False)),
        (500, "internal_error", (True, False)),
        (502, None, (True, False)),
        (403, None, (True, False)),
        (400, None, (False, True)),
    ],
)
def test_classify_error(status: int, code: str | None, expected: tuple[bool, bool]) -> None:
    body = {"error": {"code": code, "message": "m", "type": "invalid_request_error"}} if code else None
    assert classify_error(status, body) == expected


# --- against the simulator -------------------------------------------------------------------------


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
async def test_every_catalog_row(
    row: ImageModelSpec, sim: BaiduIragSim, adapter: BaiduIragImageAdapter, http: aiohttp.ClientSession
) -> None:
    result = await adapter.generate_image(job_for(row), DEFAULT_KEY, 10)
    [decoded] = await decode_all(result.images, http)
    assert decoded.size == (1024, 1024)
    recorded = sim.last()
    assert recorded.path == "/v2/images/generations"
    assert recorded.headers["authorization"] == f"Bearer {DEFAULT_KEY}"
    assert recorded.json == {"model": "irag-1.0", "prompt": "画一只小狗", "n": 1, "size": "1024x1024"}
    assert result.upstream_task_id is not None and result.upstream_task_id.startswith("as-")
    assert result.raw["id"] == result.upstream_task_id


async def test_many_images_with_reference_and_size(
    sim: BaiduIragSim, adapter: BaiduIragImageAdapter, http: aiohttp.ClientSession
) -> None:
    job = job_for(ROWS[0], n=4, width=1024, height=768, extra={"refer_image": "https://img.example/r.png"})
    result = await adapter.generate_image(job, DEFAULT_KEY, 10)
    assert [image.size for image in await decode_all(result.images, http)] == [(1024, 768)] * 4
    assert len(sim.requests) == 1 and sim.last().json["refer_image"] == "https://img.example/r.png"


async def test_wrong_key_is_a_retryable_401(adapter: BaiduIragImageAdapter) -> None:
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job_for(ROWS[0]), "bce-v3/ALTAK-wrong", 5)
    err = caught.value
    assert (err.kind, err.status, err.retryable, err.client_fault) == (FailureKind.HTTP, 401, True, False)
    assert err.message == "IAM Certification failed"


async def test_too_long_prompt_is_the_clients_fault(adapter: BaiduIragImageAdapter) -> None:
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job_for(ROWS[0], prompt="狗" * 221), DEFAULT_KEY, 5)
    err = caught.value
    assert (err.status, err.retryable, err.client_fault) == (400, False, True)
    assert err.body is not None and err.body["error"]["code"] == "characters_too_long"


async def test_too_many_images_is_the_clients_fault(adapter: BaiduIragImageAdapter) -> None:
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job_for(ROWS[0], n=5), DEFAULT_KEY, 5)
    assert caught.value.client_fault and caught.value.status == 400


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (403, True), (429, True), (500, True)])
async def test_injected_failures(
    status: int, retryable: bool, sim: BaiduIragSim, adapter: BaiduIragImageAdapter
) -> None:
    sim.config.fail_next.append(status)
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job_for(ROWS[0]), DEFAULT_KEY, 5)
    assert (caught.value.status, caught.value.retryable, caught.value.client_fault) == (
        status,
        retryable,
        not retryable,
    )


async def test_moderation_is_a_generation_failure_of_the_client(
    sim: BaiduIragSim, adapter: BaiduIragImageAdapter
) -> None:
    sim.config.moderate_jobs_next = 1
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job_for(ROWS[0]), DEFAULT_KEY, 5)
    err = caught.value
    assert (err.kind, err.client_fault, err.retryable) == (FailureKind.GENERATION, True, False)


async def test_failed_generation_is_retryable(sim: BaiduIragSim, adapter: BaiduIragImageAdapter) -> None:
    sim.config.fail_jobs_next = 1
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job_for(ROWS[0]), DEFAULT_KEY, 5)
    assert caught.value.status == 500 and caught.value.retryable


async def test_answer_without_images_is_a_generation_failure(
    sim: BaiduIragSim, adapter: BaiduIragImageAdapter
) -> None:
    sim.config.fail_next.append({"status": 200, "body": {"id": "as-1", "created": 1, "data": []}})
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job_for(ROWS[0]), DEFAULT_KEY, 5)
    assert caught.value.kind is FailureKind.GENERATION and not caught.value.client_fault
