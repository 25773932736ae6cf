"""Midjourney (midjourney-proxy format) through the real gateway, against the midjourney-proxy simulator.

Until api/routes.py lists the Midjourney routes and gateway.py registers the handler and the prices,
the fixtures here add them (each a no-op once the gateway has it).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest

import omnirelay.app as app_module
from omnirelay.api import midjourney as mj_api
from omnirelay.api import routes
from omnirelay.core.pricing import PriceBook
from omnirelay.core.tasks.midjourney import (
    FAMILY,
    KINDS,
    PREFIXES,
    MidjourneyTaskHandler,
    billing_model,
    code_for_error,
    load_task_prices,
    mj_status,
    task_object,
)
from omnirelay.core.tasks.model import Task
from omnirelay.core.tasks.webhooks import SIGNATURE_HEADER, verify
from omnirelay.errors import (
    ContentRefused,
    InsufficientBalance,
    NotFound,
    RateLimited,
    UnprocessableEntity,
    UpstreamTimeout,
)
from tests.conftest import GatewayFactory
from tests.integration.test_tasks import FAST_TASKS, Receiver
from tests.support.server import HTTP, GatewayServer
from tests.upstreams.imaging import DEFAULT_KEY, image_sim_in_thread, make_image
from tests.upstreams.midjourney.sim import BANNED_WORD, FAIL_REASON, MidjourneySim, MJSimConfig

MODELS = ["midjourney", "midjourney-relax", "midjourney-turbo"]
DONE = ("SUCCESS", "FAILURE", "CANCEL")


def data_url(width: int = 32, height: int = 32) -> str:
    return "data:image/png;base64," + base64.b64encode(make_image(width, height)).decode()


@pytest.fixture
def mj_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Midjourney routes in the app's route table (no-op once api/routes.py lists them)."""
    if any(op.path == "/mj/submit/imagine" for op in routes.OPS):
        return
    extra = tuple(routes.Op(m, p, e, "Midjourney", s, "client") for m, p, e, s in mj_api.OPS)
    monkeypatch.setattr(routes, "OPS", routes.OPS + extra)
    if hasattr(app_module, "OPS"):
        monkeypatch.setattr(app_module, "OPS", app_module.OPS + extra)


@pytest.fixture
def mjsim() -> Iterator[MidjourneySim]:
    with image_sim_in_thread(MidjourneySim(config=MJSimConfig(polls_before_ready=3))) as running:
        yield running


def start_gateway(
    gateway_factory: GatewayFactory, sim: MidjourneySim, database_url: str | None, **extra: Any
) -> GatewayServer:
    channel = {
        "name": "mj-upstream",
        "provider": "midjourney",
        "base_url": sim.base_url,
        "api_key": DEFAULT_KEY,
        "models": MODELS,
    }
    server = gateway_factory(
        [channel],
        database_url=database_url,
        image_fetch={"allow_networks": ["127.0.0.0/8"]},
        models=load_task_prices(),  # the same entries gateway.py merges into the catalog
        **{"tasks": FAST_TASKS, **extra},
    )
    gw = server.gw
    if FAMILY not in gw.tasks.handlers:
        gw.tasks.register(
            MidjourneyTaskHandler(
                images=gw.images,
                router=gw.router,
                routing=gw.settings.routing,
                files=lambda: gw.files,
                parents=gw.tasks.get,
            )
        )
    return server


@pytest.fixture
def server(mj_routes: None, gateway_factory: GatewayFactory, mjsim: MidjourneySim) -> GatewayServer:
    return start_gateway(gateway_factory, mjsim, None)


def post(server: GatewayServer, key: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return HTTP.post(server.base_url + path, json=body, headers={"mj-api-secret": key})


def submit(server: GatewayServer, key: str, action: str, prefix: str = "/mj", **body: Any) -> dict[str, Any]:
    resp = post(server, key, f"{prefix}/submit/{action}", body)
    assert resp.status_code == 200, resp.text
    answer: dict[str, Any] = resp.json()
    return answer


def fetch(server: GatewayServer, key: str, task_id: str, prefix: str = "/mj") -> httpx.Response:
    return HTTP.get(f"{server.base_url}{prefix}/task/{task_id}/fetch", headers={"mj-api-secret": key})


def wait_for(
    server: GatewayServer, key: str, task_id: str, until: tuple[str, ...] = DONE, timeout: float = 15
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = fetch(server, key, task_id)
        assert resp.status_code == 200, resp.text
        task: dict[str, Any] = resp.json()
        if task["status"] in until:
            return task
        time.sleep(0.03)
    raise AssertionError(f"task {task_id} did not reach {until}")


def balance(server: GatewayServer, account_id: int) -> tuple[Decimal, Decimal]:
    account = server.admin("GET", f"/admin/accounts/{account_id}").json()
    return Decimal(account["balance"]), Decimal(account["held"])


def settled(server: GatewayServer, account_id: int, timeout: float = 5) -> tuple[Decimal, Decimal]:
    """The balance once no money is held any more (every task of the account finished)."""
    deadline = time.monotonic() + timeout
    current = balance(server, account_id)
    while current[1] != 0 and time.monotonic() < deadline:
        time.sleep(0.03)
        current = balance(server, account_id)
    return current


def submits(sim: MidjourneySim, action: str) -> list[Any]:
    return [r for r in sim.requests if r.method == "POST" and r.path.endswith(f"/submit/{action}")]


def imagine_done(server: GatewayServer, key: str, **body: Any) -> dict[str, Any]:
    accepted = submit(server, key, "imagine", prompt=body.pop("prompt", "a red fox in the snow"), **body)
    assert accepted["code"] == 1, accepted
    task = wait_for(server, key, accepted["result"])
    assert task["status"] == "SUCCESS", task
    return task


# --- pure parts ----------------------------------------------------------------------------------


def test_every_pool_and_action_has_a_price() -> None:
    book = PriceBook(load_task_prices(), [])
    for pool in PREFIXES.values():
        info = book.get(pool)
        assert info is not None and info.price is not None and info.category == "image"
        for kind in KINDS:
            priced = book.get(billing_model(pool, kind))
            assert priced is not None and priced.price is not None and priced.price.per_request > 0, (
                pool,
                kind,
            )
    fast, relax = book.get("midjourney/imagine"), book.get("midjourney-relax/imagine")
    assert fast is not None and relax is not None and fast.price is not None and relax.price is not None
    assert relax.price.per_request < fast.price.per_request


def test_gateway_errors_map_to_return_codes() -> None:
    assert code_for_error(ContentRefused("x")) == 24
    assert code_for_error(RateLimited("x")) == 23
    assert code_for_error(NotFound("x")) == 3
    assert code_for_error(UnprocessableEntity("x")) == 4
    assert code_for_error(InsufficientBalance("x")) == 4
    assert code_for_error(UpstreamTimeout("x")) == 9


def make_task(**changes: Any) -> Task:
    values: dict[str, Any] = {
        "id": "t1", "account_id": 1, "key_id": 1, "family": FAMILY, "kind": "action",
        "model": "midjourney/action", "channel": None, "status": "pending",
        "request": {"kind": "action", "pool": "midjourney-relax",
                    "fields": {"customId": "MJ::JOB::variation::2::abc", "state": "s"}},
        "upstream_task_id": None, "upstream_state": {}, "result": None, "error": None, "progress": None,
        "polls": 0, "hold": 0, "cost": 0, "settled": False, "request_id": "r", "webhook_url": None,
        "webhook_status": None, "webhook_attempts": 0, "created_at": 1.5, "updated_at": 1.5,
        "completed_at": None, "deadline_at": 99.0,
    }  # fmt: skip
    values.update(changes)
    return Task(**values)


def test_status_mapping_and_view() -> None:
    pending = make_task()
    view = task_object(pending)
    assert (view["status"], view["progress"], view["action"], view["mode"]) == (
        "NOT_START",
        "0%",
        "VARIATION",
        "RELAX",
    )
    assert view["submitTime"] == 1500 and view["state"] == "s" and view["imageUrl"] is None
    running = make_task(status="processing", upstream_state={"status": "IN_PROGRESS", "progress": "40%"})
    assert (mj_status(running), task_object(running)["progress"]) == ("IN_PROGRESS", "40%")
    assert mj_status(make_task(status="processing", upstream_state={"status": "MODAL"})) == "MODAL"
    assert mj_status(make_task(status="processing")) == "SUBMITTED"
    assert mj_status(make_task(status="failed", error={"error": "cancelled", "message": "x"})) == "CANCEL"
    assert mj_status(make_task(status="cancelled")) == "CANCEL"
    failed = make_task(status="failed", error={"error": "generation_failed", "message": "boom"})
    assert (mj_status(failed), task_object(failed)["failReason"]) == ("FAILURE", "boom")


# --- imagine, fetch, money -----------------------------------------------------------------------


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_imagine_succeeds_with_a_hosted_grid_and_buttons(
    db: str,
    mj_routes: None,
    gateway_factory: GatewayFactory,
    mjsim: MidjourneySim,
    request: pytest.FixtureRequest,
) -> None:
    database_url = request.getfixturevalue("postgres_url") if db == "postgres" else None
    server = start_gateway(gateway_factory, mjsim, database_url)
    account_id, key = server.account_key("1")
    accepted = submit(
        server, key, "imagine", prompt="a red fox --ar 1:1", base64Array=[data_url()], state="s-1"
    )
    assert accepted["code"] == 1 and accepted["description"] == "Submit success" and accepted["result"]
    task_id = accepted["result"]
    sent = submits(mjsim, "imagine")
    assert len(sent) == 1 and sent[0].json["base64Array"][0].startswith("data:image/png;base64,")
    assert "notifyHook" not in sent[0].json and sent[0].headers["mj-api-secret"] == DEFAULT_KEY
    assert task_id not in mjsim.tasks, "the client sees our task id, never the upstream's"
    task = wait_for(server, key, task_id)
    assert task["status"] == "SUCCESS" and task["progress"] == "100%" and task["action"] == "IMAGINE"
    assert task["id"] == task_id and task["state"] == "s-1" and task["prompt"] == "a red fox --ar 1:1"
    assert task["imageUrl"].startswith(f"{server.base_url}/files/")
    image = HTTP.get(task["imageUrl"])
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    assert [b["label"] for b in task["buttons"]][:4] == ["U1", "U2", "U3", "U4"]
    assert task["buttons"][0]["customId"].startswith("MJ::JOB::upsample::1::")
    assert task["submitTime"] <= task["finishTime"] and task["failReason"] is None and task["mode"] == "FAST"
    assert "discordInstanceId" not in task["properties"] and "notifyHook" not in task["properties"]
    assert sent[0].json["prompt"] == "a red fox --ar 1:1"
    assert settled(server, account_id) == (Decimal("0.95"), Decimal("0")), "one imagine at the fast price"


def test_bearer_auth_and_missing_key(server: GatewayServer) -> None:
    _, key = server.account_key("1")
    resp = HTTP.post(
        f"{server.base_url}/mj/submit/imagine",
        json={"prompt": "a fox"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert resp.status_code == 200 and resp.json()["code"] == 1
    resp = HTTP.post(f"{server.base_url}/mj/submit/imagine", json={"prompt": "a fox"})
    assert resp.status_code == 401 and resp.json()["error"]["message"] == "Missing 302 Apikey"
    resp = post(server, "sk-not-a-key", "/mj/submit/imagine", {"prompt": "a fox"})
    assert resp.status_code == 401 and resp.json()["error"]["err_code"] == -10001


def test_relax_and_turbo_pools(server: GatewayServer, mjsim: MidjourneySim) -> None:
    account_id, key = server.account_key("1")
    relax = submit(server, key, "imagine", prefix="/mj-relax", prompt="a slow fox")
    turbo = submit(server, key, "imagine", prefix="/mj-turbo", prompt="a fast fox")
    assert relax["code"] == turbo["code"] == 1
    assert [r.path for r in submits(mjsim, "imagine")] == [
        "/mj-relax/submit/imagine",
        "/mj-turbo/submit/imagine",
    ]
    relaxed = wait_for(server, key, relax["result"])
    assert relaxed["mode"] == "RELAX" and relaxed["status"] == "SUCCESS"
    assert fetch(server, key, relax["result"], prefix="/mj-relax").json()["id"] == relax["result"]
    assert wait_for(server, key, turbo["result"])["mode"] == "TURBO"
    assert any(r.path.startswith("/mj-relax/task/") for r in mjsim.requests), "polled under its own pool"
    assert settled(server, account_id)[0] == Decimal("1") - Decimal("0.03") - Decimal("0.10")


# --- actions and modals --------------------------------------------------------------------------


def test_action_u1_makes_a_new_task(server: GatewayServer, mjsim: MidjourneySim) -> None:
    account_id, key = server.account_key("1")
    grid = imagine_done(server, key)
    u1 = grid["buttons"][0]["customId"]
    accepted = submit(server, key, "action", taskId=grid["id"], customId=u1, state="up")
    assert accepted["code"] == 1 and accepted["result"] != grid["id"]
    sent = submits(mjsim, "action")[-1].json
    assert sent["customId"] == u1 and sent["taskId"] in mjsim.tasks and sent["taskId"] != grid["id"]
    upscaled = wait_for(server, key, accepted["result"])
    assert upscaled["status"] == "SUCCESS" and upscaled["action"] == "UPSCALE" and upscaled["customId"] == u1
    assert upscaled["imageUrl"].startswith(server.base_url) and upscaled["state"] == "up"
    assert settled(server, account_id)[0] == Decimal("0.90"), "imagine + one action"
    # Refusals decided by the gateway: no upstream call, nothing charged.
    before = len(submits(mjsim, "action"))
    bad = submit(server, key, "action", taskId=grid["id"], customId="MJ::JOB::upsample::9::nope")
    assert bad["code"] == 4 and "customId" in bad["description"]
    assert submit(server, key, "action", taskId="no-such-task", customId=u1)["code"] == 3
    assert submit(server, key, "action", taskId=grid["id"])["code"] == 4, "customId is required"
    assert len(submits(mjsim, "action")) == before
    assert settled(server, account_id)[0] == Decimal("0.90")


def test_vary_region_modal(server: GatewayServer, mjsim: MidjourneySim) -> None:
    account_id, key = server.account_key("1")
    grid = imagine_done(server, key)
    up = submit(server, key, "action", taskId=grid["id"], customId=grid["buttons"][0]["customId"])
    upscaled = wait_for(server, key, up["result"])
    region = next(b["customId"] for b in upscaled["buttons"] if b["customId"].startswith("MJ::Inpaint::"))
    opened = submit(server, key, "action", taskId=upscaled["id"], customId=region)
    assert opened["code"] == 21 and opened["description"] == "Waiting for window confirm"
    assert wait_for(server, key, opened["result"], until=("MODAL",))["status"] == "MODAL"
    assert submit(server, key, "modal", taskId=grid["id"], prompt="x")["code"] == 4, "not waiting for a modal"
    refused = submit(server, key, "modal", taskId=opened["result"], prompt="a hat")
    assert refused["code"] == 4, "the upstream wants the mask for Vary Region"
    confirmed = submit(server, key, "modal", taskId=opened["result"], prompt="a hat", maskBase64=data_url())
    assert confirmed["code"] == 1 and confirmed["result"] not in (opened["result"], None)
    assert submits(mjsim, "modal")[-1].json["taskId"] in mjsim.tasks
    done = wait_for(server, key, confirmed["result"])
    assert done["status"] == "SUCCESS" and done["imageUrl"]
    assert wait_for(server, key, opened["result"])["status"] == "SUCCESS"
    # imagine + upscale + modal; the Vary Region action is billed at its modal, the refused modal is free.
    assert settled(server, account_id)[0] == Decimal("1") - 3 * Decimal("0.05")


# --- blend and describe --------------------------------------------------------------------------


def test_blend_and_describe_validation(server: GatewayServer, mjsim: MidjourneySim) -> None:
    account_id, key = server.account_key("1")
    refusals: list[tuple[str, dict[str, Any]]] = [
        ("blend", {"base64Array": [data_url()]}),
        ("blend", {"base64Array": [data_url()] * 6}),
        ("blend", {}),
        ("blend", {"base64Array": [data_url(), "data:image/png;base64,bm90IGFuIGltYWdl"]}),
        ("blend", {"base64Array": [data_url(), data_url()], "dimensions": "WIDE"}),
        ("describe", {}),
        ("describe", {"base64": "data:text/plain;base64,aGk="}),
        ("describe", {"base64": "aGVsbG8="}),
        ("imagine", {}),
        ("imagine", {"prompt": "a fox", "botType": "DALL_E"}),
        ("imagine", {"prompt": "a fox", "base64Array": "not a list"}),
    ]
    for action, body in refusals:
        answer = submit(server, key, action, **body)
        assert answer["code"] == 4 and answer["description"], (action, body, answer)
        assert answer["result"] is None
    assert [r for r in mjsim.requests if "/submit/" in r.path] == [], "refused before any upstream call"
    blended = submit(server, key, "blend", base64Array=[data_url(), data_url(40, 20)], dimensions="PORTRAIT")
    assert blended["code"] == 1
    assert submits(mjsim, "blend")[0].json["dimensions"] == "PORTRAIT"
    assert wait_for(server, key, blended["result"])["action"] == "BLEND"
    described = submit(server, key, "describe", base64=data_url(48, 48))
    assert described["code"] == 1
    result = wait_for(server, key, described["result"])
    assert result["status"] == "SUCCESS" and "1️⃣" in result["prompt"] and result["buttons"] == []
    assert result["imageUrl"].startswith(server.base_url)
    assert settled(server, account_id)[0] == Decimal("1") - Decimal("0.05") - Decimal("0.025")


# --- refusals, failures, refunds -----------------------------------------------------------------


def test_banned_prompt_is_code_24_and_free(server: GatewayServer, mjsim: MidjourneySim) -> None:
    account_id, key = server.account_key("1")
    answer = submit(server, key, "imagine", prompt=f"a {BANNED_WORD} thing")
    assert answer["code"] == 24 and answer["result"] is None, answer
    assert answer["properties"]["bannedWord"] == BANNED_WORD
    assert len(submits(mjsim, "imagine")) == 1
    assert balance(server, account_id) == (Decimal("1"), Decimal("0")), "nothing charged, nothing held"


def test_queue_full_is_code_23(server: GatewayServer, mjsim: MidjourneySim) -> None:
    account_id, key = server.account_key("1")
    mjsim.mj_config.queue_full_next = 1
    answer = submit(server, key, "imagine", prompt="a fox")
    assert answer["code"] == 23 and answer["result"] is None
    assert balance(server, account_id) == (Decimal("1"), Decimal("0"))
    mjsim.mj_config.queued_next = 1
    queued = submit(server, key, "imagine", prompt="a fox")
    assert queued["code"] == 22 and queued["result"] and queued["properties"]["numberOfQueues"] == 1
    assert wait_for(server, key, queued["result"])["status"] == "SUCCESS"


def test_failed_job_is_refunded(server: GatewayServer, mjsim: MidjourneySim) -> None:
    account_id, key = server.account_key("1")
    mjsim.config.fail_jobs_next = 1
    accepted = submit(server, key, "imagine", prompt="a fox")
    assert accepted["code"] == 1
    task = wait_for(server, key, accepted["result"])
    assert task["status"] == "FAILURE" and task["failReason"] == FAIL_REASON and task["imageUrl"] is None
    assert task["buttons"] == []
    assert settled(server, account_id) == (Decimal("1"), Decimal("0"))


def test_insufficient_balance(server: GatewayServer, mjsim: MidjourneySim) -> None:
    _, key = server.account_key("0")
    resp = post(server, key, "/mj/submit/imagine", {"prompt": "a fox"})
    assert resp.status_code == 200
    answer = resp.json()
    assert answer["code"] == 4 and "balance" in answer["description"].lower()
    assert answer["properties"]["err_code"] == -10004
    assert mjsim.requests == []


def test_private_notify_hook_is_refused(server: GatewayServer, mjsim: MidjourneySim) -> None:
    account_id, key = server.account_key("1")
    for hook in ("http://10.0.0.8/hook", "http://169.254.169.254/latest"):
        answer = submit(server, key, "imagine", prompt="a fox", notifyHook=hook)
        host = hook.split("/")[2]
        assert answer["code"] == 4 and host in answer["description"], answer
    assert mjsim.requests == [] and balance(server, account_id) == (Decimal("1"), Decimal("0"))


# --- cancel --------------------------------------------------------------------------------------


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_cancel_refunds(
    db: str,
    mj_routes: None,
    gateway_factory: GatewayFactory,
    mjsim: MidjourneySim,
    request: pytest.FixtureRequest,
) -> None:
    database_url = request.getfixturevalue("postgres_url") if db == "postgres" else None
    server = start_gateway(gateway_factory, mjsim, database_url)
    account_id, key = server.account_key("1")
    mjsim.config.polls_before_ready = 10_000  # it runs until cancelled
    accepted = submit(server, key, "imagine", prompt="a very slow fox")
    assert accepted["code"] == 1
    wait_for(server, key, accepted["result"], until=("IN_PROGRESS",))
    assert balance(server, account_id) == (Decimal("1"), Decimal("0.05"))
    resp = post(server, key, f"/mj/task/{accepted['result']}/cancel", {})
    assert resp.status_code == 200 and resp.json()["code"] == 1, resp.text
    assert [r for r in mjsim.requests if r.path.endswith("/cancel")], "cancelled upstream too"
    task = fetch(server, key, accepted["result"]).json()
    assert task["status"] == "CANCEL" and task["failReason"] and task["finishTime"]
    assert balance(server, account_id) == (Decimal("1"), Decimal("0")), "refunded"
    again = post(server, key, f"/mj/task/{accepted['result']}/cancel", {}).json()
    assert again["code"] == 4 and "CANCEL" in again["description"]
    assert post(server, key, "/mj/task/nope/cancel", {}).json()["code"] == 3
    mjsim.config.polls_before_ready = 3
    done = imagine_done(server, key)
    finished = post(server, key, f"/mj/task/{done['id']}/cancel", {}).json()
    assert finished["code"] == 4 and "SUCCESS" in finished["description"]


def test_cancel_before_submission(
    mj_routes: None, gateway_factory: GatewayFactory, mjsim: MidjourneySim
) -> None:
    # An API-only process (no worker) that waits at most 0.3 s for a verdict: the task stays pending.
    server = start_gateway(
        gateway_factory, mjsim, None, tasks={**FAST_TASKS, "worker": False}, routing={"total_timeout_s": 0.3}
    )
    account_id, key = server.account_key("1")
    queued = submit(server, key, "imagine", prompt="a fox")
    assert queued["code"] == 22 and queued["result"]
    assert fetch(server, key, queued["result"]).json()["status"] == "NOT_START"
    assert balance(server, account_id) == (Decimal("1"), Decimal("0.05"))
    assert post(server, key, f"/mj/task/{queued['result']}/cancel", {}).json()["code"] == 1
    assert fetch(server, key, queued["result"]).json()["status"] == "CANCEL"
    assert balance(server, account_id) == (Decimal("1"), Decimal("0")) and mjsim.requests == []


# --- ownership and webhooks ----------------------------------------------------------------------


def test_another_accounts_task_is_not_found(server: GatewayServer) -> None:
    _, key = server.account_key("1")
    _, other = server.account_key("1")
    grid = imagine_done(server, key)
    resp = fetch(server, other, grid["id"])
    assert resp.status_code == 404 and resp.json()["code"] == 3
    assert (
        submit(server, other, "action", taskId=grid["id"], customId=grid["buttons"][0]["customId"])["code"]
        == 3
    )
    assert submit(server, other, "modal", taskId=grid["id"], prompt="x")["code"] == 3
    assert post(server, other, f"/mj/task/{grid['id']}/cancel", {}).json()["code"] == 3
    assert fetch(server, key, "no-such-task").status_code == 404


def test_notify_hook_is_delivered_and_signed(server: GatewayServer) -> None:
    account_id, key = server.account_key("1")
    secret = server.admin("GET", f"/admin/accounts/{account_id}").json()["webhook_secret"]
    with Receiver() as receiver:
        accepted = submit(server, key, "imagine", prompt="a fox", notifyHook=receiver.url, state="hook-state")
        assert accepted["code"] == 1
        deadline = time.monotonic() + 15
        while not receiver.calls and time.monotonic() < deadline:
            time.sleep(0.03)
    assert len(receiver.calls) == 1
    headers, body = receiver.calls[0]
    assert verify(secret, body, headers[SIGNATURE_HEADER.lower()])
    assert headers["x-omnirelay-event"] == "task.succeeded"
    payload = orjson.loads(body)
    assert payload["id"] == accepted["result"] and payload["status"] == "SUCCESS"
    assert payload["state"] == "hook-state" and payload["imageUrl"].startswith(server.base_url)
    assert payload["buttons"] and payload == fetch(server, key, accepted["result"]).json()
