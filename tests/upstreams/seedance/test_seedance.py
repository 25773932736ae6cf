"""Seedance (Ark) adapter: content and text commands, the code table, task states, the row against the sim."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from omnirelay.core.videos import default_catalog
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.registry import adapter_class
from omnirelay.providers.seedance.video import (
    SeedanceVideoAdapter,
    code_rule,
    from_task,
    prompt_text,
    to_request,
)
from tests.upstreams.imaging import DEFAULT_KEY
from tests.upstreams.seedance.sim import SeedanceSim, commands
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

ROWS = [spec for spec in default_catalog().all() if spec.adapter == "seedance"]
MODEL = "seedance-1-0-pro"


@pytest.fixture
async def sim() -> AsyncIterator[SeedanceSim]:
    server = SeedanceSim()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def adapter(sim: SeedanceSim, http: aiohttp.ClientSession) -> SeedanceVideoAdapter:
    made: SeedanceVideoAdapter = make_adapter("seedance", sim, http)
    return made


def test_settings_become_text_commands() -> None:
    job = video_job(
        MODEL, resolution="720P", aspect_ratio="9:16", duration=10, extra={"camera_fixed": True, "seed": 12}
    )
    text = prompt_text(job)
    assert text == (
        "a lighthouse at dawn, waves rolling in --resolution 720p --ratio 9:16 --duration 10 "
        "--camerafixed true --seed 12"
    )
    assert commands(text)[1] == {
        "--resolution": "720p",
        "--ratio": "9:16",
        "--duration": "10",
        "--camerafixed": "true",
        "--seed": "12",
    }


def test_commands_the_client_wrote_are_kept() -> None:
    job = video_job(MODEL, prompt="a cat --rs 480p", resolution="1080p", aspect_ratio="1:1")
    assert prompt_text(job) == "a cat --rs 480p --ratio 1:1"


def test_content_with_frames() -> None:
    image, last = sample_image(), sample_image()
    body = to_request(video_job(MODEL, image=image, image_url="https://gw.example/files/a.png"))
    assert body["model"] == "doubao-seedance-1-0-pro-250528"
    assert body["content"][1] == {"type": "image_url", "image_url": {"url": "https://gw.example/files/a.png"}}
    body = to_request(video_job(MODEL, image=image, end_image=last))
    assert [c.get("role") for c in body["content"][1:]] == ["first_frame", "last_frame"]


@pytest.mark.parametrize(
    ("code", "status", "retryable", "client_fault", "moderated"),
    [
        ("AuthenticationError", 401, True, False, False),
        ("AccountOverdueError", 402, True, False, False),
        ("InvalidEndpointOrModel.NotFound", 404, True, False, False),
        ("InvalidParameter", 400, False, True, False),
        ("InputTextSensitiveContentDetected", 422, False, True, True),
        ("OutputVideoSensitiveContentDetected", 422, False, True, True),
        ("RateLimitExceeded.EndpointRPMExceeded", 429, True, False, False),
        ("InternalServiceError", 500, True, False, False),
    ],
)
def test_code_table(code: str, status: int, retryable: bool, client_fault: bool, moderated: bool) -> None:
    rule = code_rule(code)
    assert rule is not None
    assert (rule.status, rule.retryable, rule.client_fault, rule.moderated) == (
        status,
        retryable,
        client_fault,
        moderated,
    )


def test_task_states() -> None:
    for status in ("queued", "running"):
        assert from_task({"id": "t", "status": status}) is None
    done = from_task({"id": "t", "status": "succeeded", "content": {"video_url": "http://x/v.mp4"}})
    assert done is not None and done.url == "http://x/v.mp4" and done.upstream_task_id == "t"
    with pytest.raises(ProviderError) as caught:
        from_task({"id": "t", "status": "failed", "error": {"code": "OutputVideoSensitiveContentDetected"}})
    assert shape(caught.value) == (FailureKind.GENERATION, None, False, True)
    with pytest.raises(ProviderError) as caught:
        from_task({"id": "t", "status": "cancelled"})
    assert shape(caught.value) == (FailureKind.GENERATION, None, False, False)


def test_registry_names_this_adapter() -> None:
    assert adapter_class("seedance") is SeedanceVideoAdapter


def test_catalog_rows_are_all_covered() -> None:
    assert {r.id for r in ROWS} == {MODEL}


@pytest.mark.parametrize("with_image", [False, True])
async def test_makes_a_video(with_image: bool, sim: SeedanceSim, http: aiohttp.ClientSession) -> None:
    job = (
        video_job(MODEL, image=sample_image(), aspect_ratio="adaptive")
        if with_image
        else video_job(MODEL, resolution="480p", duration=10)
    )
    result, polls = await run_to_end(adapter(sim, http), job, DEFAULT_KEY)
    assert polls == 2
    assert result.url and is_mp4(await download(http, result.url))
    assert result.raw["usage"]["completion_tokens"] > 0
    if not with_image:
        assert (result.raw["resolution"], result.raw["duration"]) == ("480p", 10)


async def test_bad_key_is_the_channels_error(sim: SeedanceSim, http: aiohttp.ClientSession) -> None:
    error = await failure(adapter(sim, http).submit(video_job(MODEL), "sk-wrong", 1e12))
    assert shape(error) == (FailureKind.HTTP, 401, True, False)


async def test_bad_command_is_the_clients(sim: SeedanceSim, http: aiohttp.ClientSession) -> None:
    error = await failure(adapter(sim, http).submit(video_job(MODEL, duration=7), DEFAULT_KEY, 1e12))
    assert shape(error) == (FailureKind.HTTP, 400, False, True) and "--duration" in error.message


async def test_sensitive_input_is_a_refusal(sim: SeedanceSim, http: aiohttp.ClientSession) -> None:
    error = await failure(adapter(sim, http).submit(video_job(MODEL, prompt="forbidden"), DEFAULT_KEY, 1e12))
    assert shape(error) == (FailureKind.GENERATION, None, False, True)


@pytest.mark.parametrize(
    ("status", "retryable", "client_fault"), [(403, True, False), (429, True, False), (500, True, False)]
)
async def test_injected_errors(
    status: int, retryable: bool, client_fault: bool, sim: SeedanceSim, http: aiohttp.ClientSession
) -> None:
    sim.config.fail_next = [status]
    error = await failure(adapter(sim, http).submit(video_job(MODEL), DEFAULT_KEY, 1e12))
    assert (error.retryable, error.client_fault) == (retryable, client_fault)


async def test_failed_and_moderated_tasks(sim: SeedanceSim, http: aiohttp.ClientSession) -> None:
    sim.config.fail_jobs_next = 1
    error = await failure(run_to_end(adapter(sim, http), video_job(MODEL), DEFAULT_KEY))
    assert shape(error) == (FailureKind.GENERATION, None, False, False)
    sim.config.moderate_jobs_next = 1
    error = await failure(run_to_end(adapter(sim, http), video_job(MODEL), DEFAULT_KEY))
    assert shape(error) == (FailureKind.GENERATION, None, False, True)
