"""Luma video adapter: request mapping (keyframes), generation states, errors, every row against the sim."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from omnirelay.core.videos import default_catalog
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.luma_video.video import LumaVideoAdapter, from_generation, to_request
from omnirelay.providers.registry import adapter_class
from tests.upstreams.imaging import DEFAULT_KEY
from tests.upstreams.luma_video.sim import MODERATION_REASON, LumaVideoSim
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

ROWS = [spec for spec in default_catalog().all() if spec.adapter == "luma_video"]


@pytest.fixture
async def sim() -> AsyncIterator[LumaVideoSim]:
    server = LumaVideoSim()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def adapter(sim: LumaVideoSim, http: aiohttp.ClientSession) -> LumaVideoAdapter:
    made: LumaVideoAdapter = make_adapter("luma_video", sim, http)
    return made


def test_text_to_video_request() -> None:
    body = to_request(
        video_job("luma-ray-2", duration=9, resolution="1080P", aspect_ratio="21:9", extra={"loop": True})
    )
    assert body == {
        "prompt": "a lighthouse at dawn, waves rolling in",
        "model": "ray-2",
        "aspect_ratio": "21:9",
        "resolution": "1080p",
        "duration": "9s",
        "loop": True,
    }


def test_keyframes_use_the_hosted_copy_when_there_is_one() -> None:
    first, last = sample_image(), sample_image()
    body = to_request(
        video_job("luma-ray-2", image=first, image_url="https://gw.example/files/a.png", end_image=last)
    )
    assert body["keyframes"] == {
        "frame0": {"type": "image", "url": "https://gw.example/files/a.png"},
        "frame1": {"type": "image", "url": last.data_url()},
    }
    assert body["duration"] == "5s"


def test_generation_states() -> None:
    for state in ("queued", "dreaming", "something-new"):
        assert from_generation({"id": "g", "state": state}) is None
    done = from_generation(
        {"id": "g", "state": "completed", "assets": {"video": "http://x/v.mp4", "image": "http://x/c"}}
    )
    assert done is not None and (done.url, done.cover_url, done.upstream_task_id) == (
        "http://x/v.mp4",
        "http://x/c",
        "g",
    )
    with pytest.raises(ProviderError) as caught:
        from_generation({"id": "g", "state": "failed", "failure_reason": MODERATION_REASON})
    assert shape(caught.value) == (FailureKind.GENERATION, None, False, True)
    with pytest.raises(ProviderError) as caught:
        from_generation({"id": "g", "state": "failed", "failure_reason": "internal"})
    assert shape(caught.value) == (FailureKind.GENERATION, None, False, False)
    with pytest.raises(ProviderError):
        from_generation({"id": "g", "state": "completed", "assets": {}})


def test_registry_names_this_adapter() -> None:
    assert adapter_class("luma_video") is LumaVideoAdapter


def test_catalog_rows_are_all_covered() -> None:
    assert {r.id for r in ROWS} == {"luma-ray-2", "luma-ray-flash-2"}


@pytest.mark.parametrize("spec_id", [r.id for r in ROWS])
@pytest.mark.parametrize("with_image", [False, True])
async def test_every_catalog_row_makes_a_video(
    spec_id: str, with_image: bool, sim: LumaVideoSim, http: aiohttp.ClientSession
) -> None:
    job = video_job(spec_id, image=sample_image()) if with_image else video_job(spec_id)
    result, polls = await run_to_end(adapter(sim, http), job, DEFAULT_KEY)
    assert polls == 2
    assert result.url and is_mp4(await download(http, result.url))
    assert result.cover_url
    created = sim.requests[0]
    assert created.path == "/dream-machine/v1/generations"
    assert ("keyframes" in created.json) is with_image


async def test_bad_key_is_the_channels_error(sim: LumaVideoSim, http: aiohttp.ClientSession) -> None:
    error = await failure(adapter(sim, http).submit(video_job("luma-ray-2"), "sk-wrong", 1e12))
    assert shape(error) == (FailureKind.HTTP, 401, True, False)


async def test_bad_parameters_are_the_clients(sim: LumaVideoSim, http: aiohttp.ClientSession) -> None:
    error = await failure(adapter(sim, http).submit(video_job("luma-ray-2", duration=7), DEFAULT_KEY, 1e12))
    assert shape(error) == (FailureKind.HTTP, 400, False, True)
    assert "duration" in error.message


async def test_refused_prompt_is_a_refusal(sim: LumaVideoSim, http: aiohttp.ClientSession) -> None:
    error = await failure(
        adapter(sim, http).submit(video_job("luma-ray-2", prompt="forbidden"), DEFAULT_KEY, 1e12)
    )
    assert shape(error) == (FailureKind.GENERATION, None, False, True)


async def test_out_of_credits_is_the_channels_error(sim: LumaVideoSim, http: aiohttp.ClientSession) -> None:
    sim.config.fail_next = [{"status": 400, "body": {"detail": "Insufficient credits"}}]
    error = await failure(adapter(sim, http).submit(video_job("luma-ray-2"), DEFAULT_KEY, 1e12))
    assert shape(error) == (FailureKind.HTTP, 400, True, False)


@pytest.mark.parametrize("status", [429, 500])
async def test_busy_and_broken_are_retryable(
    status: int, sim: LumaVideoSim, http: aiohttp.ClientSession
) -> None:
    sim.config.fail_next = [status]
    error = await failure(adapter(sim, http).submit(video_job("luma-ray-2"), DEFAULT_KEY, 1e12))
    assert (error.retryable, error.client_fault) == (True, False)


async def test_failed_and_moderated_generations(sim: LumaVideoSim, http: aiohttp.ClientSession) -> None:
    sim.config.fail_jobs_next = 1
    error = await failure(run_to_end(adapter(sim, http), video_job("luma-ray-2"), DEFAULT_KEY))
    assert shape(error) == (FailureKind.GENERATION, None, False, False)
    sim.config.moderate_jobs_next = 1
    error = await failure(run_to_end(adapter(sim, http), video_job("luma-ray-2"), DEFAULT_KEY))
    assert shape(error) == (FailureKind.GENERATION, None, False, True)
