"""OpenAI Images adapter: pure mapping, then every catalog row against the simulator."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest
from PIL import Image

from omnirelay.core.images import GeneratedImage, ImageInput, ImageJob, ImageModelSpec
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.openai_images.images import (
    DALLE2,
    DALLE3,
    GPT_IMAGE,
    OpenAIImagesAdapter,
    edit_parts,
    generation_request,
    images_from_response,
    is_moderation,
    merge_responses,
    model_family,
    pick_size,
    trim_response,
    variation_parts,
)
from omnirelay.providers.registry import adapter_class
from omnirelay.settings import ChannelConfig
from tests.upstreams.imaging import DEFAULT_KEY, make_image
from tests.upstreams.imaging import catalog_specs as catalog_rows
from tests.upstreams.openai_images.sim import OpenAIImagesSim, channel_base_url

# imaging.py keys its request storage with a plain string, which aiohttp >= 3.12 warns about once per
# process (NotAppKeyWarning); the suite's "error" filter would turn that into a 500 inside the simulator.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


ROWS = catalog_rows("openai_images")


def png_input(width: int = 64, height: int = 64) -> ImageInput:
    return ImageInput(make_image(width, height, "png"), "image/png", width, height)


def spec(model: str, **kw: Any) -> ImageModelSpec:
    return ImageModelSpec(id=model, adapter="openai_images", upstream_model=model, **kw)


def job_for(row: ImageModelSpec, **kw: Any) -> ImageJob:
    size = (row.rules.get("size") or {}).get("default")
    fields: dict[str, Any] = {"spec": row, "prompt": "a lighthouse at dusk", "size": size}
    if row.requires_image:
        fields["images"] = [png_input()]
    fields.update(kw)
    return ImageJob(**fields)


async def decode_all(images: list[GeneratedImage], http: aiohttp.ClientSession) -> list[Image.Image]:
    out: list[Image.Image] = []
    for image in images:
        data = image.data
        if data is None:
            assert image.url is not None
            async with http.get(image.url) as resp:
                assert resp.status == 200
                data = await resp.read()
        decoded = Image.open(io.BytesIO(data))
        decoded.load()
        out.append(decoded)
    return out


@pytest.fixture
async def sim() -> AsyncIterator[OpenAIImagesSim]:
    server = OpenAIImagesSim()
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
def adapter(sim: OpenAIImagesSim, http: aiohttp.ClientSession) -> OpenAIImagesAdapter:
    channel = ChannelConfig(name="oai-images", provider="openai_images", base_url=channel_base_url(sim))
    return OpenAIImagesAdapter(channel, http)


# --- pure mapping ----------------------------------------------------------------------------------


def test_registry_points_at_the_adapter() -> None:
    assert adapter_class("openai_images") is OpenAIImagesAdapter
    assert OpenAIImagesAdapter.id == "openai_images"


def test_catalog_has_rows_for_this_adapter() -> None:
    assert {row.upstream_model for row in ROWS} == {"dall-e-2", "dall-e-3", "gpt-image-1"}


def test_model_family() -> None:
    assert model_family("dall-e-2") == DALLE2
    assert model_family("DALL-E-3") == DALLE3
    assert model_family("gpt-image-1") == GPT_IMAGE
    assert model_family("some-compatible-model") == GPT_IMAGE


@pytest.mark.parametrize(
    ("model", "size", "width", "height", "expected"),
    [
        ("dall-e-3", "256x256", 256, 256, "1024x1024"),  # the catalog's dall-e size list reaches dall-e-3
        ("dall-e-3", None, 1600, 900, "1792x1024"),
        ("dall-e-3", None, 900, 1600, "1024x1792"),
        ("dall-e-2", None, 1536, 1024, "1024x1024"),
        ("dall-e-2", "512x512", 1024, 1024, "512x512"),
        ("dall-e-2", None, 300, 300, "256x256"),
        ("gpt-image-1", None, 1024, 1792, "1024x1536"),
        ("gpt-image-1", None, 1920, 1080, "1536x1024"),
        ("gpt-image-1", "auto", 1024, 1024, "auto"),
        ("other-model", None, 640, 480, "640x480"),
    ],
)
def test_pick_size(model: str, size: str | None, width: int, height: int, expected: str) -> None:
    job = ImageJob(spec=spec(model), prompt="p", size=size, width=width, height=height)
    assert pick_size(job) == expected


def test_generation_request_dalle3() -> None:
    job = ImageJob(
        spec=spec("dall-e-3"),
        prompt="a cat",
        size="1024x1024",
        negative_prompt="dogs",
        seed=7,
        extra={"quality": "high", "style": "natural", "user": "u-1", "background": "transparent", "foo": 1},
    )
    assert generation_request(job) == {
        "model": "dall-e-3",
        "prompt": "a cat",
        "n": 1,
        "size": "1024x1024",
        "response_format": "b64_json",
        "quality": "hd",
        "style": "natural",
        "user": "u-1",
    }


def test_generation_request_dalle2_urls_on_request() -> None:
    job = ImageJob(
        spec=spec("dall-e-2"), prompt="a cat", n=3, extra={"response_format": "url", "quality": "hd"}
    )
    body = generation_request(job)
    assert body == {
        "model": "dall-e-2",
        "prompt": "a cat",
        "n": 3,
        "size": "1024x1024",
        "response_format": "url",
    }
    assert generation_request(job, n=1)["n"] == 1


def test_generation_request_gpt_image() -> None:
    job = ImageJob(
        spec=spec("gpt-image-1"),
        prompt="a cat",
        width=1536,
        height=1024,
        output_format="jpg",
        extra={
            "quality": "hd",
            "background": "opaque",
            "output_compression": 80,
            "moderation": "low",
            "style": "vivid",
            "response_format": "url",
        },
    )
    assert generation_request(job) == {
        "model": "gpt-image-1",
        "prompt": "a cat",
        "n": 1,
        "size": "1536x1024",
        "output_format": "jpeg",
        "quality": "high",
        "background": "opaque",
        "output_compression": 80,
        "moderation": "low",
    }


def test_edit_parts_gpt_image_many_images_and_mask() -> None:
    first, second, mask = png_input(), png_input(32, 32), png_input()
    job = ImageJob(
        spec=spec("gpt-image-1", mode="i2i"),
        prompt="add a hat",
        images=[first, second],
        mask=mask,
        extra={"input_fidelity": "high", "moderation": "low"},
    )
    parts = edit_parts(job)
    assert parts[:3] == [("image[]", first), ("image[]", second), ("mask", mask)]
    assert dict(parts[3:]) == {
        "prompt": "add a hat",
        "model": "gpt-image-1",
        "n": "1",
        "size": "1024x1024",
        "output_format": "png",
        "input_fidelity": "high",
    }


def test_edit_parts_dalle2_single_image() -> None:
    image = png_input()
    job = ImageJob(spec=spec("dall-e-2"), prompt="p", images=[image, png_input()], size="512x512")
    parts = edit_parts(job)
    assert parts[0] == ("image", image)
    assert [name for name, _ in parts].count("image") == 1
    assert dict(parts[1:])["response_format"] == "b64_json"
    assert dict(parts[1:])["size"] == "512x512"


def test_variation_parts() -> None:
    image = png_input()
    job = ImageJob(spec=spec("dall-e-2"), prompt="", images=[image], n=2, extra={"user": "u"})
    assert variation_parts(job) == [
        ("image", image),
        ("model", "dall-e-2"),
        ("n", "2"),
        ("size", "1024x1024"),
        ("response_format", "b64_json"),
        ("user", "u"),
    ]
    with pytest.raises(ValueError):
        variation_parts(ImageJob(spec=spec("dall-e-2"), prompt=""))


RECORDED_GPT_IMAGE: dict[str, Any] = {
    "created": 1745000000,
    "background": "opaque",
    "data": [{"b64_json": base64.b64encode(make_image(8, 8, "webp")).decode()}],
    "output_format": "webp",
    "quality": "medium",
    "size": "1024x1024",
    "usage": {"input_tokens": 9, "output_tokens": 1056, "total_tokens": 1065},
}
RECORDED_DALLE3: dict[str, Any] = {
    "created": 1745000001,
    "data": [{"url": "https://files.example/img-1.png", "revised_prompt": "A cat, detailed."}],
}


def test_images_from_response() -> None:
    [inline] = images_from_response(RECORDED_GPT_IMAGE)
    assert inline.media_type == "image/webp" and inline.data is not None and inline.url is None
    [remote] = images_from_response(RECORDED_DALLE3)
    assert remote == GeneratedImage(url="https://files.example/img-1.png")
    assert images_from_response({"created": 1, "data": []}) == []
    assert images_from_response("nonsense") == []
    with pytest.raises(ProviderError) as caught:
        images_from_response({"data": [{"b64_json": "***not base64***"}]})
    assert caught.value.retryable


def test_trim_and_merge() -> None:
    trimmed = trim_response(RECORDED_GPT_IMAGE)
    assert trimmed["data"][0]["b64_json"].startswith("<base64 trimmed")
    assert trimmed["usage"] == RECORDED_GPT_IMAGE["usage"]
    assert RECORDED_GPT_IMAGE["data"][0]["b64_json"] != trimmed["data"][0]["b64_json"]  # not mutated
    merged = merge_responses([RECORDED_DALLE3, RECORDED_DALLE3])
    assert merged["created"] == 1745000001 and len(merged["data"]) == 2


def test_moderation_and_classification() -> None:
    assert is_moderation({"error": {"code": "content_policy_violation", "message": "no"}})
    assert is_moderation({"error": {"code": "moderation_blocked", "message": "no"}})
    assert not is_moderation({"error": {"code": "invalid_value"}})
    assert not is_moderation(None)
    channel = ChannelConfig(name="c", provider="openai_images", base_url="http://x/v1")
    adapter = OpenAIImagesAdapter.__new__(OpenAIImagesAdapter)
    adapter.channel = channel
    assert adapter.classify(400, {"error": {"code": "billing_hard_limit_reached"}}) == (True, False)
    assert adapter.classify(400, {"error": {"code": "invalid_value"}}) == (False, True)
    assert adapter.classify(429, {"error": {"code": "rate_limit_exceeded"}}) == (True, False)
    assert adapter.classify(503, None) == (True, False)


# --- against the simulator -------------------------------------------------------------------------


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
async def test_every_catalog_row(
    row: ImageModelSpec, sim: OpenAIImagesSim, adapter: OpenAIImagesAdapter, http: aiohttp.ClientSession
) -> None:
    job = job_for(row)
    result = await adapter.generate_image(job, DEFAULT_KEY, 10)
    [decoded] = await decode_all(result.images, http)
    assert decoded.size == (1024, 1024)
    recorded = sim.last()
    assert recorded.path == "/v1/images/generations"
    assert recorded.headers["authorization"] == f"Bearer {DEFAULT_KEY}"
    assert recorded.json["model"] == row.upstream_model
    assert recorded.json["prompt"] == "a lighthouse at dusk"
    assert recorded.json["size"] == "1024x1024"
    if row.upstream_model == "gpt-image-1":
        assert "response_format" not in recorded.json
        assert result.raw["usage"]["total_tokens"] > 0
    else:
        assert recorded.json["response_format"] == "b64_json"
    assert "<base64 trimmed" in str(result.raw["data"][0]["b64_json"])


async def test_dalle3_many_images_are_separate_calls(
    sim: OpenAIImagesSim, adapter: OpenAIImagesAdapter, http: aiohttp.ClientSession
) -> None:
    job = ImageJob(spec=spec("dall-e-3"), prompt="three cats", n=3, width=1792, height=1024)
    result = await adapter.generate_image(job, DEFAULT_KEY, 10)
    decoded = await decode_all(result.images, http)
    assert [image.size for image in decoded] == [(1792, 1024)] * 3
    assert len(sim.requests) == 3 and all(r.json["n"] == 1 for r in sim.requests)
    assert len(result.raw["data"]) == 3 and "revised_prompt" in result.raw["data"][0]


async def test_dalle2_url_results_are_downloadable(
    sim: OpenAIImagesSim, adapter: OpenAIImagesAdapter, http: aiohttp.ClientSession
) -> None:
    job = ImageJob(spec=spec("dall-e-2"), prompt="p", size="256x256", n=2, extra={"response_format": "url"})
    result = await adapter.generate_image(job, DEFAULT_KEY, 10)
    assert all(image.url and image.data is None for image in result.images)
    assert [image.size for image in await decode_all(result.images, http)] == [(256, 256)] * 2


async def test_gpt_image_output_format(sim: OpenAIImagesSim, adapter: OpenAIImagesAdapter) -> None:
    job = ImageJob(spec=spec("gpt-image-1"), prompt="p", width=1024, height=1536, output_format="webp")
    result = await adapter.generate_image(job, DEFAULT_KEY, 10)
    [image] = result.images
    assert image.media_type == "image/webp"
    assert sim.last().json["output_format"] == "webp" and sim.last().json["size"] == "1024x1536"


async def test_gpt_image_edit_with_many_images_and_mask(
    sim: OpenAIImagesSim, adapter: OpenAIImagesAdapter, http: aiohttp.ClientSession
) -> None:
    job = ImageJob(
        spec=spec("gpt-image-1", mode="i2i"),
        prompt="put them together",
        images=[png_input(), png_input(48, 48)],
        mask=png_input(),
        size="1536x1024",
    )
    result = await adapter.generate_image(job, DEFAULT_KEY, 10)  # images given: routed to edits
    assert [image.size for image in await decode_all(result.images, http)] == [(1536, 1024)]
    recorded = sim.last()
    assert recorded.path == "/v1/images/edits"
    assert recorded.headers["authorization"] == f"Bearer {DEFAULT_KEY}"
    assert len(recorded.form["image[]"]) == 2 and recorded.form["mask"][2] == "image/png"
    assert recorded.form["prompt"] == "put them together" and recorded.form["model"] == "gpt-image-1"


async def test_dalle2_edit_and_variation(
    sim: OpenAIImagesSim, adapter: OpenAIImagesAdapter, http: aiohttp.ClientSession
) -> None:
    job = ImageJob(spec=spec("dall-e-2"), prompt="make it red", images=[png_input()], size="512x512")
    edited = await adapter.edit_image(job, DEFAULT_KEY, 10)
    assert [image.size for image in await decode_all(edited.images, http)] == [(512, 512)]
    assert sim.last().path == "/v1/images/edits" and sim.last().form["image"][0].endswith(".png")
    varied = await adapter.vary_image(
        ImageJob(spec=spec("dall-e-2"), prompt="", images=[png_input()], n=2), DEFAULT_KEY, 10
    )
    assert len(await decode_all(varied.images, http)) == 2
    assert sim.last().path == "/v1/images/variations" and sim.last().form["n"] == "2"


def test_dalle2_inputs_become_png() -> None:
    jpeg = ImageInput(make_image(40, 40, "jpeg"), "image/jpeg", 40, 40)
    webp_mask = ImageInput(make_image(40, 40, "webp"), "image/webp", 40, 40)
    job = ImageJob(spec=spec("dall-e-2"), prompt="p", images=[jpeg], mask=webp_mask)
    parts = dict(edit_parts(job))
    image, mask = parts["image"], parts["mask"]
    assert isinstance(image, ImageInput) and isinstance(mask, ImageInput)
    assert image.media_type == "image/png" and Image.open(io.BytesIO(image.data)).mode == "RGBA"
    assert mask.media_type == "image/png" and (mask.width, mask.height) == (40, 40)
    [(_, varied), *_] = variation_parts(job)
    assert isinstance(varied, ImageInput) and Image.open(io.BytesIO(varied.data)).format == "PNG"
    gpt = dict(edit_parts(ImageJob(spec=spec("gpt-image-1"), prompt="p", images=[jpeg])))
    assert gpt["image"] is jpeg  # gpt-image takes JPEG as it is


async def test_dalle2_variation_of_a_jpeg(
    sim: OpenAIImagesSim, adapter: OpenAIImagesAdapter, http: aiohttp.ClientSession
) -> None:
    jpeg = ImageInput(make_image(64, 64, "jpeg"), "image/jpeg", 64, 64)
    result = await adapter.vary_image(
        ImageJob(spec=spec("dall-e-2"), prompt="", images=[jpeg], size="256x256"), DEFAULT_KEY, 10
    )
    assert [image.size for image in await decode_all(result.images, http)] == [(256, 256)]
    assert sim.last().form["image"][2] == "image/png"


async def test_edit_without_image_is_the_clients_fault(adapter: OpenAIImagesAdapter) -> None:
    with pytest.raises(ProviderError) as caught:
        await adapter.edit_image(ImageJob(spec=spec("gpt-image-1"), prompt="p"), DEFAULT_KEY, 5)
    assert caught.value.client_fault and not caught.value.retryable


async def test_wrong_key_is_a_retryable_401(adapter: OpenAIImagesAdapter) -> None:
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job_for(ROWS[0]), "sk-wrong-key-123456", 5)
    err = caught.value
    assert (err.kind, err.status, err.retryable, err.client_fault) == (FailureKind.HTTP, 401, True, False)
    assert "Incorrect API key" in err.message


async def test_upstream_validation_400_is_the_clients_fault(
    sim: OpenAIImagesSim, adapter: OpenAIImagesAdapter
) -> None:
    job = ImageJob(spec=spec("gpt-image-1"), prompt="p", extra={"quality": "ultra"})
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job, DEFAULT_KEY, 5)
    err = caught.value
    assert (err.status, err.retryable, err.client_fault) == (400, False, True)
    assert err.body is not None and err.body["error"]["param"] == "quality"


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (429, True), (500, True), (503, True)])
async def test_injected_failures(
    status: int, retryable: bool, sim: OpenAIImagesSim, adapter: OpenAIImagesAdapter
) -> None:
    sim.config.fail_next.append(status)
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job_for(ROWS[0]), DEFAULT_KEY, 5)
    assert (caught.value.status, caught.value.retryable, caught.value.client_fault) == (
        status,
        retryable,
        not retryable,
    )


async def test_billing_limit_is_the_channels_problem(
    sim: OpenAIImagesSim, adapter: OpenAIImagesAdapter
) -> None:
    body = {
        "error": {
            "message": "Billing hard limit has been reached",
            "type": "invalid_request_error",
            "param": None,
            "code": "billing_hard_limit_reached",
        }
    }
    sim.config.fail_next.append({"status": 400, "body": body})
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job_for(ROWS[0]), DEFAULT_KEY, 5)
    assert caught.value.retryable and not caught.value.client_fault


@pytest.mark.parametrize("model", ["dall-e-3", "dall-e-2", "gpt-image-1"])
async def test_moderation_is_a_generation_failure_of_the_client(
    model: str, sim: OpenAIImagesSim, adapter: OpenAIImagesAdapter
) -> None:
    sim.config.moderate_jobs_next = 1
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(ImageJob(spec=spec(model), prompt="p"), DEFAULT_KEY, 5)
    err = caught.value
    assert (err.kind, err.client_fault, err.retryable) == (FailureKind.GENERATION, True, False)
    assert "safety system" in err.message


async def test_failed_job_is_retryable(sim: OpenAIImagesSim, adapter: OpenAIImagesAdapter) -> None:
    sim.config.fail_jobs_next = 1
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(ImageJob(spec=spec("dall-e-3"), prompt="p"), DEFAULT_KEY, 5)
    assert caught.value.status == 500 and caught.value.retryable


async def test_one_failing_dalle3_call_fails_the_job(
    sim: OpenAIImagesSim, adapter: OpenAIImagesAdapter
) -> None:
    sim.config.fail_next.append(500)
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(ImageJob(spec=spec("dall-e-3"), prompt="p", n=2), DEFAULT_KEY, 5)
    assert caught.value.status == 500


# --- the simulator against the official SDK --------------------------------------------------------


async def test_sim_speaks_to_the_official_sdk(sim: OpenAIImagesSim) -> None:
    async with openai.AsyncOpenAI(
        api_key=DEFAULT_KEY, base_url=channel_base_url(sim), max_retries=0
    ) as client:
        made = await client.images.generate(model="gpt-image-1", prompt="a fox", size="1024x1536")
        assert made.data and made.data[0].b64_json and made.usage is not None
        edited = await client.images.edit(
            model="gpt-image-1",
            prompt="add a hat",
            image=[("a.png", make_image(32, 32), "image/png"), ("b.png", make_image(32, 32), "image/png")],
        )
        assert edited.data and edited.data[0].b64_json
        assert len(sim.last().form["image[]"]) == 2
        with pytest.raises(openai.BadRequestError):
            await client.images.generate(model="dall-e-3", prompt="x", n=2)
        with pytest.raises(openai.AuthenticationError):
            async with openai.AsyncOpenAI(
                api_key="sk-nope", base_url=channel_base_url(sim), max_retries=0
            ) as bad:
                await bad.images.generate(model="dall-e-2", prompt="x")
