"""The ``comfyui`` adapter and the workflow table: pure mapping, then every call against the simulator."""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from PIL import Image

from omnirelay.core.tasks.comfyui import (
    Workflow,
    load_workflows,
    media_kind,
    node_inputs,
    pick_outputs,
    price_entries,
    status_view,
    video_container,
    workflow_from_row,
)
from omnirelay.core.tasks.model import Task
from omnirelay.providers.base import Capability, FailureKind, ProviderError
from omnirelay.providers.comfyui.adapter import (
    CODE_RULES,
    ComfyUIAdapter,
    NodeInput,
    OutputFile,
    TaskState,
    checked,
    failed_reason,
    parse_created,
    parse_outputs,
    parse_state,
)
from omnirelay.providers.registry import adapter_class
from omnirelay.settings import ChannelConfig
from tests.upstreams.comfyui.sim import FAILED_REASON, ComfyUISim, channel_base_url, make_video
from tests.upstreams.imaging import DEFAULT_KEY, make_image

WORKFLOWS = load_workflows()
SLUGS = {
    "clothes-changer",
    "face-swapper",
    "anything-changer",
    "image-to-reality",
    "style-transfer",
    "image-eliminater",
    "video-face-swapper",
}


def deadline(seconds: float = 10.0) -> float:
    return time.monotonic() + seconds


# --- the table ------------------------------------------------------------------------------------


def test_table_has_every_workflow_with_the_302_fields() -> None:
    assert {w.slug for w in WORKFLOWS.values()} == SLUGS
    assert len(WORKFLOWS) == 9
    routes = {w.create_route for w in WORKFLOWS.values()}
    assert "/302/comfyui/clothes-changer/create-task-upload-mask" in routes
    assert "/302/comfyui/anything-changer/create-task-upload-mask" in routes
    face = WORKFLOWS["face-swapper"]
    assert [f.name for f in face.fields] == ["faceImageFile", "targetImageFile", "filmFilter"]
    film = face.field("filmFilter")
    assert film is not None and film.values == ("1", "0") and film.default == "0"
    anything = WORKFLOWS["anything-changer"]
    required = [f.name for f in anything.fields if f.required]
    assert required == ["sourceImageFile", "targetImageFile", "sourceDescription", "targetDescription"]
    assert WORKFLOWS["clothes-changer"].output == "object"
    assert WORKFLOWS["style-transfer"].output == "list"
    video = WORKFLOWS["video-face-swapper"]
    assert video.output_kind == "video" and video.field("videoFile") is not None
    reality = WORKFLOWS["image-to-reality"].field("targetType")
    assert reality is not None and reality.default == "realistic" and not reality.required
    for workflow in WORKFLOWS.values():
        assert workflow.workflow_id and workflow.model == f"comfyui-{workflow.id}"
        slots = [(f.node, f.node_field) for f in workflow.fields]
        assert len(set(slots)) == len(slots), f"{workflow.id}: two fields feed one node input"


def test_price_entries_are_per_task() -> None:
    entries = {e["id"]: e for e in price_entries()}
    assert set(entries) == {w.model for w in WORKFLOWS.values()}
    assert entries["comfyui-face-swapper"]["price"] == {"per_request": "0.03"}
    assert all(e["category"] == "comfyui" for e in entries.values())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"output": "grid"}, "output must be"),
        ({"path": "make"}, "path must be"),
        ({"price": {}}, "per_task"),
        ({"upstream": {"workflow_id": "1", "outputs": {"resultUrl": "1"}}}, "comparisonUrl"),
        ({"fields": [{"name": "a", "kind": "file", "node": "1", "node_field": "image"}]}, "media"),
        (
            {
                "fields": [
                    {
                        "name": "a",
                        "kind": "text",
                        "values": ["1"],
                        "default": "2",
                        "node": "1",
                        "node_field": "v",
                    }
                ]
            },
            "default",
        ),
        ({"fields": [{"name": "a", "kind": "text"}]}, "node"),
    ],
)
def test_bad_rows_are_refused(change: dict[str, Any], message: str) -> None:
    row: dict[str, Any] = {
        "id": "x",
        "slug": "x",
        "output": "object",
        "output_kind": "image",
        "price": {"per_task": "0.01"},
        "upstream": {"workflow_id": "1", "outputs": {"resultUrl": "1", "comparisonUrl": "2"}},
        "fields": [],
    }
    row.update(change)
    with pytest.raises(ValueError, match=message):
        workflow_from_row(row)


def test_video_container_by_magic_bytes() -> None:
    assert video_container(make_video("mp4")) == "mp4"
    assert video_container(make_video("mov")) == "mov"
    assert video_container(make_video("webm")) == "webm"
    assert video_container(b"\x00\x00\x00\x08wide" + b"\x00" * 16) == "mov"
    assert video_container(make_image()) is None
    assert video_container(b"") is None
    assert video_container(b"\x1a\x45\xdf\xa3matroska") is None  # Matroska that is not WebM
    assert media_kind("PNG") == "image" and media_kind(".mp4") == "video" and media_kind("txt") is None


def test_node_inputs_follow_the_table() -> None:
    workflow = WORKFLOWS["face-swapper"]
    inputs = node_inputs(
        workflow, {"filmFilter": "1"}, {"faceImageFile": "api/a.png", "targetImageFile": "api/b.png"}
    )
    assert inputs == [
        NodeInput("3", "image", "api/a.png"),
        NodeInput("4", "image", "api/b.png"),
        NodeInput("40", "value", "1"),
    ]
    assert inputs[0].wire() == {"nodeId": "3", "fieldName": "image", "fieldValue": "api/a.png"}


def test_pick_outputs_by_node_then_by_order() -> None:
    clothes = WORKFLOWS["clothes-changer"]
    result, comparison = clothes.object_outputs["resultUrl"], clothes.object_outputs["comparisonUrl"]
    files = [
        OutputFile("http://u/c.png", "png", comparison),
        OutputFile("http://u/r.png", "png", result),
        OutputFile("http://u/x.txt", "txt", "1"),
    ]
    assert pick_outputs(clothes, files) == {"resultUrl": files[1], "comparisonUrl": files[0]}
    unnamed = [OutputFile("http://u/1.png", "png"), OutputFile("http://u/2.png", "png")]
    assert pick_outputs(clothes, unnamed) == {"resultUrl": unnamed[0], "comparisonUrl": unnamed[1]}
    assert pick_outputs(clothes, [OutputFile("http://u/1.png", "png")]) == {
        "resultUrl": OutputFile("http://u/1.png", "png")
    }
    face = WORKFLOWS["face-swapper"]
    node = face.list_outputs[0]
    mixed = [OutputFile("http://u/p.png", "png", "7"), OutputFile("http://u/r.png", "png", node)]
    assert pick_outputs(face, mixed) == [mixed[1]], "an output node named in the table wins"
    assert pick_outputs(face, unnamed) == unnamed
    video = WORKFLOWS["video-face-swapper"]
    assert pick_outputs(video, [*unnamed, OutputFile("http://u/v.mp4", "mp4")]) == [
        OutputFile("http://u/v.mp4", "mp4")
    ]


def _task(status: str, **fields: Any) -> Task:
    values: dict[str, Any] = {
        "id": "t1",
        "account_id": 1,
        "key_id": 1,
        "family": "comfyui",
        "kind": "clothes-changer",
        "model": "comfyui-clothes-changer",
        "channel": "c",
        "status": status,
        "request": {"workflow": "clothes-changer"},
        "upstream_task_id": "9",
        "upstream_state": {},
        "result": None,
        "error": None,
        "progress": None,
        "polls": 0,
        "hold": 0,
        "cost": 0,
        "settled": False,
        "request_id": "r",
        "webhook_url": None,
        "webhook_status": None,
        "webhook_attempts": 0,
        "created_at": 0.0,
        "updated_at": 0.0,
        "completed_at": None,
        "deadline_at": 0.0,
    }
    values.update(fields)
    return Task(**values)


def test_status_view_maps_every_state() -> None:
    empty = {"comparisonUrl": "", "resultUrl": ""}
    assert status_view(_task("pending")) == {
        "code": 0,
        "msg": "success",
        "data": "QUEUED",
        "queue": 0,
        "output": empty,
    }
    queued = status_view(_task("processing", upstream_state={"status": "QUEUED", "queue": 4}))
    assert (queued["data"], queued["queue"]) == ("QUEUED", 4)
    running = status_view(_task("processing", upstream_state={"status": "RUNNING", "queue": 4}))
    assert (running["data"], running["queue"]) == ("RUNNING", 0)
    output = {"comparisonUrl": "http://g/files/a.png", "resultUrl": "http://g/files/b.png"}
    done = status_view(_task("succeeded", result={"output": output}))
    assert (done["data"], done["output"]) == ("SUCCESS", output)
    failed = status_view(_task("failed", error={"message": "boom", "error_type": "generation_failed"}))
    assert failed["data"] == "FAILED" and failed["error"]["message"] == "boom"
    assert status_view(_task("pending", request={"workflow": "style-transfer"}))["output"] == []


# --- the wire mapping ------------------------------------------------------------------------------


def test_envelope_codes_are_classified() -> None:
    assert checked({"code": 0, "msg": "success", "data": {"a": 1}}) == {"a": 1}
    for code, (status, retryable, client_fault) in CODE_RULES.items():
        with pytest.raises(ProviderError) as caught:
            checked({"code": code, "msg": "nope", "data": None})
        assert (caught.value.status, caught.value.retryable, caught.value.client_fault) == (
            status,
            retryable,
            client_fault,
        )
        assert f"code {code}" in caught.value.message
    with pytest.raises(ProviderError) as caught:
        checked({"code": 9999, "msg": "weird"})
    assert caught.value.retryable and caught.value.status == 502
    bad: Any
    for bad in (None, [], {"msg": "no code"}, {"code": True}):
        with pytest.raises(ProviderError):
            checked(bad)
    assert CODE_RULES[421][1:] == (True, False), "a wrong key is the channel's problem"
    assert CODE_RULES[805][1:] == (True, False), "a full queue: another channel"
    assert CODE_RULES[301][1:] == (False, True)


def test_parsers() -> None:
    assert parse_created({"taskId": "12", "taskStatus": "QUEUED"}) == "12"
    assert parse_created({"taskId": 12}) == "12"
    with pytest.raises(ProviderError):
        parse_created({})
    assert parse_state({"queue": 3}, "queued") == TaskState("QUEUED", 3)
    assert parse_state({"queue": -1}, "RUNNING") == TaskState("RUNNING", None)
    with pytest.raises(ProviderError):
        parse_state({}, "DONE")
    files = parse_outputs(
        [
            {"fileUrl": "http://h/a.PNG", "nodeId": 5},
            {"fileUrl": "http://h/b", "fileType": "mp4", "nodeId": "9"},
            {"fileUrl": "ftp://h/c.png"},
            "junk",
        ]
    )
    assert files == [OutputFile("http://h/a.PNG", "png", "5"), OutputFile("http://h/b", "mp4", "9")]
    with pytest.raises(ProviderError):
        parse_outputs({"not": "a list"})
    assert failed_reason({"code": 807, "data": {"failedReason": FAILED_REASON}}) == (
        "CUDA out of memory. Tried to allocate 2.00 GiB (node KSampler)"
    )
    assert failed_reason({"code": 807, "data": {"failedReason": "oops"}}) == "oops"
    assert failed_reason({"code": 807, "data": None}) is None


def test_registered_without_capabilities() -> None:
    assert adapter_class("comfyui") is ComfyUIAdapter
    assert ComfyUIAdapter.capabilities == frozenset()
    assert Capability.IMAGE not in ComfyUIAdapter.capabilities


# --- against the simulator -------------------------------------------------------------------------


@pytest.fixture
async def sim() -> AsyncIterator[ComfyUISim]:
    server = ComfyUISim()
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
def adapter(sim: ComfyUISim, http: aiohttp.ClientSession) -> ComfyUIAdapter:
    channel = ChannelConfig(
        name="comfy", provider="comfyui", base_url=channel_base_url(sim), api_key=DEFAULT_KEY
    )
    return ComfyUIAdapter(channel, http)


async def upload_images(adapter: ComfyUIAdapter, workflow: Workflow) -> dict[str, str]:
    names: dict[str, str] = {}
    for spec in workflow.fields:
        if spec.kind != "file":
            continue
        if spec.media == "video":
            data, media_type, name = make_video(), "video/mp4", f"{spec.name}.mp4"
        else:
            data, media_type, name = make_image(80, 48), "image/png", f"{spec.name}.png"
        names[spec.name] = await adapter.upload(
            data, name, media_type, spec.media or "image", DEFAULT_KEY, deadline()
        )
    return names


async def run_to_end(adapter: ComfyUIAdapter, task_id: str) -> list[TaskState]:
    seen = []
    for _ in range(10):
        state = await adapter.status(task_id, DEFAULT_KEY, deadline())
        seen.append(state)
        if state.status in ("SUCCESS", "FAILED"):
            break
    return seen


@pytest.mark.parametrize("workflow_id", sorted(WORKFLOWS))
async def test_every_workflow_runs_on_the_simulator(
    adapter: ComfyUIAdapter, sim: ComfyUISim, http: aiohttp.ClientSession, workflow_id: str
) -> None:
    workflow = WORKFLOWS[workflow_id]
    sim.queued_polls, sim.running_polls = 2, 1
    uploaded = await upload_images(adapter, workflow)
    texts = {f.name: f.default or "a red hat" for f in workflow.fields if f.kind == "text"}
    task_id = await adapter.create(
        workflow.workflow_id, node_inputs(workflow, texts, uploaded), DEFAULT_KEY, deadline()
    )
    body = sim.last().json
    assert body["workflowId"] == workflow.workflow_id and body["apiKey"] == DEFAULT_KEY
    states = await run_to_end(adapter, task_id)
    assert [s.status for s in states] == ["QUEUED", "QUEUED", "RUNNING", "SUCCESS"]
    assert [s.queue for s in states[:2]] == [1, 0]
    files = await adapter.outputs(task_id, DEFAULT_KEY, deadline())
    picked = pick_outputs(workflow, files)
    chosen = list(picked.values()) if isinstance(picked, dict) else picked
    expected = 2 if workflow.output == "object" else 1
    assert len(chosen) == expected
    data = await adapter.download(chosen[0].url, deadline())
    if workflow.output_kind == "video":
        assert video_container(data) == "mp4"
    else:
        with Image.open(io.BytesIO(data)) as img:
            assert img.size == (80, 48), "the simulator answers at the input's size"


async def test_failed_task_reports_its_reason(adapter: ComfyUIAdapter, sim: ComfyUISim) -> None:
    workflow = WORKFLOWS["style-transfer"]
    sim.config.fail_jobs_next = 1
    uploaded = await upload_images(adapter, workflow)
    task_id = await adapter.create(
        workflow.workflow_id, node_inputs(workflow, {}, uploaded), DEFAULT_KEY, deadline()
    )
    assert (await run_to_end(adapter, task_id))[-1].status == "FAILED"
    reason = await adapter.failure_reason(task_id, DEFAULT_KEY, deadline())
    assert reason is not None and "out of memory" in reason
    with pytest.raises(ProviderError) as caught:
        await adapter.outputs(task_id, DEFAULT_KEY, deadline())
    assert "807" in caught.value.message


async def test_outputs_before_the_end_and_unknown_tasks(adapter: ComfyUIAdapter) -> None:
    workflow = WORKFLOWS["image-eliminater"]
    uploaded = await upload_images(adapter, workflow)
    task_id = await adapter.create(
        workflow.workflow_id, node_inputs(workflow, {}, uploaded), DEFAULT_KEY, deadline()
    )
    with pytest.raises(ProviderError) as caught:
        await adapter.outputs(task_id, DEFAULT_KEY, deadline())
    assert caught.value.body is not None and caught.value.body["code"] == 806
    with pytest.raises(ProviderError) as caught:
        await adapter.status("nope", DEFAULT_KEY, deadline())
    assert caught.value.body is not None and caught.value.body["code"] == 804
    assert not caught.value.retryable


async def test_create_is_validated_against_the_workflow(adapter: ComfyUIAdapter, sim: ComfyUISim) -> None:
    workflow = WORKFLOWS["face-swapper"]
    uploaded = await upload_images(adapter, workflow)
    good = node_inputs(workflow, {"filmFilter": "0"}, uploaded)
    with pytest.raises(ProviderError) as caught:
        await adapter.create(
            workflow.workflow_id, [*good, NodeInput("999", "image", "x")], DEFAULT_KEY, deadline()
        )
    assert caught.value.client_fault and not caught.value.retryable and "node 999" in caught.value.message
    with pytest.raises(ProviderError) as caught:
        await adapter.create(workflow.workflow_id, good[1:], DEFAULT_KEY, deadline())
    assert "not all set" in caught.value.message
    swapped = [NodeInput(good[0].node_id, good[0].field_name, "api/never-uploaded.png"), *good[1:]]
    with pytest.raises(ProviderError) as caught:
        await adapter.create(workflow.workflow_id, swapped, DEFAULT_KEY, deadline())
    assert "not an uploaded image" in caught.value.message
    with pytest.raises(ProviderError) as caught:
        await adapter.create("404404", good, DEFAULT_KEY, deadline())
    assert caught.value.retryable and not caught.value.client_fault and caught.value.status == 404
    sim.queue_full_next = 1
    with pytest.raises(ProviderError) as caught:
        await adapter.create(workflow.workflow_id, good, DEFAULT_KEY, deadline())
    assert caught.value.retryable and caught.value.status == 429
    assert await adapter.create(workflow.workflow_id, good, DEFAULT_KEY, deadline())


async def test_uploads_are_checked(adapter: ComfyUIAdapter) -> None:
    with pytest.raises(ProviderError) as caught:
        await adapter.upload(b"not an image", "a.png", "image/png", "image", DEFAULT_KEY, deadline())
    assert caught.value.client_fault and "not an image" in caught.value.message
    with pytest.raises(ProviderError) as caught:
        await adapter.upload(make_image(), "a.mp4", "video/mp4", "video", DEFAULT_KEY, deadline())
    assert "not a video" in caught.value.message
    name = await adapter.upload(make_video("webm"), "v.webm", "video/webm", "video", DEFAULT_KEY, deadline())
    assert name.startswith("api/") and name.endswith(".webm")


async def test_wrong_key_and_http_errors_are_the_channels(adapter: ComfyUIAdapter, sim: ComfyUISim) -> None:
    with pytest.raises(ProviderError) as caught:
        await adapter.upload(make_image(), "a.png", "image/png", "image", "sk-wrong", deadline())
    assert caught.value.retryable and not caught.value.client_fault and caught.value.status == 401
    with pytest.raises(ProviderError) as caught:
        await adapter.status("1", "sk-wrong", deadline())
    assert caught.value.status == 401
    sim.config.fail_next = [503]
    with pytest.raises(ProviderError) as caught:
        await adapter.status("1", DEFAULT_KEY, deadline())
    assert caught.value.kind is FailureKind.HTTP and caught.value.status == 503 and caught.value.retryable
    sim.config.fail_next = [{"status": 400, "body": {"code": 301, "msg": "PARAMS_INVALID: bad"}}]
    with pytest.raises(ProviderError) as caught:
        await adapter.status("1", DEFAULT_KEY, deadline())
    assert caught.value.client_fault and caught.value.message == "PARAMS_INVALID: bad"


async def test_download_limits(adapter: ComfyUIAdapter, sim: ComfyUISim) -> None:
    url = sim.host_image(64, 64)
    assert len(await adapter.download(url, deadline())) > 0
    with pytest.raises(ProviderError) as caught:
        await adapter.download(url, deadline(), limit=10)
    assert caught.value.kind is FailureKind.GENERATION
    with pytest.raises(ProviderError) as caught:
        await adapter.download(f"{sim.base_url}/_files/missing.png", deadline())
    assert caught.value.retryable and caught.value.status == 404
    with pytest.raises(ProviderError):
        await adapter.download("file:///etc/passwd", deadline())
    with pytest.raises(ProviderError) as caught:
        await adapter.download(url, time.monotonic() - 1)
    assert caught.value.kind is FailureKind.TIMEOUT
