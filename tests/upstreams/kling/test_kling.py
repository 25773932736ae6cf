"""Kling adapter: the JWT, the request mapping, the code table, and every catalog row against the sim."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from omnirelay.core.videos import MODERATED, default_catalog
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.kling.video import (
    CODES,
    KlingVideoAdapter,
    credentials,
    envelope_error,
    from_task,
    kling_token,
    to_request,
)
from omnirelay.providers.registry import adapter_class
from tests.upstreams.kling.sim import ACCESS_KEY, SECRET_KEY, KlingSim, channel_api_key
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

KEY = f"{ACCESS_KEY}:{SECRET_KEY}"
ROWS = [spec for spec in default_catalog().all() if spec.adapter == "kling"]


@pytest.fixture
async def sim() -> AsyncIterator[KlingSim]:
    server = KlingSim()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def adapter(sim: KlingSim, http: aiohttp.ClientSession) -> KlingVideoAdapter:
    made: KlingVideoAdapter = make_adapter("kling", sim, http, channel_api_key(sim))
    return made


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


# --- the token ------------------------------------------------------------------------------------


def test_token_is_an_hs256_jwt_with_iss_exp_nbf() -> None:
    token = kling_token("ak-1", "secret-1", now=1_700_000_000)
    head, claims, signature = token.split(".")
    assert "=" not in token, "base64url without padding"
    assert json.loads(_unb64(head)) == {"alg": "HS256", "typ": "JWT"}
    assert json.loads(_unb64(claims)) == {"iss": "ak-1", "exp": 1_700_001_800, "nbf": 1_699_999_995}
    expected = hmac.new(b"secret-1", f"{head}.{claims}".encode(), hashlib.sha256).digest()
    assert _unb64(signature) == expected


def test_token_depends_on_the_secret_and_the_time() -> None:
    assert kling_token("ak", "s1", now=1) != kling_token("ak", "s2", now=1)
    assert kling_token("ak", "s1", now=1) != kling_token("ak", "s1", now=2)
    assert kling_token("ak", "s1", now=1) == kling_token("ak", "s1", now=1)


@pytest.mark.parametrize("key", ["no-colon", ":sk", "ak:", " : "])
def test_a_key_that_is_not_ak_sk_is_the_channels_error(key: str) -> None:
    with pytest.raises(ProviderError) as caught:
        credentials(key)
    error = caught.value
    assert shape(error) == (FailureKind.HTTP, 401, True, False)


def test_credentials_split_at_the_first_colon() -> None:
    assert credentials(" ak : s:k ") == ("ak", "s:k")


# --- pure mapping ---------------------------------------------------------------------------------


def test_text_to_video_request() -> None:
    job = video_job(
        "kling-v1.6",
        negative_prompt="blur",
        duration=10,
        aspect_ratio="9:16",
        extra={"mode": "pro", "cfg_scale": 0.3, "camera_control": {"type": "simple"}, "unknown": 1},
    )
    kind, body = to_request(job)
    assert kind == "text2video"
    assert body == {
        "model_name": "kling-v1-6",
        "prompt": job.prompt,
        "negative_prompt": "blur",
        "duration": "10",
        "aspect_ratio": "9:16",
        "mode": "pro",
        "cfg_scale": 0.3,
        "camera_control": {"type": "simple"},
    }


def test_image_to_video_sends_bare_base64_and_no_ratio() -> None:
    first, last = sample_image(), sample_image(16, 16)
    kind, body = to_request(video_job("kling-v1", image=first, end_image=last, aspect_ratio="1:1"))
    assert kind == "image2video"
    assert body["image"] == base64.b64encode(first.data).decode()
    assert body["image_tail"] == base64.b64encode(last.data).decode()
    assert "aspect_ratio" not in body and body["duration"] == "5"


def test_no_video_to_video() -> None:
    with pytest.raises(ProviderError) as caught:
        to_request(video_job("kling-v1", mode="v2v"))
    assert shape(caught.value) == (FailureKind.HTTP, 400, False, True)


@pytest.mark.parametrize(
    ("code", "status", "retryable", "client_fault"),
    [
        (1000, 401, True, False),
        (1004, 401, True, False),
        (1101, 402, True, False),
        (1102, 402, True, False),
        (1103, 403, True, False),
        (1201, 400, False, True),
        (1302, 429, True, False),
        (1303, 429, True, False),
        (5000, 500, True, False),
        (5001, 503, True, False),
        (9999, 500, True, False),
    ],
)
def test_code_table(code: int, status: int, retryable: bool, client_fault: bool) -> None:
    error = envelope_error({"code": code, "message": "vendor words"})
    assert shape(error) == (FailureKind.HTTP, status, retryable, client_fault)
    assert "vendor words" in error.message and str(code) in error.message


@pytest.mark.parametrize("code", [1300, 1301])
def test_policy_codes_are_refusals(code: int) -> None:
    assert CODES[code] is MODERATED
    error = envelope_error({"code": code, "message": "policy"})
    assert (error.kind, error.client_fault) == (FailureKind.GENERATION, True)


def test_task_states() -> None:
    def task(status: str, **data: object) -> dict[str, object]:
        return {"code": 0, "data": {"task_id": "t1", "task_status": status, **data}}

    assert from_task(task("submitted")) is None
    assert from_task(task("processing")) is None
    done = from_task(task("succeed", task_result={"videos": [{"url": "http://x/v.mp4", "duration": "5.1"}]}))
    assert done is not None and done.url == "http://x/v.mp4" and done.duration == 5.1
    assert done.upstream_task_id == "t1"
    with pytest.raises(ProviderError) as caught:
        from_task(task("failed", task_status_msg="Failure to pass the risk control system"))
    assert shape(caught.value) == (FailureKind.GENERATION, None, False, True)
    with pytest.raises(ProviderError) as caught:
        from_task(task("failed", task_status_msg="internal error"))
    assert shape(caught.value) == (FailureKind.GENERATION, None, False, False)
    with pytest.raises(ProviderError) as caught:
        from_task(task("succeed", task_result={"videos": []}))
    assert "without a video" in caught.value.message


def test_registry_names_this_adapter() -> None:
    assert adapter_class("kling") is KlingVideoAdapter


# --- against the simulator ------------------------------------------------------------------------


def test_catalog_rows_are_all_covered() -> None:
    assert {r.id for r in ROWS} == {
        "kling-v1",
        "kling-v1.5",
        "kling-v1.6",
        "kling-v2-master",
        "kling-v2.1",
        "kling-v2.1-master",
    }


@pytest.mark.parametrize("spec_id", [r.id for r in ROWS])
async def test_every_catalog_row_makes_a_video(
    spec_id: str, sim: KlingSim, http: aiohttp.ClientSession
) -> None:
    spec = default_catalog().get(spec_id)
    assert spec is not None
    job = video_job(spec_id, image=sample_image()) if not spec.supports("t2v") else video_job(spec_id)
    result, polls = await run_to_end(adapter(sim, http), job, KEY)
    assert polls == 2, "processing once, then succeed"
    assert result.url and is_mp4(await download(http, result.url))
    assert result.raw["data"]["task_status"] == "succeed"
    created = next(r for r in sim.requests if r.method == "POST")
    assert created.json["model_name"] == spec.upstream_model
    assert created.path == ("/v1/videos/text2video" if spec.supports("t2v") else "/v1/videos/image2video")


async def test_every_call_carries_a_fresh_valid_token(sim: KlingSim, http: aiohttp.ClientSession) -> None:
    await run_to_end(adapter(sim, http), video_job("kling-v1"), KEY)
    assert len(sim.tokens) == 3 and all(claims["iss"] == ACCESS_KEY for claims in sim.tokens)
    polled = [r for r in sim.requests if r.method == "GET"]
    assert polled and all(r.path.startswith("/v1/videos/text2video/") for r in polled)


async def test_image_to_video_polls_the_image2video_path(sim: KlingSim, http: aiohttp.ClientSession) -> None:
    job = video_job("kling-v1", image=sample_image(), end_image=sample_image(), extra={"mode": "pro"})
    result, _ = await run_to_end(adapter(sim, http), job, KEY)
    assert is_mp4(await download(http, result.url or ""))
    assert all(r.path.startswith("/v1/videos/image2video") for r in sim.requests)
    assert sim.requests[0].json["image_tail"]


async def test_wrong_secret_is_the_channels_error(sim: KlingSim, http: aiohttp.ClientSession) -> None:
    error = await failure(adapter(sim, http).submit(video_job("kling-v1"), f"{ACCESS_KEY}:wrong", 1e12))
    assert shape(error) == (FailureKind.HTTP, 401, True, False)
    assert "1000" in error.message


async def test_unknown_access_key_is_the_channels_error(sim: KlingSim, http: aiohttp.ClientSession) -> None:
    error = await failure(adapter(sim, http).submit(video_job("kling-v1"), f"nobody:{SECRET_KEY}", 1e12))
    assert shape(error) == (FailureKind.HTTP, 401, True, False)


async def test_bad_parameters_are_the_clients(sim: KlingSim, http: aiohttp.ClientSession) -> None:
    error = await failure(adapter(sim, http).submit(video_job("kling-v1", duration=7), KEY, 1e12))
    assert shape(error) == (FailureKind.HTTP, 400, False, True)
    assert "1201" in error.message and "duration" in error.message


async def test_refused_prompt_is_a_refusal(sim: KlingSim, http: aiohttp.ClientSession) -> None:
    error = await failure(
        adapter(sim, http).submit(video_job("kling-v1", prompt="a forbidden thing"), KEY, 1e12)
    )
    assert (error.kind, error.client_fault, error.retryable) == (FailureKind.GENERATION, True, False)


@pytest.mark.parametrize(
    ("status", "retryable", "client_fault"), [(429, True, False), (500, True, False), (403, True, False)]
)
async def test_injected_errors(
    status: int, retryable: bool, client_fault: bool, sim: KlingSim, http: aiohttp.ClientSession
) -> None:
    sim.config.fail_next = [status]
    error = await failure(adapter(sim, http).submit(video_job("kling-v1"), KEY, 1e12))
    assert (error.retryable, error.client_fault) == (retryable, client_fault)


async def test_failed_and_moderated_tasks(sim: KlingSim, http: aiohttp.ClientSession) -> None:
    sim.config.fail_jobs_next = 1
    error = await failure(run_to_end(adapter(sim, http), video_job("kling-v1"), KEY))
    assert shape(error) == (FailureKind.GENERATION, None, False, False)
    sim.config.moderate_jobs_next = 1
    error = await failure(run_to_end(adapter(sim, http), video_job("kling-v1"), KEY))
    assert shape(error) == (FailureKind.GENERATION, None, False, True)
    assert "risk control" in error.message


async def test_unknown_task_is_a_failed_poll(sim: KlingSim, http: aiohttp.ClientSession) -> None:
    error = await failure(adapter(sim, http).check("text2video:nope", KEY, 1e12))
    assert (error.kind, error.status, error.retryable) == (FailureKind.HTTP, 404, True)
