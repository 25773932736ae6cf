"""Google Imagen adapter: pure mappings and every catalog row against the simulator."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from PIL import Image

from omnirelay.core.images import ImageJob, ImageModelSpec
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.google_imagen.images import (
    GoogleImagenAdapter,
    classify_google,
    imagen_images,
    imagen_ratio,
    imagen_request,
    trim_predictions,
)
from omnirelay.providers.registry import adapter_class
from omnirelay.settings import ChannelConfig
from tests.upstreams.google_imagen import GoogleImagenSim, channel_base_url
from tests.upstreams.google_imagen.sim import SIZES
from tests.upstreams.imaging import DEFAULT_KEY, default_job
from tests.upstreams.imaging import catalog_specs as catalog_rows

ROWS = catalog_rows("google_imagen")
SPEC = ROWS[0]


@pytest.fixture
async def sim() -> AsyncIterator[GoogleImagenSim]:
    server = GoogleImagenSim()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def make_adapter(sim: GoogleImagenSim, http: aiohttp.ClientSession) -> GoogleImagenAdapter:
    channel = ChannelConfig(
        name="imagen", provider="google_imagen", base_url=channel_base_url(sim), api_key=DEFAULT_KEY
    )
    return GoogleImagenAdapter(channel, http)


def size_of(data: bytes | None) -> tuple[int, int]:
    assert data is not None
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return img.size


async def failure(adapter: GoogleImagenAdapter, job: ImageJob, key: str = DEFAULT_KEY) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job, key, 10)
    return caught.value


# --- pure mappings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratio", "width", "height", "sent"),
    [
        ("16:9", 1024, 1024, "16:9"),
        ("1:1", 1024, 1024, "1:1"),
        ("21:9", 1024, 1024, "16:9"),
        ("9:21", 1024, 1024, "9:16"),
        ("2:3", 1024, 1024, "3:4"),
        (None, 1600, 900, "16:9"),
        (None, 1024, 1024, "1:1"),
        ("junk", 800, 600, "4:3"),
    ],
)
def test_ratio_is_one_imagen_draws(ratio: str | None, width: int, height: int, sent: str) -> None:
    assert imagen_ratio(ratio, width, height) == sent


def test_request_fields() -> None:
    job = default_job(SPEC, n=7, negative_prompt="blur", extra={"person_generation": "DONT_ALLOW"})
    assert imagen_request(job) == {
        "instances": [{"prompt": "a lighthouse at dawn"}],
        "parameters": {
            "sampleCount": 4,
            "aspectRatio": "1:1",
            "personGeneration": "dont_allow",
            "negativePrompt": "blur",
        },
    }
    assert imagen_request(default_job(SPEC, extra={"personGeneration": "everyone"}))["parameters"] == {
        "sampleCount": 1,
        "aspectRatio": "1:1",
    }


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, {"error": {"status": "INVALID_ARGUMENT"}}, (False, True)),
        (400, {"error": {"status": "FAILED_PRECONDITION"}}, (False, True)),
        (403, {"error": {"status": "PERMISSION_DENIED"}}, (True, False)),
        (401, {"error": {"status": "UNAUTHENTICATED"}}, (True, False)),
        (429, {"error": {"status": "RESOURCE_EXHAUSTED"}}, (True, False)),
        (503, {"error": {"status": "UNAVAILABLE"}}, (True, False)),
        (500, {"error": {"status": "INTERNAL"}}, (True, False)),
        (404, {"error": {"status": "NOT_FOUND"}}, (True, False)),
        (
            400,
            {"error": {"status": "INVALID_ARGUMENT", "details": [{"reason": "API_KEY_INVALID"}]}},
            (True, False),
        ),
        (502, None, (True, False)),
        (400, None, (False, True)),
    ],
)
def test_classification_table(status: int, body: Any, expected: tuple[bool, bool]) -> None:
    assert classify_google(status, body) == expected


def test_filtered_entries_and_trimming() -> None:
    body = {
        "predictions": [
            {"bytesBase64Encoded": "iVBORw==", "mimeType": "image/png"},
            {"raiFilteredReason": "x"},
        ]
    }
    images, reasons = imagen_images(body)
    assert len(images) == 1 and images[0].media_type == "image/png" and reasons == ["x"]
    assert trim_predictions(body)["predictions"][0]["bytesBase64Encoded"] == "<8 base64 characters omitted>"
    assert imagen_images({}) == ([], [])


def test_registry_names_this_adapter() -> None:
    assert adapter_class("google_imagen") is GoogleImagenAdapter


# --- against the simulator ------------------------------------------------------------------------


def test_catalog_rows_are_all_covered() -> None:
    assert {r.id for r in ROWS} == {"google-v3-t2i", "google-v3-fast-t2i"}


@pytest.mark.parametrize("spec", ROWS, ids=[r.id for r in ROWS])
async def test_every_catalog_row_generates(
    spec: ImageModelSpec, sim: GoogleImagenSim, http: aiohttp.ClientSession
) -> None:
    result = await make_adapter(sim, http).generate_image(default_job(spec), DEFAULT_KEY, 10)
    assert len(result.images) == 1
    assert size_of(result.images[0].data) == SIZES["1:1"]
    assert result.images[0].media_type == "image/png"
    sent = sim.last()
    assert sent.path == f"/v1beta/models/{spec.upstream_model}:predict"
    assert sent.headers["x-goog-api-key"] == DEFAULT_KEY and "authorization" not in sent.headers
    assert sent.json == {
        "instances": [{"prompt": "a lighthouse at dawn"}],
        "parameters": {"sampleCount": 1, "aspectRatio": "1:1"},
    }
    assert result.raw["predictions"][0]["bytesBase64Encoded"].endswith("base64 characters omitted>")


@pytest.mark.parametrize(
    ("asked", "sent"), [("16:9", "16:9"), ("9:16", "9:16"), ("21:9", "16:9"), ("9:21", "9:16")]
)
async def test_ratios_and_several_images(
    asked: str, sent: str, sim: GoogleImagenSim, http: aiohttp.ClientSession
) -> None:
    result = await make_adapter(sim, http).generate_image(
        default_job(SPEC, aspect_ratio=asked, n=3), DEFAULT_KEY, 10
    )
    assert sim.last().json["parameters"] == {"sampleCount": 3, "aspectRatio": sent}
    assert [size_of(i.data) for i in result.images] == [SIZES[sent]] * 3


async def test_filtered_images_are_missing_not_fatal(
    sim: GoogleImagenSim, http: aiohttp.ClientSession
) -> None:
    sim.filter_next = 2
    result = await make_adapter(sim, http).generate_image(default_job(SPEC, n=3), DEFAULT_KEY, 10)
    assert len(result.images) == 1


async def test_all_filtered_is_a_refusal(sim: GoogleImagenSim, http: aiohttp.ClientSession) -> None:
    adapter = make_adapter(sim, http)
    sim.config.moderate_jobs_next = 1
    error = await failure(adapter, default_job(SPEC))
    assert (error.kind, error.retryable, error.client_fault) == (FailureKind.GENERATION, False, True)
    sim.filter_next = 2
    job = default_job(SPEC, n=2, extra={})
    error = await failure(adapter, job)
    assert error.kind is FailureKind.GENERATION and error.client_fault


async def test_filter_reason_is_reported(sim: GoogleImagenSim, http: aiohttp.ClientSession) -> None:
    sim.config.fail_next = [
        {"status": 200, "body": {"predictions": [{"raiFilteredReason": "blocked: people"}]}},
    ]
    error = await failure(make_adapter(sim, http), default_job(SPEC))
    assert error.kind is FailureKind.GENERATION and "blocked: people" in error.message


async def test_auth_errors_are_the_channels(sim: GoogleImagenSim, http: aiohttp.ClientSession) -> None:
    adapter = make_adapter(sim, http)
    error = await failure(adapter, default_job(SPEC), "wrong-key")
    assert (error.kind, error.status, error.retryable, error.client_fault) == (
        FailureKind.HTTP,
        400,
        True,
        False,
    )
    assert "API key not valid" in error.message
    error = await failure(adapter, default_job(SPEC), "")
    assert (error.status, error.retryable, error.client_fault) == (403, True, False)
    sim.config.fail_next = [401]
    error = await failure(adapter, default_job(SPEC))
    assert (error.status, error.retryable, error.client_fault) == (401, True, False)


async def test_bad_requests_are_the_clients(sim: GoogleImagenSim, http: aiohttp.ClientSession) -> None:
    adapter = make_adapter(sim, http)
    error = await failure(adapter, default_job(SPEC, prompt="   "))
    assert (error.status, error.retryable, error.client_fault) == (400, False, True)
    assert error.body is not None and error.body["error"]["status"] == "INVALID_ARGUMENT"


async def test_unknown_model_may_be_known_elsewhere(
    sim: GoogleImagenSim, http: aiohttp.ClientSession
) -> None:
    spec = dataclasses.replace(SPEC, upstream_model="imagen-9")
    error = await failure(make_adapter(sim, http), default_job(spec))
    assert (error.status, error.retryable, error.client_fault) == (404, True, False)


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_server_and_quota_errors_are_retryable(
    status: int, sim: GoogleImagenSim, http: aiohttp.ClientSession
) -> None:
    sim.config.fail_next = [status]
    error = await failure(make_adapter(sim, http), default_job(SPEC))
    assert (error.kind, error.status, error.retryable, error.client_fault) == (
        FailureKind.HTTP,
        status,
        True,
        False,
    )
    assert error.body is not None and error.body["error"]["code"] == status


async def test_failed_job_is_retryable(sim: GoogleImagenSim, http: aiohttp.ClientSession) -> None:
    sim.config.fail_jobs_next = 1
    error = await failure(make_adapter(sim, http), default_job(SPEC))
    assert (error.status, error.retryable) == (500, True)
