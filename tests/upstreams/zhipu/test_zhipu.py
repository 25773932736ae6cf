"""Zhipu CogView adapter: pure mapping, then every catalog row against the simulator."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from PIL import Image

from omnirelay.core.images import GeneratedImage, ImageJob, ImageModelSpec
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.registry import adapter_class
from omnirelay.providers.zhipu.images import (
    ZhipuImageAdapter,
    classify_error,
    custom_size,
    from_response,
    merge_responses,
    to_request,
)
from omnirelay.settings import ChannelConfig
from tests.upstreams.imaging import DEFAULT_KEY
from tests.upstreams.imaging import catalog_specs as catalog_rows
from tests.upstreams.zhipu.sim import ZhipuSim, channel_base_url, parse_size

# imaging.py keys its request storage with a plain string, which aiohttp >= 3.12 warns about once per
# process (NotAppKeyWarning); the suite's "error" filter would turn that into a 500 inside the simulator.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


ROWS = catalog_rows("zhipu")


def spec(model: str = "cogview-4", **kw: Any) -> ImageModelSpec:
    return ImageModelSpec(id=f"{model}-t2i", adapter="zhipu", upstream_model=model, **kw)


def job_for(row: ImageModelSpec, **kw: Any) -> ImageJob:
    fields: dict[str, Any] = {"spec": row, "prompt": "一只可爱的小猫咪", "size": row.rules["size"]["default"]}
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
async def sim() -> AsyncIterator[ZhipuSim]:
    server = ZhipuSim()
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
def adapter(sim: ZhipuSim, http: aiohttp.ClientSession) -> ZhipuImageAdapter:
    return ZhipuImageAdapter(
        ChannelConfig(name="zhipu", provider="zhipu", base_url=channel_base_url(sim)), http
    )


# --- pure mapping ----------------------------------------------------------------------------------


def test_registry_and_catalog() -> None:
    assert adapter_class("zhipu") is ZhipuImageAdapter
    assert {row.upstream_model for row in ROWS} == {"cogview-4", "cogview-4-250304"}
    assert all(row.rules["size"]["default"] == "1024x1024" for row in ROWS)


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (1024, 1024, "1024x1024"),
        (1920, 1080, "1920x1072"),
        (4000, 4000, "1440x1440"),
        (2048, 2048, "1440x1440"),
        (100, 100, "512x512"),
        (3000, 500, "2048x512"),
        (1000, 700, "992x688"),
    ],
)
def test_custom_size(width: int, height: int, expected: str) -> None:
    assert custom_size(width, height) == expected
    assert parse_size(expected) is not None  # the simulator (the reference's rules) accepts it


def test_to_request() -> None:
    job = ImageJob(
        spec=spec("cogview-4-250304"),
        prompt="a cat",
        size="768x1344",
        n=3,
        negative_prompt="dogs",
        extra={"quality": "hd", "user_id": "user-123", "watermark_enabled": False, "style": "x"},
    )
    assert to_request(job) == {
        "model": "cogview-4-250304",
        "prompt": "a cat",
        "size": "768x1344",
        "quality": "hd",
        "user_id": "user-123",
        "watermark_enabled": False,
    }
    assert to_request(ImageJob(spec=spec(), prompt="p", width=1280, height=720))["size"] == "1280x720"


RECORDED: dict[str, Any] = {
    "created": 1741000000,
    "data": [{"url": "https://aigc-files.example/cogview/1.png"}],
    "content_filter": [{"role": "assistant", "level": 3}],
}


def test_from_response_and_merge() -> None:
    assert from_response(RECORDED) == [GeneratedImage(url="https://aigc-files.example/cogview/1.png")]
    assert from_response({"data": [{"url": ""}, "x"]}) == []
    merged = merge_responses([RECORDED, RECORDED])
    assert len(merged["data"]) == 2 and len(merged["content_filter"]) == 2
    assert merge_responses([RECORDED]) is RECORDED


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (401, "1002", (True, False)),
        (429, "1113", (True, False)),
        (434, "1112", (True, False)),
        (400, "1211", (True, False)),
        (400, "1210", (False, True)),
        (400, "1214", (False, True)),
        (400, "1301", (False, True)),
        (429, "1302", (True, False)),
        (429, "1303", (True, False)),
        (429, "1305", (True, False)),
        (500, "500", (True, False)),
        (503, None, (True, False)),
        (400, None, (False, True)),
        (404, "9999", (False, True)),
    ],
)
def test_classify_error(status: int, code: str | None, expected: tuple[bool, bool]) -> None:
    body = {"error": {"code": code, "message": "m"}} if code else None
    assert classify_error(status, body) == expected


# --- against the simulator -------------------------------------------------------------------------


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
async def test_every_catalog_row(
    row: ImageModelSpec, sim: ZhipuSim, adapter: ZhipuImageAdapter, http: aiohttp.ClientSession
) -> None:
    result = await adapter.generate_image(job_for(row), DEFAULT_KEY, 10)
    [decoded] = await decode_all(result.images, http)
    assert decoded.size == (1024, 1024)
    recorded = sim.last()
    assert recorded.path == "/api/paas/v4/images/generations"
    assert recorded.headers["authorization"] == f"Bearer {DEFAULT_KEY}"
    assert recorded.json == {"model": row.upstream_model, "prompt": "一只可爱的小猫咪", "size": "1024x1024"}
    assert result.raw["content_filter"] == [{"role": "assistant", "level": 3}]


@pytest.mark.parametrize("size", ROWS[0].rules["size"]["choices"])
async def test_every_size_of_the_rule(
    size: str, sim: ZhipuSim, adapter: ZhipuImageAdapter, http: aiohttp.ClientSession
) -> None:
    result = await adapter.generate_image(job_for(ROWS[0], size=size), DEFAULT_KEY, 10)
    [decoded] = await decode_all(result.images, http)
    assert f"{decoded.width}x{decoded.height}" == size


async def test_many_images_are_separate_calls(
    sim: ZhipuSim, adapter: ZhipuImageAdapter, http: aiohttp.ClientSession
) -> None:
    job = job_for(ROWS[1], n=3, extra={"quality": "hd"})
    result = await adapter.generate_image(job, DEFAULT_KEY, 10)
    assert len(await decode_all(result.images, http)) == 3
    assert len(sim.requests) == 3 and all(r.json["quality"] == "hd" for r in sim.requests)
    assert len(result.raw["data"]) == 3


async def test_size_from_width_and_height(
    sim: ZhipuSim, adapter: ZhipuImageAdapter, http: aiohttp.ClientSession
) -> None:
    result = await adapter.generate_image(
        ImageJob(spec=spec(), prompt="p", width=1920, height=1080), DEFAULT_KEY, 10
    )
    assert [image.size for image in await decode_all(result.images, http)] == [(1920, 1072)]


@pytest.mark.parametrize("key", ["", "wrong-key"])
async def test_bad_key_is_a_retryable_401(key: str, sim: ZhipuSim, http: aiohttp.ClientSession) -> None:
    adapter = ZhipuImageAdapter(
        ChannelConfig(name="z", provider="zhipu", base_url=channel_base_url(sim)), http
    )
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job_for(ROWS[0]), key, 5)
    err = caught.value
    assert (err.kind, err.status, err.retryable, err.client_fault) == (FailureKind.HTTP, 401, True, False)
    assert err.body is not None and err.body["error"]["code"] in ("1001", "1002")


async def test_bad_parameter_is_the_clients_fault(adapter: ZhipuImageAdapter) -> None:
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job_for(ROWS[1], extra={"quality": "ultra"}), DEFAULT_KEY, 5)
    err = caught.value
    assert (err.status, err.retryable, err.client_fault) == (400, False, True)
    assert err.message == "quality: must be standard or hd"


async def test_unknown_model_tries_another_channel(adapter: ZhipuImageAdapter) -> None:
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(ImageJob(spec=spec("cogview-9"), prompt="p"), DEFAULT_KEY, 5)
    assert caught.value.status == 400 and caught.value.retryable and not caught.value.client_fault


@pytest.mark.parametrize(
    ("failure", "retryable"),
    [
        (400, False),
        (500, True),
        ({"status": 429, "body": {"error": {"code": "1113", "message": "account in arrears"}}}, True),
        ({"status": 429, "body": {"error": {"code": "1305", "message": "overloaded"}}}, True),
    ],
)
async def test_injected_failures(
    failure: Any, retryable: bool, sim: ZhipuSim, adapter: ZhipuImageAdapter
) -> None:
    sim.config.fail_next.append(failure)
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job_for(ROWS[0]), DEFAULT_KEY, 5)
    assert (caught.value.retryable, caught.value.client_fault) == (retryable, not retryable)


async def test_unsafe_content_is_moderation(sim: ZhipuSim, adapter: ZhipuImageAdapter) -> None:
    sim.config.moderate_jobs_next = 1
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job_for(ROWS[0]), DEFAULT_KEY, 5)
    err = caught.value
    assert (err.kind, err.client_fault, err.retryable) == (FailureKind.GENERATION, True, False)
    assert err.body is not None and err.body["error"]["code"] == "1301"


async def test_failed_generation_is_retryable(sim: ZhipuSim, adapter: ZhipuImageAdapter) -> None:
    sim.config.fail_jobs_next = 1
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job_for(ROWS[0]), DEFAULT_KEY, 5)
    assert caught.value.status == 500 and caught.value.retryable


async def test_filtered_answer_without_images_is_moderation(
    sim: ZhipuSim, adapter: ZhipuImageAdapter
) -> None:
    body = {"created": 1, "data": [], "content_filter": [{"role": "user", "level": 0}]}
    sim.config.fail_next.append({"status": 200, "body": body})
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job_for(ROWS[0]), DEFAULT_KEY, 5)
    assert caught.value.kind is FailureKind.GENERATION and caught.value.client_fault
