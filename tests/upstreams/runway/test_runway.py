"""Runway adapter: request mapping per endpoint, failure codes, and every catalog row against the sim."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from omnirelay.core.videos import VideoJob, default_catalog
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.registry import adapter_class
from omnirelay.providers.runway.video import (
    API_VERSION,
    RunwayVideoAdapter,
    failure_rule,
    from_task,
    to_request,
)
from tests.upstreams.imaging import DEFAULT_KEY
from tests.upstreams.runway.sim import RunwaySim
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

ROWS = [spec for spec in default_catalog().all() if spec.adapter == "runway"]
SOURCE = "https://videos.example.com/source.mp4"


@pytest.fixture
async def sim() -> AsyncIterator[RunwaySim]:
    server = RunwaySim()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def adapter(sim: RunwaySim, http: aiohttp.ClientSession) -> RunwayVideoAdapter:
    made: RunwayVideoAdapter = make_adapter("runway", sim, http)
    return made


def job_for(spec_id: str) -> VideoJob:
    spec = default_catalog().get(spec_id)
    assert spec is not None
    if spec.supports("t2v"):
        return video_job(spec_id)
    if spec.supports("i2v"):
        return video_job(spec_id, image=sample_image())
    return video_job(spec_id, video_url=SOURCE)


# --- pure mapping ---------------------------------------------------------------------------------


def test_image_to_video_request() -> None:
    image = sample_image()
    path, body = to_request(
        video_job("runway-gen4-turbo", image=image, duration=10, aspect_ratio="21:9", extra={"seed": 7})
    )
    assert path == "/v1/image_to_video"
    assert body == {
        "model": "gen4_turbo",
        "promptText": "a lighthouse at dawn, waves rolling in",
        "promptImage": image.data_url(),
        "ratio": "1584:672",
        "duration": 10,
        "seed": 7,
    }


def test_hosted_image_url_is_preferred_and_last_frames_are_positioned() -> None:
    job = video_job(
        "runway-gen4-turbo",
        image=sample_image(),
        image_url="https://gw.example/files/a.png",
        end_image=sample_image(),
        end_image_url="https://gw.example/files/b.png",
    )
    _, body = to_request(job)
    assert body["promptImage"] == [
        {"uri": "https://gw.example/files/a.png", "position": "first"},
        {"uri": "https://gw.example/files/b.png", "position": "last"},
    ]


def test_text_and_video_requests() -> None:
    path, body = to_request(video_job("runway-veo3", aspect_ratio="9:16"))
    assert (path, body["ratio"], body["duration"], body["model"]) == (
        "/v1/text_to_video",
        "720:1280",
        8,
        "veo3",
    )
    path, body = to_request(video_job("runway-gen4-aleph", video_url=SOURCE))
    assert path == "/v1/video_to_video" and body["videoUri"] == SOURCE and "duration" not in body


@pytest.mark.parametrize(
    ("code", "client_fault"),
    [
        ("SAFETY.INPUT.TEXT", True),
        ("SAFETY.OUTPUT.VIDEO", True),
        ("INPUT_PREPROCESSING.SAFETY.TEXT", True),
        ("INPUT_PREPROCESSING.INTERNAL", True),
        ("ASSET.INVALID", True),
        ("INTERNAL.BAD_OUTPUT.CODE01", False),
        ("INTERNAL", False),
        ("SOMETHING.NEW", False),
        (None, False),
    ],
)
def test_failure_codes(code: str | None, client_fault: bool) -> None:
    assert failure_rule(code).client_fault is client_fault
    task = {"id": "t", "status": "FAILED", "failure": "words", **({"failureCode": code} if code else {})}
    with pytest.raises(ProviderError) as caught:
        from_task(task)
    assert shape(caught.value) == (FailureKind.GENERATION, None, False, client_fault)


def test_task_states() -> None:
    for status in ("PENDING", "THROTTLED", "RUNNING"):
        assert from_task({"id": "t", "status": status}) is None
    done = from_task({"id": "t", "status": "SUCCEEDED", "output": ["http://x/v.mp4"]})
    assert done is not None and done.url == "http://x/v.mp4" and done.upstream_task_id == "t"
    with pytest.raises(ProviderError):
        from_task({"id": "t", "status": "SUCCEEDED", "output": []})
    with pytest.raises(ProviderError) as caught:
        from_task({"id": "t", "status": "CANCELLED"})
    assert "cancelled" in caught.value.message


def test_registry_names_this_adapter() -> None:
    assert adapter_class("runway") is RunwayVideoAdapter


# --- against the simulator ------------------------------------------------------------------------


def test_catalog_rows_are_all_covered() -> None:
    assert {r.id for r in ROWS} == {"runway-gen4-turbo", "runway-gen4-aleph", "runway-veo3"}


@pytest.mark.parametrize("spec_id", [r.id for r in ROWS])
async def test_every_catalog_row_makes_a_video(
    spec_id: str, sim: RunwaySim, http: aiohttp.ClientSession
) -> None:
    sim.config.polls_before_ready = 3
    result, polls = await run_to_end(adapter(sim, http), job_for(spec_id), DEFAULT_KEY)
    assert polls == 4, "PENDING, THROTTLED, RUNNING, then SUCCEEDED"
    assert result.url and is_mp4(await download(http, result.url))
    sent = sim.requests[0]
    assert sent.headers["x-runway-version"] == API_VERSION
    assert sent.headers["authorization"] == f"Bearer {DEFAULT_KEY}"


async def test_bad_key_is_the_channels_error(sim: RunwaySim, http: aiohttp.ClientSession) -> None:
    error = await failure(adapter(sim, http).submit(job_for("runway-veo3"), "sk-wrong", 1e12))
    assert shape(error) == (FailureKind.HTTP, 401, True, False)


async def test_validation_errors_are_the_clients_and_list_the_issues(
    sim: RunwaySim, http: aiohttp.ClientSession
) -> None:
    job = video_job("runway-gen4-turbo", image=sample_image(), duration=7)
    error = await failure(adapter(sim, http).submit(job, DEFAULT_KEY, 1e12))
    assert shape(error) == (FailureKind.HTTP, 400, False, True)
    assert "Validation of body failed" in error.message and "duration" in error.message.lower()


async def test_out_of_credits_is_the_channels_error(sim: RunwaySim, http: aiohttp.ClientSession) -> None:
    sim.config.fail_next = [
        {"status": 400, "body": {"error": "You do not have enough credits to run this task."}}
    ]
    error = await failure(adapter(sim, http).submit(job_for("runway-veo3"), DEFAULT_KEY, 1e12))
    assert shape(error) == (FailureKind.HTTP, 400, True, False)


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_busy_and_broken_are_retryable(
    status: int, sim: RunwaySim, http: aiohttp.ClientSession
) -> None:
    sim.config.fail_next = [status]
    error = await failure(adapter(sim, http).submit(job_for("runway-veo3"), DEFAULT_KEY, 1e12))
    assert shape(error) == (FailureKind.HTTP, status, True, False)


async def test_failed_and_moderated_tasks(sim: RunwaySim, http: aiohttp.ClientSession) -> None:
    sim.config.fail_jobs_next = 1
    error = await failure(run_to_end(adapter(sim, http), job_for("runway-veo3"), DEFAULT_KEY))
    assert shape(error) == (FailureKind.GENERATION, None, False, False)
    job = video_job("runway-veo3", prompt="something forbidden")
    error = await failure(run_to_end(adapter(sim, http), job, DEFAULT_KEY))
    assert shape(error) == (FailureKind.GENERATION, None, False, True)
    assert "SAFETY.INPUT.TEXT" in error.message


async def test_unknown_task_is_a_failed_poll(sim: RunwaySim, http: aiohttp.ClientSession) -> None:
    error = await failure(adapter(sim, http).check("nope", DEFAULT_KEY, 1e12))
    assert (error.kind, error.status) == (FailureKind.HTTP, 404)
