"""Vidu adapter: endpoint choice, err_code table, task states, every row against the sim."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from omnirelay.core.videos import default_catalog
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.registry import adapter_class
from omnirelay.providers.vidu.video import ViduVideoAdapter, err_rule, from_creations, to_request
from tests.upstreams.imaging import DEFAULT_KEY
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
from tests.upstreams.vidu.sim import ViduSim

ROWS = [spec for spec in default_catalog().all() if spec.adapter == "vidu"]


@pytest.fixture
async def sim() -> AsyncIterator[ViduSim]:
    server = ViduSim()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def adapter(sim: ViduSim, http: aiohttp.ClientSession) -> ViduVideoAdapter:
    made: ViduVideoAdapter = make_adapter("vidu", sim, http)
    return made


def test_text_to_video_request() -> None:
    extra = {"style": "anime", "bgm": True, "movement_amplitude": "large", "seed": 3}
    path, body = to_request(video_job("vidu-q1", aspect_ratio="9:16", resolution="1080P", extra=extra))
    assert path == "/ent/v2/text2video"
    assert body == {
        "model": "viduq1",
        "prompt": "a lighthouse at dawn, waves rolling in",
        "duration": 5,
        "resolution": "1080p",
        "aspect_ratio": "9:16",
        "seed": 3,
        "movement_amplitude": "large",
        "bgm": True,
        "style": "anime",
    }


def test_image_requests_pick_the_endpoint_and_drop_text_only_fields() -> None:
    first, last = sample_image(), sample_image()
    path, body = to_request(video_job("vidu-q1", image=first, aspect_ratio="1:1", extra={"style": "anime"}))
    assert path == "/ent/v2/img2video" and body["images"] == [first.data_url()]
    assert "aspect_ratio" not in body and "style" not in body
    path, body = to_request(video_job("vidu-q1", image=first, end_image=last))
    assert path == "/ent/v2/start-end2video" and body["images"] == [first.data_url(), last.data_url()]


@pytest.mark.parametrize(
    ("code", "retryable", "client_fault", "moderated"),
    [
        ("CreditInsufficient", True, False, False),
        ("TaskPromptPolicyViolation", False, True, True),
        ("CreationPolicyViolation", False, True, True),
        ("SomeNewAuditFailure", False, True, True),
        ("ImageDownloadFailure", False, True, False),
        ("SystemThrottling", True, False, False),
        ("InternalServiceFailure", True, False, False),
        ("Unheard", True, False, False),
        (None, True, False, False),
    ],
)
def test_err_code_table(code: str | None, retryable: bool, client_fault: bool, moderated: bool) -> None:
    rule = err_rule(code)
    assert (rule.retryable, rule.client_fault, rule.moderated) == (retryable, client_fault, moderated)


def test_task_states() -> None:
    for state in ("created", "queueing", "processing"):
        assert from_creations({"id": "t", "state": state}) is None
    done = from_creations(
        {"id": "t", "state": "success", "creations": [{"url": "http://x/v.mp4", "cover_url": "c"}]}
    )
    assert done is not None and (done.url, done.cover_url) == ("http://x/v.mp4", "c")
    with pytest.raises(ProviderError) as caught:
        from_creations({"id": "t", "state": "failed", "err_code": "CreationPolicyViolation"})
    assert shape(caught.value) == (FailureKind.GENERATION, None, False, True)
    with pytest.raises(ProviderError):
        from_creations({"id": "t", "state": "success", "creations": []})


def test_registry_names_this_adapter() -> None:
    assert adapter_class("vidu") is ViduVideoAdapter


def test_catalog_rows_are_all_covered() -> None:
    assert {r.id for r in ROWS} == {"vidu-q1"}


@pytest.mark.parametrize("frames", [0, 1, 2])
async def test_makes_a_video(frames: int, sim: ViduSim, http: aiohttp.ClientSession) -> None:
    sim.config.polls_before_ready = 3
    images = {"image": sample_image(), "end_image": sample_image()} if frames == 2 else {}
    if frames == 1:
        images = {"image": sample_image()}
    job = video_job("vidu-q1", extra={"movement_amplitude": "small"}, **images)
    result, polls = await run_to_end(adapter(sim, http), job, DEFAULT_KEY)
    assert polls == 4, "created, queueing, processing, success"
    assert result.url and is_mp4(await download(http, result.url))
    assert sim.requests[0].headers["authorization"] == f"Token {DEFAULT_KEY}"
    assert (
        sim.requests[0].path == ["/ent/v2/text2video", "/ent/v2/img2video", "/ent/v2/start-end2video"][frames]
    )


async def test_bad_token_is_the_channels_error(sim: ViduSim, http: aiohttp.ClientSession) -> None:
    error = await failure(adapter(sim, http).submit(video_job("vidu-q1"), "sk-wrong", 1e12))
    assert shape(error) == (FailureKind.HTTP, 401, True, False)


async def test_bad_request_is_the_clients(sim: ViduSim, http: aiohttp.ClientSession) -> None:
    error = await failure(adapter(sim, http).submit(video_job("vidu-q1", duration=8), DEFAULT_KEY, 1e12))
    assert shape(error) == (FailureKind.HTTP, 400, False, True) and "duration" in error.message


async def test_policy_refusal_at_create(sim: ViduSim, http: aiohttp.ClientSession) -> None:
    error = await failure(
        adapter(sim, http).submit(video_job("vidu-q1", prompt="forbidden"), DEFAULT_KEY, 1e12)
    )
    assert shape(error) == (FailureKind.GENERATION, None, False, True)


async def test_out_of_credits_is_the_channels_error(sim: ViduSim, http: aiohttp.ClientSession) -> None:
    sim.config.fail_next = [402]
    error = await failure(adapter(sim, http).submit(video_job("vidu-q1"), DEFAULT_KEY, 1e12))
    assert shape(error) == (FailureKind.HTTP, 402, True, False)


async def test_failed_and_moderated_tasks(sim: ViduSim, http: aiohttp.ClientSession) -> None:
    sim.config.fail_jobs_next = 1
    error = await failure(run_to_end(adapter(sim, http), video_job("vidu-q1"), DEFAULT_KEY))
    assert shape(error) == (FailureKind.GENERATION, None, False, False)
    sim.config.moderate_jobs_next = 1
    error = await failure(run_to_end(adapter(sim, http), video_job("vidu-q1"), DEFAULT_KEY))
    assert shape(error) == (FailureKind.GENERATION, None, False, True)
    assert "CreationPolicyViolation" in error.message
