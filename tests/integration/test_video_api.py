"""Video V2 through the real gateway: every vendor end to end, the Kling formats, the catalogue, money.

One simulator per vendor, one channel each. Until api/routes.py and gateway.py carry the video rows
themselves, the fixture adds ``omnirelay.api.videos.OPS`` to the route table and the video prices to
the shipped catalog before the app is built, and registers the video task handler right after start
(each step is skipped when the permanent wiring already did it).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import orjson
import pytest

import omnirelay.app
from omnirelay.api import routes, videos
from omnirelay.core.pricing import load_shipped_catalog
from omnirelay.core.tasks.videos import FAMILY, VideoTaskHandler
from omnirelay.core.videos import (
    billing_units,
    check_parameter,
    default_catalog,
    load_video_catalog,
    normalize_model_name,
    parse_duration,
    trim_inline,
    video_price_entry,
)
from omnirelay.errors import UnprocessableEntity
from omnirelay.providers.registry import PROVIDER_IDS, adapter_class
from tests.conftest import GatewayFactory
from tests.integration.test_tasks import Receiver
from tests.support.server import HTTP, GatewayServer
from tests.upstreams.imaging import DEFAULT_KEY, ImageSim, image_sim_in_thread, make_image
from tests.upstreams.kling.sim import KlingSim, channel_api_key
from tests.upstreams.luma_video.sim import LumaVideoSim
from tests.upstreams.minimax_video.sim import MinimaxVideoSim
from tests.upstreams.runway.sim import RunwaySim
from tests.upstreams.seedance.sim import SeedanceSim
from tests.upstreams.videosim import VideoSim, is_mp4
from tests.upstreams.vidu.sim import ViduSim
from tests.upstreams.wan.sim import WanSim

FAST_TASKS = {"tick_s": 0.05, "poll_interval_s": 0.05, "max_poll_interval_s": 0.2, "webhook_backoff_s": 0.05}
SIMS: dict[str, type[VideoSim]] = {
    "kling": KlingSim,
    "runway": RunwaySim,
    "luma_video": LumaVideoSim,
    "minimax_video": MinimaxVideoSim,
    "vidu": ViduSim,
    "wan": WanSim,
    "seedance": SeedanceSim,
}
MODELS: dict[str, list[str]] = {
    "kling": ["kling-v1", "kling-v1.5", "kling-v1.6", "kling-v2.1-master"],
    "runway": ["runway-gen4-turbo", "runway-gen4-aleph", "runway-veo3"],
    "luma_video": ["luma-ray-2"],
    "minimax_video": ["minimax-hailuo-02"],
    "vidu": ["vidu-q1"],
    "wan": ["wan2.2-t2v-plus", "wan2.2-i2v-plus"],
    "seedance": ["seedance-1-0-pro"],
}
PRICES = {row["id"]: Decimal(video_price_entry(row)["price"]["per_request"]) for row in load_video_catalog()}
PNG = make_image(48, 32)
DATA_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, VideoSim]]:
    running: dict[str, VideoSim] = {}
    managers = []
    for provider, cls in SIMS.items():
        manager = image_sim_in_thread(cls())
        running[provider] = manager.__enter__()
        managers.append(manager)
    try:
        yield running
    finally:
        for manager in managers:
            manager.__exit__(None, None, None)


@pytest.fixture
def vendors(sims: dict[str, VideoSim]) -> dict[str, VideoSim]:
    """The module's simulators with fresh failure settings and request logs for this test."""
    for sim in sims.values():
        sim.config.fail_next.clear()
        sim.config.fail_jobs_next = sim.config.moderate_jobs_next = 0
        sim.config.polls_before_ready = 2
        sim.requests.clear()
    return sims


def _wire(monkeypatch: pytest.MonkeyPatch) -> None:
    present = {(op.method, op.path) for op in routes.OPS}
    rows = tuple(
        routes.Op(method, path, endpoint, "Video", summary, "client")
        for method, path, endpoint, summary in videos.OPS
        if (method, path) not in present
    )
    monkeypatch.setattr(routes, "OPS", routes.OPS + rows)
    monkeypatch.setattr("omnirelay.app.OPS", vars(omnirelay.app)["OPS"] + rows)

    def with_videos() -> list[dict[str, Any]]:
        entries = load_shipped_catalog()
        known = {entry.get("id") for entry in entries}
        return entries + [video_price_entry(r) for r in load_video_catalog() if r["id"] not in known]

    monkeypatch.setattr("omnirelay.gateway.load_shipped_catalog", with_videos)


@pytest.fixture
def server(
    gateway_factory: GatewayFactory, vendors: dict[str, VideoSim], monkeypatch: pytest.MonkeyPatch
) -> GatewayServer:
    _wire(monkeypatch)
    channels = [
        {
            "name": provider,
            "provider": provider,
            "base_url": sim.base_url,
            "api_key": channel_api_key(sim) if isinstance(sim, KlingSim) else DEFAULT_KEY,
            "models": MODELS[provider],
        }
        for provider, sim in vendors.items()
    ]
    started = gateway_factory(channels, tasks=FAST_TASKS, image_fetch={"allow_networks": ["127.0.0.0/8"]})
    gw = started.gw
    if FAMILY not in gw.tasks.handlers:
        gw.tasks.register(
            VideoTaskHandler(
                router=gw.router, routing=gw.settings.routing, files=lambda: gw.files, http=lambda: gw.http
            )
        )
    return started


# --- helpers --------------------------------------------------------------------------------------


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def create(server: GatewayServer, key: str, query: str = "", **body: Any) -> tuple[int, Any]:
    payload = {"prompt": "a lighthouse at dawn", **body}
    resp = HTTP.post(f"{server.base_url}/302/v2/video/create{query}", json=payload, headers=auth(key))
    return resp.status_code, resp.json()


def wait_for(server: GatewayServer, key: str, path: str, done: Any, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = HTTP.get(f"{server.base_url}{path}", headers=auth(key))
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        if done(body):
            return body
        time.sleep(0.05)
    raise AssertionError(f"{path} did not finish")


def wait_v2(server: GatewayServer, key: str, task_id: str) -> dict[str, Any]:
    return wait_for(
        server, key, f"/302/v2/video/fetch/{task_id}", lambda b: b["status"] in ("completed", "failed")
    )


def balance(server: GatewayServer, account_id: int) -> tuple[Decimal, Decimal]:
    account = server.admin("GET", f"/admin/accounts/{account_id}").json()
    return Decimal(account["balance"]), Decimal(account["held"])


def downloaded_video(url: str) -> bytes:
    resp = HTTP.get(url)
    assert resp.status_code == 200 and resp.headers["content-type"] == "video/mp4"
    assert is_mp4(resp.content)
    return resp.content


def posted(sim: ImageSim) -> list[Any]:
    return [r for r in sim.requests if r.method == "POST"]


# --- every vendor, end to end ---------------------------------------------------------------------

CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("kling", "kling-v2.1-master", {}, "t2v"),
    ("kling", "kling-v1.5", {"image": DATA_URL}, "i2v"),
    ("runway", "runway-gen4-turbo", {"image": DATA_URL, "aspect_ratio": "1:1"}, "i2v"),
    ("runway", "runway-veo3", {}, "t2v"),
    ("runway", "runway-gen4-aleph", {"video": "SOURCE"}, "v2v"),
    ("luma_video", "luma-ray-2", {"image": DATA_URL, "end_image": DATA_URL, "resolution": "1080p"}, "i2v"),
    ("minimax_video", "minimax-hailuo-02", {"resolution": "768P", "prompt_optimizer": False}, "t2v"),
    ("vidu", "vidu-q1", {"image": DATA_URL, "end_image": DATA_URL}, "i2v"),
    ("wan", "wan2.2-t2v-plus", {"aspect_ratio": "9:16", "resolution": "480P"}, "t2v"),
    ("wan", "wan2.2-i2v-plus", {"image": DATA_URL}, "i2v"),
    ("seedance", "seedance-1-0-pro", {"aspect_ratio": "21:9", "camera_fixed": True}, "t2v"),
]


def test_every_vendor_end_to_end(server: GatewayServer, vendors: dict[str, VideoSim]) -> None:
    """Every case at once, each on its own account: create, fetch until completed, download, settle."""
    submitted = []
    for provider, model, body, mode in CASES:
        account_id, key = server.account_key("10")
        if body.get("video") == "SOURCE":
            body = {**body, "video": vendors[provider].host_video()}
        status, accepted = create(server, key, model=model, **body)
        assert status == 200, (model, accepted)
        assert accepted["status"] == "pending" and accepted["task_id"].isdigit() and accepted["created_at"]
        assert balance(server, account_id)[1] == PRICES[model], f"{model}: one video held at submit"
        submitted.append((account_id, key, accepted["task_id"], model, mode))
    for account_id, key, task_id, model, mode in submitted:
        task = wait_v2(server, key, task_id)
        assert task["status"] == "completed", task
        assert (task["model"], task["mode"], task["task_type"]) == (model, mode, "video")
        assert task["upstream_task_id"] and task["attempts"] >= 2 and task["error"] is None, task
        assert task["video_url"].startswith(server.base_url + "/files/") and task["video_url"].endswith(
            ".mp4"
        )
        downloaded_video(task["video_url"])
        assert task["raw_response"], f"{model}: the vendor's final payload"
        assert balance(server, account_id) == (Decimal("10") - PRICES[model], Decimal("0")), model
    for provider, sim in vendors.items():
        cases = sum(1 for case in CASES if case[0] == provider)
        assert len(posted(sim)) == cases, f"{provider}: each job submitted upstream exactly once"


def test_the_cost_is_on_record(server: GatewayServer) -> None:
    _, key = server.account_key("10", allow_manage_key=True)
    _, accepted = create(server, key, model="wan2.2-t2v-plus")
    task = wait_v2(server, key, accepted["task_id"])
    record = HTTP.get(
        f"{server.base_url}/dashboard/record/{task['ai302_cost_request_ids'][0]}", headers=auth(key)
    ).json()["data"]
    assert Decimal(str(record["cost"])) == PRICES["wan2.2-t2v-plus"] and record["endpoint"] == "task:video_v2"


def test_inputs_are_hosted_and_sent_as_the_vendor_wants(
    server: GatewayServer, vendors: dict[str, VideoSim]
) -> None:
    _, key = server.account_key("10")
    _, accepted = create(server, key, model="luma-ray-2", image=DATA_URL)
    assert wait_v2(server, key, accepted["task_id"])["status"] == "completed"
    frame = posted(vendors["luma_video"])[0].json["keyframes"]["frame0"]["url"]
    assert frame.startswith(server.base_url + "/files/"), "Luma gets the gateway's hosted copy"
    assert HTTP.get(frame).content == PNG
    _, accepted = create(server, key, model="kling-v1.6", image=DATA_URL, duration="10", mode="pro")
    assert wait_v2(server, key, accepted["task_id"])["status"] == "completed"
    sent = posted(vendors["kling"])[0].json
    assert base64.b64decode(sent["image"]) == PNG and (sent["duration"], sent["mode"]) == ("10", "pro")


def test_multipart_with_a_file(server: GatewayServer, vendors: dict[str, VideoSim]) -> None:
    _, key = server.account_key("10")
    resp = HTTP.post(
        f"{server.base_url}/302/v2/video/create",
        data={"model": "vidu-q1", "prompt": "waves", "duration": "5", "bgm": "true"},
        files={"image": ("first.png", PNG, "image/png")},
        headers=auth(key),
    )
    assert resp.status_code == 200, resp.text
    task = wait_v2(server, key, resp.json()["task_id"])
    assert task["status"] == "completed" and task["mode"] == "i2v"
    sent = posted(vendors["vidu"])[0]
    assert sent.path == "/ent/v2/img2video" and sent.json["bgm"] is True, "form strings typed by the catalog"


def test_longer_videos_cost_more(server: GatewayServer) -> None:
    account_id, key = server.account_key("10")
    _, accepted = create(server, key, model="kling-v1.6", duration=10)
    assert balance(server, account_id)[1] == 2 * PRICES["kling-v1.6"]
    assert wait_v2(server, key, accepted["task_id"])["status"] == "completed"
    assert balance(server, account_id) == (Decimal("10") - 2 * PRICES["kling-v1.6"], Decimal("0"))


NAMES = [
    ("Kling_V1.6", "kling-v1.6"),
    ("kling-v1.6-t2v", "kling-v1.6"),
    ("KLING-V2-1-MASTER", "kling-v2.1-master"),
    ("WAN2.2_T2V_PLUS", "wan2.2-t2v-plus"),
    ("Seedance_1_0_Pro-T2V", "seedance-1-0-pro"),
    ("ray-2", "luma-ray-2"),
]


def test_model_names_are_normalised(server: GatewayServer) -> None:
    _, key = server.account_key("10")
    for name, model in NAMES:
        status, accepted = create(server, key, model=name)
        assert status == 200, (name, accepted)
        task = HTTP.get(
            f"{server.base_url}/302/v2/video/fetch/{accepted['task_id']}", headers=auth(key)
        ).json()
        assert task["model"] == model, name


BAD: list[tuple[dict[str, Any], str]] = [
    ({"model": "no-such-model"}, "model"),
    ({"model": "kling-v2-master"}, "model"),  # in the table, but no channel serves it here
    ({"model": "wan2.2-t2v-plus", "image": DATA_URL}, "image"),
    ({"model": "runway-gen4-turbo"}, "model"),
    ({"model": "kling-v1", "duration": 7}, "duration"),
    ({"model": "kling-v1", "duration": "five"}, "duration"),
    ({"model": "luma-ray-2", "resolution": "8k"}, "resolution"),
    ({"model": "kling-v2.1-master", "image": DATA_URL, "end_image": DATA_URL}, "end_image"),
    ({"model": "kling-v1", "mode": "turbo"}, "mode"),
    ({"model": "runway-gen4-aleph", "video": "http://169.254.169.254/latest/x.mp4"}, "video"),
    ({"model": "runway-gen4-aleph", "video": "file:///etc/passwd"}, "video"),
    ({"model": "kling-v1", "image": "data:image/png;base64,AAAA"}, "image"),
    ({"model": "kling-v1", "image": [DATA_URL, DATA_URL], "end_image": DATA_URL}, "image"),
    ({"model": "kling-v1", "prompt": ""}, "prompt"),
]


def test_bad_requests_are_refused_before_anything_is_held(
    server: GatewayServer, vendors: dict[str, VideoSim]
) -> None:
    account_id, key = server.account_key("10")
    for body, param in BAD:
        status, answer = create(server, key, **body)
        assert status == 422, (body, answer)
        assert param in orjson.dumps(answer).decode(), (body, answer)
    assert balance(server, account_id) == (Decimal("10"), Decimal("0"))
    assert not any(posted(sim) for sim in vendors.values())


FAILURES = [
    ("vidu", "vidu-q1", "fail_jobs_next", "generation_failed"),
    ("wan", "wan2.2-t2v-plus", "moderate_jobs_next", "content_policy_violation"),
    ("seedance", "seedance-1-0-pro", "fail_jobs_next", "generation_failed"),
    ("kling", "kling-v1", "prompt", "content_policy_violation"),  # refused at submit
    ("runway", "runway-veo3", "fail_next", "upstream_error"),  # 401 at submit: the channel's key
]


def test_failures_are_refunded(server: GatewayServer, vendors: dict[str, VideoSim]) -> None:
    submitted = []
    for provider, model, inject, error in FAILURES:
        account_id, key = server.account_key("10")
        prompt = "a forbidden scene" if inject == "prompt" else "a lighthouse"
        if inject == "fail_next":
            vendors[provider].config.fail_next = [401]
        elif inject != "prompt":
            setattr(vendors[provider].config, inject, 1)
        status, accepted = create(server, key, model=model, prompt=prompt)
        assert status == 200
        submitted.append((account_id, key, accepted["task_id"], error))
    for account_id, key, task_id, error in submitted:
        task = wait_v2(server, key, task_id)
        assert task["status"] == "failed" and task["video_url"] is None, task
        assert task["error"]["error"] == error and task["error"]["message"], task["error"]
        assert balance(server, account_id) == (Decimal("10"), Decimal("0")), "nothing charged, nothing held"


def test_tasks_belong_to_their_account(server: GatewayServer) -> None:
    _, key = server.account_key("10")
    _, other = server.account_key("10")
    _, accepted = create(server, key, model="kling-v1")
    task_id = accepted["task_id"]
    for path in (
        f"/302/v2/video/fetch/{task_id}",
        f"/klingai/task/{task_id}/fetch",
        f"/klingai/v1/videos/text2video/{task_id}",
    ):
        assert HTTP.get(f"{server.base_url}{path}", headers=auth(other)).status_code == 404, path
        assert HTTP.get(f"{server.base_url}{path}", headers=auth(key)).status_code == 200, path
    assert HTTP.get(f"{server.base_url}/302/v2/video/fetch/12345", headers=auth(key)).status_code == 404
    assert (
        HTTP.get(f"{server.base_url}/klingai/v1/videos/bogus/{task_id}", headers=auth(key)).status_code == 404
    )


def test_webhook_gets_the_task(server: GatewayServer) -> None:
    _, key = server.account_key("10")
    with Receiver() as receiver:
        status, accepted = create(server, key, f"?webhook={receiver.url}", model="minimax-hailuo-02")
        assert status == 200
        deadline = time.monotonic() + 15
        while not receiver.calls and time.monotonic() < deadline:
            time.sleep(0.05)
    assert receiver.calls, "the webhook was called"
    payload = orjson.loads(receiver.calls[-1][1])
    assert (payload["model"], payload["status"], payload["task_id"]) == (
        "minimax-hailuo-02",
        "completed",
        accepted["task_id"],
    )
    assert payload["request_id"] and payload["webhook"] == receiver.url
    assert (
        payload["result"]["video_url"].endswith(".mp4")
        and payload["result"]["task_id"] == accepted["task_id"]
    )
    assert payload["result"]["raw_response"]["file"]["download_url"], "MiniMax's own file object"


# --- the Kling formats ----------------------------------------------------------------------------


def test_kling_302_format_text_to_video(server: GatewayServer, vendors: dict[str, VideoSim]) -> None:
    account_id, key = server.account_key("10")
    resp = HTTP.post(
        f"{server.base_url}/klingai/m2v_16_txt2video_hq_10s",
        data={
            "prompt": "a fox",
            "negative_prompt": "blur",
            "cfg": "0.7",
            "aspect_ratio": "9:16",
            "camera_type": "zoom",
            "camera_value": "-5",
        },
        headers=auth(key),
    )
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["result"] == 1 and answer["message"] == "success" and answer["data"]["works"] == []
    task_id = answer["data"]["task"]["id"]
    done = wait_for(server, key, f"/klingai/task/{task_id}/fetch", lambda b: b["data"]["status"] in (50, 99))
    assert done["result"] == 1 and done["data"]["status"] == 99 and done["data"]["task"]["id"] == task_id
    downloaded_video(done["data"]["works"][0]["resource"]["resource"])
    sent = posted(vendors["kling"])[0]
    assert sent.path == "/v1/videos/text2video"
    assert {k: sent.json[k] for k in ("model_name", "mode", "duration", "cfg_scale", "aspect_ratio")} == {
        "model_name": "kling-v1-6",
        "mode": "pro",
        "duration": "10",
        "cfg_scale": 0.7,
        "aspect_ratio": "9:16",
    }
    assert (
        sent.json["camera_control"]["type"] == "simple"
        and sent.json["camera_control"]["config"]["zoom"] == -5
    )
    assert balance(server, account_id)[0] == Decimal("10") - 2 * PRICES["kling-v1.6"]
    # the same task through the V2 fetch
    v2 = HTTP.get(f"{server.base_url}/302/v2/video/fetch/{task_id}", headers=auth(key)).json()
    assert v2["status"] == "completed" and v2["model"] == "kling-v1.6"


def test_kling_302_format_image_to_video(server: GatewayServer, vendors: dict[str, VideoSim]) -> None:
    _, key = server.account_key("10")
    resp = HTTP.post(
        f"{server.base_url}/klingai/m2v_img2video",
        data={"prompt": ""},
        files={"input_image": ("a.png", PNG, "image/png"), "tail_image": ("b.png", PNG, "image/png")},
        headers=auth(key),
    )
    assert resp.status_code == 200, resp.text
    task_id = resp.json()["data"]["task"]["id"]
    statuses: list[int] = []

    def done(body: dict[str, Any]) -> bool:
        statuses.append(body["data"]["status"])
        return body["data"]["status"] in (50, 99)

    final = wait_for(server, key, f"/klingai/task/{task_id}/fetch", done)
    assert final["data"]["status"] == 99 and set(statuses) <= {5, 10, 99}
    sent = posted(vendors["kling"])[0].json
    assert sent["model_name"] == "kling-v1" and sent["image"] and sent["image_tail"] and sent["mode"] == "std"
    # no input image on an image route: refused
    missing = HTTP.post(f"{server.base_url}/klingai/m2v_img2video", data={"prompt": "x"}, headers=auth(key))
    assert missing.status_code == 422


def test_kling_302_format_failure_is_status_50(server: GatewayServer, vendors: dict[str, VideoSim]) -> None:
    account_id, key = server.account_key("10")
    vendors["kling"].config.fail_jobs_next = 1
    resp = HTTP.post(f"{server.base_url}/klingai/m2v_txt2video", data={"prompt": "a fox"}, headers=auth(key))
    task_id = resp.json()["data"]["task"]["id"]
    done = wait_for(server, key, f"/klingai/task/{task_id}/fetch", lambda b: b["data"]["status"] in (50, 99))
    assert done["data"]["status"] == 50 and done["data"]["works"] == [] and done["data"]["message"]
    assert balance(server, account_id) == (Decimal("10"), Decimal("0"))


def test_kling_official_format(server: GatewayServer, vendors: dict[str, VideoSim]) -> None:
    _, key = server.account_key("10")
    body = {
        "model_name": "kling-v1-6",
        "image": base64.b64encode(PNG).decode(),  # Kling's bare base64
        "prompt": "the fox turns its head",
        "duration": "5",
        "mode": "pro",
        "cfg_scale": 0.4,
        "external_task_id": "mine-1",
    }
    resp = HTTP.post(f"{server.base_url}/klingai/v1/videos/image2video", json=body, headers=auth(key))
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["code"] == 0 and answer["data"]["task_status"] == "submitted"
    task_id = answer["data"]["task_id"]
    done = wait_for(
        server,
        key,
        f"/klingai/v1/videos/image2video/{task_id}",
        lambda b: b["data"]["task_status"] in ("succeed", "failed"),
    )
    assert done["code"] == 0 and done["data"]["task_status"] == "succeed"
    video = done["data"]["task_result"]["videos"][0]
    downloaded_video(video["url"])
    assert video["duration"]
    sent = posted(vendors["kling"])[0].json
    assert base64.b64decode(sent["image"]) == PNG
    assert (sent["model_name"], sent["mode"], sent["cfg_scale"], sent["external_task_id"]) == (
        "kling-v1-6",
        "pro",
        0.4,
        "mine-1",
    )
    text = HTTP.post(
        f"{server.base_url}/klingai/v1/videos/text2video",
        json={"model_name": "kling-v2-1-master", "prompt": "a fox", "aspect_ratio": "1:1"},
        headers=auth(key),
    )
    assert text.status_code == 200 and text.json()["data"]["task_id"]
    assert (
        HTTP.post(
            f"{server.base_url}/klingai/v1/videos/text2video",
            json={"prompt": "a fox", "model_name": "nope"},
            headers=auth(key),
        ).status_code
        == 422
    )


# --- the catalogue --------------------------------------------------------------------------------


def test_model_catalogue(server: GatewayServer) -> None:
    _, key = server.account_key("10")
    resp = HTTP.get(f"{server.base_url}/302/v2/model/video", headers=auth(key))
    assert resp.status_code == 200
    body = resp.json()
    served = sorted(model for models in MODELS.values() for model in models)
    assert body["total"] == len(served) == len(body["models"])
    assert sorted(m["model_name"] for m in body["models"]) == served
    kling = next(m for m in body["models"] if m["model_name"] == "kling-v2.1-master")
    assert kling["provider_en"] == "Kling AI" and kling["display_name"] == "Kling V2.1 Master"
    assert kling["capabilities"] == {"t2v": True, "i2v": True, "v2v": False}
    assert kling["price_text_en"] == "1.4 PTC per 5 s video" and kling["price_text"]
    for field in (
        "description",
        "description_en",
        "description_jp",
        "provider",
        "provider_jp",
        "price_text_jp",
    ):
        assert kling[field], field
    params = {p["name"]: p for p in kling["parameters"]}
    assert params["prompt"]["required"] is True
    assert params["duration"]["range"] == {"type": "list", "list": {"options": [5, 10]}}
    assert params["cfg_scale"]["range"] == {"type": "range", "range": {"min": 0, "max": 1, "step": 0.1}}
    assert HTTP.get(f"{server.base_url}/302/v2/model/video").status_code == 401


# --- the table and the pure parts ---------------------------------------------------------------


def test_catalog_rows_are_consistent() -> None:
    rows = load_video_catalog()
    catalog = default_catalog()
    assert len({row["id"] for row in rows}) == len(rows) == len(catalog.all())
    names = [normalize_model_name(n) for spec in catalog.all() for n in (spec.id, *spec.aliases)]
    assert len(names) == len(set(names)), "no two rows answer to the same name"
    for row, spec in zip(rows, catalog.all(), strict=True):
        assert spec.adapter in PROVIDER_IDS and adapter_class(spec.adapter).handles_video, spec.id
        assert catalog.get(spec.id) is spec and spec.provider_en and spec.description_en, spec.id
        assert Decimal(video_price_entry(row)["price"]["per_request"]) > 0, spec.id
        durations = spec.options_of("duration")
        assert durations is None or spec.default_duration in durations, spec.id
        for param in spec.parameters:
            if "default" in param and "options" in param:
                assert param["default"] in param["options"], (spec.id, param["name"])
        assert spec.parameter("prompt") is not None, spec.id
    paths = [(method, path) for method, path, _, _ in videos.OPS]
    assert len(paths) == len(set(paths))


def test_parameter_checks() -> None:
    luma = default_catalog().get("luma-ray-2")
    runway = default_catalog().get("runway-gen4-turbo")
    assert luma is not None and runway is not None
    assert check_parameter(luma, "resolution", "1080P") == "1080p", "the row's spelling"
    assert check_parameter(luma, "loop", "true") is True, "form strings become the option's type"
    assert check_parameter(luma, "duration", "9") == 9
    assert check_parameter(runway, "seed", "12") == 12
    assert check_parameter(luma, "anything_else", {"a": 1}) == {"a": 1}, "undeclared extras pass"
    for spec, name, value in ((luma, "resolution", "8k"), (runway, "seed", -1), (runway, "seed", "x")):
        with pytest.raises(UnprocessableEntity):
            check_parameter(spec, name, value)
    assert [parse_duration(v) for v in (None, "", 5, "5", "5s", 5.0)] == [None, None, 5, 5, 5, 5]
    for bad in ("5.5", 0, -5, "five", True):
        with pytest.raises(UnprocessableEntity):
            parse_duration(bad)


def test_billing_units() -> None:
    kling, minimax, luma = (
        default_catalog().get(m) for m in ("kling-v1.6", "minimax-hailuo-02", "luma-ray-2")
    )
    assert kling is not None and minimax is not None and luma is not None
    assert [billing_units(kling, d) for d in (None, 5, 10)] == [1, 1, 2]
    assert [billing_units(minimax, d) for d in (6, 10)] == [1, 2]
    assert billing_units(luma, 9) == 2


def test_kling_302_paths_name_served_capabilities() -> None:
    for name, variant in videos.KLING_302.items():
        spec = default_catalog().get(variant.model)
        assert spec is not None and spec.adapter == "kling", name
        assert spec.supports(variant.mode), name
        assert variant.duration in (spec.options_of("duration") or []), name
        assert variant.quality in (spec.options_of("mode") or []), name


def test_camera_control_and_task_ids() -> None:
    assert videos.camera_control(None, None) is None and videos.camera_control("empty", "3") is None
    assert videos.camera_control("down_back", None) == {"type": "down_back"}
    simple = videos.camera_control("pan", "2.5")
    assert simple is not None and simple["config"]["pan"] == 2.5 and sum(simple["config"].values()) == 2.5
    for camera_type, value in (("spin", "1"), ("zoom", "11"), ("zoom", "x")):
        with pytest.raises(UnprocessableEntity):
            videos.camera_control(camera_type, value)
    ids = {videos.new_task_id() for _ in range(100)}
    assert len(ids) == 100 and all(i.isdigit() and len(i) == 18 for i in ids)


def test_trim_inline() -> None:
    long_b64 = base64.b64encode(bytes(2000)).decode()
    trimmed = trim_inline({"a": [DATA_URL], "b": long_b64, "c": "a short prompt", "d": "中" * 3000})
    assert trimmed["a"][0].startswith("data:image/png;base64,<") and "trimmed" in trimmed["b"]
    assert trimmed["c"] == "a short prompt" and trimmed["d"] == "中" * 3000
