"""MiniMax video adapter: create / query / file retrieve, the status_code table, every row against the sim."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from omnirelay.core.videos import default_catalog
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.minimax_video.video import MinimaxVideoAdapter, code_error, query_state, to_request
from omnirelay.providers.registry import adapter_class
from tests.upstreams.imaging import DEFAULT_KEY
from tests.upstreams.minimax_video.sim import MinimaxVideoSim, minimax_body
from tests.upstreams.videosim import (
    download,
    failure,
    is_mp4,
    make_adapter,
    run_to_end,
    sample_image,
    shape,
    video_job,
)

ROWS = [spec for spec in default_catalog().all() if spec.adapter == "minimax_video"]


@pytest.fixture
async def sim() -> AsyncIterator[MinimaxVideoSim]:
    server = MinimaxVideoSim()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def adapter(sim: MinimaxVideoSim, http: aiohttp.ClientSession) -> MinimaxVideoAdapter:
    made: MinimaxVideoAdapter = make_adapter("minimax_video", sim, http)
    return made


def test_request() -> None:
    image = sample_image()
    body = to_request(
        video_job(
            "minimax-hailuo-02",
            image=image,
            duration=10,
            resolution="768p",
            extra={"prompt_optimizer": False},
        )
    )
    assert body == {
        "model": "MiniMax-Hailuo-02",
        "prompt": "a lighthouse at dawn, waves rolling in",
        "duration": 10,
        "resolution": "768P",
        "first_frame_image": image.data_url(),
        "prompt_optimizer": False,
    }
    assert to_request(video_job("minimax-hailuo-02"))["duration"] == 6, "the model's default duration"


@pytest.mark.parametrize(
    ("code", "kind", "status", "retryable", "client_fault"),
    [
        (1004, FailureKind.HTTP, 401, True, False),
        (2049, FailureKind.HTTP, 401, True, False),
        (1002, FailureKind.HTTP, 429, True, False),
        (1008, FailureKind.HTTP, 402, True, False),
        (2013, FailureKind.HTTP, 400, False, True),
        (1026, FailureKind.GENERATION, None, False, True),
        (1027, FailureKind.GENERATION, None, False, True),
        (1000, FailureKind.HTTP, 500, True, False),
        (4242, FailureKind.HTTP, 502, True, False),
    ],
)
def test_status_code_table(
    code: int, kind: FailureKind, status: int | None, retryable: bool, client_fault: bool
) -> None:
    error = code_error(minimax_body(code, "vendor words"))
    assert shape(error) == (kind, status, retryable, client_fault)
    assert "vendor words" in error.message


def test_query_states() -> None:
    for status in ("Preparing", "Queueing", "Processing"):
        assert query_state(minimax_body(0, "success", status=status)) == (status, None)
    assert query_state(minimax_body(0, "success", status="Success", file_id="123")) == ("Success", "123")
    with pytest.raises(ProviderError) as caught:
        query_state(minimax_body(0, "success", status="Fail"))
    assert shape(caught.value) == (FailureKind.GENERATION, None, False, False)
    with pytest.raises(ProviderError) as caught:
        query_state(minimax_body(1027, "output new_sensitive", status="Fail"))
    assert shape(caught.value) == (FailureKind.GENERATION, None, False, True)


def test_registry_names_this_adapter() -> None:
    assert adapter_class("minimax_video") is MinimaxVideoAdapter


def test_catalog_rows_are_all_covered() -> None:
    assert {r.id for r in ROWS} == {"minimax-hailuo-02"}


@pytest.mark.parametrize("with_image", [False, True])
async def test_makes_a_video_through_query_and_file(
    with_image: bool, sim: MinimaxVideoSim, http: aiohttp.ClientSession
) -> None:
    sim.config.polls_before_ready = 2
    job = (
        video_job("minimax-hailuo-02", image=sample_image()) if with_image else video_job("minimax-hailuo-02")
    )
    result, polls = await run_to_end(adapter(sim, http), job, DEFAULT_KEY)
    assert polls == 3
    assert result.url and is_mp4(await download(http, result.url))
    assert result.raw["status"] == "Success" and result.raw["file"]["download_url"] == result.url
    assert [r.path for r in sim.requests] == [
        "/v1/video_generation",
        "/v1/query/video_generation",
        "/v1/query/video_generation",
        "/v1/query/video_generation",
        "/v1/files/retrieve",
    ]
    assert sim.requests[1].query == {"task_id": result.upstream_task_id}


async def test_auth_errors_come_in_a_200(sim: MinimaxVideoSim, http: aiohttp.ClientSession) -> None:
    error = await failure(adapter(sim, http).submit(video_job("minimax-hailuo-02"), "sk-wrong", 1e12))
    assert shape(error) == (FailureKind.HTTP, 401, True, False) and "invalid api key" in error.message


async def test_invalid_params_are_the_clients(sim: MinimaxVideoSim, http: aiohttp.ClientSession) -> None:
    job = video_job("minimax-hailuo-02", duration=10, resolution="1080P")
    error = await failure(adapter(sim, http).submit(job, DEFAULT_KEY, 1e12))
    assert shape(error) == (FailureKind.HTTP, 400, False, True) and "1080P" in error.message


async def test_sensitive_prompt_is_a_refusal(sim: MinimaxVideoSim, http: aiohttp.ClientSession) -> None:
    job = video_job("minimax-hailuo-02", prompt="forbidden things")
    error = await failure(adapter(sim, http).submit(job, DEFAULT_KEY, 1e12))
    assert shape(error) == (FailureKind.GENERATION, None, False, True)


async def test_failed_and_moderated_jobs(sim: MinimaxVideoSim, http: aiohttp.ClientSession) -> None:
    sim.config.fail_jobs_next = 1
    error = await failure(run_to_end(adapter(sim, http), video_job("minimax-hailuo-02"), DEFAULT_KEY))
    assert shape(error) == (FailureKind.GENERATION, None, False, False)
    sim.config.moderate_jobs_next = 1
    error = await failure(run_to_end(adapter(sim, http), video_job("minimax-hailuo-02"), DEFAULT_KEY))
    assert shape(error) == (FailureKind.GENERATION, None, False, True)


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_http_errors(status: int, sim: MinimaxVideoSim, http: aiohttp.ClientSession) -> None:
    sim.config.fail_next = [status]
    error = await failure(adapter(sim, http).submit(video_job("minimax-hailuo-02"), DEFAULT_KEY, 1e12))
    assert (error.kind, error.retryable, error.client_fault) == (FailureKind.HTTP, True, False)
