"""The stability adapter: its pure mapping functions, then every catalog row against the simulator."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from PIL import Image

from omnirelay.core.images import ImageInput, ImageJob, ImageModelSpec
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.registry import adapter_class
from omnirelay.providers.stability.images import (
    DEFAULT_STRENGTH,
    StabilityImageAdapter,
    api_of,
    classify_error,
    error_text,
    from_v1_response,
    from_v2_response,
    nearest_ratio,
    to_v1_request,
    to_v2_form,
    trim_raw,
    v1_size,
    v2_output_format,
)
from omnirelay.settings import ChannelConfig
from tests.upstreams.imaging import DEFAULT_KEY, make_image
from tests.upstreams.imaging import catalog_dicts as catalog_rows
from tests.upstreams.stability import StabilitySim, channel_base_url

# tests/upstreams/imaging.py stores its record under a str request key, which aiohttp >= 3.12 warns
# about once per process; the suite turns warnings into errors, so that first request would be a 500.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


def spec_of(row: dict[str, Any]) -> ImageModelSpec:
    return ImageModelSpec(
        id=row["id"],
        adapter=row["adapter"],
        upstream_model=row["upstream_model"],
        mode=row.get("mode", "t2i"),
        options=dict(row.get("options") or {}),
        rules=dict(row.get("rules") or {}),
    )


ROWS = catalog_rows("stability")
ROW_IDS = [row["id"] for row in ROWS]
INPUT = ImageInput(make_image(96, 64, "png"), "image/png", 96, 64)


def job_for(spec: ImageModelSpec, **changes: Any) -> ImageJob:
    """A job as the route would build it from the row's rule defaults."""
    rules = spec.rules
    job = ImageJob(spec=spec, prompt="a lighthouse at dusk")
    if "aspect_ratio" in rules and not spec.requires_image:
        job.aspect_ratio = rules["aspect_ratio"]["default"]
    if "size" in rules:
        job.size = rules["size"]["default"]
        job.width, job.height = (int(x) for x in job.size.split("x"))
    if spec.requires_image:
        job.images = [INPUT]
    for name, value in changes.items():
        setattr(job, name, value)
    return job


def spec(api: str, model: str, mode: str = "t2i") -> ImageModelSpec:
    return ImageModelSpec(
        id=f"test-{model}", adapter="stability", upstream_model=model, mode=mode, options={"api": api}
    )


def decode(data: bytes | None) -> Image.Image:
    assert data is not None
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# --- pure mapping -----------------------------------------------------------------------------------


def test_every_catalog_row_has_a_known_route() -> None:
    assert len(ROWS) == 11
    assert {api_of(spec_of(row)) for row in ROWS} == {"v1", "core", "ultra", "sd3"}


def test_api_guessed_when_the_row_has_none() -> None:
    bare = ImageModelSpec(id="x", adapter="stability", upstream_model="sd3.5-large")
    assert api_of(bare) == "sd3"
    assert api_of(ImageModelSpec(id="x", adapter="stability", upstream_model="ultra")) == "ultra"
    assert api_of(ImageModelSpec(id="x", adapter="stability", upstream_model="stable-diffusion-v1-6")) == "v1"
    with pytest.raises(ValueError, match=r"unknown options\.api"):
        api_of(ImageModelSpec(id="x", adapter="stability", upstream_model="m", options={"api": "v9"}))


def test_v1_request_body() -> None:
    job = job_for(
        spec("v1", "stable-diffusion-xl-1024-v1-0"),
        negative_prompt="fog",
        seed=42,
        n=3,
        extra={"cfg_scale": 9, "steps": 40, "style_preset": "photographic", "unknown": 1},
    )
    assert to_v1_request(job) == {
        "text_prompts": [{"text": "a lighthouse at dusk", "weight": 1}, {"text": "fog", "weight": -1}],
        "width": 1024,
        "height": 1024,
        "samples": 3,
        "seed": 42,
        "cfg_scale": 9,
        "steps": 40,
        "style_preset": "photographic",
    }


def test_v1_request_without_optionals() -> None:
    body = to_v1_request(job_for(spec("v1", "stable-diffusion-xl-1024-v1-0")))
    assert body == {
        "text_prompts": [{"text": "a lighthouse at dusk", "weight": 1}],
        "width": 1024,
        "height": 1024,
        "samples": 1,
    }


@pytest.mark.parametrize(
    ("width", "height", "ratio", "expected"),
    [
        (1024, 1024, None, (1024, 1024)),
        (1920, 1080, None, (1344, 768)),
        (1080, 1920, None, (768, 1344)),
        (500, 500, None, (1024, 1024)),
        (2400, 1000, None, (1536, 640)),
        (1024, 1024, "16:9", (1344, 768)),
        (1024, 1024, "3:4", (896, 1152)),
    ],
)
def test_sdxl_sizes_snap_to_the_allowed_list(
    width: int, height: int, ratio: str | None, expected: tuple[int, int]
) -> None:
    job = job_for(spec("v1", "stable-diffusion-xl-1024-v1-0"), width=width, height=height, aspect_ratio=ratio)
    assert v1_size(job.spec.upstream_model, job) == expected


def test_other_v1_engines_round_to_multiples_of_64() -> None:
    engine = "stable-diffusion-v1-6"
    assert v1_size(engine, job_for(spec("v1", engine), width=500, height=700)) == (512, 704)
    assert v1_size(engine, job_for(spec("v1", engine), width=100, height=4000)) == (320, 1536)
    assert v1_size(engine, job_for(spec("v1", engine), width=512, height=512, aspect_ratio="2:1")) == (
        704,
        384,
    )


def test_core_form_fields() -> None:
    job = job_for(
        spec("core", "core"),
        aspect_ratio="16:9",
        negative_prompt="fog",
        seed=7,
        output_format="jpg",
        extra={"style_preset": "anime", "cfg_scale": 3},
    )
    form = to_v2_form(job, "core")
    assert form.path == "/v2beta/stable-image/generate/core"
    assert form.fields == [
        ("prompt", "a lighthouse at dusk"),
        ("aspect_ratio", "16:9"),
        ("negative_prompt", "fog"),
        ("seed", "7"),
        ("output_format", "jpeg"),
        ("style_preset", "anime"),
    ]
    assert form.image is None
    assert form.media_type == "image/jpeg"


def test_v2_aspect_ratio_from_size_when_the_job_has_none() -> None:
    def ratio(**changes: Any) -> str | None:
        return to_v2_form(job_for(spec("ultra", "ultra"), **changes), "ultra").field("aspect_ratio")

    assert ratio(width=1920, height=1080) == "16:9"
    assert ratio(width=800, height=1000) == "4:5"
    assert ratio(aspect_ratio="4:3") == "5:4"  # not offered: the nearest one that is
    assert ratio(aspect_ratio="nonsense", width=1000, height=1500) == "2:3"
    assert nearest_ratio(2.0, ("1:2", "1:1", "21:9")) == "21:9"


def test_sd3_text_to_image_form() -> None:
    form = to_v2_form(job_for(spec("sd3", "sd3.5-large"), aspect_ratio="9:16", output_format="webp"), "sd3")
    assert form.fields == [
        ("prompt", "a lighthouse at dusk"),
        ("model", "sd3.5-large"),
        ("mode", "text-to-image"),
        ("aspect_ratio", "9:16"),
        ("output_format", "png"),  # SD3 makes png or jpeg only
    ]


def test_sd3_image_to_image_form() -> None:
    job = job_for(spec("sd3", "sd3-large", "i2i"), negative_prompt="fog")
    form = to_v2_form(job, "sd3")
    assert form.field("mode") == "image-to-image"
    assert form.field("strength") == str(DEFAULT_STRENGTH)
    assert form.field("aspect_ratio") is None
    assert form.field("negative_prompt") == "fog"
    assert form.image is INPUT
    strong = to_v2_form(job_for(spec("sd3", "sd3-large", "i2i"), extra={"strength": 0.35}), "sd3")
    assert strong.field("strength") == "0.35"
    with pytest.raises(ValueError, match="needs an input image"):
        to_v2_form(job_for(spec("sd3", "sd3-large", "i2i"), images=[]), "sd3")


def test_turbo_drops_the_negative_prompt() -> None:
    form = to_v2_form(job_for(spec("sd3", "sd3-large-turbo"), negative_prompt="fog"), "sd3")
    assert form.field("negative_prompt") is None


def test_repeated_calls_get_distinct_seeds() -> None:
    job = job_for(spec("core", "core"), seed=4_294_967_294, n=3)
    assert [to_v2_form(job, "core", i).field("seed") for i in range(3)] == ["4294967294", "0", "1"]
    random = job_for(spec("core", "core"), seed=0)
    assert to_v2_form(random, "core", 2).field("seed") == "0"


def test_output_formats() -> None:
    assert v2_output_format("core", "webp") == "webp"
    assert v2_output_format("ultra", "JPG") == "jpeg"
    assert v2_output_format("sd3", "webp") == "png"
    assert v2_output_format("core", "gif") == "png"


def test_v1_response_keeps_successful_artifacts() -> None:
    png = base64.b64encode(make_image(8, 8)).decode()
    body = {
        "artifacts": [
            {"base64": png, "seed": 1, "finishReason": "SUCCESS"},
            {"base64": png, "seed": 2, "finishReason": "CONTENT_FILTERED"},
        ]
    }
    images = from_v1_response(body)
    assert len(images) == 1
    assert images[0].media_type == "image/png"
    assert decode(images[0].data).size == (8, 8)


def test_v1_response_all_filtered_is_moderation() -> None:
    with pytest.raises(ProviderError) as caught:
        from_v1_response({"artifacts": [{"base64": "", "seed": 1, "finishReason": "CONTENT_FILTERED"}]})
    assert caught.value.kind is FailureKind.GENERATION
    assert caught.value.client_fault and not caught.value.retryable


def test_v1_response_error_is_a_failed_generation() -> None:
    with pytest.raises(ProviderError) as caught:
        from_v1_response({"artifacts": [{"base64": "", "seed": 1, "finishReason": "ERROR"}]})
    assert caught.value.kind is FailureKind.GENERATION
    assert not caught.value.client_fault


def test_v1_response_malformed() -> None:
    with pytest.raises(ProviderError) as caught:
        from_v1_response({"nothing": []})
    assert caught.value.kind is FailureKind.HTTP and caught.value.retryable


def test_v2_response() -> None:
    jpeg = make_image(8, 4, "jpeg")
    image = from_v2_response(
        {"image": base64.b64encode(jpeg).decode(), "finish_reason": "SUCCESS"}, "image/jpeg"
    )
    assert image.data == jpeg and image.media_type == "image/jpeg"
    with pytest.raises(ProviderError) as filtered:
        from_v2_response({"image": "AAAA", "finish_reason": "CONTENT_FILTERED"}, "image/png")
    assert filtered.value.kind is FailureKind.GENERATION and filtered.value.client_fault
    with pytest.raises(ProviderError) as garbled:
        from_v2_response({"image": "not base64!", "finish_reason": "SUCCESS"}, "image/png")
    assert garbled.value.kind is FailureKind.HTTP and garbled.value.retryable


def test_raw_is_trimmed() -> None:
    raw = trim_raw({"artifacts": [{"base64": "QUJD", "seed": 1}], "image": "QUJDRA==", "seed": 2})
    assert raw == {
        "artifacts": [{"base64": "<4 base64 characters>", "seed": 1}],
        "image": "<8 base64 characters>",
        "seed": 2,
    }


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (403, {"id": "x", "name": "content_moderation", "errors": ["flagged"]}, (False, True)),
        (403, {"id": "x", "name": "permission_denied", "message": "no"}, (True, False)),
        (401, {"id": "x", "name": "unauthorized", "errors": ["bad key"]}, (True, False)),
        (400, {"id": "x", "name": "bad_request", "errors": ["prompt: cannot be empty"]}, (False, True)),
        (404, {"id": "x", "name": "not_found", "message": "engine"}, (True, False)),
        (413, None, (False, True)),
        (422, {"id": "x", "name": "invalid_language", "errors": ["English only"]}, (False, True)),
        (429, None, (True, False)),
        (500, {"id": "x", "name": "internal_error", "errors": ["oops"]}, (True, False)),
    ],
)
def test_classify_error(status: int, body: Any, expected: tuple[bool, bool]) -> None:
    assert classify_error(status, body) == expected


def test_error_text() -> None:
    assert error_text({"id": "x", "name": "bad_request", "errors": ["a", "b"]}, "f") == "bad_request: a; b"
    assert error_text({"id": "x", "name": "unauthorized", "message": "no key"}, "f") == "unauthorized: no key"
    assert error_text(None, "fallback") == "fallback"


def test_registry_points_here() -> None:
    assert adapter_class("stability") is StabilityImageAdapter


# --- against the simulator --------------------------------------------------------------------------


@pytest.fixture
async def sim() -> AsyncIterator[StabilitySim]:
    server = StabilitySim()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def adapter(sim: StabilitySim, http: aiohttp.ClientSession) -> StabilityImageAdapter:
    channel = ChannelConfig(
        name="stab", provider="stability", base_url=channel_base_url(sim), api_key=DEFAULT_KEY
    )
    return StabilityImageAdapter(channel, http)


async def generate(
    sim: StabilitySim,
    http: aiohttp.ClientSession,
    job: ImageJob,
    key: str = DEFAULT_KEY,
    timeout_s: float = 10,
) -> Any:
    return await adapter(sim, http).generate_image(job, key, timeout_s)


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
async def test_catalog_row_generates(
    row: dict[str, Any], sim: StabilitySim, http: aiohttp.ClientSession
) -> None:
    model = spec_of(row)
    api = api_of(model)
    result = await generate(sim, http, job_for(model, negative_prompt="blurry", seed=11))
    assert len(result.images) == 1
    image = decode(result.images[0].data)
    assert result.images[0].media_type == "image/png" and image.format == "PNG"
    recorded = sim.last()
    assert recorded.headers["authorization"] == f"Bearer {DEFAULT_KEY}"
    assert recorded.headers["accept"] == "application/json"
    if api == "v1":
        assert recorded.path == f"/v1/generation/{model.upstream_model}/text-to-image"
        assert recorded.json["text_prompts"] == [
            {"text": "a lighthouse at dusk", "weight": 1},
            {"text": "blurry", "weight": -1},
        ]
        assert (recorded.json["width"], recorded.json["height"]) == image.size == (1024, 1024)
        assert recorded.json["samples"] == 1 and recorded.json["seed"] == 11
        assert "artifacts" in result.raw
        return
    assert recorded.path == f"/v2beta/stable-image/generate/{api}"
    assert recorded.headers["content-type"].startswith("multipart/form-data")
    form = recorded.form
    assert form["prompt"] == "a lighthouse at dusk"
    assert form["seed"] == "11" and form["output_format"] == "png"
    assert result.raw["image"].endswith("base64 characters>") and result.raw["finish_reason"] == "SUCCESS"
    if api == "sd3":
        assert form["model"] == model.upstream_model
        assert ("negative_prompt" in form) == (not model.upstream_model.endswith("-turbo"))
    else:
        assert "model" not in form and form["negative_prompt"] == "blurry"
    if model.requires_image:
        assert form["mode"] == "image-to-image"
        assert "aspect_ratio" not in form
        assert form["strength"] == "0.7"
        filename, data, content_type = form["image"]
        assert data == INPUT.data and content_type == "image/png" and filename == "image.png"
        assert image.size == (INPUT.width, INPUT.height)
    else:
        assert form["aspect_ratio"] == row["rules"]["aspect_ratio"]["default"] == "1:1"
        assert image.size[0] == image.size[1]
        if api == "sd3":
            assert form["mode"] == "text-to-image"
        assert "image" not in form


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
async def test_catalog_row_wrong_key_is_401(
    row: dict[str, Any], sim: StabilitySim, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(ProviderError) as caught:
        await generate(sim, http, job_for(spec_of(row)), key="sk-wrong")
    error = caught.value
    assert error.kind is FailureKind.HTTP and error.status == 401
    assert error.retryable and not error.client_fault
    assert error.body is not None and error.body["name"] == "unauthorized"


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
async def test_catalog_row_bad_request_is_the_clients_fault(
    row: dict[str, Any], sim: StabilitySim, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(ProviderError) as caught:
        await generate(sim, http, job_for(spec_of(row), prompt=""))
    error = caught.value
    assert error.status == 400 and error.client_fault and not error.retryable
    assert error.message.startswith("invalid_prompts:" if api_of(spec_of(row)) == "v1" else "bad_request:")


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
async def test_catalog_row_server_error_is_retryable(
    row: dict[str, Any], sim: StabilitySim, http: aiohttp.ClientSession
) -> None:
    sim.config.fail_next = [500]
    with pytest.raises(ProviderError) as caught:
        await generate(sim, http, job_for(spec_of(row)))
    error = caught.value
    assert error.kind is FailureKind.HTTP and error.status == 500
    assert error.retryable and not error.client_fault


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
async def test_catalog_row_filtered_is_moderation(
    row: dict[str, Any], sim: StabilitySim, http: aiohttp.ClientSession
) -> None:
    sim.config.moderate_jobs_next = 1
    with pytest.raises(ProviderError) as caught:
        await generate(sim, http, job_for(spec_of(row)))
    error = caught.value
    assert error.kind is FailureKind.GENERATION
    assert error.client_fault and not error.retryable
    assert "CONTENT_FILTERED" in error.message


@pytest.mark.parametrize("row", [r for r in ROWS if r["options"]["api"] != "v1"], ids=lambda r: r["id"])
async def test_catalog_row_403_content_moderation_is_moderation(
    row: dict[str, Any], sim: StabilitySim, http: aiohttp.ClientSession
) -> None:
    sim.moderation = "reject"
    sim.config.moderate_jobs_next = 1
    with pytest.raises(ProviderError) as caught:
        await generate(sim, http, job_for(spec_of(row)))
    error = caught.value
    assert error.kind is FailureKind.GENERATION and error.status == 403
    assert error.client_fault and not error.retryable
    assert error.message.startswith("stability refused the request (content_moderation: ")


async def test_v1_failed_generation(sim: StabilitySim, http: aiohttp.ClientSession) -> None:
    sim.config.fail_jobs_next = 1
    with pytest.raises(ProviderError) as caught:
        await generate(sim, http, job_for(spec_of(ROWS[0])))
    assert caught.value.kind is FailureKind.GENERATION and not caught.value.client_fault


async def test_v1_samples_make_n_images_in_one_call(sim: StabilitySim, http: aiohttp.ClientSession) -> None:
    job = job_for(spec_of(ROWS[0]), n=3, aspect_ratio="16:9")
    result = await generate(sim, http, job)
    assert len(sim.requests) == 1 and sim.last().json["samples"] == 3
    assert [decode(i.data).size for i in result.images] == [(1344, 768)] * 3


async def test_v2_n_images_are_n_calls(sim: StabilitySim, http: aiohttp.ClientSession) -> None:
    job = job_for(
        spec_of(next(r for r in ROWS if r["id"] == "stable-sd2-t2i")), n=3, seed=100, output_format="webp"
    )
    result = await generate(sim, http, job)
    assert len(result.images) == 3 and len(sim.requests) == 3
    assert sorted(r.form["seed"] for r in sim.requests) == ["100", "101", "102"]
    assert all(decode(i.data).format == "WEBP" and i.media_type == "image/webp" for i in result.images)
    assert isinstance(result.raw, list) and len(result.raw) == 3


async def test_v2_partial_results_are_kept(sim: StabilitySim, http: aiohttp.ClientSession) -> None:
    sim.config.moderate_jobs_next = 1
    job = job_for(
        spec_of(next(r for r in ROWS if r["id"] == "stable-sd3-ultra-t2i")), n=2, output_format="jpeg"
    )
    result = await generate(sim, http, job)
    assert len(result.images) == 1 and decode(result.images[0].data).format == "JPEG"
    assert [entry.get("finish_reason") for entry in result.raw if "error" not in entry] == ["SUCCESS"]
    assert [entry["error"]["status"] for entry in result.raw if "error" in entry] == [None]


async def test_v2_failed_job_is_a_retryable_500(sim: StabilitySim, http: aiohttp.ClientSession) -> None:
    sim.config.fail_jobs_next = 1
    with pytest.raises(ProviderError) as caught:
        await generate(sim, http, job_for(spec_of(next(r for r in ROWS if r["id"] == "stable-sd3-t2i"))))
    assert caught.value.status == 500 and caught.value.retryable
    assert caught.value.message == "internal_error: an unexpected server error has occurred"


async def test_sd3_i2i_strength_from_extra(sim: StabilitySim, http: aiohttp.ClientSession) -> None:
    row = next(r for r in ROWS if r["id"] == "stable-sd3.5-large-i2i")
    jpeg = ImageInput(make_image(40, 30, "jpeg"), "image/jpeg", 40, 30)
    result = await generate(sim, http, job_for(spec_of(row), images=[jpeg], extra={"strength": 0.25}))
    form = sim.last().form
    assert form["strength"] == "0.25" and form["image"][0] == "image.jpg" and form["image"][2] == "image/jpeg"
    assert decode(result.images[0].data).size == (40, 30)


async def test_bad_strength_is_the_clients_fault(sim: StabilitySim, http: aiohttp.ClientSession) -> None:
    row = next(r for r in ROWS if r["id"] == "stable-sd3-i2i")
    with pytest.raises(ProviderError) as caught:
        await generate(sim, http, job_for(spec_of(row), extra={"strength": 3}))
    assert caught.value.status == 400 and caught.value.client_fault
    assert "strength" in caught.value.message


async def test_i2i_without_image_fails_before_calling(sim: StabilitySim, http: aiohttp.ClientSession) -> None:
    row = next(r for r in ROWS if r["id"] == "stable-sd3-i2i")
    with pytest.raises(ProviderError) as caught:
        await generate(sim, http, job_for(spec_of(row), images=[]))
    assert caught.value.client_fault and not sim.requests


async def test_timeout(sim: StabilitySim, http: aiohttp.ClientSession) -> None:
    sim.config.latency_ms = 500
    with pytest.raises(ProviderError) as caught:
        await generate(sim, http, job_for(spec_of(ROWS[1])), timeout_s=0.1)
    assert caught.value.kind is FailureKind.TIMEOUT and caught.value.retryable


async def test_connection_refused(http: aiohttp.ClientSession) -> None:
    server = StabilitySim()
    await server.start()
    await server.stop()
    with pytest.raises(ProviderError) as caught:
        await generate(server, http, job_for(spec_of(ROWS[1])))
    assert caught.value.kind is FailureKind.CONNECT and caught.value.retryable


# --- the simulator's own wire behaviour -------------------------------------------------------------


async def test_sim_v2_requires_multipart(sim: StabilitySim, http: aiohttp.ClientSession) -> None:
    headers = {"Authorization": f"Bearer {DEFAULT_KEY}", "Accept": "application/json"}
    async with http.post(
        f"{sim.base_url}/v2beta/stable-image/generate/core", data={"prompt": "x"}, headers=headers
    ) as r:
        body = await r.json()
    assert r.status == 400
    assert set(body) == {"id", "name", "errors"} and body["name"] == "bad_request"


async def test_sim_v2_answers_image_bytes_for_image_accept(
    sim: StabilitySim, http: aiohttp.ClientSession
) -> None:
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("prompt", "x")
    form.add_field("output_format", "jpeg")
    headers = {"Authorization": f"Bearer {DEFAULT_KEY}", "Accept": "image/*"}
    async with http.post(
        f"{sim.base_url}/v2beta/stable-image/generate/ultra", data=form, headers=headers
    ) as r:
        data = await r.read()
        assert r.status == 200 and r.content_type == "image/jpeg"
        assert r.headers["finish-reason"] == "SUCCESS" and int(r.headers["seed"]) > 0
    assert decode(data).format == "JPEG"


async def test_sim_v1_rejects_non_sdxl_sizes_and_unknown_engines(
    sim: StabilitySim, http: aiohttp.ClientSession
) -> None:
    headers = {"Authorization": f"Bearer {DEFAULT_KEY}", "Accept": "application/json"}
    body = {"text_prompts": [{"text": "x"}], "width": 512, "height": 512}
    url = f"{sim.base_url}/v1/generation/stable-diffusion-xl-1024-v1-0/text-to-image"
    async with http.post(url, json=body, headers=headers) as r:
        answer = await r.json()
    assert (
        r.status == 400
        and answer["name"] == "invalid_sdxl_v1_dimensions"
        and set(answer) == {"id", "name", "message"}
    )
    async with http.post(f"{sim.base_url}/v1/generation/nope/text-to-image", json=body, headers=headers) as r:
        assert r.status == 404 and (await r.json())["name"] == "not_found"


async def test_sim_sd3_rejects_webp_and_unknown_models(
    sim: StabilitySim, http: aiohttp.ClientSession
) -> None:
    headers = {"Authorization": f"Bearer {DEFAULT_KEY}", "Accept": "application/json"}
    for fields, needle in ((("output_format", "webp"),), "output_format"), ((("model", "sd9"),), "model"):
        form = aiohttp.FormData(default_to_multipart=True)
        form.add_field("prompt", "x")
        for name, value in fields:
            form.add_field(name, value)
        async with http.post(
            f"{sim.base_url}/v2beta/stable-image/generate/sd3", data=form, headers=headers
        ) as r:
            answer = await r.json()
        assert r.status == 400 and answer["errors"][0].startswith(needle)
