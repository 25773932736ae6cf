"""Recraft adapter: pure mapping, then every catalog row against the simulator."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from PIL import Image

from omnirelay.core.images import GeneratedImage, ImageJob, ImageModelSpec
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.recraft.images import (
    SIZES,
    RecraftImageAdapter,
    classify_error,
    error_text,
    from_response,
    pick_size,
    to_request,
    trim_response,
)
from omnirelay.providers.registry import adapter_class
from omnirelay.settings import ChannelConfig
from tests.upstreams.imaging import DEFAULT_KEY, make_image
from tests.upstreams.imaging import catalog_specs as catalog_rows
from tests.upstreams.recraft.sim import RecraftSim, channel_base_url

# imaging.py keys its request storage with a plain string, which aiohttp >= 3.12 warns about once per
# process (NotAppKeyWarning); the suite's "error" filter would turn that into a 500 inside the simulator.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


ROWS = catalog_rows("recraft")


def spec(model: str = "recraftv3", **kw: Any) -> ImageModelSpec:
    return ImageModelSpec(id=f"{model}-t2i", adapter="recraft", upstream_model=model, **kw)


def job_for(row: ImageModelSpec, **kw: Any) -> ImageJob:
    fields: dict[str, Any] = {
        "spec": row,
        "prompt": "a red fox in snow",
        "size": (row.rules.get("size") or {}).get("default"),
        "aspect_ratio": (row.rules.get("aspect_ratio") or {}).get("default"),
    }
    fields.update(kw)
    return ImageJob(**fields)


async def fetch(image: GeneratedImage, http: aiohttp.ClientSession) -> bytes:
    if image.data is not None:
        return image.data
    assert image.url is not None
    async with http.get(image.url) as resp:
        assert resp.status == 200
        return await resp.read()


async def decode_all(images: list[GeneratedImage], http: aiohttp.ClientSession) -> list[Image.Image]:
    out: list[Image.Image] = []
    for image in images:
        decoded = Image.open(io.BytesIO(await fetch(image, http)))
        decoded.load()
        out.append(decoded)
    return out


@pytest.fixture
async def sim() -> AsyncIterator[RecraftSim]:
    server = RecraftSim()
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
def adapter(sim: RecraftSim, http: aiohttp.ClientSession) -> RecraftImageAdapter:
    return RecraftImageAdapter(
        ChannelConfig(name="recraft", provider="recraft", base_url=channel_base_url(sim)), http
    )


# --- pure mapping ----------------------------------------------------------------------------------


def test_registry_and_catalog() -> None:
    assert adapter_class("recraft") is RecraftImageAdapter
    assert {row.upstream_model for row in ROWS} == {"recraftv3", "recraft20b"}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"size": "1365x1024"}, "1365x1024"),
        ({"aspect_ratio": "16:9"}, "1820x1024"),
        ({"aspect_ratio": "21:9"}, "2048x1024"),
        ({"aspect_ratio": "9:21"}, "1024x2048"),
        ({"size": "1000x1000"}, "1024x1024"),
        ({"width": 1024, "height": 1024}, "1024x1024"),
        ({"width": 1920, "height": 1080}, "1820x1024"),
        ({"width": 800, "height": 1200}, "1024x1536"),
        ({"width": 1700, "height": 1000}, "1707x1024"),
    ],
)
def test_pick_size(fields: dict[str, Any], expected: str) -> None:
    assert expected in SIZES
    assert pick_size(ImageJob(spec=spec(), prompt="p", **fields)) == expected


def test_to_request_defaults() -> None:
    assert to_request(ImageJob(spec=spec("recraft20b"), prompt="a fox", n=2, seed=4)) == {
        "prompt": "a fox",
        "model": "recraft20b",
        "size": "1024x1024",
        "n": 2,
        "response_format": "b64_json",
        "style": "realistic_image",
    }


def test_to_request_extras() -> None:
    job = ImageJob(
        spec=spec(options={"style": "digital_illustration"}),
        prompt="a fox",
        negative_prompt="blurry",
        extra={
            "substyle": "pixel_art",
            "controls": {"colors": [{"rgb": [255, 0, 0]}]},
            "response_format": "url",
            "ignored": True,
        },
    )
    body = to_request(job)
    assert body["style"] == "digital_illustration" and body["substyle"] == "pixel_art"
    assert body["negative_prompt"] == "blurry" and body["controls"] == {"colors": [{"rgb": [255, 0, 0]}]}
    assert body["response_format"] == "url" and "ignored" not in body
    custom = to_request(ImageJob(spec=spec(), prompt="p", extra={"style_id": "0a1b", "style": "any"}))
    assert custom["style_id"] == "0a1b" and "style" not in custom


RECORDED: dict[str, Any] = {
    "created": 1731405255,
    "credits": 80,
    "data": [
        {"image_id": "f9a5c1e0-0000-4000-8000-000000000001", "url": "https://img.example/a.webp"},
        {
            "image_id": "f9a5c1e0-0000-4000-8000-000000000002",
            "b64_json": base64.b64encode(make_image(8, 8, "webp")).decode(),
        },
        {
            "image_id": "f9a5c1e0-0000-4000-8000-000000000003",
            "b64_json": base64.b64encode(b"<svg/>").decode(),
        },
    ],
}


def test_from_response_and_trim() -> None:
    remote, raster, vector = from_response(RECORDED)
    assert remote == GeneratedImage(url="https://img.example/a.webp")
    assert raster.media_type == "image/webp" and raster.data is not None
    assert vector.media_type == "image/svg+xml"
    trimmed = trim_response(RECORDED)
    assert trimmed["data"][1]["b64_json"].startswith("<base64 trimmed")
    assert trimmed["data"][1]["image_id"].endswith("2") and trimmed["credits"] == 80
    assert from_response({"data": None}) == []
    with pytest.raises(ProviderError):
        from_response({"data": [{"b64_json": "!!"}]})


def test_error_classification() -> None:
    assert classify_error(401, None) == (True, False)
    assert classify_error(429, {"code": "too_many_requests", "message": "slow down"}) == (True, False)
    assert classify_error(400, {"code": "not_enough_credits", "message": "Not enough credits"}) == (
        True,
        False,
    )
    assert classify_error(400, {"code": "invalid_size", "message": "bad size"}) == (False, True)
    assert classify_error(404, None) == (False, True)
    assert classify_error(502, None) == (True, False)
    assert error_text({"code": "invalid_size", "message": "bad size"}, "x") == "bad size"
    assert error_text({"code": "invalid_size"}, "x") == "invalid_size"
    assert error_text(None, "fallback") == "fallback"


# --- against the simulator -------------------------------------------------------------------------


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
async def test_every_catalog_row(
    row: ImageModelSpec, sim: RecraftSim, adapter: RecraftImageAdapter, http: aiohttp.ClientSession
) -> None:
    result = await adapter.generate_image(job_for(row), DEFAULT_KEY, 10)
    [decoded] = await decode_all(result.images, http)
    assert decoded.size == (1024, 1024) and decoded.format == "WEBP"
    recorded = sim.last()
    assert recorded.path == "/v1/images/generations"
    assert recorded.headers["authorization"] == f"Bearer {DEFAULT_KEY}"
    assert recorded.json["model"] == row.upstream_model
    assert recorded.json["style"] == "realistic_image"
    assert recorded.json["size"] == "1024x1024" and recorded.json["response_format"] == "b64_json"
    assert result.raw["data"][0]["image_id"] and "<base64 trimmed" in result.raw["data"][0]["b64_json"]


async def test_urls_and_aspect_ratio(
    sim: RecraftSim, adapter: RecraftImageAdapter, http: aiohttp.ClientSession
) -> None:
    job = ImageJob(spec=spec(), prompt="p", n=2, aspect_ratio="16:9", extra={"response_format": "url"})
    result = await adapter.generate_image(job, DEFAULT_KEY, 10)
    assert all(image.url for image in result.images)
    assert [image.size for image in await decode_all(result.images, http)] == [(1820, 1024)] * 2
    assert sim.last().json["size"] == "1820x1024"


@pytest.mark.parametrize("style", ["icon", "vector_illustration"])
async def test_vector_styles_are_refused_before_the_call(
    style: str, sim: RecraftSim, adapter: RecraftImageAdapter
) -> None:
    job = ImageJob(spec=spec("recraft20b"), prompt="p", extra={"style": style})
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job, DEFAULT_KEY, 10)
    assert caught.value.client_fault and not caught.value.retryable and "SVG" in caught.value.message
    assert sim.requests == []


async def test_wrong_key_is_a_retryable_401(sim: RecraftSim, adapter: RecraftImageAdapter) -> None:
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job_for(ROWS[0]), "wrong-token", 5)
    err = caught.value
    assert (err.kind, err.status, err.retryable, err.client_fault) == (FailureKind.HTTP, 401, True, False)
    assert sim.last().headers["authorization"] == "Bearer wrong-token"


async def test_upstream_validation_400_is_the_clients_fault(adapter: RecraftImageAdapter) -> None:
    job = ImageJob(spec=spec("recraft20b"), prompt="p", extra={"style": "any"})
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job, DEFAULT_KEY, 5)
    err = caught.value
    assert (err.status, err.retryable, err.client_fault) == (400, False, True)
    assert err.message == "style any is not available for recraft20b"


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (429, True), (500, True)])
async def test_injected_failures(
    status: int, retryable: bool, sim: RecraftSim, adapter: RecraftImageAdapter
) -> None:
    sim.config.fail_next.append(status)
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job_for(ROWS[0]), DEFAULT_KEY, 5)
    assert (caught.value.status, caught.value.retryable, caught.value.client_fault) == (
        status,
        retryable,
        not retryable,
    )


async def test_out_of_credits_is_the_channels_problem(sim: RecraftSim, adapter: RecraftImageAdapter) -> None:
    sim.config.fail_next.append(
        {"status": 400, "body": {"code": "not_enough_credits", "message": "Not enough credits"}}
    )
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job_for(ROWS[0]), DEFAULT_KEY, 5)
    assert caught.value.retryable and not caught.value.client_fault


async def test_failed_generation_is_retryable(sim: RecraftSim, adapter: RecraftImageAdapter) -> None:
    sim.config.fail_jobs_next = 1
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job_for(ROWS[1]), DEFAULT_KEY, 5)
    assert caught.value.status == 500 and caught.value.retryable


async def test_an_answer_without_images_is_a_generation_failure(
    sim: RecraftSim, adapter: RecraftImageAdapter
) -> None:
    sim.config.fail_next.append({"status": 200, "body": {"created": 1, "credits": 0, "data": []}})
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job_for(ROWS[0]), DEFAULT_KEY, 5)
    assert caught.value.kind is FailureKind.GENERATION and not caught.value.client_fault


async def test_sim_validates_like_the_reference(sim: RecraftSim, http: aiohttp.ClientSession) -> None:
    url = channel_base_url(sim) + "/images/generations"
    auth = {"Authorization": f"Bearer {DEFAULT_KEY}"}
    async with http.post(url, json={"prompt": "p"}) as resp:
        assert resp.status == 401 and await resp.text() == "request unauthorized"
    async with http.post(url, json={"model": "recraftv3"}, headers=auth) as resp:
        assert resp.status == 400 and (await resp.json())["message"] == "prompt is required"
    async with http.post(url, json={"prompt": "p", "size": "1000x1000"}, headers=auth) as resp:
        assert resp.status == 400 and (await resp.json())["code"] == "invalid_size"
    async with http.post(url, json={"prompt": "p", "size": "4:3"}, headers=auth) as resp:
        body = await resp.json()
        assert resp.status == 200 and body["data"][0]["url"].endswith(".webp")
    vector = {"prompt": "p", "model": "recraft20b", "style": "icon", "response_format": "b64_json"}
    async with http.post(url, json=vector, headers=auth) as resp:
        [item] = (await resp.json())["data"]
        assert base64.b64decode(item["b64_json"]).startswith(b"<svg")
