"""The ``bfl`` adapter: pure mapping functions, then every catalog row against the BFL simulator."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from PIL import Image

from omnirelay.core.images import ImageInput, ImageJob, ImageModelSpec
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.bfl.images import (
    BFLImageAdapter,
    detail_message,
    from_result,
    model_family,
    output_format_of,
    ratio_of_size,
    snap_side,
    to_request,
)
from omnirelay.settings import ChannelConfig
from tests.upstreams.bfl.sim import BFLSim, channel_base_url, ratio_size
from tests.upstreams.imaging import DEFAULT_KEY, ImageSimConfig, make_image
from tests.upstreams.imaging import catalog_dicts as catalog_rows

ROWS = catalog_rows("bfl")


def spec_of(row: dict[str, Any]) -> ImageModelSpec:
    return ImageModelSpec(
        id=row["id"],
        adapter=row["adapter"],
        upstream_model=row["upstream_model"],
        mode=row.get("mode", "t2i"),
        options=dict(row.get("options") or {}),
        rules=dict(row.get("rules") or {}),
    )


def spec_for(upstream_model: str, mode: str = "t2i") -> ImageModelSpec:
    return ImageModelSpec(id=upstream_model, adapter="bfl", upstream_model=upstream_model, mode=mode)


def png_input(width: int = 96, height: int = 64) -> ImageInput:
    return ImageInput(make_image(width, height, "png"), "image/png", width, height)


def job_for(spec: ImageModelSpec, **kw: Any) -> ImageJob:
    ratio_rule = spec.rules.get("aspect_ratio")
    kw.setdefault("aspect_ratio", ratio_rule["default"] if ratio_rule and not spec.requires_image else None)
    if spec.requires_image:
        kw.setdefault("images", [png_input()])
    if "finetuned" in spec.upstream_model:
        kw.setdefault("extra", {"finetune_id": "ft-123", "finetune_strength": 1.2})
    kw.setdefault("prompt", "a lighthouse at dusk")
    return ImageJob(spec=spec, **kw)


# --- pure mapping ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("flux-pro-1.1-ultra", "ultra"),
        ("flux-pro-1.1-ultra-finetuned", "ultra"),
        ("flux-pro-1.1", "sized"),
        ("flux-pro", "sized"),
        ("flux-dev", "sized"),
        ("flux-pro-finetuned", "sized"),
        ("flux-pro-1.0-fill", "fill"),
        ("flux-pro-1.0-fill-finetuned", "fill"),
        ("flux-pro-1.0-canny", "control"),
        ("flux-pro-1.0-depth-finetuned", "control"),
    ],
)
def test_model_family(model: str, family: str) -> None:
    assert model_family(model) == family


def test_every_catalog_row_has_a_family_and_the_sim_knows_it() -> None:
    from tests.upstreams.bfl.sim import MODELS

    assert len(ROWS) == 12
    for row in ROWS:
        assert row["upstream_model"] in MODELS
        assert model_family(row["upstream_model"]) in ("ultra", "sized", "fill", "control")


@pytest.mark.parametrize(
    ("value", "snapped"), [(1024, 1024), (1000, 992), (1010, 1024), (100, 256), (2048, 1440)]
)
def test_snap_side(value: int, snapped: int) -> None:
    assert snap_side(value) == snapped


@pytest.mark.parametrize(("fmt", "out"), [("png", "png"), ("jpeg", "jpeg"), ("jpg", "jpeg"), ("webp", "png")])
def test_output_format(fmt: str, out: str) -> None:
    assert output_format_of(fmt) == out


def test_to_request_ultra_uses_aspect_ratio_and_image_prompt() -> None:
    image = png_input()
    job = ImageJob(
        spec=spec_for("flux-pro-1.1-ultra"),
        prompt="p",
        aspect_ratio="21:9",
        seed=7,
        output_format="jpg",
        images=[image],
        extra={"raw": True, "safety_tolerance": 4, "steps": 30, "finetune_id": "x", "junk": 1},
    )
    path, body = to_request(job)
    assert path == "/v1/flux-pro-1.1-ultra"
    assert body == {
        "prompt": "p",
        "aspect_ratio": "21:9",
        "image_prompt": base64.b64encode(image.data).decode(),
        "seed": 7,
        "output_format": "jpeg",
        "raw": True,
        "safety_tolerance": 4,
    }


def test_to_request_ultra_ratio_from_size() -> None:
    _, body = to_request(ImageJob(spec=spec_for("flux-pro-1.1-ultra"), prompt="p"))
    assert body["aspect_ratio"] == "1:1"
    assert "width" not in body and "seed" not in body
    _, wide = to_request(ImageJob(spec=spec_for("flux-pro-1.1-ultra"), prompt="p", width=1344, height=768))
    assert wide["aspect_ratio"] == "7:4"


@pytest.mark.parametrize(
    ("size", "ratio"),
    [
        ((1024, 1024), "1:1"),
        ((1920, 1080), "16:9"),
        ((768, 1024), "3:4"),
        ((4000, 100), "21:9"),
        ((10, 900), "9:21"),
    ],
)
def test_ratio_of_size(size: tuple[int, int], ratio: str) -> None:
    assert ratio_of_size(*size) == ratio


def test_to_request_sized_snaps_dimensions() -> None:
    job = ImageJob(spec=spec_for("flux-dev"), prompt="p", width=1000, height=3000, extra={"steps": 28})
    path, body = to_request(job)
    assert path == "/v1/flux-dev"
    assert (body["width"], body["height"]) == (992, 1440)
    assert body["steps"] == 28
    assert "aspect_ratio" not in body


def test_to_request_fill_sends_image_and_mask() -> None:
    image, mask = png_input(), png_input()
    job = ImageJob(spec=spec_for("flux-pro-1.0-fill", "i2i"), prompt="", images=[image], mask=mask)
    _, body = to_request(job)
    assert body["image"] == base64.b64encode(image.data).decode()
    assert body["mask"] == base64.b64encode(mask.data).decode()
    assert "width" not in body and "control_image" not in body


def test_to_request_control_and_finetune_extras() -> None:
    image = png_input()
    job = ImageJob(
        spec=spec_for("flux-pro-1.0-canny-finetuned", "i2i"),
        prompt="p",
        images=[image],
        extra={"finetune_id": "ft", "finetune_strength": 0.9, "canny_low_threshold": 40, "raw": True},
    )
    _, body = to_request(job)
    assert body["control_image"] == base64.b64encode(image.data).decode()
    assert body["finetune_id"] == "ft" and body["finetune_strength"] == 0.9
    assert body["canny_low_threshold"] == 40
    assert "raw" not in body


def test_from_result_states() -> None:
    assert from_result({"id": "t", "status": "Pending", "result": None}, "t") is None
    assert from_result({"id": "t", "status": "SomethingNew"}, "t") is None
    ready = from_result(
        {"id": "t", "status": "Ready", "result": {"sample": "https://x/y/sample.jpeg?s=1"}}, "t"
    )
    assert ready is not None
    assert ready.images[0].url == "https://x/y/sample.jpeg?s=1"
    assert ready.images[0].media_type == "image/jpeg"
    assert ready.upstream_task_id == "t"
    assert ready.raw["status"] == "Ready"

    with pytest.raises(ProviderError) as failed:
        from_result({"status": "Error", "details": {"message": "boom"}}, "t")
    assert failed.value.kind is FailureKind.GENERATION
    assert not failed.value.retryable and not failed.value.client_fault
    assert "boom" in failed.value.message

    for status in ("Content Moderated", "Request Moderated"):
        with pytest.raises(ProviderError) as moderated:
            from_result(
                {"status": status, "details": {"Moderation Reasons": ["Derivative Works Filter"]}}, "t"
            )
        assert moderated.value.kind is FailureKind.GENERATION
        assert moderated.value.client_fault and not moderated.value.retryable
        assert "Derivative Works Filter" in moderated.value.message

    with pytest.raises(ProviderError) as lost:
        from_result({"status": "Task not found"}, "t")
    assert lost.value.kind is FailureKind.HTTP and lost.value.status == 404 and lost.value.retryable

    with pytest.raises(ProviderError) as empty:
        from_result({"status": "Ready", "result": {}}, "t")
    assert empty.value.kind is FailureKind.GENERATION


def test_detail_message() -> None:
    assert detail_message({"detail": "Not authenticated"}, "f") == "Not authenticated"
    listed = {"detail": [{"loc": ["body", "width"], "msg": "bad"}, {"loc": [], "msg": "other"}]}
    assert detail_message(listed, "f") == "width: bad; other"
    assert detail_message(None, "f") == "f"
    assert detail_message({"detail": []}, "f") == "f"


@pytest.mark.parametrize(
    ("status", "expected"),
    [(401, (True, False)), (402, (True, False)), (403, (True, False)), (404, (True, False)),
     (422, (False, True)), (429, (True, False)), (500, (True, False)), (418, (False, True))],
)  # fmt: skip
def test_classify(status: int, expected: tuple[bool, bool]) -> None:
    adapter = BFLImageAdapter.__new__(BFLImageAdapter)
    assert adapter.classify(status, {"detail": "x"}) == expected


# --- against the simulator ------------------------------------------------------------------------


class FastBFL(BFLImageAdapter):
    poll_interval_s = 0.01
    poll_max_interval_s = 0.02


@pytest.fixture
async def sim() -> AsyncIterator[BFLSim]:
    server = BFLSim(config=ImageSimConfig(polls_before_ready=2))
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
def adapter(sim: BFLSim, http: aiohttp.ClientSession) -> FastBFL:
    channel = ChannelConfig(
        name="bfl-test", provider="bfl", base_url=channel_base_url(sim), api_key=DEFAULT_KEY
    )
    return FastBFL(channel, http)


async def download(http: aiohttp.ClientSession, url: str) -> Image.Image:
    async with http.get(url) as resp:
        assert resp.status == 200
        data = await resp.read()
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
async def test_every_catalog_row(
    row: dict[str, Any], sim: BFLSim, adapter: FastBFL, http: aiohttp.ClientSession
) -> None:
    spec = spec_of(row)
    job = job_for(spec, seed=11, output_format="png")
    result = await adapter.generate_image(job, DEFAULT_KEY, 10)

    assert result.polls == sim.config.polls_before_ready + 1
    assert len(result.images) == 1
    image = await download(http, result.images[0].url or "")
    assert image.format == "PNG"
    assert result.images[0].media_type == "image/png"

    submit, *polls = sim.requests
    assert (submit.method, submit.path) == ("POST", f"/v1/{spec.upstream_model}")
    assert submit.headers["x-key"] == DEFAULT_KEY
    assert "authorization" not in submit.headers
    body = submit.json
    assert body["seed"] == 11 and body["output_format"] == "png"
    family = model_family(spec.upstream_model)
    if family == "ultra":
        # The row's ratio rule when it has one, else the ratio of the job's size (1024x1024).
        assert body["aspect_ratio"] == (job.aspect_ratio or "1:1")
        assert image.size == ratio_size(body["aspect_ratio"])
        assert "width" not in body and "height" not in body
    elif family == "sized":
        assert (body["width"], body["height"]) == (1024, 1024)
        assert image.size == (1024, 1024)
    elif family == "fill":
        assert base64.b64decode(body["image"]) == job.images[0].data
        assert image.size == (96, 64)
    else:
        assert base64.b64decode(body["control_image"]) == job.images[0].data
        assert image.size == (96, 64)
    if "finetuned" in spec.upstream_model:
        assert body["finetune_id"] == "ft-123" and body["finetune_strength"] == 1.2
    else:
        assert "finetune_id" not in body

    assert len(polls) == result.polls
    for poll in polls:
        assert (poll.method, poll.path) == ("GET", "/v1/get_result")
        assert poll.query == {"id": result.upstream_task_id}
        assert poll.headers["x-key"] == DEFAULT_KEY
    assert result.upstream_task_id in sim.jobs
    assert result.raw["status"] == "Ready"
    assert result.raw["result"]["sample"] == result.images[0].url


async def test_jpeg_output(adapter: FastBFL, http: aiohttp.ClientSession) -> None:
    job = job_for(spec_for("flux-pro-1.1"), output_format="jpeg", width=512, height=768)
    result = await adapter.generate_image(job, DEFAULT_KEY, 10)
    image = await download(http, result.images[0].url or "")
    assert (image.format, image.size) == ("JPEG", (512, 768))
    assert result.images[0].media_type == "image/jpeg"


async def test_ready_at_first_poll(sim: BFLSim, adapter: FastBFL) -> None:
    sim.config.polls_before_ready = 0
    result = await adapter.generate_image(job_for(spec_for("flux-dev")), DEFAULT_KEY, 10)
    assert result.polls == 1


async def test_failed_job(sim: BFLSim, adapter: FastBFL) -> None:
    sim.config.fail_jobs_next = 1
    with pytest.raises(ProviderError) as err:
        await adapter.generate_image(job_for(spec_for("flux-pro")), DEFAULT_KEY, 10)
    assert err.value.kind is FailureKind.GENERATION
    assert not err.value.retryable and not err.value.client_fault


async def test_content_moderated(sim: BFLSim, adapter: FastBFL) -> None:
    sim.config.moderate_jobs_next = 1
    with pytest.raises(ProviderError) as err:
        await adapter.generate_image(job_for(spec_for("flux-pro")), DEFAULT_KEY, 10)
    assert err.value.kind is FailureKind.GENERATION
    assert err.value.client_fault and not err.value.retryable
    assert "Content Moderated" in err.value.message


async def test_request_moderated(adapter: FastBFL) -> None:
    job = job_for(spec_for("flux-pro"), prompt="something [request-moderated]")
    with pytest.raises(ProviderError) as err:
        await adapter.generate_image(job, DEFAULT_KEY, 10)
    assert err.value.client_fault and "Request Moderated" in err.value.message


async def test_wrong_key_is_a_channel_problem(sim: BFLSim, adapter: FastBFL) -> None:
    with pytest.raises(ProviderError) as err:
        await adapter.generate_image(job_for(spec_for("flux-pro")), "wrong", 10)
    assert err.value.kind is FailureKind.HTTP
    assert err.value.status == 403 and err.value.retryable and not err.value.client_fault
    assert err.value.message == "Not authenticated - Invalid Authentication"
    assert len(sim.jobs) == 0


@pytest.mark.parametrize("status", [401, 402, 429, 500, 503])
async def test_injected_channel_errors_are_retryable(sim: BFLSim, adapter: FastBFL, status: int) -> None:
    sim.config.fail_next = [status]
    with pytest.raises(ProviderError) as err:
        await adapter.generate_image(job_for(spec_for("flux-pro")), DEFAULT_KEY, 10)
    assert err.value.kind is FailureKind.HTTP
    assert err.value.status == status and err.value.retryable and not err.value.client_fault
    assert err.value.message == f"injected failure {status}"


async def test_validation_error_is_the_clients_fault(adapter: FastBFL) -> None:
    job = job_for(spec_for("flux-pro-finetuned"), extra={})  # finetune_id missing
    with pytest.raises(ProviderError) as err:
        await adapter.generate_image(job, DEFAULT_KEY, 10)
    assert err.value.status == 422 and err.value.client_fault and not err.value.retryable
    assert err.value.message == "finetune_id: Field required"
    assert err.value.body is not None and isinstance(err.value.body["detail"], list)


async def test_error_while_polling(sim: BFLSim, adapter: FastBFL) -> None:
    task_id = await adapter.submit(job_for(spec_for("flux-dev")), DEFAULT_KEY, time.monotonic() + 5)
    sim.config.fail_next = [502]
    with pytest.raises(ProviderError) as err:
        await adapter.check(task_id, DEFAULT_KEY, time.monotonic() + 5)
    assert err.value.status == 502 and err.value.retryable


async def test_deadline_while_pending_is_a_timeout(sim: BFLSim, adapter: FastBFL) -> None:
    sim.config.polls_before_ready = 10_000
    started = time.monotonic()
    with pytest.raises(ProviderError) as err:
        await adapter.generate_image(job_for(spec_for("flux-dev")), DEFAULT_KEY, 0.3)
    assert err.value.kind is FailureKind.TIMEOUT
    assert not err.value.client_fault
    assert time.monotonic() - started < 2


async def test_submit_and_check_separately(
    sim: BFLSim, adapter: FastBFL, http: aiohttp.ClientSession
) -> None:
    deadline = time.monotonic() + 10
    task_id = await adapter.submit(job_for(spec_for("flux-pro-1.1")), DEFAULT_KEY, deadline)
    assert task_id in sim.jobs and len(sim.requests) == 1
    assert await adapter.check(task_id, DEFAULT_KEY, deadline) is None
    assert await adapter.check(task_id, DEFAULT_KEY, deadline) is None
    result = await adapter.check(task_id, DEFAULT_KEY, deadline)
    assert result is not None and result.upstream_task_id == task_id
    image = await download(http, result.images[0].url or "")
    assert image.size == (1024, 1024)
    # A later check of a finished task answers the same result.
    again = await adapter.check(task_id, DEFAULT_KEY, deadline)
    assert again is not None and again.images == result.images


async def test_check_of_an_unknown_task(adapter: FastBFL) -> None:
    with pytest.raises(ProviderError) as err:
        await adapter.check("no-such-task", DEFAULT_KEY, time.monotonic() + 5)
    assert err.value.kind is FailureKind.HTTP and err.value.status == 404 and err.value.retryable
    assert not err.value.client_fault


async def test_polling_url_under_base_is_used_and_foreign_one_is_not(sim: BFLSim, adapter: FastBFL) -> None:
    sim.config.polls_before_ready = 0
    deadline = time.monotonic() + 10
    task_id = await adapter.submit(job_for(spec_for("flux-dev")), DEFAULT_KEY, deadline)
    own = f"{sim.base_url}/v1/get_result?id={task_id}"
    assert await adapter.check(task_id, DEFAULT_KEY, deadline, polling_url=own) is not None
    assert sim.last().query == {"id": task_id}
    # A polling URL on another host never gets the key: the channel's own get_result is used.
    foreign = f"https://elsewhere.example/v1/get_result?id={task_id}"
    assert await adapter.check(task_id, DEFAULT_KEY, deadline, polling_url=foreign) is not None
    assert sim.last().path == "/v1/get_result"
