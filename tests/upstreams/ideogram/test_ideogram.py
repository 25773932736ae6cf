"""The ideogram adapter: its pure mapping functions, then every catalog row against the simulator."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from PIL import Image

from omnirelay.core.images import ImageJob, ImageModelSpec, ImageResult
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.ideogram.images import (
    IdeogramImageAdapter,
    api_of,
    error_text,
    from_response,
    is_safety_rejection,
    legacy_aspect_ratio,
    to_legacy_request,
    to_v3_fields,
    v3_aspect_ratio,
)
from omnirelay.providers.registry import adapter_class
from omnirelay.settings import ChannelConfig
from tests.upstreams.ideogram import IdeogramSim, channel_base_url
from tests.upstreams.imaging import DEFAULT_KEY
from tests.upstreams.imaging import catalog_dicts as catalog_rows

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


ROWS = catalog_rows("ideogram")
ROW_IDS = [row["id"] for row in ROWS]


def job_for(spec: ImageModelSpec, **changes: Any) -> ImageJob:
    """A job as the route would build it from the row's rule defaults."""
    job = ImageJob(spec=spec, prompt="a neon sign that says OPEN")
    if "aspect_ratio" in spec.rules:
        job.aspect_ratio = spec.rules["aspect_ratio"]["default"]
    for name, value in changes.items():
        setattr(job, name, value)
    return job


def legacy(model: str = "V_2") -> ImageModelSpec:
    return ImageModelSpec(id=f"test-{model}", adapter="ideogram", upstream_model=model)


V3 = ImageModelSpec(
    id="test-v3", adapter="ideogram", upstream_model="V_3", options={"api": "v3", "rendering_speed": "TURBO"}
)


# --- pure mapping -----------------------------------------------------------------------------------


def test_every_catalog_row_has_a_known_route() -> None:
    assert len(ROWS) == 7
    assert [api_of(spec_of(row)) for row in ROWS] == ["legacy"] * 6 + ["v3"]
    assert api_of(ImageModelSpec(id="x", adapter="ideogram", upstream_model="V_3")) == "v3"
    with pytest.raises(ValueError, match="unknown options"):
        api_of(ImageModelSpec(id="x", adapter="ideogram", upstream_model="V_2", options={"api": "v9"}))


@pytest.mark.parametrize(
    ("ratio", "width", "height", "legacy_value", "v3_value"),
    [
        ("16:9", 1024, 1024, "ASPECT_16_9", "16x9"),
        ("10:16", 1024, 1024, "ASPECT_10_16", "10x16"),
        ("1:3", 1024, 1024, "ASPECT_1_3", "1x3"),
        ("4:5", 1024, 1024, "ASPECT_3_4", "4x5"),  # not a legacy ratio: the nearest one
        ("21:9", 1024, 1024, "ASPECT_3_1", "2x1"),  # nearest on a log scale
        (None, 1024, 1024, "ASPECT_1_1", "1x1"),
        (None, 1920, 1080, "ASPECT_16_9", "16x9"),
        (None, 1000, 2000, "ASPECT_9_16", "1x2"),
    ],
)
def test_aspect_ratio_forms(
    ratio: str | None, width: int, height: int, legacy_value: str, v3_value: str
) -> None:
    job = job_for(legacy(), aspect_ratio=ratio, width=width, height=height)
    assert legacy_aspect_ratio(job) == legacy_value
    assert v3_aspect_ratio(job) == v3_value


def test_legacy_request_body() -> None:
    job = job_for(
        legacy("V_2"),
        aspect_ratio="16:9",
        negative_prompt="blur",
        seed=5,
        n=2,
        extra={"magic_prompt_option": "off", "style_type": "realistic", "other": 1},
    )
    assert to_legacy_request(job) == {
        "image_request": {
            "prompt": "a neon sign that says OPEN",
            "model": "V_2",
            "aspect_ratio": "ASPECT_16_9",
            "num_images": 2,
            "negative_prompt": "blur",
            "seed": 5,
            "magic_prompt_option": "OFF",
            "style_type": "REALISTIC",
        }
    }


def test_legacy_request_minimal() -> None:
    assert to_legacy_request(job_for(legacy("V_1_TURBO"))) == {
        "image_request": {
            "prompt": "a neon sign that says OPEN",
            "model": "V_1_TURBO",
            "aspect_ratio": "ASPECT_1_1",
            "num_images": 1,
        }
    }


def test_legacy_model_limits() -> None:
    extras = {"style_type": "ANIME", "magic_prompt": True}
    v1 = to_legacy_request(job_for(legacy("V_1"), negative_prompt="blur", extra=extras))["image_request"]
    assert v1["negative_prompt"] == "blur" and "style_type" not in v1 and v1["magic_prompt_option"] == "ON"
    v2a = to_legacy_request(job_for(legacy("V_2A"), negative_prompt="blur", extra=extras))["image_request"]
    assert "negative_prompt" not in v2a and v2a["style_type"] == "ANIME"


def test_v3_fields() -> None:
    job = job_for(
        V3,
        aspect_ratio="3:2",
        negative_prompt="blur",
        seed=9,
        n=3,
        extra={"magic_prompt_option": "auto", "style_type": "design", "rendering_speed": "QUALITY"},
    )
    assert to_v3_fields(job) == [
        ("prompt", "a neon sign that says OPEN"),
        ("aspect_ratio", "3x2"),
        ("rendering_speed", "TURBO"),  # the row's option, not the client's: it decides the price
        ("num_images", "3"),
        ("negative_prompt", "blur"),
        ("seed", "9"),
        ("magic_prompt", "AUTO"),
        ("style_type", "DESIGN"),
    ]
    plain = ImageModelSpec(id="x", adapter="ideogram", upstream_model="V_3", options={"api": "v3"})
    assert ("rendering_speed", "DEFAULT") in to_v3_fields(job_for(plain))


def test_response_urls() -> None:
    body = {
        "created": "2025-01-01T00:00:00Z",
        "data": [
            {
                "url": "https://x/1.png",
                "is_image_safe": True,
                "seed": 1,
                "prompt": "p",
                "resolution": "1024x1024",
            },
            {"url": None, "is_image_safe": False, "seed": 2, "prompt": "p", "resolution": "1024x1024"},
        ],
    }
    images = from_response(body)
    assert [i.url for i in images] == ["https://x/1.png"]
    assert images[0].data is None


def test_all_unsafe_is_moderation() -> None:
    with pytest.raises(ProviderError) as caught:
        from_response({"data": [{"url": None, "is_image_safe": False}]})
    assert caught.value.kind is FailureKind.GENERATION
    assert caught.value.client_fault and not caught.value.retryable


@pytest.mark.parametrize("body", [{"data": []}, {"nope": 1}, [], {"data": [{"is_image_safe": True}]}])
def test_malformed_answers_are_retryable(body: Any) -> None:
    with pytest.raises(ProviderError) as caught:
        from_response(body)
    assert caught.value.kind is FailureKind.HTTP and caught.value.retryable


def test_error_text_and_safety() -> None:
    assert error_text({"detail": "Prompt failed the safety check."}, "f") == "Prompt failed the safety check."
    validation = {"detail": [{"loc": ["body", "prompt"], "msg": "field required", "type": "missing"}]}
    assert error_text(validation, "f") == "field required"
    assert error_text(None, "fallback") == "fallback"
    assert is_safety_rejection(422, {"detail": "Prompt failed the safety check."})
    assert not is_safety_rejection(422, validation)
    assert not is_safety_rejection(400, {"detail": "safety"})


def test_registry_points_here() -> None:
    assert adapter_class("ideogram") is IdeogramImageAdapter


# --- against the simulator --------------------------------------------------------------------------


@pytest.fixture
async def sim() -> AsyncIterator[IdeogramSim]:
    server = IdeogramSim()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def generate(
    sim: IdeogramSim,
    http: aiohttp.ClientSession,
    job: ImageJob,
    key: str = DEFAULT_KEY,
    timeout_s: float = 10,
) -> ImageResult:
    channel = ChannelConfig(
        name="ideo", provider="ideogram", base_url=channel_base_url(sim), api_key=DEFAULT_KEY
    )
    return await IdeogramImageAdapter(channel, http).generate_image(job, key, timeout_s)


async def download(http: aiohttp.ClientSession, url: str | None) -> Image.Image:
    assert url is not None
    async with http.get(url) as response:
        assert response.status == 200
        data = await response.read()
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
async def test_catalog_row_generates(
    row: dict[str, Any], sim: IdeogramSim, http: aiohttp.ClientSession
) -> None:
    model = spec_of(row)
    job = job_for(model, negative_prompt="blurry", seed=77, n=2)
    result = await generate(sim, http, job)
    assert len(result.images) == 2
    for generated in result.images:
        image = await download(http, generated.url)
        assert image.format == "PNG" and image.size[0] == image.size[1]  # the rule's default is 1:1
    recorded = sim.requests[0]
    assert recorded.headers["api-key"] == DEFAULT_KEY and "authorization" not in recorded.headers
    assert isinstance(result.raw, dict) and len(result.raw["data"]) == 2
    assert [item["seed"] for item in result.raw["data"]] == [77, 78]
    if model.options.get("api") == "v3":
        assert recorded.path == "/v1/ideogram-v3/generate"
        assert recorded.headers["content-type"].startswith("multipart/form-data")
        assert recorded.form == {
            "prompt": "a neon sign that says OPEN",
            "aspect_ratio": "1x1",
            "rendering_speed": row["options"]["rendering_speed"],
            "num_images": "2",
            "negative_prompt": "blurry",
            "seed": "77",
        }
        return
    assert recorded.path == "/generate"
    request = recorded.json["image_request"]
    assert request["model"] == model.upstream_model
    assert request["prompt"] == "a neon sign that says OPEN"
    assert request["aspect_ratio"] == "ASPECT_1_1" and request["num_images"] == 2 and request["seed"] == 77
    assert ("negative_prompt" in request) == (
        model.upstream_model in ("V_1", "V_1_TURBO", "V_2", "V_2_TURBO")
    )


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
async def test_catalog_row_wide_ratio(
    row: dict[str, Any], sim: IdeogramSim, http: aiohttp.ClientSession
) -> None:
    result = await generate(sim, http, job_for(spec_of(row), aspect_ratio="16:9"))
    image = await download(http, result.images[0].url)
    assert image.size[0] > image.size[1]
    assert abs(image.size[0] / image.size[1] - 16 / 9) < 0.1


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
async def test_catalog_row_wrong_key_is_401(
    row: dict[str, Any], sim: IdeogramSim, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(ProviderError) as caught:
        await generate(sim, http, job_for(spec_of(row)), key="wrong")
    error = caught.value
    assert error.kind is FailureKind.HTTP and error.status == 401
    assert error.retryable and not error.client_fault
    assert error.message.startswith("Unauthorized")


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
async def test_catalog_row_bad_request_is_the_clients_fault(
    row: dict[str, Any], sim: IdeogramSim, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(ProviderError) as caught:
        await generate(sim, http, job_for(spec_of(row), n=9))
    error = caught.value
    assert error.status == 400 and error.client_fault and not error.retryable
    assert error.message == "num_images must be between 1 and 8"


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
async def test_catalog_row_server_error_is_retryable(
    row: dict[str, Any], sim: IdeogramSim, http: aiohttp.ClientSession
) -> None:
    sim.config.fail_next = [500]
    with pytest.raises(ProviderError) as caught:
        await generate(sim, http, job_for(spec_of(row)))
    error = caught.value
    assert error.kind is FailureKind.HTTP and error.status == 500
    assert error.retryable and not error.client_fault
    assert error.message == "injected failure 500"


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
async def test_catalog_row_unsafe_image_is_moderation(
    row: dict[str, Any], sim: IdeogramSim, http: aiohttp.ClientSession
) -> None:
    sim.config.moderate_jobs_next = 1
    with pytest.raises(ProviderError) as caught:
        await generate(sim, http, job_for(spec_of(row)))
    error = caught.value
    assert error.kind is FailureKind.GENERATION
    assert error.client_fault and not error.retryable


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
async def test_catalog_row_safety_422_is_moderation(
    row: dict[str, Any], sim: IdeogramSim, http: aiohttp.ClientSession
) -> None:
    sim.config.fail_next = [{"status": 422, "body": {"detail": "Prompt failed the safety check."}}]
    with pytest.raises(ProviderError) as caught:
        await generate(sim, http, job_for(spec_of(row)))
    error = caught.value
    assert error.kind is FailureKind.GENERATION and error.status == 422
    assert error.client_fault and not error.retryable
    assert error.message == "ideogram refused the prompt (Prompt failed the safety check.)"


async def test_other_422_stays_a_client_fault_http_error(
    sim: IdeogramSim, http: aiohttp.ClientSession
) -> None:
    sim.config.fail_next = [422]
    with pytest.raises(ProviderError) as caught:
        await generate(sim, http, job_for(spec_of(ROWS[0])))
    assert caught.value.kind is FailureKind.HTTP and caught.value.status == 422
    assert caught.value.client_fault and not caught.value.retryable


async def test_rate_limit_is_retryable(sim: IdeogramSim, http: aiohttp.ClientSession) -> None:
    sim.config.fail_next = [429]
    with pytest.raises(ProviderError) as caught:
        await generate(sim, http, job_for(spec_of(ROWS[-1])))
    assert caught.value.status == 429 and caught.value.retryable and not caught.value.client_fault


async def test_failed_job_is_a_retryable_500(sim: IdeogramSim, http: aiohttp.ClientSession) -> None:
    sim.config.fail_jobs_next = 1
    with pytest.raises(ProviderError) as caught:
        await generate(sim, http, job_for(spec_of(ROWS[2])))
    assert caught.value.status == 500 and caught.value.retryable


async def test_v3_extras_reach_the_form(sim: IdeogramSim, http: aiohttp.ClientSession) -> None:
    extra = {"magic_prompt_option": "OFF", "style_type": "realistic"}
    await generate(sim, http, job_for(spec_of(ROWS[-1]), extra=extra))
    form = sim.last().form
    assert form["magic_prompt"] == "OFF" and form["style_type"] == "REALISTIC"


async def test_bad_style_is_the_clients_fault(sim: IdeogramSim, http: aiohttp.ClientSession) -> None:
    with pytest.raises(ProviderError) as caught:
        await generate(sim, http, job_for(legacy("V_2"), extra={"style_type": "CUBIST"}))
    assert caught.value.status == 400 and caught.value.client_fault
    assert caught.value.message.startswith("style_type must be one of")


async def test_timeout(sim: IdeogramSim, http: aiohttp.ClientSession) -> None:
    sim.config.latency_ms = 500
    with pytest.raises(ProviderError) as caught:
        await generate(sim, http, job_for(spec_of(ROWS[0])), timeout_s=0.1)
    assert caught.value.kind is FailureKind.TIMEOUT and caught.value.retryable


# --- the simulator's own wire behaviour -------------------------------------------------------------


async def test_sim_v3_requires_multipart_and_a_prompt(sim: IdeogramSim, http: aiohttp.ClientSession) -> None:
    headers = {"Api-Key": DEFAULT_KEY}
    url = f"{sim.base_url}/v1/ideogram-v3/generate"
    async with http.post(url, json={"prompt": "x"}, headers=headers) as r:
        assert r.status == 400 and set(await r.json()) == {"detail"}
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("aspect_ratio", "16x9")
    async with http.post(url, data=form, headers=headers) as r:
        assert r.status == 400 and (await r.json()) == {"detail": "prompt is required"}


async def test_sim_legacy_validation(sim: IdeogramSim, http: aiohttp.ClientSession) -> None:
    headers = {"Api-Key": DEFAULT_KEY}
    url = f"{sim.base_url}/generate"
    cases = [
        ({"prompt": "x"}, "image_request is required"),
        ({"image_request": {"prompt": "x", "model": "V_9"}}, "model must be one of"),
        ({"image_request": {"prompt": "x", "aspect_ratio": "16:9"}}, "aspect_ratio must be one of"),
        ({"image_request": {"prompt": "x", "seed": -1}}, "seed must be between"),
    ]
    for body, needle in cases:
        async with http.post(url, json=body, headers=headers) as r:
            assert r.status == 400 and (await r.json())["detail"].startswith(needle)
    async with http.post(url, json={"image_request": {"prompt": "x"}}) as r:
        assert r.status == 401
