"""The ``replicate`` adapter: pure mapping functions, then every catalog row against the simulator."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import aiohttp
import pytest
from PIL import Image

from omnirelay.core.images import ImageInput, ImageJob, ImageModelSpec
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.image_adapter import trim_data_urls
from omnirelay.providers.replicate.images import (
    ReplicateImageAdapter,
    from_prediction,
    image_of,
    is_moderation,
    output_format_of,
    output_urls,
    problem_message,
    to_input,
    to_request,
)
from omnirelay.settings import ChannelConfig
from tests.upstreams.imaging import DEFAULT_KEY, ImageSimConfig, make_image
from tests.upstreams.imaging import catalog_dicts as catalog_rows
from tests.upstreams.replicate.sim import MODEL_ERROR, NSFW_ERROR, ReplicateSim, channel_base_url

ROWS = catalog_rows("replicate")


def spec_of(row: dict[str, Any]) -> ImageModelSpec:
    return ImageModelSpec(
        id=row["id"],
        adapter=row["adapter"],
        upstream_model=row["upstream_model"],
        mode=row.get("mode", "t2i"),
        options=dict(row.get("options") or {}),
        rules=dict(row.get("rules") or {}),
    )


def spec_for(upstream_model: str = "302ai/sdxl", mode: str = "t2i", **kw: Any) -> ImageModelSpec:
    return ImageModelSpec(
        id=upstream_model, adapter="replicate", upstream_model=upstream_model, mode=mode, **kw
    )


def png_input(width: int = 80, height: int = 48) -> ImageInput:
    return ImageInput(make_image(width, height, "png"), "image/png", width, height)


def job_for(spec: ImageModelSpec, **kw: Any) -> ImageJob:
    ratio_rule = spec.rules.get("aspect_ratio")
    kw.setdefault("aspect_ratio", ratio_rule["default"] if ratio_rule and not spec.requires_image else None)
    if spec.requires_image:
        kw.setdefault("images", [png_input()])
    kw.setdefault("prompt", "a lighthouse at dusk")
    kw.setdefault("width", 256)
    kw.setdefault("height", 192)
    return ImageJob(spec=spec, **kw)


# --- pure mapping ---------------------------------------------------------------------------------


def test_to_request_paths() -> None:
    job = ImageJob(spec=spec_for("302ai/flux-dev"), prompt="p")
    assert to_request(job)[0] == "/v1/models/302ai/flux-dev/predictions"
    versioned = ImageJob(spec=spec_for("302ai/sdxl:abc123"), prompt="p")
    path, body = to_request(versioned)
    assert path == "/v1/predictions" and body["version"] == "abc123" and body["input"]["prompt"] == "p"
    with pytest.raises(ValueError):
        to_request(ImageJob(spec=spec_for("no-owner"), prompt="p"))


def test_to_input_maps_every_field() -> None:
    image, mask = png_input(), png_input()
    job = ImageJob(
        spec=spec_for("302ai/kolors-i2i", "i2i"),
        prompt="p",
        width=768,
        height=512,
        negative_prompt="blurry",
        output_format="jpeg",
        n=3,
        images=[image],
        mask=mask,
        seed=5,
        extra={"guidance_scale": 7.5, "prompt": "ignored", "lora_scale": None},
    )
    assert to_input(job) == {
        "guidance_scale": 7.5,
        "prompt": "p",
        "width": 768,
        "height": 512,
        "num_outputs": 3,
        "output_format": "jpg",
        "negative_prompt": "blurry",
        "image": image.data_url(),
        "mask": mask.data_url(),
        "seed": 5,
    }


def test_to_input_aspect_ratio_only_when_set() -> None:
    assert "aspect_ratio" not in to_input(ImageJob(spec=spec_for(), prompt="p"))
    ultra = spec_for(
        "302ai/flux-1.1-pro-ultra", rules={"aspect_ratio": {"choices": ["16:9"], "default": "16:9"}}
    )
    assert to_input(ImageJob(spec=ultra, prompt="p", aspect_ratio="16:9"))["aspect_ratio"] == "16:9"


@pytest.mark.parametrize(("fmt", "out"), [("png", "png"), ("jpeg", "jpg"), ("JPG", "jpg"), ("webp", "webp")])
def test_output_format(fmt: str, out: str) -> None:
    assert output_format_of(fmt) == out


@pytest.mark.parametrize(
    ("output", "urls"),
    [
        (None, []),
        ("https://r/a.png", ["https://r/a.png"]),
        (["https://r/a.png", "https://r/b.png"], ["https://r/a.png", "https://r/b.png"]),
        ('["https://r/a.png", "https://r/b.png"]', ["https://r/a.png", "https://r/b.png"]),
        ('"https://r/a.png"', ["https://r/a.png"]),
        ({"image": "https://r/a.png"}, ["https://r/a.png"]),
        ("[not json", []),
        ("", []),
        (42, []),
    ],
)
def test_output_urls(output: Any, urls: list[str]) -> None:
    assert output_urls(output) == urls


def test_image_of() -> None:
    assert image_of("https://r/x/out-0.webp").media_type == "image/webp"
    assert image_of("https://r/x/out-0.JPG?x=1").media_type == "image/jpeg"
    assert image_of("https://r/x/out").media_type is None
    data = make_image(8, 8)
    inline = image_of("data:image/png;base64," + base64.b64encode(data).decode())
    assert inline.data == data and inline.media_type == "image/png" and inline.url is None
    with pytest.raises(ProviderError):
        image_of("data:image/png;base64,@@@")


def test_trim_data_urls() -> None:
    long = "data:image/png;base64," + "A" * 400
    trimmed = trim_data_urls({"input": {"image": long, "prompt": "p"}, "output": ["https://x"], "n": 1})
    assert trimmed["input"]["image"] == f"data:image/png;base64,<{len(long)} characters trimmed>"
    assert trimmed["input"]["prompt"] == "p" and trimmed["output"] == ["https://x"] and trimmed["n"] == 1
    assert trim_data_urls("data:x,short") == "data:x,short"


def test_from_prediction_states() -> None:
    assert from_prediction({"id": "p", "status": "starting"}) is None
    assert from_prediction({"id": "p", "status": "processing"}) is None
    done = from_prediction({"id": "p", "status": "succeeded", "output": '["https://r/a.png"]'})
    assert done is not None and done.upstream_task_id == "p" and done.images[0].url == "https://r/a.png"
    assert done.raw["output"] == '["https://r/a.png"]'  # the raw result is the prediction as answered

    with pytest.raises(ProviderError) as failed:
        from_prediction({"id": "p", "status": "failed", "error": MODEL_ERROR})
    assert failed.value.kind is FailureKind.GENERATION
    assert not failed.value.retryable and not failed.value.client_fault
    assert failed.value.message == MODEL_ERROR

    with pytest.raises(ProviderError) as nsfw:
        from_prediction({"id": "p", "status": "failed", "error": NSFW_ERROR})
    assert nsfw.value.client_fault and not nsfw.value.retryable

    with pytest.raises(ProviderError) as canceled:
        from_prediction({"id": "p", "status": "canceled"})
    assert canceled.value.kind is FailureKind.GENERATION and not canceled.value.client_fault

    with pytest.raises(ProviderError) as empty:
        from_prediction({"id": "p", "status": "succeeded", "output": []})
    assert empty.value.kind is FailureKind.GENERATION


def test_is_moderation() -> None:
    assert is_moderation(NSFW_ERROR)
    assert is_moderation("Output flagged by the safety checker")
    assert not is_moderation(MODEL_ERROR)


def test_problem_message() -> None:
    assert problem_message({"title": "T", "detail": "D", "status": 422}, "f") == "D"
    assert problem_message({"title": "T", "status": 404}, "f") == "T"
    assert problem_message({"detail": ""}, "f") == "f"
    assert problem_message("text", "f") == "f"


@pytest.mark.parametrize(
    ("status", "expected"),
    [(401, (True, False)), (402, (True, False)), (404, (True, False)), (422, (False, True)),
     (429, (True, False)), (500, (True, False)), (400, (False, True))],
)  # fmt: skip
def test_classify(status: int, expected: tuple[bool, bool]) -> None:
    adapter = ReplicateImageAdapter.__new__(ReplicateImageAdapter)
    assert adapter.classify(status, {"title": "x", "status": status}) == expected


# --- against the simulator ------------------------------------------------------------------------


class FastReplicate(ReplicateImageAdapter):
    poll_interval_s = 0.01
    poll_max_interval_s = 0.02


class WaitingReplicate(FastReplicate):
    prefer_wait_s: ClassVar[int] = 30


@pytest.fixture
async def sim() -> AsyncIterator[ReplicateSim]:
    server = ReplicateSim(config=ImageSimConfig(polls_before_ready=2))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def channel_of(sim: ReplicateSim) -> ChannelConfig:
    return ChannelConfig(
        name="rep-test", provider="replicate", base_url=channel_base_url(sim), api_key=DEFAULT_KEY
    )


@pytest.fixture
def adapter(sim: ReplicateSim, http: aiohttp.ClientSession) -> FastReplicate:
    return FastReplicate(channel_of(sim), http)


async def download(http: aiohttp.ClientSession, url: str) -> Image.Image:
    async with http.get(url) as resp:
        assert resp.status == 200
        data = await resp.read()
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
async def test_every_catalog_row(
    row: dict[str, Any], sim: ReplicateSim, adapter: FastReplicate, http: aiohttp.ClientSession
) -> None:
    spec = spec_of(row)
    job = job_for(spec, n=2, seed=3, negative_prompt="blurry", extra={"guidance_scale": 4})
    result = await adapter.generate_image(job, DEFAULT_KEY, 10)

    assert result.polls == sim.config.polls_before_ready + 1
    single = "flux-1.1-pro" in spec.upstream_model
    assert len(result.images) == (1 if single else 2)
    for generated in result.images:
        image = await download(http, generated.url or "")
        assert image.format == "PNG" and generated.media_type == "image/png"
        if spec.requires_image:
            assert image.size == (80, 48)
        elif "aspect_ratio" in spec.rules:
            assert image.size == (32 * 16, 32 * 9)
        else:
            assert image.size == (256, 192)

    create, *polls = sim.requests
    owner, name = spec.upstream_model.split("/")
    assert (create.method, create.path) == ("POST", f"/v1/models/{owner}/{name}/predictions")
    assert create.headers["authorization"] == f"Bearer {DEFAULT_KEY}"
    assert "prefer" not in create.headers
    sent = create.json["input"]
    assert sent["prompt"] == "a lighthouse at dusk" and sent["num_outputs"] == 2 and sent["seed"] == 3
    assert sent["negative_prompt"] == "blurry" and sent["guidance_scale"] == 4
    assert (sent["width"], sent["height"]) == (256, 192)
    assert sent["output_format"] == "png"
    if spec.requires_image:
        assert sent["image"] == job.images[0].data_url()
        assert "aspect_ratio" not in sent
    if "aspect_ratio" in spec.rules:
        assert sent["aspect_ratio"] == "16:9"

    assert len(polls) == result.polls
    for poll in polls:
        assert (poll.method, poll.path) == ("GET", f"/v1/predictions/{result.upstream_task_id}")
        assert poll.headers["authorization"] == f"Bearer {DEFAULT_KEY}"

    raw = result.raw
    assert raw["id"] == result.upstream_task_id and raw["status"] == "succeeded"
    assert raw["model"] == spec.upstream_model
    if spec.requires_image:
        assert raw["input"]["image"].endswith("characters trimmed>")


async def test_output_as_json_encoded_string(
    sim: ReplicateSim, adapter: FastReplicate, http: aiohttp.ClientSession
) -> None:
    sim.output_json_string = True
    result = await adapter.generate_image(job_for(spec_for("302ai/flux-schnell"), n=2), DEFAULT_KEY, 10)
    assert isinstance(result.raw["output"], str)
    assert [img.url for img in result.images] == json.loads(result.raw["output"])
    for generated in result.images:
        assert (await download(http, generated.url or "")).size == (256, 192)


async def test_jpeg_output(adapter: FastReplicate, http: aiohttp.ClientSession) -> None:
    result = await adapter.generate_image(job_for(spec_for(), output_format="jpeg"), DEFAULT_KEY, 10)
    image = await download(http, result.images[0].url or "")
    assert image.format == "JPEG" and result.images[0].media_type == "image/jpeg"


async def test_prefer_wait_returns_at_once(sim: ReplicateSim, http: aiohttp.ClientSession) -> None:
    adapter = WaitingReplicate(channel_of(sim), http)
    result = await adapter.generate_image(job_for(spec_for()), DEFAULT_KEY, 10)
    assert result.polls == 0 and len(sim.requests) == 1
    prefer = sim.requests[0].headers["prefer"]
    assert prefer.startswith("wait=") and 1 <= int(prefer[5:]) <= 9  # capped by the time left
    assert result.upstream_task_id in sim.jobs


async def test_prefer_wait_from_the_row_options(sim: ReplicateSim, adapter: FastReplicate) -> None:
    spec = spec_for(options={"prefer_wait_s": 5})
    result = await adapter.generate_image(job_for(spec), DEFAULT_KEY, 30)
    assert result.polls == 0 and sim.requests[0].headers["prefer"] == "wait=5"


async def test_prefer_wait_with_a_failed_prediction(sim: ReplicateSim, http: aiohttp.ClientSession) -> None:
    sim.config.moderate_jobs_next = 1
    with pytest.raises(ProviderError) as err:
        await WaitingReplicate(channel_of(sim), http).generate_image(job_for(spec_for()), DEFAULT_KEY, 10)
    assert err.value.client_fault and len(sim.requests) == 1


async def test_versioned_model(sim: ReplicateSim, adapter: FastReplicate) -> None:
    result = await adapter.generate_image(job_for(spec_for("302ai/sdxl:0123abcd")), DEFAULT_KEY, 10)
    assert sim.requests[0].path == "/v1/predictions"
    assert sim.requests[0].json["version"] == "0123abcd"
    assert result.raw["version"] == "0123abcd"


async def test_failed_prediction(sim: ReplicateSim, adapter: FastReplicate) -> None:
    sim.config.fail_jobs_next = 1
    with pytest.raises(ProviderError) as err:
        await adapter.generate_image(job_for(spec_for()), DEFAULT_KEY, 10)
    assert err.value.kind is FailureKind.GENERATION
    assert not err.value.retryable and not err.value.client_fault
    assert err.value.message == MODEL_ERROR


async def test_nsfw_prediction(sim: ReplicateSim, adapter: FastReplicate) -> None:
    sim.config.moderate_jobs_next = 1
    with pytest.raises(ProviderError) as err:
        await adapter.generate_image(job_for(spec_for()), DEFAULT_KEY, 10)
    assert err.value.kind is FailureKind.GENERATION
    assert err.value.client_fault and not err.value.retryable


async def test_canceled_prediction(
    sim: ReplicateSim, adapter: FastReplicate, http: aiohttp.ClientSession
) -> None:
    deadline = time.monotonic() + 10
    task_id = await adapter.submit(job_for(spec_for()), DEFAULT_KEY, deadline)
    async with http.post(
        f"{sim.base_url}/v1/predictions/{task_id}/cancel", headers={"Authorization": f"Bearer {DEFAULT_KEY}"}
    ) as resp:
        assert resp.status == 200
    with pytest.raises(ProviderError) as err:
        await adapter.check(task_id, DEFAULT_KEY, deadline)
    assert err.value.kind is FailureKind.GENERATION and "canceled" in err.value.message


async def test_wrong_token_is_a_channel_problem(sim: ReplicateSim, adapter: FastReplicate) -> None:
    with pytest.raises(ProviderError) as err:
        await adapter.generate_image(job_for(spec_for()), "r8_wrong", 10)
    assert err.value.kind is FailureKind.HTTP
    assert err.value.status == 401 and err.value.retryable and not err.value.client_fault
    assert err.value.message == "You did not pass a valid authentication token"
    assert not sim.jobs


@pytest.mark.parametrize("status", [402, 429, 500, 503])
async def test_injected_channel_errors_are_retryable(
    sim: ReplicateSim, adapter: FastReplicate, status: int
) -> None:
    sim.config.fail_next = [status]
    with pytest.raises(ProviderError) as err:
        await adapter.generate_image(job_for(spec_for()), DEFAULT_KEY, 10)
    assert err.value.status == status and err.value.retryable and not err.value.client_fault


async def test_invalid_input_is_the_clients_fault(adapter: FastReplicate) -> None:
    job = job_for(spec_for(), n=9)
    with pytest.raises(ProviderError) as err:
        await adapter.generate_image(job, DEFAULT_KEY, 10)
    assert err.value.status == 422 and err.value.client_fault and not err.value.retryable
    assert "num_outputs" in err.value.message
    assert err.value.body is not None and err.value.body["title"] == "Input validation failed"


async def test_i2i_without_image_is_rejected(adapter: FastReplicate) -> None:
    job = ImageJob(spec=spec_for("302ai/kolors-i2i"), prompt="p")
    with pytest.raises(ProviderError) as err:
        await adapter.generate_image(job, DEFAULT_KEY, 10)
    assert err.value.status == 422 and err.value.client_fault


async def test_model_missing_on_the_channel_is_retryable(http: aiohttp.ClientSession) -> None:
    sim = ReplicateSim(models={"302ai/sdxl"})
    await sim.start()
    try:
        adapter = FastReplicate(channel_of(sim), http)
        with pytest.raises(ProviderError) as err:
            await adapter.generate_image(job_for(spec_for("302ai/flux-dev")), DEFAULT_KEY, 10)
        assert err.value.status == 404 and err.value.retryable and not err.value.client_fault
    finally:
        await sim.stop()


async def test_deadline_while_processing_is_a_timeout(sim: ReplicateSim, adapter: FastReplicate) -> None:
    sim.config.polls_before_ready = 10_000
    started = time.monotonic()
    with pytest.raises(ProviderError) as err:
        await adapter.generate_image(job_for(spec_for()), DEFAULT_KEY, 0.3)
    assert err.value.kind is FailureKind.TIMEOUT and not err.value.client_fault
    assert time.monotonic() - started < 2


async def test_submit_and_check_separately(
    sim: ReplicateSim, adapter: FastReplicate, http: aiohttp.ClientSession
) -> None:
    deadline = time.monotonic() + 10
    task_id = await adapter.submit(job_for(spec_for("302ai/kolors-i2i", "i2i")), DEFAULT_KEY, deadline)
    assert task_id in sim.jobs and len(sim.requests) == 1
    assert await adapter.check(task_id, DEFAULT_KEY, deadline) is None
    assert await adapter.check(task_id, DEFAULT_KEY, deadline) is None
    result = await adapter.check(task_id, DEFAULT_KEY, deadline)
    assert result is not None and result.upstream_task_id == task_id and result.polls == 0
    assert (await download(http, result.images[0].url or "")).size == (80, 48)


async def test_check_of_an_unknown_prediction(adapter: FastReplicate) -> None:
    with pytest.raises(ProviderError) as err:
        await adapter.check("nosuchprediction", DEFAULT_KEY, time.monotonic() + 5)
    assert err.value.status == 404 and err.value.retryable


async def test_error_while_polling(sim: ReplicateSim, adapter: FastReplicate) -> None:
    task_id = await adapter.submit(job_for(spec_for()), DEFAULT_KEY, time.monotonic() + 5)
    sim.config.fail_next = [{"status": 503, "body": {"title": "Service Unavailable", "status": 503}}]
    with pytest.raises(ProviderError) as err:
        await adapter.check(task_id, DEFAULT_KEY, time.monotonic() + 5)
    assert err.value.status == 503 and err.value.retryable and err.value.message == "Service Unavailable"
