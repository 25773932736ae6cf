"""In-process simulator of the ComfyUI workflow service the ``comfyui`` adapter speaks (docs/comfyui.md).

The contract, RunningHub-style: every call is ``POST /task/openapi/<name>``, authenticated by
``apiKey`` in the body, answered HTTP 200 ``{"code", "msg", "data"}`` (code 0 = success).

- ``upload`` (multipart ``apiKey``, ``fileType`` image|video, ``file``): the file is checked (an image
  Pillow can open; a video with an MP4/MOV/WebM signature) → ``data: {fileName, fileType}``
- ``create`` ``{apiKey, workflowId, nodeInfoList}``: the workflow must exist (380), every entry must
  name an input of one of its nodes, file inputs must name an uploaded file of the right kind and every
  file input must be fed (301); a full queue answers 805 → ``data: {taskId, taskStatus: "QUEUED"}``
- ``status`` ``{apiKey, taskId}``: QUEUED for ``queued_polls`` polls (with ``queue`` counting down),
  RUNNING for ``running_polls`` polls, then SUCCESS, or FAILED for a job marked by ``fail_jobs_next``
- ``outputs`` ``{apiKey, taskId}``: 806 until the task ends; 807 with ``data.failedReason`` when it
  failed; else ``data: [{fileUrl, fileType, nodeId, taskCostTime}]``, one hosted file per output node
  (a PNG the size of the first input image, or a small MP4)

Codes: 421 wrong apiKey, 301 invalid parameters, 380 unknown workflow, 804 unknown task, 805 queue
full, 806 task still running, 807 task failed. ``fail_next`` injects HTTP errors (body ``{code, msg}``).
"""

from __future__ import annotations

import io
import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image

from omnirelay.core.tasks.comfyui import Workflow, load_workflows
from tests.upstreams.imaging import JSON, ImageSim, ImageSimConfig, Job

FAILED_REASON = {
    "node_name": "KSampler",
    "exception_message": "CUDA out of memory. Tried to allocate 2.00 GiB",
    "exception_type": "torch.OutOfMemoryError",
}


def make_video(container: str = "mp4", size: int = 2048) -> bytes:
    """Bytes that look like a video of the given container to a signature check (not playable)."""
    if container == "webm":
        head = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm"
        return head + b"\x00" * max(0, size - len(head))
    brand = b"qt  " if container == "mov" else b"isom"
    ftyp = b"\x00\x00\x00\x18ftyp" + brand + b"\x00\x00\x02\x00" + brand + b"mp41"
    mdat = max(8, size - len(ftyp))
    return ftyp + mdat.to_bytes(4, "big") + b"mdat" + b"\x00" * (mdat - 8)


def is_video(data: bytes) -> bool:
    return data[4:8] == b"ftyp" or (data[:4] == b"\x1a\x45\xdf\xa3" and b"webm" in data[:4096])


@dataclass
class SimWorkflow:
    workflow_id: str
    inputs: dict[tuple[str, str], str]  # (nodeId, fieldName) -> "image" | "video" | "text"
    outputs: list[tuple[str, str]]  # (nodeId, "image" | "video")

    @property
    def file_inputs(self) -> list[tuple[str, str]]:
        return [slot for slot, kind in self.inputs.items() if kind != "text"]


def sim_workflow(workflow: Workflow) -> SimWorkflow:
    inputs: dict[tuple[str, str], str] = {(f.node, f.node_field): f.media or "text" for f in workflow.fields}
    nodes = list(workflow.object_outputs.values()) or list(workflow.list_outputs)
    return SimWorkflow(workflow.workflow_id, inputs, [(node, workflow.output_kind) for node in nodes])


def workflows_from_catalog() -> dict[str, SimWorkflow]:
    """The reference deployment: one workflow per row of catalog/comfyui.yaml."""
    return {w.workflow_id: sim_workflow(w) for w in load_workflows().values()}


@dataclass
class Upload:
    data: bytes
    kind: str  # "image" | "video"
    size: tuple[int, int] = (64, 64)


@dataclass
class SimTask:
    job: Job
    workflow: SimWorkflow
    inputs: list[JSON] = field(default_factory=list)


class ComfyUISim(ImageSim):
    def __init__(
        self,
        api_keys: set[str] | None = None,
        config: ImageSimConfig | None = None,
        *,
        workflows: dict[str, SimWorkflow] | None = None,
    ) -> None:
        super().__init__(api_keys, config)
        self.workflows = workflows if workflows is not None else workflows_from_catalog()
        self.uploads: dict[str, Upload] = {}
        self.tasks: dict[str, SimTask] = {}
        self.queued_polls = 1  # status polls answered QUEUED
        self.running_polls = 1  # then this many RUNNING
        self.report_queue = True  # QUEUED answers carry ``queue``
        self.queue_full_next = 0  # the next N creates answer 805
        self._task_ids = itertools.count(1910246754753896450)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/task/openapi/upload", self._upload),
            web.post("/task/openapi/create", self._create),
            web.post("/task/openapi/status", self._status),
            web.post("/task/openapi/outputs", self._outputs),
        ]

    # --- shapes -------------------------------------------------------------------------------

    def error_body(self, status: int, message: str) -> JSON:
        return {"code": status, "msg": message, "data": None}

    @staticmethod
    def ok(data: Any, **extra: Any) -> web.Response:
        return web.json_response({"code": 0, "msg": "success", "data": data, **extra})

    @staticmethod
    def fail(code: int, msg: str, data: Any = None) -> web.Response:
        return web.json_response({"code": code, "msg": msg, "data": data})

    def _key_ok(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.api_keys

    # --- state --------------------------------------------------------------------------------

    def state(self, task: SimTask) -> str:
        polls = task.job.polls
        if polls <= self.queued_polls:
            return "QUEUED"
        if polls <= self.queued_polls + self.running_polls:
            return "RUNNING"
        return "FAILED" if task.job.outcome != "succeeded" else "SUCCESS"

    def _host_video(self) -> str:
        name = f"{self.new_id('vid')}.mp4"
        self.files[name] = (make_video("mp4", 4096), "video/mp4")
        return f"{self.base_url}/_files/{name}"

    def _make_outputs(self, task: SimTask) -> list[JSON]:
        if not task.job.outputs:
            sizes = [
                self.uploads[i["fieldValue"]].size for i in task.inputs if i["fieldValue"] in self.uploads
            ]
            width, height = next(iter(sizes), self.config.default_size)
            for _node, kind in task.workflow.outputs:
                url = self._host_video() if kind == "video" else self.host_image(width, height, "png")
                task.job.outputs.append(url)
        return [
            {
                "fileUrl": url,
                "fileType": "mp4" if kind == "video" else "png",
                "nodeId": node,
                "taskCostTime": "12",
            }
            for url, (node, kind) in zip(task.job.outputs, task.workflow.outputs, strict=True)
        ]

    # --- routes -------------------------------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        form = await self.read_form(request)
        if not self._key_ok(form.get("apiKey")):
            return self.fail(421, "APIKEY_INVALID")
        injected = self.take_injected_failure()
        if injected is not None:
            return injected
        kind = form.get("fileType", "image")
        part = form.get("file")
        if kind not in ("image", "video") or not isinstance(part, tuple):
            return self.fail(301, "PARAMS_INVALID: file and fileType (image or video) are required")
        filename, data, _content_type = part
        upload = Upload(data, kind)
        if kind == "image":
            try:
                with Image.open(io.BytesIO(data)) as img:
                    img.load()
                    upload.size = img.size
            except Exception:
                return self.fail(301, "PARAMS_INVALID: the file is not an image")
        elif not is_video(data):
            return self.fail(301, "PARAMS_INVALID: the file is not a video")
        ext = filename.rsplit(".", 1)[-1] if "." in filename else "bin"
        name = f"api/{secrets.token_hex(16)}.{ext}"
        self.uploads[name] = upload
        return self.ok({"fileName": name, "fileType": kind})

    def _validate(self, workflow: SimWorkflow, node_info: Any) -> str | None:
        if not isinstance(node_info, list):
            return "nodeInfoList must be a list"
        fed: set[tuple[str, str]] = set()
        for index, item in enumerate(node_info):
            if not isinstance(item, dict) or not {"nodeId", "fieldName", "fieldValue"} <= set(item):
                return f"nodeInfoList[{index}] needs nodeId, fieldName and fieldValue"
            slot = (str(item["nodeId"]), str(item["fieldName"]))
            kind = workflow.inputs.get(slot)
            if kind is None:
                return f"nodeInfoList[{index}]: node {slot[0]} has no input {slot[1]}"
            value = item["fieldValue"]
            if not isinstance(value, str):
                return f"nodeInfoList[{index}]: fieldValue must be a string"
            if kind != "text":
                upload = self.uploads.get(value)
                if upload is None or upload.kind != kind:
                    return f"nodeInfoList[{index}]: {value!r} is not an uploaded {kind}"
            fed.add(slot)
        missing = [f"{n}.{f}" for n, f in workflow.file_inputs if (n, f) not in fed]
        if missing:
            return f"the workflow's file inputs are not all set: {', '.join(missing)}"
        return None

    async def _create(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        if not isinstance(body, dict):
            return self.fail(301, "PARAMS_INVALID: a JSON object is required")
        if not self._key_ok(body.get("apiKey")):
            return self.fail(421, "APIKEY_INVALID")
        injected = self.take_injected_failure()
        if injected is not None:
            return injected
        if self.queue_full_next > 0:
            self.queue_full_next -= 1
            return self.fail(805, "APIKEY_TASK_QUEUE_MAXED")
        workflow = self.workflows.get(str(body.get("workflowId", "")))
        if workflow is None:
            return self.fail(380, "WORKFLOW_NOT_EXISTS")
        problem = self._validate(workflow, body.get("nodeInfoList"))
        if problem is not None:
            return self.fail(301, f"PARAMS_INVALID: {problem}")
        task_id = str(next(self._task_ids))
        job = Job(id=task_id, request=body, outcome=self.job_outcome())
        self.jobs[task_id] = job
        self.tasks[task_id] = SimTask(job, workflow, list(body["nodeInfoList"]))
        return self.ok({"taskId": task_id, "taskStatus": "QUEUED", "clientId": "", "promptTips": "{}"})

    async def _task(self, request: web.Request) -> SimTask | web.Response:
        body = await self.read_json(request)
        if not isinstance(body, dict) or not self._key_ok(body.get("apiKey")):
            return self.fail(421, "APIKEY_INVALID")
        injected = self.take_injected_failure()
        if injected is not None:
            return injected
        task = self.tasks.get(str(body.get("taskId", "")))
        if task is None:
            return self.fail(804, "APIKEY_TASK_NOT_FOUND")
        return task

    async def _status(self, request: web.Request) -> web.StreamResponse:
        task = await self._task(request)
        if isinstance(task, web.Response):
            return task
        task.job.polls += 1
        state = self.state(task)
        if state == "QUEUED" and self.report_queue:
            return self.ok(state, queue=self.queued_polls - task.job.polls)
        return self.ok(state)

    async def _outputs(self, request: web.Request) -> web.StreamResponse:
        task = await self._task(request)
        if isinstance(task, web.Response):
            return task
        state = self.state(task)
        if state in ("QUEUED", "RUNNING"):
            return self.fail(806, "APIKEY_TASK_IS_RUNNING")
        if state == "FAILED":
            return self.fail(807, "APIKEY_TASK_FAILED", {"failedReason": FAILED_REASON})
        return self.ok(self._make_outputs(task))


def channel_base_url(sim: ImageSim) -> str:
    return sim.base_url


Sim = ComfyUISim
