"""Volcengine adapter: pure mappings, the request signer, and every catalog row against the simulator."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import pytest

from omnirelay.core.images import ImageJob, ImageModelSpec
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.registry import adapter_class
from omnirelay.providers.volcengine.images import (
    CV_QUERY,
    VolcengineImageAdapter,
    ark_request,
    ark_size,
    canonical_query,
    classify_volcengine,
    sign_request,
    split_credentials,
    trim_base64,
    visual_code_error,
    visual_request,
)
from omnirelay.settings import ChannelConfig
from tests.upstreams.imaging import catalog_specs as catalog_rows
from tests.upstreams.imaging import default_job, image_size
from tests.upstreams.volcengine import (
    ACCESS_KEY,
    SECRET_KEY,
    VolcengineSim,
    channel_api_key,
    channel_base_url,
    visual_base_url,
)
from tests.upstreams.volcengine.sim import visual_body

ROWS = catalog_rows("volcengine")
VISUAL = next(r for r in ROWS if r.options.get("api") == "visual")
ARK = next(r for r in ROWS if r.options.get("api") == "ark")


@pytest.fixture
async def sim() -> AsyncIterator[VolcengineSim]:
    server = VolcengineSim()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def make_adapter(
    sim: VolcengineSim, http: aiohttp.ClientSession, *, base_url: str | None = None, key: str | None = None
) -> VolcengineImageAdapter:
    channel = ChannelConfig(
        name="volc",
        provider="volcengine",
        base_url=base_url or channel_base_url(sim),
        api_key=key or channel_api_key(sim),
    )
    return VolcengineImageAdapter(channel, http)


async def failure(adapter: VolcengineImageAdapter, job: ImageJob, key: str) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await adapter.generate_image(job, key, 10)
    return caught.value


# --- the signer -----------------------------------------------------------------------------------


def test_signer_matches_a_vector_worked_from_the_definition() -> None:
    body = b'{"req_key":"high_aes_general_v20","prompt":"cat"}'
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    headers = sign_request(
        method="POST",
        host="visual.volcengineapi.com",
        path="/",
        query={"Version": "2022-08-31", "Action": "CVProcess"},
        body=body,
        access_key="AKTEST",
        secret_key="SKTEST",
        when=when,
    )
    body_hash = hashlib.sha256(body).hexdigest()
    canonical_request = (
        "POST\n"
        "/\n"
        "Action=CVProcess&Version=2022-08-31\n"
        "content-type:application/json\n"
        "host:visual.volcengineapi.com\n"
        f"x-content-sha256:{body_hash}\n"
        "x-date:20240102T030405Z\n"
        "\n"
        "content-type;host;x-content-sha256;x-date\n"
        f"{body_hash}"
    )
    string_to_sign = (
        "HMAC-SHA256\n20240102T030405Z\n20240102/cn-north-1/cv/request\n"
        + hashlib.sha256(canonical_request.encode()).hexdigest()
    )
    k_date = hmac.new(b"SKTEST", b"20240102", hashlib.sha256).digest()
    k_region = hmac.new(k_date, b"cn-north-1", hashlib.sha256).digest()
    k_service = hmac.new(k_region, b"cv", hashlib.sha256).digest()
    k_signing = hmac.new(k_service, b"request", hashlib.sha256).digest()
    signature = hmac.new(k_signing, string_to_sign.encode(), hashlib.sha256).hexdigest()
    assert headers == {
        "Content-Type": "application/json",
        "Host": "visual.volcengineapi.com",
        "X-Content-Sha256": body_hash,
        "X-Date": "20240102T030405Z",
        "Authorization": (
            "HMAC-SHA256 Credential=AKTEST/20240102/cn-north-1/cv/request, "
            f"SignedHeaders=content-type;host;x-content-sha256;x-date, Signature={signature}"
        ),
    }
    # The same vector, pinned, so that a change on both sides above is caught too.
    assert signature == "91642bc4600f0d188b2bc1fce925c34df5d2d40dadb58be98d56b4c065801a47"


def test_signer_uses_utc_and_encodes_query_and_path() -> None:
    assert canonical_query({"b": "x y", "a": "1/2", "Z": "~ok"}) == "Z=~ok&a=1%2F2&b=x%20y"
    east8 = datetime.fromisoformat("2024-01-02T11:04:05+08:00")
    headers = sign_request(
        method="post",
        host="h",
        path="/a b/",
        query={},
        body=b"",
        access_key="A",
        secret_key="S",
        when=east8,
    )
    assert headers["X-Date"] == "20240102T030405Z"
    assert headers["X-Content-Sha256"] == hashlib.sha256(b"").hexdigest()


def test_credentials_must_be_a_pair() -> None:
    assert split_credentials(" AK : SK ") == ("AK", "SK")
    for bad in ("justakey", ":sk", "ak:"):
        with pytest.raises(ProviderError) as caught:
            split_credentials(bad)
        assert caught.value.kind is FailureKind.CONNECT and caught.value.retryable


# --- pure mappings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asked", "sent"),
    [
        ((512, 512), (512, 512)),
        ((256, 256), (512, 512)),
        ((256, 768), (512, 1536)),
        ((768, 384), (1024, 512)),
    ],
)
def test_ark_size_scales_small_requests_up_keeping_the_ratio(
    asked: tuple[int, int], sent: tuple[int, int]
) -> None:
    assert ark_size(*asked) == sent


def test_ark_request_fields() -> None:
    job = default_job(ARK, width=640, height=768, seed=7, extra={"guidance_scale": 3.5, "style": "x"})
    assert ark_request(job) == {
        "model": "doubao-seedream-3-0-t2i-250415",
        "prompt": "a lighthouse at dawn",
        "size": "640x768",
        "response_format": "url",
        "watermark": False,
        "seed": 7,
        "guidance_scale": 3.5,
    }
    assert "seed" not in ark_request(default_job(ARK))


def test_visual_request_fields() -> None:
    job = default_job(VISUAL, extra={"use_pre_llm": True, "unknown": 1})
    assert visual_request(job) == {
        "req_key": VISUAL.upstream_model,
        "prompt": "a lighthouse at dawn",
        "width": 512,
        "height": 512,
        "seed": -1,
        "return_url": True,
        "model_version": "general_v2.0",
        "use_pre_llm": True,
    }


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, {"error": {"code": "InvalidParameter", "message": "m"}}, (False, True)),
        (400, {"error": {"code": "MissingParameter", "message": "m"}}, (False, True)),
        (401, {"error": {"code": "AuthenticationError", "message": "m"}}, (True, False)),
        (403, {"error": {"code": "AccountOverdueError", "message": "m"}}, (True, False)),
        (404, {"error": {"code": "InvalidEndpointOrModel.NotFound", "message": "m"}}, (True, False)),
        (429, {"error": {"code": "RateLimitExceeded.EndpointRPMExceeded", "message": "m"}}, (True, False)),
        (500, {"error": {"code": "InternalServiceError", "message": "m"}}, (True, False)),
        (401, {"ResponseMetadata": {"Error": {"Code": "SignatureDoesNotMatch"}}}, (True, False)),
        (404, {"ResponseMetadata": {"Error": {"Code": "InvalidActionOrVersion"}}}, (True, False)),
        (400, {"code": 50215, "message": "Input invalid"}, (False, True)),
        (429, {"code": 50430, "message": "limit"}, (True, False)),
        (500, {"code": 50501, "message": "rpc"}, (True, False)),
        (503, None, (True, False)),
        (418, None, (False, True)),
    ],
)
def test_classification_table(status: int, body: Any, expected: tuple[bool, bool]) -> None:
    assert classify_volcengine(status, body) == expected


@pytest.mark.parametrize(
    ("code", "kind", "status", "retryable", "client_fault"),
    [
        (50411, FailureKind.GENERATION, None, False, True),
        (50412, FailureKind.GENERATION, None, False, True),
        (50413, FailureKind.GENERATION, None, False, True),
        (50511, FailureKind.GENERATION, None, False, True),
        (50429, FailureKind.HTTP, 429, True, False),
        (50430, FailureKind.HTTP, 429, True, False),
        (50500, FailureKind.HTTP, 500, True, False),
        (50501, FailureKind.HTTP, 500, True, False),
        (50520, FailureKind.HTTP, 502, True, False),
        (50215, FailureKind.HTTP, 400, False, True),
        (59999, FailureKind.HTTP, 502, True, False),
    ],
)
def test_visual_codes_map_through_the_table(
    code: int, kind: FailureKind, status: int | None, retryable: bool, client_fault: bool
) -> None:
    error = visual_code_error(visual_body(code, "vendor message"))
    assert (error.kind, error.status, error.retryable, error.client_fault) == (
        kind,
        status,
        retryable,
        client_fault,
    )
    assert error.message == "vendor message"


def test_trim_base64_keeps_urls_and_shortens_inline_data() -> None:
    raw = {
        "data": {"binary_data_base64": ["QUJD"], "image_urls": ["http://x"]},
        "list": [{"b64_json": "QQ=="}],
    }
    assert trim_base64(raw) == {
        "data": {"binary_data_base64": ["<4 base64 characters omitted>"], "image_urls": ["http://x"]},
        "list": [{"b64_json": "<4 base64 characters omitted>"}],
    }


def test_registry_names_this_adapter() -> None:
    assert adapter_class("volcengine") is VolcengineImageAdapter


# --- against the simulator ------------------------------------------------------------------------


def test_catalog_rows_are_all_covered() -> None:
    assert {r.id for r in ROWS} == {"doubao-v2-t2i", "doubao-v2-l-t2i", "doubao-v2.1-l-t2i", "doubao-v3-t2i"}


@pytest.mark.parametrize("spec", ROWS, ids=[r.id for r in ROWS])
async def test_every_catalog_row_generates(
    spec: ImageModelSpec, sim: VolcengineSim, http: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(sim, http)
    result = await adapter.generate_image(default_job(spec), channel_api_key(sim), 10)
    assert len(result.images) == 1
    assert await image_size(http, result.images[0]) == (512, 512)
    sent = sim.last()
    if spec.options["api"] == "ark":
        assert sent.path == "/api/v3/images/generations"
        assert sent.headers["authorization"] == f"Bearer {channel_api_key(sim)}"
        assert sent.json["model"] == spec.upstream_model
        assert sent.json["size"] == "512x512" and sent.json["watermark"] is False
        assert result.raw["data"][0]["url"].startswith(sim.base_url)
    else:
        assert sent.path == "/api/v3/" and sent.query == CV_QUERY
        assert sent.headers["authorization"].startswith(f"HMAC-SHA256 Credential={ACCESS_KEY}/")
        assert sent.headers["x-content-sha256"] == hashlib.sha256(sent.body).hexdigest()
        assert sent.json["req_key"] == spec.upstream_model
        assert (sent.json["width"], sent.json["height"], sent.json["return_url"]) == (512, 512, True)
        assert result.images[0].data is not None  # inline bytes preferred over the URL
        assert result.raw["data"]["binary_data_base64"][0].endswith("base64 characters omitted>")
        assert result.raw["code"] == 10000


async def test_visual_on_its_own_root_and_by_url(sim: VolcengineSim, http: aiohttp.ClientSession) -> None:
    sim.visual_inline = False
    adapter = make_adapter(sim, http, base_url=visual_base_url(sim))
    result = await adapter.generate_image(
        default_job(VISUAL, width=300, height=700), channel_api_key(sim), 10
    )
    assert sim.last().path == "/"
    assert result.images[0].url is not None and result.images[0].data is None
    assert await image_size(http, result.images[0]) == (300, 700)


async def test_ark_inline_and_small_sizes(sim: VolcengineSim, http: aiohttp.ClientSession) -> None:
    spec = dataclasses.replace(ARK, options={**ARK.options, "response_format": "b64_json"})
    adapter = make_adapter(sim, http)
    result = await adapter.generate_image(default_job(spec, width=256, height=384), "sk-upstream-test", 10)
    assert sim.last().json["size"] == "512x768"
    assert result.images[0].data is not None
    assert await image_size(http, result.images[0]) == (512, 768)
    assert result.raw["data"][0]["b64_json"].endswith("base64 characters omitted>")


async def test_n_makes_that_many_calls_and_keeps_the_successes(
    sim: VolcengineSim, http: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(sim, http)
    result = await adapter.generate_image(default_job(VISUAL, n=3), channel_api_key(sim), 10)
    assert len(result.images) == 3 and len(sim.requests) == 3
    assert isinstance(result.raw, list) and len(result.raw) == 3
    sim.config.fail_next = [500]
    result = await adapter.generate_image(default_job(ARK, n=2), channel_api_key(sim), 10)
    assert len(result.images) == 1
    sim.config.fail_next = [500, 500]
    error = await failure(adapter, default_job(ARK, n=2), channel_api_key(sim))
    assert error.status == 500 and error.retryable


async def test_auth_errors_are_the_channels(sim: VolcengineSim, http: aiohttp.ClientSession) -> None:
    adapter = make_adapter(sim, http)
    error = await failure(adapter, default_job(ARK), "sk-wrong")
    assert (error.kind, error.status, error.retryable, error.client_fault) == (
        FailureKind.HTTP,
        401,
        True,
        False,
    )
    assert "API key" in error.message
    error = await failure(adapter, default_job(VISUAL), f"{ACCESS_KEY}:wrong-secret")
    assert (error.status, error.retryable, error.client_fault) == (401, True, False)
    assert (
        error.body is not None and error.body["ResponseMetadata"]["Error"]["Code"] == "SignatureDoesNotMatch"
    )
    error = await failure(adapter, default_job(VISUAL), f"AKUNKNOWN:{SECRET_KEY}")
    assert (error.status, error.retryable) == (401, True)
    assert "access key" in error.message
    before = len(sim.requests)
    error = await failure(adapter, default_job(VISUAL), "not-a-pair")
    assert error.kind is FailureKind.CONNECT and error.retryable and len(sim.requests) == before


async def test_bad_requests_are_the_clients(sim: VolcengineSim, http: aiohttp.ClientSession) -> None:
    adapter = make_adapter(sim, http)
    error = await failure(adapter, default_job(ARK, extra={"guidance_scale": 50}), channel_api_key(sim))
    assert (error.status, error.retryable, error.client_fault) == (400, False, True)
    assert error.body is not None and error.body["error"]["param"] == "guidance_scale"
    error = await failure(adapter, default_job(VISUAL, width=1000), channel_api_key(sim))
    assert (error.kind, error.status, error.retryable, error.client_fault) == (
        FailureKind.HTTP,
        400,
        False,
        True,
    )


@pytest.mark.parametrize("status", [500, 503])
@pytest.mark.parametrize("api", ["ark", "visual"])
async def test_server_errors_are_retryable(
    status: int, api: str, sim: VolcengineSim, http: aiohttp.ClientSession
) -> None:
    sim.config.fail_next = [status]
    spec = ARK if api == "ark" else VISUAL
    error = await failure(make_adapter(sim, http), default_job(spec), channel_api_key(sim))
    assert (error.kind, error.status, error.retryable, error.client_fault) == (
        FailureKind.HTTP,
        status,
        True,
        False,
    )


@pytest.mark.parametrize("api", ["ark", "visual"])
async def test_moderation_and_failed_jobs(api: str, sim: VolcengineSim, http: aiohttp.ClientSession) -> None:
    adapter = make_adapter(sim, http)
    spec = ARK if api == "ark" else VISUAL
    sim.config.moderate_jobs_next = 1
    error = await failure(adapter, default_job(spec), channel_api_key(sim))
    assert (error.kind, error.retryable, error.client_fault) == (FailureKind.GENERATION, False, True)
    assert "sensitive" in error.message or "Risk Not Pass" in error.message
    sim.config.fail_jobs_next = 1
    error = await failure(adapter, default_job(spec), channel_api_key(sim))
    assert (error.kind, error.status, error.retryable) == (FailureKind.HTTP, 500, True)


@pytest.mark.parametrize(
    ("status", "code", "kind", "mapped", "retryable", "client_fault"),
    [
        (200, 50412, FailureKind.GENERATION, None, False, True),
        (200, 50511, FailureKind.GENERATION, None, False, True),
        (200, 50429, FailureKind.HTTP, 429, True, False),
        (200, 50500, FailureKind.HTTP, 500, True, False),
        (200, 51234, FailureKind.HTTP, 502, True, False),
        (400, 50413, FailureKind.GENERATION, None, False, True),
        (429, 50430, FailureKind.HTTP, 429, True, False),
        (500, 50501, FailureKind.HTTP, 500, True, False),
    ],
)
async def test_visual_codes_in_answers(
    status: int,
    code: int,
    kind: FailureKind,
    mapped: int | None,
    retryable: bool,
    client_fault: bool,
    sim: VolcengineSim,
    http: aiohttp.ClientSession,
) -> None:
    sim.config.fail_next = [{"status": status, "body": visual_body(code, f"vendor says {code}")}]
    error = await failure(make_adapter(sim, http), default_job(VISUAL), channel_api_key(sim))
    assert (error.kind, error.status, error.retryable, error.client_fault) == (
        kind,
        mapped,
        retryable,
        client_fault,
    )
    assert f"vendor says {code}" in error.message


async def test_ark_input_moderation_code(sim: VolcengineSim, http: aiohttp.ClientSession) -> None:
    body = {
        "error": {
            "code": "InputTextSensitiveContentDetected",
            "message": "sensitive input",
            "type": "BadRequest",
        }
    }
    sim.config.fail_next = [{"status": 400, "body": body}]
    error = await failure(make_adapter(sim, http), default_job(ARK), channel_api_key(sim))
    assert (error.kind, error.client_fault, error.message) == (
        FailureKind.GENERATION,
        True,
        "sensitive input",
    )


async def test_unknown_api_option(sim: VolcengineSim, http: aiohttp.ClientSession) -> None:
    spec = dataclasses.replace(ARK, options={"api": "nope"})
    error = await failure(make_adapter(sim, http), default_job(spec), channel_api_key(sim))
    assert error.kind is FailureKind.CONNECT and not error.retryable


async def test_simulator_rejects_a_tampered_body(sim: VolcengineSim, http: aiohttp.ClientSession) -> None:
    signed = orjson.dumps({"req_key": "high_aes_general_v20", "prompt": "a", "width": 512, "height": 512})
    headers = sign_request(
        method="POST",
        host=f"127.0.0.1:{sim.port}",
        path="/",
        query=CV_QUERY,
        body=signed,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        when=datetime.now(UTC),
    )
    url = f"{sim.base_url}/?{canonical_query(CV_QUERY)}"
    async with http.post(url, data=signed, headers=headers) as resp:
        assert resp.status == 200 and (await resp.json())["code"] == 10000
    tampered = signed.replace(b'"a"', b'"b"')
    headers["X-Content-Sha256"] = hashlib.sha256(tampered).hexdigest()
    async with http.post(url, data=tampered, headers=headers) as resp:
        body = await resp.json()
        assert resp.status == 401 and body["ResponseMetadata"]["Error"]["Code"] == "SignatureDoesNotMatch"
    stale = sign_request(
        method="POST",
        host=f"127.0.0.1:{sim.port}",
        path="/",
        query=CV_QUERY,
        body=signed,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        when=datetime(2020, 1, 1, tzinfo=UTC),
    )
    async with http.post(url, data=signed, headers=stale) as resp:
        assert (await resp.json())["ResponseMetadata"]["Error"]["Code"] == "InvalidTimestamp"
    assert base64.b64decode((await _inline(http, url, signed)), validate=True)


async def _inline(http: aiohttp.ClientSession, url: str, body: bytes) -> str:
    headers = sign_request(
        method="POST",
        host=url.split("/")[2],
        path="/",
        query=CV_QUERY,
        body=body,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        when=datetime.now(UTC),
    )
    async with http.post(url, data=body, headers=headers) as resp:
        answer = await resp.json()
    value = answer["data"]["binary_data_base64"][0]
    assert isinstance(value, str)
    return value
