"""Wan (DashScope) adapter: sizes, the async header, the code table, task states, every row."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from omnirelay.core.videos import default_catalog
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.registry import adapter_class
from omnirelay.providers.wan.video import SIZES, WanVideoAdapter, code_rule, from_task, to_request
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
from tests.upstreams.wan.sim import WanSim

ROWS = [spec for spec in default_catalog().all() if spec.adapter == "wan"]


@pytest.fixture
async def sim() -> AsyncIterator[WanSim]:
    server = WanSim()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def adapter(sim: WanSim, http: aiohttp.ClientSession) -> WanVideoAdapter:
    made: WanVideoAdapter = make_adapter("wan", sim, http)
    return made


def test_text_to_video_request_sizes_the_frame() -> None:
    job = video_job(
        "wan2.2-t2v-plus", negative_prompt="blur", resolution="480P", aspect_ratio="9:16", extra={"seed": 4}
    )
    assert to_request(job) == {
        "model": "wan2.2-t2v-plus",
        "input": {"prompt": "a lighthouse at dawn, waves rolling in", "negative_prompt": "blur"},
        "parameters": {"duration": 5, "size": "480*832", "seed": 4},
    }
    assert to_request(video_job("wan2.2-t2v-plus"))["parameters"]["size"] == "1920*1080", (
        "1080P 16:9 by default"
    )


def test_image_to_video_request() -> None:
    image = sample_image()
    body = to_request(video_job("wan2.2-i2v-plus", image=image, resolution="480p"))
    assert body["input"]["img_url"] == image.data_url()
    assert body["parameters"] == {"duration": 5, "resolution": "480P"}


def test_a_ratio_without_a_size_is_the_clients() -> None:
    assert ("480P", "4:3") not in SIZES
    with pytest.raises(ProviderError) as caught:
        to_request(video_job("wan2.2-t2v-plus", resolution="480P", aspect_ratio="4:3"))
    assert shape(caught.value) == (FailureKind.HTTP, 400, False, True)


@pytest.mark.parametrize(
    ("code", "status", "retryable", "client_fault", "moderated"),
    [
        ("InvalidApiKey", 401, True, False, False),
        ("AccessDenied.Unpurchased", 403, True, False, False),
        ("Arrearage", 402, True, False, False),
        ("Throttling.RateQuota", 429, True, False, False),
        ("InvalidParameter", 400, False, True, False),
        ("DataInspectionFailed", 422, False, True, True),
        ("InternalError.Timeout", 500, True, False, False),
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
    assert code_rule("Unheard") is None and code_rule(None) is None


def test_task_states() -> None:
    for status in ("PENDING", "RUNNING"):
        assert from_task({"output": {"task_id": "t", "task_status": status}}) is None
    done = from_task({"output": {"task_id": "t", "task_status": "SUCCEEDED", "video_url": "http://x/v.mp4"}})
    assert done is not None and done.url == "http://x/v.mp4"
    for output, client_fault in (
        ({"task_status": "FAILED", "code": "DataInspectionFailed", "message": "bad"}, True),
        ({"task_status": "FAILED", "code": "InternalError", "message": "oops"}, False),
        ({"task_status": "CANCELED"}, False),
        ({"task_status": "UNKNOWN"}, False),
    ):
        with pytest.raises(ProviderError) as caught:
            from_task({"output": {"task_id": "t", **output}})
        assert shape(caught.value) == (FailureKind.GENERATION, None, False, client_fault)


def test_registry_names_this_adapter() -> None:
    assert adapter_class("wan") is WanVideoAdapter


def test_catalog_rows_are_all_covered() -> None:
    assert {r.id for r in ROWS} == {"wan2.2-t2v-plus", "wan2.2-i2v-plus"}


@pytest.mark.parametrize("spec_id", [r.id for r in ROWS])
async def test_every_catalog_row_makes_a_video(
    spec_id: str, sim: WanSim, http: aiohttp.ClientSession
) -> None:
    job = video_job(spec_id, image=sample_image()) if "i2v" in spec_id else video_job(spec_id)
    result, polls = await run_to_end(adapter(sim, http), job, DEFAULT_KEY)
    assert polls == 2
    assert result.url and is_mp4(await download(http, result.url))
    assert result.raw["usage"]["video_count"] == 1
    created = sim.requests[0]
    assert created.headers["x-dashscope-async"] == "enable"
    assert created.headers["authorization"] == f"Bearer {DEFAULT_KEY}"


async def test_bad_key_is_the_channels_error(sim: WanSim, http: aiohttp.ClientSession) -> None:
    error = await failure(adapter(sim, http).submit(video_job("wan2.2-t2v-plus"), "sk-wrong", 1e12))
    assert shape(error) == (FailureKind.HTTP, 401, True, False) and "InvalidApiKey" in error.message


async def test_refused_input_is_a_refusal(sim: WanSim, http: aiohttp.ClientSession) -> None:
    error = await failure(
        adapter(sim, http).submit(video_job("wan2.2-t2v-plus", prompt="forbidden"), DEFAULT_KEY, 1e12)
    )
    assert shape(error) == (FailureKind.GENERATION, None, False, True)


@pytest.mark.parametrize(
    ("status", "retryable", "client_fault"), [(400, False, True), (429, True, False), (500, True, False)]
)
async def test_injected_errors(
    status: int, retryable: bool, client_fault: bool, sim: WanSim, http: aiohttp.ClientSession
) -> None:
    sim.config.fail_next = [status]
    error = await failure(adapter(sim, http).submit(video_job("wan2.2-t2v-plus"), DEFAULT_KEY, 1e12))
    assert shape(error) == (FailureKind.HTTP, status, retryable, client_fault)


async def test_failed_and_moderated_tasks(sim: WanSim, http: aiohttp.ClientSession) -> None:
    sim.config.fail_jobs_next = 1
    error = await failure(run_to_end(adapter(sim, http), video_job("wan2.2-t2v-plus"), DEFAULT_KEY))
    assert shape(error) == (FailureKind.GENERATION, None, False, False)
    sim.config.moderate_jobs_next = 1
    error = await failure(run_to_end(adapter(sim, http), video_job("wan2.2-t2v-plus"), DEFAULT_KEY))
    assert shape(error) == (FailureKind.GENERATION, None, False, True)


async def test_unknown_task_is_a_failure(sim: WanSim, http: aiohttp.ClientSession) -> None:
    error = await failure(adapter(sim, http).check("nope", DEFAULT_KEY, 1e12))
    assert error.kind is FailureKind.GENERATION and "unknown" in error.message
