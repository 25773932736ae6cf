"""302.AI-ComfyUI through the real gateway: each workflow end to end, errors, refunds, ownership, webhooks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

import omnirelay.app
from omnirelay.api import comfyui as comfyui_api
from omnirelay.api import routes
from omnirelay.core.tasks.comfyui import FAMILY, ComfyUITaskHandler, Workflow, load_workflows, price_entries
from omnirelay.core.tasks.webhooks import SIGNATURE_HEADER, verify
from tests.conftest import GatewayFactory
from tests.integration.test_tasks import FAST_TASKS, Receiver
from tests.support.server import HTTP, GatewayServer
from tests.upstreams.comfyui.sim import ComfyUISim, channel_base_url, make_video
from tests.upstreams.imaging import DEFAULT_KEY, image_sim_in_thread, make_image

WORKFLOWS = load_workflows()
MODELS = [w.model for w in WORKFLOWS.values()]
TERMINAL = ("SUCCESS", "FAILED")


@pytest.fixture
def comfyui_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Add the ComfyUI routes to the route table until routes.py lists them (then: nothing to do)."""
    present = {(op.method, op.path) for op in routes.OPS}
    extra = tuple(
        routes.Op(method, path, endpoint, "ComfyUI", summary, "client")
        for method, path, endpoint, summary in comfyui_api.OPS
        if (method, path) not in present
    )
    if extra:
        monkeypatch.setattr(routes, "OPS", routes.OPS + extra)
        # app.py imported the tuple by name when it was first imported.
        monkeypatch.setattr(omnirelay.app, "OPS", tuple(vars(omnirelay.app)["OPS"]) + extra)


@pytest.fixture
def comfy() -> Iterator[ComfyUISim]:
    with image_sim_in_thread(ComfyUISim()) as running:
        yield running


def _channel(sim: ComfyUISim, name: str, priority: int = 0) -> dict[str, Any]:
    return {
        "name": name,
        "provider": "comfyui",
        "base_url": channel_base_url(sim),
        "api_key": DEFAULT_KEY,
        "models": MODELS,
        "priority": priority,
        "timeout_s": 10,
    }


@pytest.fixture
def server(gateway_factory: GatewayFactory, comfy: ComfyUISim, comfyui_routes: None) -> GatewayServer:
    started = gateway_factory(
        [_channel(comfy, "comfy-a"), _channel(comfy, "comfy-b", priority=1)],
        tasks=FAST_TASKS,
        image_fetch={"allow_networks": ["127.0.0.0/8"]},
        models=price_entries(),
    )
    gw = started.gw
    if FAMILY not in gw.tasks.handlers:  # until gateway.py registers it
        gw.tasks.register(
            ComfyUITaskHandler(
                images=gw.images, router=gw.router, routing=gw.settings.routing, files=lambda: gw.files
            )
        )
    return started


# --- helpers ----------------------------------------------------------------------------------------


def form_for(
    workflow: Workflow, *, skip: str | None = None, **texts: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """(files, data) for httpx: real images, a small MP4 for video fields, the texts given."""
    files: dict[str, Any] = {}
    data: dict[str, str] = {}
    for index, spec in enumerate(workflow.fields):
        if spec.name == skip:
            continue
        if spec.kind == "file":
            if spec.media == "video":
                files[spec.name] = (f"{spec.name}.mp4", make_video("mp4", 8192), "video/mp4")
            else:
                color = (40 * index % 255, 90, 160)
                files[spec.name] = (f"{spec.name}.png", make_image(96, 64, "png", color), "image/png")
        elif spec.name in texts:
            data[spec.name] = texts[spec.name]
        elif spec.required:
            data[spec.name] = f"a {spec.name}"
    return files, data


def create(
    server: GatewayServer,
    key: str,
    workflow: Workflow,
    *,
    query: str = "",
    files: dict[str, Any] | None = None,
    data: dict[str, str] | None = None,
) -> tuple[int, Any]:
    if files is None and data is None:
        files, data = form_for(workflow)
    resp = HTTP.post(
        f"{server.base_url}{workflow.create_route}{query}",
        files=files or None,
        data=data or {},
        headers={"Authorization": f"Bearer {key}"},
    )
    return resp.status_code, resp.json()


def status(server: GatewayServer, key: str, slug: str, task_id: str) -> tuple[int, Any]:
    resp = HTTP.get(
        f"{server.base_url}/302/comfyui/{slug}/check-task-status",
        params={"taskId": task_id},
        headers={"Authorization": f"Bearer {key}"},
    )
    return resp.status_code, resp.json()


def wait_done(server: GatewayServer, key: str, slug: str, task_id: str, timeout: float = 20) -> list[Any]:
    """Every status answer until a terminal one (the last)."""
    seen: list[Any] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        code, body = status(server, key, slug, task_id)
        assert code == 200, body
        seen.append(body)
        if body["data"] in TERMINAL:
            return seen
        time.sleep(0.01)
    raise AssertionError(f"task {task_id} did not finish: {seen[-1] if seen else None}")


def balance(server: GatewayServer, account_id: int) -> tuple[Decimal, Decimal]:
    account = server.admin("GET", f"/admin/accounts/{account_id}").json()
    return Decimal(account["balance"]), Decimal(account["held"])


def wait_settled(server: GatewayServer, account_id: int) -> tuple[Decimal, Decimal]:
    end = time.monotonic() + 5
    money = balance(server, account_id)
    while money[1] != 0 and time.monotonic() < end:
        time.sleep(0.02)
        money = balance(server, account_id)
    return money


def creates(sim: ComfyUISim) -> list[Any]:
    return [r.json for r in sim.requests if r.path == "/task/openapi/create"]


def served(server: GatewayServer, url: str) -> tuple[str, bytes]:
    assert url.startswith(f"{server.base_url}/files/"), url
    resp = HTTP.get(url)
    assert resp.status_code == 200
    return resp.headers["content-type"], resp.content


# --- the tests --------------------------------------------------------------------------------------


def test_every_workflow_end_to_end(server: GatewayServer, comfy: ComfyUISim) -> None:
    account_id, key = server.account_key("10")
    accepted: dict[str, str] = {}
    results: list[str] = []
    for workflow in WORKFLOWS.values():
        code, body = create(server, key, workflow)
        assert code == 200, (workflow.id, body)
        assert body["code"] == 0 and body["msg"] == "success" and body["data"]["taskId"]
        accepted[workflow.id] = body["data"]["taskId"]
    for workflow_id, task_id in accepted.items():
        workflow = WORKFLOWS[workflow_id]
        final = wait_done(server, key, workflow.slug, task_id)[-1]
        assert final["data"] == "SUCCESS", (workflow_id, final)
        assert final["code"] == 0 and final["queue"] == 0
        output = final["output"]
        if workflow.output == "object":
            assert set(output) == {"comparisonUrl", "resultUrl"}
            urls = [output["resultUrl"], output["comparisonUrl"]]
            assert urls[0] != urls[1]
        else:
            assert isinstance(output, list) and len(output) == 1
            urls = output
        results.extend(urls)
        for url in urls:
            content_type, data = served(server, url)
            if workflow.output_kind == "video":
                assert content_type == "video/mp4" and data[4:8] == b"ftyp", workflow_id
            else:
                assert content_type == "image/png" and data.startswith(b"\x89PNG"), workflow_id
    sent = {body["workflowId"]: body["nodeInfoList"] for body in creates(comfy)}
    assert set(sent) == {w.workflow_id for w in WORKFLOWS.values()}, "one upstream task per workflow"
    face = WORKFLOWS["face-swapper"]
    assert {"nodeId": "40", "fieldName": "value", "fieldValue": "0"} in sent[face.workflow_id], "the default"
    anything = WORKFLOWS["anything-changer"]
    assert {"nodeId": "51", "fieldName": "text", "fieldValue": "a sourceDescription"} in sent[
        anything.workflow_id
    ]
    uploads = [r.form for r in comfy.requests if r.path == "/task/openapi/upload"]
    assert sum(1 for u in uploads if u["fileType"] == "video") == 1
    spent = Decimal("10") - wait_settled(server, account_id)[0]
    assert spent == sum(Decimal(w.price) for w in WORKFLOWS.values())
    kept = [p for p in (Path(server.settings.data_dir) / "files").rglob("*") if p.is_file()]
    assert len(kept) == len(results), "the input files are dropped once submitted; the results stay"


def test_status_goes_through_the_queue(server: GatewayServer, comfy: ComfyUISim) -> None:
    comfy.queued_polls, comfy.running_polls = 3, 3
    _, key = server.account_key()
    workflow = WORKFLOWS["face-swapper"]
    _, body = create(server, key, workflow, files=form_for(workflow)[0], data={"filmFilter": "1"})
    seen = wait_done(server, key, workflow.slug, body["data"]["taskId"])
    states = [(s["data"], s["queue"]) for s in seen]
    assert any(state == "QUEUED" and queue >= 1 for state, queue in states), states
    assert ("RUNNING", 0) in states and states[-1] == ("SUCCESS", 0)
    order = [state for state, _ in states]
    assert order.index("RUNNING") > order.index("QUEUED") and order.index("SUCCESS") > order.index("RUNNING")
    assert all(s["output"] == [] for s in seen[:-1]), "the output keeps its type before the end"
    assert {"nodeId": "40", "fieldName": "value", "fieldValue": "1"} in creates(comfy)[-1]["nodeInfoList"]


BAD_FORMS: list[tuple[str, str | None, dict[str, str], str]] = [
    ("face-swapper", "targetImageFile", {}, "targetImageFile"),
    ("clothes-changer", "modelImageFile", {}, "modelImageFile"),
    ("clothes-changer-upload-mask", "clothesMaskFile", {}, "clothesMaskFile"),
    ("anything-changer", "sourceDescription", {}, "sourceDescription"),
    ("anything-changer-upload-mask", "targetMaskFile", {}, "targetMaskFile"),
    ("image-to-reality", "imageFile", {}, "imageFile"),
    ("style-transfer", "refImageFile", {}, "refImageFile"),
    ("image-eliminater", "maskFile", {}, "maskFile"),
    ("video-face-swapper", "videoFile", {}, "videoFile"),
    ("face-swapper", None, {"filmFilter": "2"}, "filmFilter"),
    ("anything-changer", None, {"smallObject": "yes"}, "smallObject"),
    ("clothes-changer", None, {"modelImgSegLabels": "ten"}, "modelImgSegLabels"),
    ("image-to-reality", None, {"targetType": "x" * 201}, "targetType"),
]


def test_bad_forms_are_422_naming_the_field(server: GatewayServer, comfy: ComfyUISim) -> None:
    account_id, key = server.account_key("1")
    for workflow_id, skip, texts, field in BAD_FORMS:
        workflow = WORKFLOWS[workflow_id]
        files, data = form_for(workflow, skip=skip, **texts)
        code, body = create(server, key, workflow, files=files, data=data)
        assert code == 422, (workflow_id, field, body)
        assert f"'{field}'" in body["error"]["message"], (workflow_id, body)
        assert body["error"]["err_code"] == -10011
    assert comfy.requests == [] and balance(server, account_id) == (Decimal("1"), Decimal("0"))


def test_bad_files_are_refused(
    server: GatewayServer, comfy: ComfyUISim, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, key = server.account_key("1")
    face = WORKFLOWS["face-swapper"]
    files, _ = form_for(face)
    files["faceImageFile"] = ("face.png", b"not an image at all", "image/png")
    code, body = create(server, key, face, files=files, data={})
    assert code == 422 and "faceImageFile" in body["error"]["message"]
    files, _ = form_for(face, skip="faceImageFile")
    code, body = create(server, key, face, files=files, data={"faceImageFile": "https://example.com/a.png"})
    assert code == 422 and "must be a file" in body["error"]["message"]
    video = WORKFLOWS["video-face-swapper"]
    files, _ = form_for(video)
    files["videoFile"] = ("clip.mp4", make_image(), "video/mp4")
    code, body = create(server, key, video, files=files, data={})
    assert code == 422 and "not an MP4, MOV or WebM video" in body["error"]["message"]
    files["videoFile"] = ("clip.mp4", make_video("mp4"), "text/html")
    code, body = create(server, key, video, files=files, data={})
    assert code == 422 and "text/html" in body["error"]["message"]
    monkeypatch.setattr(comfyui_api, "VIDEO_MAX_BYTES", 1000)
    files["videoFile"] = ("clip.mp4", make_video("mp4", 2048), "video/mp4")
    code, body = create(server, key, video, files=files, data={})
    assert code == 413 and "videoFile" in body["error"]["message"]
    assert comfy.requests == []


def test_webm_and_mov_inputs_are_accepted(server: GatewayServer, comfy: ComfyUISim) -> None:
    _, key = server.account_key()
    video = WORKFLOWS["video-face-swapper"]
    for container, media_type in (("webm", "video/webm"), ("mov", "video/quicktime")):
        files, _ = form_for(video)
        files["videoFile"] = (f"clip.{container}", make_video(container), media_type)
        code, body = create(server, key, video, files=files, data={})
        assert code == 200, body
        assert wait_done(server, key, video.slug, body["data"]["taskId"])[-1]["data"] == "SUCCESS"
        upload = [r.form for r in comfy.requests if r.path == "/task/openapi/upload"][-1]
        assert upload["file"][0] == f"videoFile.{container}" and upload["file"][2] == media_type


def test_failure_is_failed_and_refunded(server: GatewayServer, comfy: ComfyUISim) -> None:
    account_id, key = server.account_key("1")
    comfy.config.fail_jobs_next = 1
    workflow = WORKFLOWS["clothes-changer"]
    _, body = create(server, key, workflow)
    final = wait_done(server, key, workflow.slug, body["data"]["taskId"])[-1]
    assert final["data"] == "FAILED" and "out of memory" in final["error"]["message"]
    assert final["output"] == {"comparisonUrl": "", "resultUrl": ""}
    assert wait_settled(server, account_id) == (Decimal("1"), Decimal("0"))


def test_a_lost_upstream_task_fails_and_is_refunded(server: GatewayServer, comfy: ComfyUISim) -> None:
    account_id, key = server.account_key("1")
    comfy.queued_polls = 10_000
    workflow = WORKFLOWS["face-swapper"]
    _, body = create(server, key, workflow)
    end = time.monotonic() + 10
    while not comfy.tasks and time.monotonic() < end:
        time.sleep(0.01)
    comfy.tasks.clear()  # the service forgets it: 804 on every status call
    final = wait_done(server, key, workflow.slug, body["data"]["taskId"])[-1]
    assert final["data"] == "FAILED" and "no longer knows" in final["error"]["message"]
    assert wait_settled(server, account_id) == (Decimal("1"), Decimal("0"))


def test_a_result_that_is_not_an_image_fails(
    server: GatewayServer, comfy: ComfyUISim, monkeypatch: pytest.MonkeyPatch
) -> None:
    def junk(width: int, height: int, fmt: str = "png") -> str:
        comfy.files["junk.png"] = (b"<html>not an image</html>", "image/png")
        return f"{comfy.base_url}/_files/junk.png"

    monkeypatch.setattr(comfy, "host_image", junk)
    account_id, key = server.account_key("1")
    workflow = WORKFLOWS["style-transfer"]
    _, body = create(server, key, workflow)
    final = wait_done(server, key, workflow.slug, body["data"]["taskId"])[-1]
    assert final["data"] == "FAILED" and "not an image" in final["error"]["message"]
    assert wait_settled(server, account_id) == (Decimal("1"), Decimal("0"))


def test_a_full_queue_moves_to_the_next_channel(server: GatewayServer, comfy: ComfyUISim) -> None:
    account_id, key = server.account_key("1")
    comfy.queue_full_next = 1
    workflow = WORKFLOWS["style-transfer"]
    _, body = create(server, key, workflow)
    assert wait_done(server, key, workflow.slug, body["data"]["taskId"])[-1]["data"] == "SUCCESS"
    assert len(creates(comfy)) == 2, "805 on the first channel, accepted on the second"
    assert wait_settled(server, account_id)[0] == Decimal("1") - Decimal(workflow.price)


def test_upstream_refusal_fails_the_task(server: GatewayServer, comfy: ComfyUISim) -> None:
    account_id, key = server.account_key("1")
    comfy.workflows.pop(WORKFLOWS["image-eliminater"].workflow_id)  # neither channel has it: 380 twice
    workflow = WORKFLOWS["image-eliminater"]
    _, body = create(server, key, workflow)
    final = wait_done(server, key, workflow.slug, body["data"]["taskId"])[-1]
    assert final["data"] == "FAILED" and "code 380" in final["error"]["message"]
    assert wait_settled(server, account_id) == (Decimal("1"), Decimal("0"))


def test_foreign_and_unknown_task_ids_are_404(server: GatewayServer) -> None:
    _, key = server.account_key()
    _, other = server.account_key()
    workflow = WORKFLOWS["image-to-reality"]
    _, body = create(server, key, workflow)
    task_id = body["data"]["taskId"]
    code, answer = status(server, other, workflow.slug, task_id)
    assert code == 404 and answer["error"]["err_code"] == -10010
    assert status(server, key, workflow.slug, "no-such-task")[0] == 404
    assert status(server, key, "style-transfer", task_id)[0] == 404, "another workflow's task"
    resp = HTTP.get(
        f"{server.base_url}/302/comfyui/{workflow.slug}/check-task-status",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert resp.status_code == 422 and "taskId" in resp.json()["error"]["message"]
    assert status(server, key, workflow.slug, task_id)[0] == 200


def test_webhook_is_delivered_signed(server: GatewayServer) -> None:
    account_id, key = server.account_key("1", allow_manage_key=True)
    secret = server.admin("GET", f"/admin/accounts/{account_id}").json()["webhook_secret"]
    workflow = WORKFLOWS["anything-changer-upload-mask"]
    with Receiver() as receiver:
        code, body = create(server, key, workflow, query=f"?webhook={receiver.url}")
        assert code == 200, body
        end = time.monotonic() + 15
        while not receiver.calls and time.monotonic() < end:
            time.sleep(0.02)
    assert len(receiver.calls) == 1
    headers, raw = receiver.calls[0]
    assert verify(secret, raw, headers[SIGNATURE_HEADER.lower()])
    payload = orjson.loads(raw)
    assert payload["taskId"] == body["data"]["taskId"] and payload["data"] == "SUCCESS"
    assert payload["output"]["resultUrl"].startswith(f"{server.base_url}/files/")
    assert headers["x-omnirelay-event"] == "task.succeeded"


def test_private_webhook_and_empty_balance_are_refused(server: GatewayServer, comfy: ComfyUISim) -> None:
    _, key = server.account_key("1")
    workflow = WORKFLOWS["style-transfer"]
    code, body = create(server, key, workflow, query="?webhook=http://10.0.0.8/hook")
    assert code == 422 and "10.0.0.8" in body["error"]["message"]
    _, broke = server.account_key("0")
    code, body = create(server, broke, workflow)
    assert code == 402 and body["error"]["err_code"] == -10004
    code, body = create(server, "sk-not-a-key", workflow)
    assert code == 401
    assert comfy.requests == []
    files_dir = Path(server.settings.data_dir) / "files"
    assert not any(p.is_file() for p in files_dir.rglob("*")), "refused tasks keep no input files"


def test_routes_are_listed(server: GatewayServer) -> None:
    paths = orjson.loads(HTTP.get(f"{server.base_url}/openapi.json").content)["paths"]
    for workflow in WORKFLOWS.values():
        assert "post" in paths[workflow.create_route]
        assert "get" in paths[workflow.status_route]
    assert len(comfyui_api.OPS) == len(WORKFLOWS) + len({w.slug for w in WORKFLOWS.values()})
