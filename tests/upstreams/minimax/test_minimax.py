"""MiniMax adapter: pure mappings, the status_code table, and every catalog row against the simulator."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from omnirelay.core.images import ImageInput, ImageJob, ImageModelSpec
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.minimax.images import (
    MinimaxImageAdapter,
    code_error,
    minimax_geometry,
    minimax_images,
    minimax_request,
    trim_base64,
)
from omnirelay.providers.registry import adapter_class
from omnirelay.settings import ChannelConfig
from tests.upstreams.imaging import DEFAULT_KEY, default_job, image_size, make_image
from tests.upstreams.imaging import catalog_specs as catalog_rows
from tests.upstreams.minimax import MinimaxSim, channel_base_url
from tests.upstreams.minimax.sim import SIZES, minimax_body

ROWS = catalog_rows("minimax")
SPEC = ROWS[0]


@pytest.fixture
async def sim() -> AsyncIterator[MinimaxSim]:
    server = MinimaxSim()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def make_adapter(sim: MinimaxSim, http: aiohttp.ClientSession) -> MinimaxImageAdapter:
    channel = ChannelConfig(
        name="minimax", provider="minimax", base_url=channel_base_url(sim), api_key=DEFAULT_KEY
    )
    return MinimaxImageAdapter(channel, http)


async def failure(adapter: MinimaxImageAdapter, job: ImageJob, key: str = DEFAULT_KEY) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job, key, 10)
    return caught.value


# --- pure mappings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratio", "width", "height", "sent"),
    [
        ("16:9", 1024, 1024, {"aspect_ratio": "16:9"}),
        ("21:9", 1024, 1024, {"aspect_ratio": "21:9"}),
        ("9:21", 1024, 1024, {"width": 576, "height": 1344}),
        (None, 1024, 1024, {"aspect_ratio": "1:1"}),
        (None, 1500, 1000, {"aspect_ratio": "3:2"}),
    ],
)
def test_geometry(ratio: str | None, width: int, height: int, sent: dict[str, Any]) -> None:
    assert minimax_geometry(ratio, width, height) == sent


def test_request_fields() -> None:
    face = ImageInput(data=b"\x89PNG...", media_type="image/png")
    job = default_job(SPEC, n=12, seed=3, images=[face], extra={"prompt_optimizer": True})
    body = minimax_request(job)
    assert body == {
        "model": "image-01",
        "prompt": "a lighthouse at dawn",
        "aspect_ratio": "1:1",
        "response_format": "url",
        "n": 9,
        "prompt_optimizer": True,
        "seed": 3,
        "subject_reference": [{"type": "character", "image_file": face.data_url()}],
    }
    assert body["subject_reference"][0]["image_file"].startswith("data:image/png;base64,")


@pytest.mark.parametrize(
    ("code", "kind", "status", "retryable", "client_fault"),
    [
        (1004, FailureKind.HTTP, 401, True, False),
        (2049, FailureKind.HTTP, 401, True, False),
        (1002, FailureKind.HTTP, 429, True, False),
        (1039, FailureKind.HTTP, 429, True, False),
        (1008, FailureKind.HTTP, 402, True, False),
        (1026, FailureKind.GENERATION, None, False, True),
        (1027, FailureKind.GENERATION, None, False, True),
        (2013, FailureKind.HTTP, 400, False, True),
        (1000, FailureKind.HTTP, 500, True, False),
        (1013, FailureKind.HTTP, 500, True, False),
        (9999, FailureKind.HTTP, 502, True, False),
    ],
)
def test_status_code_table(
    code: int, kind: FailureKind, status: int | None, retryable: bool, client_fault: bool
) -> None:
    error = code_error(minimax_body("t", code, "vendor words"))
    assert (error.kind, error.status, error.retryable, error.client_fault) == (
        kind,
        status,
        retryable,
        client_fault,
    )
    assert "vendor words" in error.message and str(code) in error.message


def test_images_and_trimming() -> None:
    body = {"data": {"image_base64": ["iVBORw=="], "image_urls": ["http://x/1.jpeg"]}}
    images = minimax_images(body)
    assert images[0].data == b"\x89PNG" and images[1].url == "http://x/1.jpeg"
    assert trim_base64(body)["data"]["image_base64"] == ["<8 base64 characters omitted>"]


def test_registry_names_this_adapter() -> None:
    assert adapter_class("minimax") is MinimaxImageAdapter


# --- against the simulator ------------------------------------------------------------------------


def test_catalog_rows_are_all_covered() -> None:
    assert {r.id for r in ROWS} == {"minimaxi-t2i"}


@pytest.mark.parametrize("spec", ROWS, ids=[r.id for r in ROWS])
async def test_every_catalog_row_generates(
    spec: ImageModelSpec, sim: MinimaxSim, http: aiohttp.ClientSession
) -> None:
    result = await make_adapter(sim, http).generate_image(default_job(spec), DEFAULT_KEY, 10)
    assert len(result.images) == 1 and result.images[0].url is not None
    assert await image_size(http, result.images[0]) == SIZES["1:1"]
    sent = sim.last()
    assert sent.path == "/v1/image_generation"
    assert sent.headers["authorization"] == f"Bearer {DEFAULT_KEY}"
    assert sent.json == {
        "model": spec.upstream_model,
        "prompt": "a lighthouse at dawn",
        "aspect_ratio": "1:1",
        "response_format": "url",
        "n": 1,
    }
    assert result.raw["base_resp"]["status_code"] == 0


@pytest.mark.parametrize("ratio", ["16:9", "9:16", "4:3", "3:4", "21:9", "9:21"])
async def test_every_wide_ratio(ratio: str, sim: MinimaxSim, http: aiohttp.ClientSession) -> None:
    result = await make_adapter(sim, http).generate_image(
        default_job(SPEC, aspect_ratio=ratio), DEFAULT_KEY, 10
    )
    expected = SIZES.get(ratio, (576, 1344))
    assert await image_size(http, result.images[0]) == expected


async def test_base64_option_and_subject_reference(sim: MinimaxSim, http: aiohttp.ClientSession) -> None:
    spec = dataclasses.replace(SPEC, options={"response_format": "base64"})
    face = ImageInput(data=make_image(32, 32), media_type="image/png")
    result = await make_adapter(sim, http).generate_image(
        default_job(spec, n=2, images=[face]), DEFAULT_KEY, 10
    )
    assert [await image_size(http, i) for i in result.images] == [SIZES["1:1"]] * 2
    assert all(i.data is not None for i in result.images)
    assert sim.last().json["subject_reference"][0]["image_file"] == face.data_url()
    assert result.raw["data"]["image_base64"][0].endswith("base64 characters omitted>")


async def test_partly_withheld_results_are_kept(sim: MinimaxSim, http: aiohttp.ClientSession) -> None:
    sim.filter_next = 1
    result = await make_adapter(sim, http).generate_image(default_job(SPEC, n=3), DEFAULT_KEY, 10)
    assert len(result.images) == 2
    assert result.raw["metadata"] == {"failed_count": "1", "success_count": "2"}


async def test_all_withheld_is_a_refusal(sim: MinimaxSim, http: aiohttp.ClientSession) -> None:
    sim.config.moderate_jobs_next = 1
    error = await failure(make_adapter(sim, http), default_job(SPEC, n=2))
    assert (error.kind, error.retryable, error.client_fault) == (FailureKind.GENERATION, False, True)


async def test_auth_errors_come_in_a_200_and_are_the_channels(
    sim: MinimaxSim, http: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(sim, http)
    error = await failure(adapter, default_job(SPEC), "sk-wrong")
    assert (error.kind, error.status, error.retryable, error.client_fault) == (
        FailureKind.HTTP,
        401,
        True,
        False,
    )
    assert "invalid api key" in error.message
    error = await failure(adapter, default_job(SPEC), "")
    assert (error.status, error.retryable) == (401, True) and "1004" in error.message
    assert error.body is not None and error.body["base_resp"]["status_code"] == 1004


async def test_invalid_params_are_the_clients(sim: MinimaxSim, http: aiohttp.ClientSession) -> None:
    error = await failure(make_adapter(sim, http), default_job(SPEC, prompt="x" * 1501))
    assert (error.kind, error.status, error.retryable, error.client_fault) == (
        FailureKind.HTTP,
        400,
        False,
        True,
    )


@pytest.mark.parametrize(
    ("code", "kind", "status", "retryable", "client_fault"),
    [
        (1002, FailureKind.HTTP, 429, True, False),
        (1039, FailureKind.HTTP, 429, True, False),
        (1008, FailureKind.HTTP, 402, True, False),
        (1026, FailureKind.GENERATION, None, False, True),
        (1027, FailureKind.GENERATION, None, False, True),
        (1000, FailureKind.HTTP, 500, True, False),
        (1013, FailureKind.HTTP, 500, True, False),
    ],
)
async def test_codes_in_200_answers(
    code: int,
    kind: FailureKind,
    status: int | None,
    retryable: bool,
    client_fault: bool,
    sim: MinimaxSim,
    http: aiohttp.ClientSession,
) -> None:
    sim.config.fail_next = [{"status": 200, "body": minimax_body("t", code, f"vendor says {code}")}]
    error = await failure(make_adapter(sim, http), default_job(SPEC))
    assert (error.kind, error.status, error.retryable, error.client_fault) == (
        kind,
        status,
        retryable,
        client_fault,
    )
    assert f"vendor says {code}" in error.message


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_http_server_errors_are_retryable(
    status: int, sim: MinimaxSim, http: aiohttp.ClientSession
) -> None:
    sim.config.fail_next = [status]
    error = await failure(make_adapter(sim, http), default_job(SPEC))
    assert (error.kind, error.retryable, error.client_fault) == (FailureKind.HTTP, True, False)


async def test_http_400_is_the_clients(sim: MinimaxSim, http: aiohttp.ClientSession) -> None:
    sim.config.fail_next = [400]
    error = await failure(make_adapter(sim, http), default_job(SPEC))
    assert (error.status, error.retryable, error.client_fault) == (400, False, True)


async def test_failed_job_is_retryable(sim: MinimaxSim, http: aiohttp.ClientSession) -> None:
    sim.config.fail_jobs_next = 1
    error = await failure(make_adapter(sim, http), default_job(SPEC))
    assert (error.kind, error.status, error.retryable) == (FailureKind.HTTP, 500, True)


async def test_answer_without_base_resp(sim: MinimaxSim, http: aiohttp.ClientSession) -> None:
    sim.config.fail_next = [{"status": 200, "body": {"id": "x"}}]
    error = await failure(make_adapter(sim, http), default_job(SPEC))
    assert (error.status, error.retryable, error.client_fault) == (502, True, False)
