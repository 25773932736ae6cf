"""The ``luma`` adapter: pure mapping functions, then every catalog row against the Luma simulator."""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from PIL import Image

from omnirelay.core.images import ImageInput, ImageJob, ImageModelSpec
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.image_adapter import trim_data_urls
from omnirelay.providers.luma.images import (
    LumaImageAdapter,
    detail_message,
    from_generation,
    is_moderation,
    references,
    to_request,
)
from omnirelay.settings import ChannelConfig
from tests.upstreams.imaging import DEFAULT_KEY, ImageSimConfig, make_image
from tests.upstreams.imaging import catalog_dicts as catalog_rows
from tests.upstreams.luma.sim import FAILURE_REASON, MODERATION_REASON, LumaSim, channel_base_url

ROWS = catalog_rows("luma")


def spec_of(row: dict[str, Any]) -> ImageModelSpec:
    return ImageModelSpec(
        id=row["id"],
        adapter=row["adapter"],
        upstream_model=row["upstream_model"],
        mode=row.get("mode", "t2i"),
        options=dict(row.get("options") or {}),
        rules=dict(row.get("rules") or {}),
    )


SPEC = spec_of(ROWS[0])


def png_input(width: int = 64, height: int = 64) -> ImageInput:
    return ImageInput(make_image(width, height, "png"), "image/png", width, height)


def job_for(spec: ImageModelSpec = SPEC, **kw: Any) -> ImageJob:
    ratio_rule = spec.rules.get("aspect_ratio")
    kw.setdefault("aspect_ratio", ratio_rule["default"] if ratio_rule else None)
    kw.setdefault("prompt", "a lighthouse at dusk")
    return ImageJob(spec=spec, **kw)


# --- pure mapping ---------------------------------------------------------------------------------


def test_catalog_rows() -> None:
    assert {row["upstream_model"] for row in ROWS} == {"photon-1", "photon-flash-1"}


def test_to_request_plain() -> None:
    assert to_request(job_for(aspect_ratio="21:9")) == {
        "prompt": "a lighthouse at dusk",
        "model": "photon-1",
        "aspect_ratio": "21:9",
    }
    assert "aspect_ratio" not in to_request(job_for(aspect_ratio=None))


def test_input_images_become_image_refs_by_default() -> None:
    a, b = png_input(), png_input(32, 32)
    body = to_request(job_for(images=[a, b]))
    assert body["image_ref"] == [{"url": a.data_url(), "weight": 0.85}, {"url": b.data_url(), "weight": 0.85}]


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("style_ref", lambda u: {"style_ref": [{"url": u, "weight": 0.5}]}),
        ("modify_image_ref", lambda u: {"modify_image_ref": {"url": u, "weight": 0.5}}),
        ("character_ref", lambda u: {"character_ref": {"identity0": {"images": [u]}}}),
    ],
)
def test_image_role(role: str, expected: Any) -> None:
    image = png_input()
    job = job_for(images=[image], extra={"image_role": role, "image_weight": 0.5})
    assert references(job) == expected(image.data_url())


def test_unknown_image_role_is_the_clients_fault() -> None:
    with pytest.raises(ProviderError) as err:
        references(job_for(images=[png_input()], extra={"image_role": "bogus"}))
    assert err.value.client_fault and not err.value.retryable


def test_client_reference_urls_pass_through() -> None:
    refs = [{"url": "https://example.com/a.jpg", "weight": 0.7}]
    body = to_request(job_for(extra={"style_ref": refs, "unrelated": 1}))
    assert body["style_ref"] == refs and "unrelated" not in body


def test_from_generation_states() -> None:
    assert from_generation({"id": "g", "state": "queued"}) is None
    assert from_generation({"id": "g", "state": "dreaming"}) is None
    done = from_generation({"id": "g", "state": "completed", "assets": {"image": "https://cdn/x.jpg"}})
    assert done is not None and done.upstream_task_id == "g"
    assert done.images[0].url == "https://cdn/x.jpg" and done.images[0].media_type == "image/jpeg"

    with pytest.raises(ProviderError) as failed:
        from_generation({"id": "g", "state": "failed", "failure_reason": FAILURE_REASON})
    assert failed.value.kind is FailureKind.GENERATION
    assert not failed.value.retryable and not failed.value.client_fault
    assert failed.value.message == FAILURE_REASON

    with pytest.raises(ProviderError) as moderated:
        from_generation({"id": "g", "state": "failed", "failure_reason": MODERATION_REASON})
    assert moderated.value.client_fault

    with pytest.raises(ProviderError) as empty:
        from_generation({"id": "g", "state": "completed", "assets": None})
    assert empty.value.kind is FailureKind.GENERATION


def test_is_moderation() -> None:
    assert is_moderation(MODERATION_REASON)
    assert is_moderation("NSFW image detected")
    assert not is_moderation(FAILURE_REASON)


def test_detail_message_and_trim() -> None:
    assert detail_message({"detail": "Invalid API key"}, "f") == "Invalid API key"
    assert detail_message({"detail": [{"loc": ["body", "prompt"], "msg": "Field required"}]}, "f") == (
        "prompt: Field required"
    )
    assert detail_message({}, "f") == "f"
    long = "data:image/png;base64," + "A" * 200
    assert trim_data_urls({"request": {"image_ref": [{"url": long}]}}) == {
        "request": {"image_ref": [{"url": f"data:image/png;base64,<{len(long)} characters trimmed>"}]}
    }


@pytest.mark.parametrize(
    ("status", "detail", "expected"),
    [
        (400, "Invalid aspect ratio", (False, True)),
        (400, "Insufficient credits", (True, False)),
        (401, "Invalid API key", (True, False)),
        (404, "Generation not found", (True, False)),
        (422, "x", (False, True)),
        (429, "Too many requests", (True, False)),
        (500, "x", (True, False)),
    ],
)
def test_classify(status: int, detail: str, expected: tuple[bool, bool]) -> None:
    adapter = LumaImageAdapter.__new__(LumaImageAdapter)
    assert adapter.classify(status, {"detail": detail}) == expected


# --- against the simulator ------------------------------------------------------------------------


class FastLuma(LumaImageAdapter):
    poll_interval_s = 0.01
    poll_max_interval_s = 0.02


@pytest.fixture
async def sim() -> AsyncIterator[LumaSim]:
    server = LumaSim(config=ImageSimConfig(polls_before_ready=2))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def adapter(sim: LumaSim, http: aiohttp.ClientSession) -> FastLuma:
    channel = ChannelConfig(
        name="luma-test", provider="luma", base_url=channel_base_url(sim), api_key=DEFAULT_KEY
    )
    return FastLuma(channel, http)


async def download(http: aiohttp.ClientSession, url: str) -> Image.Image:
    async with http.get(url) as resp:
        assert resp.status == 200
        data = await resp.read()
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("ratio", ["1:1", "16:9", "9:21"])
@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
async def test_every_catalog_row(
    row: dict[str, Any], ratio: str, sim: LumaSim, adapter: FastLuma, http: aiohttp.ClientSession
) -> None:
    spec = spec_of(row)
    assert ratio in spec.rules["aspect_ratio"]["choices"]
    result = await adapter.generate_image(job_for(spec, aspect_ratio=ratio), DEFAULT_KEY, 10)

    assert result.polls == sim.config.polls_before_ready + 1
    assert len(result.images) == 1
    image = await download(http, result.images[0].url or "")
    w, h = (int(x) for x in ratio.split(":"))
    assert (image.format, image.size) == ("JPEG", (32 * w, 32 * h))
    assert result.images[0].media_type == "image/jpeg"

    create, *polls = sim.requests
    assert (create.method, create.path) == ("POST", "/dream-machine/v1/generations/image")
    assert create.headers["authorization"] == f"Bearer {DEFAULT_KEY}"
    assert create.json == {
        "prompt": "a lighthouse at dusk",
        "model": spec.upstream_model,
        "aspect_ratio": ratio,
    }
    assert len(polls) == result.polls
    for poll in polls:
        assert (poll.method, poll.path) == ("GET", f"/dream-machine/v1/generations/{result.upstream_task_id}")
        assert poll.headers["authorization"] == f"Bearer {DEFAULT_KEY}"
    assert result.raw["state"] == "completed" and result.raw["id"] == result.upstream_task_id
    assert result.raw["model"] == spec.upstream_model


async def test_with_reference_image(sim: LumaSim, adapter: FastLuma) -> None:
    image = png_input()
    result = await adapter.generate_image(job_for(images=[image]), DEFAULT_KEY, 10)
    assert sim.requests[0].json["image_ref"] == [{"url": image.data_url(), "weight": 0.85}]
    echoed = result.raw["request"]["image_ref"][0]["url"]
    assert echoed.endswith("characters trimmed>")


async def test_failed_generation(sim: LumaSim, adapter: FastLuma) -> None:
    sim.config.fail_jobs_next = 1
    with pytest.raises(ProviderError) as err:
        await adapter.generate_image(job_for(), DEFAULT_KEY, 10)
    assert err.value.kind is FailureKind.GENERATION
    assert not err.value.retryable and not err.value.client_fault
    assert err.value.message == FAILURE_REASON


async def test_moderated_generation(sim: LumaSim, adapter: FastLuma) -> None:
    sim.config.moderate_jobs_next = 1
    with pytest.raises(ProviderError) as err:
        await adapter.generate_image(job_for(), DEFAULT_KEY, 10)
    assert err.value.kind is FailureKind.GENERATION
    assert err.value.client_fault and not err.value.retryable


async def test_wrong_key_is_a_channel_problem(sim: LumaSim, adapter: FastLuma) -> None:
    with pytest.raises(ProviderError) as err:
        await adapter.generate_image(job_for(), "luma-wrong", 10)
    assert err.value.kind is FailureKind.HTTP
    assert err.value.status == 401 and err.value.retryable and not err.value.client_fault
    assert err.value.message == "Invalid API key"
    assert not sim.jobs


@pytest.mark.parametrize("status", [402, 429, 500, 503])
async def test_injected_channel_errors_are_retryable(sim: LumaSim, adapter: FastLuma, status: int) -> None:
    sim.config.fail_next = [status]
    with pytest.raises(ProviderError) as err:
        await adapter.generate_image(job_for(), DEFAULT_KEY, 10)
    assert err.value.status == status and err.value.retryable and not err.value.client_fault


async def test_bad_ratio_is_the_clients_fault(adapter: FastLuma) -> None:
    with pytest.raises(ProviderError) as err:
        await adapter.generate_image(job_for(aspect_ratio="5:1"), DEFAULT_KEY, 10)
    assert err.value.status == 400 and err.value.client_fault and not err.value.retryable
    assert err.value.message == "Invalid aspect ratio: 5:1"


async def test_missing_prompt_is_a_422(adapter: FastLuma) -> None:
    with pytest.raises(ProviderError) as err:
        await adapter.generate_image(job_for(prompt=""), DEFAULT_KEY, 10)
    assert err.value.status == 422 and err.value.client_fault
    assert err.value.message == "prompt: Field required"


async def test_out_of_credits_is_a_channel_problem(sim: LumaSim, adapter: FastLuma) -> None:
    sim.config.fail_next = [{"status": 400, "body": {"detail": "Insufficient credits"}}]
    with pytest.raises(ProviderError) as err:
        await adapter.generate_image(job_for(), DEFAULT_KEY, 10)
    assert err.value.status == 400 and err.value.retryable and not err.value.client_fault


async def test_deadline_while_dreaming_is_a_timeout(sim: LumaSim, adapter: FastLuma) -> None:
    sim.config.polls_before_ready = 10_000
    started = time.monotonic()
    with pytest.raises(ProviderError) as err:
        await adapter.generate_image(job_for(), DEFAULT_KEY, 0.3)
    assert err.value.kind is FailureKind.TIMEOUT and not err.value.client_fault
    assert time.monotonic() - started < 2


async def test_submit_and_check_separately(
    sim: LumaSim, adapter: FastLuma, http: aiohttp.ClientSession
) -> None:
    deadline = time.monotonic() + 10
    task_id = await adapter.submit(job_for(spec_of(ROWS[1]), aspect_ratio="4:3"), DEFAULT_KEY, deadline)
    assert task_id in sim.jobs and len(sim.requests) == 1
    assert await adapter.check(task_id, DEFAULT_KEY, deadline) is None
    assert await adapter.check(task_id, DEFAULT_KEY, deadline) is None
    result = await adapter.check(task_id, DEFAULT_KEY, deadline)
    assert result is not None and result.upstream_task_id == task_id
    assert (await download(http, result.images[0].url or "")).size == (128, 96)


async def test_check_of_an_unknown_generation(adapter: FastLuma) -> None:
    with pytest.raises(ProviderError) as err:
        await adapter.check("00000000-0000-0000-0000-000000000000", DEFAULT_KEY, time.monotonic() + 5)
    assert err.value.status == 404 and err.value.retryable
    assert err.value.message == "Generation not found"


async def test_error_while_polling(sim: LumaSim, adapter: FastLuma) -> None:
    task_id = await adapter.submit(job_for(), DEFAULT_KEY, time.monotonic() + 5)
    sim.config.fail_next = [500]
    with pytest.raises(ProviderError) as err:
        await adapter.check(task_id, DEFAULT_KEY, time.monotonic() + 5)
    assert err.value.status == 500 and err.value.retryable
