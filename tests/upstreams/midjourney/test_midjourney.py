"""The ``midjourney`` adapter: return-code table, pools, and every endpoint against the simulator."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.midjourney.adapter import (
    RETURN_CODES,
    SECRET_HEADER,
    MidjourneyAdapter,
    MidjourneyError,
    parse_reply,
    pool_prefix,
    return_code,
    rule_of,
)
from omnirelay.providers.registry import adapter_class
from omnirelay.settings import ChannelConfig
from tests.upstreams.imaging import DEFAULT_KEY, make_image
from tests.upstreams.midjourney.sim import BANNED_WORD, FAIL_REASON, MidjourneySim, MJSimConfig


def data_url(width: int = 32, height: int = 32) -> str:
    return "data:image/png;base64," + base64.b64encode(make_image(width, height)).decode()


# --- pure parts -----------------------------------------------------------------------------------


def test_registered_under_its_id() -> None:
    assert adapter_class("midjourney") is MidjourneyAdapter
    assert MidjourneyAdapter.capabilities == frozenset() and MidjourneyAdapter.family == "midjourney"


@pytest.mark.parametrize(
    ("model", "prefix"),
    [
        ("midjourney", "/mj"),
        ("midjourney-relax", "/mj-relax"),
        ("midjourney-turbo", "/mj-turbo"),
        ("relax", "/mj-relax"),
        ("MJ-Turbo", "/mj-turbo"),
        ("/mj-relax/mj/", "/mj-relax/mj"),
    ],
)
def test_pool_prefix(model: str, prefix: str) -> None:
    assert pool_prefix(model) == prefix


def test_unknown_pool_tries_another_channel() -> None:
    with pytest.raises(ProviderError) as info:
        pool_prefix("dall-e-3")
    assert info.value.retryable and not info.value.client_fault


@pytest.mark.parametrize(
    ("code", "accepted", "retryable", "client_fault"),
    [
        (1, True, False, False),
        (21, True, False, False),
        (22, True, False, False),
        (23, False, True, False),
        (24, False, False, True),
        (3, False, False, True),
        (4, False, False, True),
        (9, False, True, False),
        (77, False, True, False),  # unknown: the upstream's problem, another channel may do
    ],
)
def test_return_code_table(code: int, accepted: bool, retryable: bool, client_fault: bool) -> None:
    rule = rule_of(code)
    assert (rule.accepted, rule.retryable, rule.client_fault) == (accepted, retryable, client_fault)
    if not accepted:
        with pytest.raises(MidjourneyError) as info:
            parse_reply({"code": code, "description": "no", "result": None}, need_result=True)
        assert (info.value.retryable, info.value.client_fault) == (retryable, client_fault)
        assert return_code(info.value) == code


def test_banned_prompt_is_a_moderation_refusal() -> None:
    with pytest.raises(MidjourneyError) as info:
        parse_reply(
            {"code": 24, "description": "banned", "properties": {"bannedWord": "x"}}, need_result=True
        )
    exc = info.value
    assert exc.kind is FailureKind.GENERATION and exc.client_fault and not exc.retryable
    assert exc.properties == {"bannedWord": "x"} and exc.description == "banned"
    assert RETURN_CODES[24].moderation


def test_parse_reply_shapes() -> None:
    reply = parse_reply({"code": 1, "description": "ok", "result": 1730621718151844}, need_result=True)
    assert reply.result == "1730621718151844" and reply.code == 1 and reply.properties == {}
    with pytest.raises(ProviderError) as info:
        parse_reply({"code": 1, "description": "ok", "result": None}, need_result=True)
    assert not info.value.retryable, "accepted without an id: never sent elsewhere (paying twice)"
    with pytest.raises(ProviderError):
        parse_reply({"description": "no code"}, need_result=True)
    assert parse_reply({"code": 1, "description": "success"}, need_result=False).result is None


async def test_classify_http_errors() -> None:
    async with aiohttp.ClientSession() as http:
        adapter = MidjourneyAdapter(ChannelConfig(name="c", provider="midjourney", base_url="http://x"), http)
        assert adapter.classify(400, {"code": 4, "description": "bad"}) == (False, True)
        assert adapter.classify(400, {"code": 23, "description": "full"}) == (True, False)
        assert adapter.classify(401, {"code": 4}) == (True, False), "a credential problem is the channel's"
        assert adapter.classify(429, None) == (True, False)
        assert adapter.classify(503, {"code": 4}) == (True, False)
        assert adapter.classify(404, None) == (False, True)
        assert adapter.message_of({"description": "prompt不能为空"}, "x") == "prompt不能为空"


# --- against the simulator ------------------------------------------------------------------------


@pytest.fixture
async def rig() -> AsyncIterator[tuple[MidjourneyAdapter, MidjourneySim]]:
    sim = MidjourneySim(config=MJSimConfig(polls_before_ready=4))
    await sim.start()
    channel = ChannelConfig(name="mj", provider="midjourney", base_url=sim.base_url, api_key=DEFAULT_KEY)
    async with aiohttp.ClientSession() as http:
        yield MidjourneyAdapter(channel, http, connect_timeout_s=5), sim
    await sim.stop()


def deadline() -> float:
    import time

    return time.monotonic() + 10


async def run_to_end(adapter: MidjourneyAdapter, pool: str, task_id: str) -> list[dict[str, Any]]:
    seen = []
    for _ in range(20):
        obj = await adapter.fetch_task(pool, task_id, DEFAULT_KEY, deadline())
        seen.append(obj)
        if obj["status"] in ("SUCCESS", "FAILURE", "CANCEL", "MODAL"):
            return seen
    raise AssertionError("the job did not end")


async def test_imagine_progresses_to_a_grid_with_buttons(
    rig: tuple[MidjourneyAdapter, MidjourneySim],
) -> None:
    adapter, sim = rig
    reply = await adapter.submit_job(
        "/mj", "imagine", {"prompt": "a fox --ar 1:1", "base64Array": [data_url()]}, DEFAULT_KEY, deadline()
    )
    assert reply.code == 1 and reply.result
    request = sim.last()
    assert request.path == "/mj/submit/imagine" and request.headers[SECRET_HEADER] == DEFAULT_KEY
    seen = await run_to_end(adapter, "/mj", reply.result)
    statuses = [obj["status"] for obj in seen]
    assert statuses[:3] == ["NOT_START", "SUBMITTED", "IN_PROGRESS"] and statuses[-1] == "SUCCESS"
    progress = [obj["progress"] for obj in seen if obj["status"] == "IN_PROGRESS"]
    assert progress and all(p.endswith("%") and 10 <= int(p[:-1]) < 100 for p in progress)
    final = seen[-1]
    assert final["progress"] == "100%" and final["imageUrl"].startswith(sim.base_url)
    labels = [b["label"] for b in final["buttons"]]
    assert labels == ["U1", "U2", "U3", "U4", "", "V1", "V2", "V3", "V4"]
    assert final["buttons"][0]["customId"].startswith("MJ::JOB::upsample::1::")


async def test_pools_use_their_prefix(rig: tuple[MidjourneyAdapter, MidjourneySim]) -> None:
    adapter, sim = rig
    for pool in ("/mj-relax", "/mj-turbo"):
        reply = await adapter.submit_job(pool, "imagine", {"prompt": "a cat"}, DEFAULT_KEY, deadline())
        await adapter.fetch_task(pool, str(reply.result), DEFAULT_KEY, deadline())
        assert [r.path for r in sim.requests[-2:]] == [
            f"{pool}/submit/imagine",
            f"{pool}/task/{reply.result}/fetch",
        ]


async def test_action_upscale_then_modal(rig: tuple[MidjourneyAdapter, MidjourneySim]) -> None:
    adapter, _ = rig
    grid = await adapter.submit_job("/mj", "imagine", {"prompt": "a fox"}, DEFAULT_KEY, deadline())
    done = (await run_to_end(adapter, "/mj", str(grid.result)))[-1]
    u1 = done["buttons"][0]["customId"]
    up = await adapter.submit_job(
        "/mj", "action", {"taskId": grid.result, "customId": u1}, DEFAULT_KEY, deadline()
    )
    assert up.code == 1 and up.result != grid.result, "an action is a new task"
    upscaled = (await run_to_end(adapter, "/mj", str(up.result)))[-1]
    assert upscaled["status"] == "SUCCESS" and upscaled["action"] == "UPSCALE"
    region = next(b["customId"] for b in upscaled["buttons"] if b["customId"].startswith("MJ::Inpaint::"))
    opened = await adapter.submit_job(
        "/mj", "action", {"taskId": up.result, "customId": region}, DEFAULT_KEY, deadline()
    )
    assert opened.code == 21, "waiting for the modal"
    assert (await adapter.fetch_task("/mj", str(opened.result), DEFAULT_KEY, deadline()))["status"] == "MODAL"
    with pytest.raises(MidjourneyError) as info:
        await adapter.submit_job("/mj", "modal", {"taskId": opened.result}, DEFAULT_KEY, deadline())
    assert info.value.code == 4 and info.value.client_fault, "Vary Region needs its mask"
    confirmed = await adapter.submit_job(
        "/mj", "modal", {"taskId": opened.result, "maskBase64": data_url(), "prompt": "a hat"}, DEFAULT_KEY,
        deadline(),
    )  # fmt: skip
    assert confirmed.code == 1 and confirmed.result == opened.result
    assert (await run_to_end(adapter, "/mj", str(opened.result)))[-1]["status"] == "SUCCESS"


async def test_action_refusals(rig: tuple[MidjourneyAdapter, MidjourneySim]) -> None:
    adapter, _ = rig
    with pytest.raises(MidjourneyError) as info:
        body = {"taskId": "nope", "customId": "MJ::JOB::upsample::1::x"}
        await adapter.submit_job("/mj", "action", body, DEFAULT_KEY, deadline())
    assert info.value.code == 3 and info.value.client_fault and not info.value.retryable
    grid = await adapter.submit_job("/mj", "imagine", {"prompt": "a fox"}, DEFAULT_KEY, deadline())
    with pytest.raises(MidjourneyError) as info:
        pending = {"taskId": str(grid.result), "customId": "MJ::JOB::upsample::1::x"}
        await adapter.submit_job("/mj", "action", pending, DEFAULT_KEY, deadline())
    assert info.value.code == 4, "not finished yet"


async def test_blend_and_describe(rig: tuple[MidjourneyAdapter, MidjourneySim]) -> None:
    adapter, _ = rig
    body = {"base64Array": [data_url(), data_url(40, 20)], "dimensions": "LANDSCAPE"}
    blended = await adapter.submit_job("/mj", "blend", body, DEFAULT_KEY, deadline())
    assert (await run_to_end(adapter, "/mj", str(blended.result)))[-1]["action"] == "BLEND"
    with pytest.raises(MidjourneyError) as info:
        await adapter.submit_job("/mj", "blend", {"base64Array": [data_url()]}, DEFAULT_KEY, deadline())
    assert info.value.code == 4 and info.value.client_fault
    described = await adapter.submit_job(
        "/mj", "describe", {"base64": data_url(48, 48)}, DEFAULT_KEY, deadline()
    )
    final = (await run_to_end(adapter, "/mj", str(described.result)))[-1]
    assert final["status"] == "SUCCESS" and "1️⃣" in final["prompt"] and final["buttons"] == []
    with pytest.raises(MidjourneyError) as info:
        await adapter.submit_job("/mj", "describe", {"base64": "not an image"}, DEFAULT_KEY, deadline())
    assert info.value.code == 4


async def test_submit_refusals_are_classified(rig: tuple[MidjourneyAdapter, MidjourneySim]) -> None:
    adapter, sim = rig
    with pytest.raises(MidjourneyError) as info:
        await adapter.submit_job(
            "/mj", "imagine", {"prompt": f"a {BANNED_WORD} fox"}, DEFAULT_KEY, deadline()
        )
    assert info.value.code == 24 and info.value.kind is FailureKind.GENERATION and info.value.client_fault
    assert info.value.properties["bannedWord"] == BANNED_WORD
    with pytest.raises(MidjourneyError) as info:
        await adapter.submit_job("/mj", "imagine", {"prompt": ""}, DEFAULT_KEY, deadline())
    assert info.value.code == 4 and info.value.client_fault
    sim.mj_config.queue_full_next = 1
    with pytest.raises(MidjourneyError) as info:
        await adapter.submit_job("/mj", "imagine", {"prompt": "a fox"}, DEFAULT_KEY, deadline())
    assert info.value.code == 23 and info.value.retryable and info.value.status == 429
    sim.mj_config.system_failure_next = 1
    with pytest.raises(MidjourneyError) as info:
        await adapter.submit_job("/mj", "imagine", {"prompt": "a fox"}, DEFAULT_KEY, deadline())
    assert info.value.code == 9 and info.value.retryable and not info.value.client_fault
    sim.mj_config.queued_next = 1
    queued = await adapter.submit_job("/mj", "imagine", {"prompt": "a fox"}, DEFAULT_KEY, deadline())
    assert queued.code == 22 and queued.result and queued.properties["numberOfQueues"] == 1


async def test_http_failures(rig: tuple[MidjourneyAdapter, MidjourneySim]) -> None:
    adapter, sim = rig
    with pytest.raises(ProviderError) as info:
        await adapter.submit_job("/mj", "imagine", {"prompt": "a fox"}, "sk-wrong", deadline())
    assert info.value.status == 401 and info.value.retryable and not info.value.client_fault
    sim.config.fail_next = [503]
    with pytest.raises(ProviderError) as info:
        await adapter.submit_job("/mj", "imagine", {"prompt": "a fox"}, DEFAULT_KEY, deadline())
    assert info.value.status == 503 and info.value.retryable
    sim.config.fail_next = [{"status": 400, "body": {"code": 4, "description": "参数错误"}}]
    with pytest.raises(ProviderError) as info:
        await adapter.submit_job("/mj", "imagine", {"prompt": "a fox"}, DEFAULT_KEY, deadline())
    assert info.value.client_fault and return_code(info.value) == 4 and info.value.message == "参数错误"
    with pytest.raises(ProviderError) as info:
        await adapter.fetch_task("/mj", "unknown-id", DEFAULT_KEY, deadline())
    assert info.value.retryable, "midjourney-proxy answers an unknown id with an empty body"


async def test_failed_job(rig: tuple[MidjourneyAdapter, MidjourneySim]) -> None:
    adapter, sim = rig
    sim.config.fail_jobs_next = 1
    reply = await adapter.submit_job("/mj", "imagine", {"prompt": "a fox"}, DEFAULT_KEY, deadline())
    final = (await run_to_end(adapter, "/mj", str(reply.result)))[-1]
    assert final["status"] == "FAILURE" and final["failReason"] == FAIL_REASON and not final["imageUrl"]


async def test_cancel(rig: tuple[MidjourneyAdapter, MidjourneySim]) -> None:
    adapter, _ = rig
    reply = await adapter.submit_job("/mj", "imagine", {"prompt": "a fox"}, DEFAULT_KEY, deadline())
    cancelled = await adapter.cancel_task("/mj", str(reply.result), DEFAULT_KEY, deadline())
    assert cancelled.code == 1
    assert (await adapter.fetch_task("/mj", str(reply.result), DEFAULT_KEY, deadline()))["status"] == "CANCEL"
    with pytest.raises(MidjourneyError) as info:
        await adapter.cancel_task("/mj", str(reply.result), DEFAULT_KEY, deadline())
    assert info.value.code == 4, "already finished"
    with pytest.raises(MidjourneyError) as info:
        await adapter.cancel_task("/mj", "unknown", DEFAULT_KEY, deadline())
    assert info.value.code == 3
