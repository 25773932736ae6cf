"""HiDream adapter: pure mappings, submit/check, and every catalog row against the simulator."""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from PIL import Image

from omnirelay.core.images import GeneratedImage, ImageJob, ImageModelSpec
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.hidream.images import (
    HidreamImageAdapter,
    code_error,
    hidream_request,
    result_of,
    task_id_of,
)
from omnirelay.providers.registry import adapter_class
from omnirelay.settings import ChannelConfig
from tests.upstreams.hidream import HidreamSim, channel_base_url
from tests.upstreams.imaging import DEFAULT_KEY, ImageSimConfig, default_job
from tests.upstreams.imaging import catalog_specs as catalog_rows

ROWS = catalog_rows("hidream")
SPEC = ROWS[0]


class FastHidream(HidreamImageAdapter):
    """The adapter with test-speed polling (the production cadence is the base class's)."""

    poll_interval_s = 0.01
    poll_max_interval_s = 0.02


@pytest.fixture
async def sim() -> AsyncIterator[HidreamSim]:
    server = HidreamSim(config=ImageSimConfig(polls_before_ready=2))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def make_adapter(sim: HidreamSim, http: aiohttp.ClientSession) -> FastHidream:
    channel = ChannelConfig(
        name="hidream", provider="hidream", base_url=channel_base_url(sim), api_key=DEFAULT_KEY
    )
    return FastHidream(channel, http)


async def image_size(http: aiohttp.ClientSession, image: GeneratedImage) -> tuple[int, int]:
    assert image.url is not None and image.data is None
    async with http.get(image.url) as resp:
        assert resp.status == 200
        data = await resp.read()
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return img.size


async def failure(adapter: HidreamImageAdapter, job: ImageJob, key: str = DEFAULT_KEY) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job, key, 10)
    return caught.value


# --- pure mappings --------------------------------------------------------------------------------


def test_request_fields() -> None:
    assert hidream_request(default_job(SPEC)) == {
        "model": "hidream-i1-full",
        "prompt": "a lighthouse at dawn",
        "width": 1024,
        "height": 1024,
        "n": 1,
    }
    job = default_job(SPEC, negative_prompt="blur", seed=5, n=2, width=768, height=1360)
    assert hidream_request(job) == {
        "model": "hidream-i1-full",
        "prompt": "a lighthouse at dawn",
        "width": 768,
        "height": 1360,
        "n": 2,
        "negative_prompt": "blur",
        "seed": 5,
    }


@pytest.mark.parametrize(
    ("code", "status", "retryable", "client_fault"),
    [
        (400, 400, False, True),
        (401, 401, True, False),
        (402, 402, True, False),
        (429, 429, True, False),
        (500, 500, True, False),
        (422, 422, False, True),
        (502, 502, True, False),
        (77, 502, True, False),
        ("x", 502, True, False),
    ],
)
def test_codes_read_like_http_statuses(code: Any, status: int, retryable: bool, client_fault: bool) -> None:
    error = code_error({"code": code, "message": "vendor words"})
    assert (error.kind, error.status, error.retryable, error.client_fault) == (
        FailureKind.HTTP,
        status,
        retryable,
        client_fault,
    )
    assert "vendor words" in error.message


def test_result_states() -> None:
    def answer(status: int, **fields: Any) -> dict[str, Any]:
        return {"code": 0, "result": {"task_id": "t1", "status": status, **fields}}

    assert result_of(answer(0), "t1") is None
    assert result_of(answer(1), "t1") is None
    done = result_of(answer(2, images=["http://x/1.png", "http://x/2.png"]), "t1")
    assert done is not None and [i.url for i in done.images] == ["http://x/1.png", "http://x/2.png"]
    assert done.upstream_task_id == "t1"
    for status, client_fault in ((3, False), (4, True)):
        with pytest.raises(ProviderError) as caught:
            result_of(answer(status, error="why"), "t1")
        assert (caught.value.kind, caught.value.client_fault, caught.value.retryable) == (
            FailureKind.GENERATION,
            client_fault,
            False,
        )
        assert "why" in caught.value.message
    with pytest.raises(ProviderError) as caught:
        result_of(answer(2, images=[]), "t1")
    assert caught.value.kind is FailureKind.GENERATION and not caught.value.client_fault
    with pytest.raises(ProviderError) as caught:
        result_of(answer(9), "t1")
    assert caught.value.retryable and caught.value.status == 502
    assert task_id_of({"code": 0, "result": {"task_id": 42}}) == "42"
    with pytest.raises(ProviderError):
        task_id_of({"code": 0, "result": {}})


def test_registry_names_this_adapter() -> None:
    assert adapter_class("hidream") is HidreamImageAdapter


# --- against the simulator ------------------------------------------------------------------------


def test_catalog_rows_are_all_covered() -> None:
    assert {r.id for r in ROWS} == {"hidream-i1-full-t2i", "hidream-i1-dev-t2i", "hidream-i1-fast-t2i"}


@pytest.mark.parametrize("spec", ROWS, ids=[r.id for r in ROWS])
async def test_every_catalog_row_generates(
    spec: ImageModelSpec, sim: HidreamSim, http: aiohttp.ClientSession
) -> None:
    result = await make_adapter(sim, http).generate_image(default_job(spec), DEFAULT_KEY, 10)
    assert len(result.images) == 1
    assert await image_size(http, result.images[0]) == (1024, 1024)
    assert result.polls == 3 and result.upstream_task_id is not None
    assert result.upstream_task_id in sim.jobs
    submitted, *polls = sim.requests
    assert (submitted.method, submitted.path) == ("POST", "/api/v1/image/generate")
    assert submitted.headers["authorization"] == f"Bearer {DEFAULT_KEY}"
    assert submitted.json == {
        "model": spec.upstream_model,
        "prompt": "a lighthouse at dawn",
        "width": 1024,
        "height": 1024,
        "n": 1,
    }
    assert [(p.method, p.path, p.query) for p in polls] == [
        ("GET", "/api/v1/image/result", {"task_id": result.upstream_task_id})
    ] * 3
    assert all(p.headers["authorization"] == f"Bearer {DEFAULT_KEY}" for p in polls)
    assert result.raw["result"]["status"] == 2


async def test_submit_and_check_separately(sim: HidreamSim, http: aiohttp.ClientSession) -> None:
    adapter = make_adapter(sim, http)
    deadline = time.monotonic() + 10
    task_id = await adapter.submit(default_job(SPEC, n=2, width=768, height=512), DEFAULT_KEY, deadline)
    assert await adapter.check(task_id, DEFAULT_KEY, deadline) is None
    assert await adapter.check(task_id, DEFAULT_KEY, deadline) is None
    result = await adapter.check(task_id, DEFAULT_KEY, deadline)
    assert result is not None and result.upstream_task_id == task_id and result.polls == 0
    assert [await image_size(http, i) for i in result.images] == [(768, 512)] * 2


async def test_moderated_and_failed_tasks(sim: HidreamSim, http: aiohttp.ClientSession) -> None:
    adapter = make_adapter(sim, http)
    sim.config.moderate_jobs_next = 1
    error = await failure(adapter, default_job(SPEC))
    assert (error.kind, error.retryable, error.client_fault) == (FailureKind.GENERATION, False, True)
    sim.config.fail_jobs_next = 1
    error = await failure(adapter, default_job(SPEC))
    assert (error.kind, error.retryable, error.client_fault) == (FailureKind.GENERATION, False, False)
    assert "worker error" in error.message


async def test_auth_errors_are_the_channels(sim: HidreamSim, http: aiohttp.ClientSession) -> None:
    error = await failure(make_adapter(sim, http), default_job(SPEC), "sk-wrong")
    assert (error.kind, error.status, error.retryable, error.client_fault) == (
        FailureKind.HTTP,
        401,
        True,
        False,
    )
    assert sim.jobs == {}


async def test_bad_requests_are_the_clients(sim: HidreamSim, http: aiohttp.ClientSession) -> None:
    error = await failure(make_adapter(sim, http), default_job(SPEC, width=4096))
    assert (error.status, error.retryable, error.client_fault) == (400, False, True)
    assert "width" in error.message


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_retryable(status: int, sim: HidreamSim, http: aiohttp.ClientSession) -> None:
    sim.config.fail_next = [status]
    error = await failure(make_adapter(sim, http), default_job(SPEC))
    assert (error.status, error.retryable, error.client_fault) == (status, True, False)
    sim.config.fail_next = [{"status": 200, "body": {"code": 429, "message": "slow down", "result": None}}]
    error = await failure(make_adapter(sim, http), default_job(SPEC))
    assert (error.status, error.retryable, error.client_fault) == (429, True, False)


async def test_a_poll_error_surfaces(sim: HidreamSim, http: aiohttp.ClientSession) -> None:
    adapter = make_adapter(sim, http)
    deadline = time.monotonic() + 10
    task_id = await adapter.submit(default_job(SPEC), DEFAULT_KEY, deadline)
    sim.config.fail_next = [502]
    with pytest.raises(ProviderError) as caught:
        await adapter.check(task_id, DEFAULT_KEY, deadline)
    assert (caught.value.status, caught.value.retryable) == (502, True)
    with pytest.raises(ProviderError) as caught:
        await adapter.check("no-such-task", DEFAULT_KEY, deadline)
    assert caught.value.status == 404


async def test_running_out_of_time_names_the_task(sim: HidreamSim, http: aiohttp.ClientSession) -> None:
    sim.config.polls_before_ready = 1000
    with pytest.raises(ProviderError) as caught:
        await make_adapter(sim, http).generate_image(default_job(SPEC), DEFAULT_KEY, 1.0)
    assert caught.value.kind is FailureKind.TIMEOUT and not caught.value.retryable
    assert next(iter(sim.jobs)) in caught.value.message
