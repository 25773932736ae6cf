"""In-process simulator of a midjourney-proxy "plus" upstream, for the ``midjourney`` adapter.

Wire format (midjourney-proxy DTOs and ``ReturnCode``, the plus API's action/modal/cancel), for each
pool prefix ``/mj``, ``/mj-relax`` and ``/mj-turbo``:

- ``POST {prefix}/submit/imagine|action|blend|describe|modal`` answers HTTP 200
  ``{"code", "description", "result", "properties"}``: 1 submitted (``result`` is the task id), 21
  waiting for a modal (an action whose button opens one: Vary Region, Custom Zoom), 22 queued
  (``queued_next``), 23 queue full (``queue_full_next``), 24 banned prompt (the word "forbidden"),
  3 unknown parent task, 4 validation error, 9 failure (``system_failure_next``).
- ``GET {prefix}/task/{id}/fetch`` answers the task object. Each fetch advances a job: NOT_START, then
  SUBMITTED, then IN_PROGRESS ("10%".."99%") until ``polls_before_ready`` fetches, then SUCCESS with a
  grid image (``imageUrl``, hosted here) and its buttons (U1-U4, reroll, V1-V4; an upscale gets
  Vary/Zoom/Pan buttons), or FAILURE with ``failReason`` (``fail_jobs_next``). A MODAL task waits for
  its modal; a cancelled one answers CANCEL. An unknown id answers HTTP 200 with an empty body, as
  midjourney-proxy does.
- ``POST {prefix}/task/{id}/cancel`` cancels an unfinished task (code 1), else code 4; unknown: 3.
- Auth: header ``mj-api-secret``; a wrong or missing one is HTTP 401.
"""

from __future__ import annotations

import base64
import binascii
import io
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image

from tests.upstreams.imaging import JSON, ImageSim, ImageSimConfig

PREFIXES = ("mj", "mj-relax", "mj-turbo")
BANNED_WORD = "forbidden"
FAIL_REASON = "Job failed: the Midjourney bot reported an internal error"
GRID_SIZE = (128, 128)
UPSCALE_SIZE = (64, 64)
BOT_TYPES = frozenset({"MID_JOURNEY", "NIJI_JOURNEY"})
DIMENSIONS = frozenset({"PORTRAIT", "SQUARE", "LANDSCAPE"})
MODAL_MARKERS = ("MJ::Inpaint::", "MJ::CustomZoom::")


@dataclass
class MJSimConfig(ImageSimConfig):
    queue_full_next: int = 0  # next submits answered code 23
    queued_next: int = 0  # next submits accepted with code 22 (queued)
    system_failure_next: int = 0  # next submits answered code 9


@dataclass
class SimTask:
    id: str
    action: str
    prompt: str = ""
    bot_type: str = "MID_JOURNEY"
    custom_id: str = ""
    parent: str | None = None
    pool: str = "mj"
    status: str = "NOT_START"
    polls: int = 0
    outcome: str = "succeeded"
    size: tuple[int, int] = GRID_SIZE
    image_url: str = ""
    buttons: list[JSON] = field(default_factory=list)
    fail_reason: str = ""
    description: str = ""
    submit_time: int = 0
    start_time: int | None = None
    finish_time: int | None = None
    modal: JSON = field(default_factory=dict)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _button(custom_id: str, label: str, emoji: str = "") -> JSON:
    return {"customId": custom_id, "emoji": emoji, "label": label, "style": 2, "type": 2}


def grid_buttons(job_hash: str) -> list[JSON]:
    buttons = [_button(f"MJ::JOB::upsample::{i}::{job_hash}", f"U{i}") for i in range(1, 5)]
    buttons.append(_button(f"MJ::JOB::reroll::0::{job_hash}::SOLO", "", "🔄"))
    buttons += [_button(f"MJ::JOB::variation::{i}::{job_hash}", f"V{i}") for i in range(1, 5)]
    return buttons


def upscale_buttons(job_hash: str) -> list[JSON]:
    return [
        _button(f"MJ::JOB::high_variation::1::{job_hash}::SOLO", "Vary (Strong)", "🪄"),
        _button(f"MJ::JOB::low_variation::1::{job_hash}::SOLO", "Vary (Subtle)", "🪄"),
        _button(f"MJ::Inpaint::1::{job_hash}::SOLO", "Vary (Region)", "🖌️"),
        _button(f"MJ::Outpaint::50::1::{job_hash}::SOLO", "Zoom Out 2x", "🔍"),
        _button(f"MJ::CustomZoom::{job_hash}", "Custom Zoom", "🔍"),
        _button(f"MJ::JOB::pan_left::1::{job_hash}::SOLO", "", "⬅️"),
    ]


def action_of(custom_id: str) -> str:
    lowered = custom_id.lower()
    for marker, action in (("upsample", "UPSCALE"), ("reroll", "REROLL"), ("variation", "VARIATION"),
                           ("inpaint", "INPAINT"), ("outpaint", "ZOOM"), ("customzoom", "ZOOM"),
                           ("pan_", "PAN")):  # fmt: skip
        if marker in lowered:
            return action
    return "VARIATION"


def image_size(value: Any) -> tuple[int, int]:
    """The size of a data-URL image; ValueError when it is not one."""
    if not isinstance(value, str) or not value.startswith("data:image/") or ";base64," not in value:
        raise ValueError("base64 must be a data:image/...;base64,... string")
    try:
        data = base64.b64decode(value.split(",", 1)[1], validate=True)
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except (binascii.Error, ValueError, OSError):
        raise ValueError("base64 is not a readable image") from None


class MidjourneySim(ImageSim):
    def __init__(self, api_keys: set[str] | None = None, config: MJSimConfig | None = None) -> None:
        self.mj_config = config or MJSimConfig()
        super().__init__(api_keys, self.mj_config)
        self.tasks: dict[str, SimTask] = {}

    def routes(self) -> list[web.RouteDef]:
        routes: list[web.RouteDef] = []
        for prefix in PREFIXES:
            routes += [
                web.post(f"/{prefix}/submit/imagine", self._imagine),
                web.post(f"/{prefix}/submit/action", self._action),
                web.post(f"/{prefix}/submit/blend", self._blend),
                web.post(f"/{prefix}/submit/describe", self._describe),
                web.post(f"/{prefix}/submit/modal", self._modal),
                web.get(f"/{prefix}/task/{{id}}/fetch", self._fetch),
                web.post(f"/{prefix}/task/{{id}}/cancel", self._cancel),
            ]
        return routes

    def error_body(self, status: int, message: str) -> JSON:
        return {"description": message}

    # --- helpers ------------------------------------------------------------------------------

    def _auth(self, request: web.Request) -> web.Response | None:
        if request.headers.get("mj-api-secret", "") not in self.api_keys:
            return web.json_response({"description": "mj-api-secret is missing or wrong"}, status=401)
        return None

    @staticmethod
    def reply(code: int, description: str, result: str | None = None, **properties: Any) -> web.Response:
        return web.json_response(
            {"code": code, "description": description, "result": result, "properties": properties}
        )

    async def _begin(self, request: web.Request) -> tuple[JSON | None, web.Response | None]:
        denied = self._auth(request)
        if denied is not None:
            return None, denied
        injected = self.take_injected_failure()
        if injected is not None:
            return None, injected
        body = await self.read_json(request)
        if not isinstance(body, dict):
            return None, self.reply(4, "the body must be a JSON object")
        return body, None

    def _refusal(self) -> web.Response | None:
        cfg = self.mj_config
        if cfg.queue_full_next > 0:
            cfg.queue_full_next -= 1
            return self.reply(23, "队列已满，请稍后尝试")
        if cfg.system_failure_next > 0:
            cfg.system_failure_next -= 1
            return self.reply(9, "系统异常")
        return None

    def _accept(self, task: SimTask, code: int = 1) -> web.Response:
        task.submit_time = _now_ms()
        task.outcome = self.job_outcome()
        self.tasks[task.id] = task
        if code == 1 and self.mj_config.queued_next > 0:
            self.mj_config.queued_next -= 1
            return self.reply(22, "排队中，前面还有1个任务", task.id, numberOfQueues=1, discordInstanceId="1")
        description = {1: "Submit success", 21: "Waiting for window confirm"}[code]
        return self.reply(code, description, task.id, discordInstanceId="1", finalPrompt=task.prompt)

    def _pool(self, request: web.Request) -> str:
        return request.path.strip("/").split("/", 1)[0]

    def new_task_id(self) -> str:
        return str(_now_ms() * 1000 + len(self.tasks))

    # --- submit routes ------------------------------------------------------------------------

    async def _imagine(self, request: web.Request) -> web.StreamResponse:
        body, stop = await self._begin(request)
        if stop is not None:
            return stop
        assert body is not None
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return self.reply(4, "prompt不能为空")
        if body.get("botType", "MID_JOURNEY") not in BOT_TYPES:
            return self.reply(4, "botType参数错误")
        for value in body.get("base64Array") or []:
            try:
                image_size(value)
            except ValueError as exc:
                return self.reply(4, f"base64格式错误: {exc}")
        if BANNED_WORD in prompt.lower():
            return self.reply(24, "可能包含敏感词", promptEn=prompt, bannedWord=BANNED_WORD)
        refused = self._refusal()
        if refused is not None:
            return refused
        task = SimTask(
            self.new_task_id(), "IMAGINE", prompt=prompt, bot_type=body.get("botType", "MID_JOURNEY")
        )
        task.pool = self._pool(request)
        return self._accept(task)

    async def _blend(self, request: web.Request) -> web.StreamResponse:
        body, stop = await self._begin(request)
        if stop is not None:
            return stop
        assert body is not None
        images = body.get("base64Array")
        if not isinstance(images, list) or not 2 <= len(images) <= 5:
            return self.reply(4, "base64List参数错误")
        try:
            for value in images:
                image_size(value)
        except ValueError as exc:
            return self.reply(4, f"base64格式错误: {exc}")
        if body.get("dimensions", "SQUARE") not in DIMENSIONS:
            return self.reply(4, "dimensions参数错误")
        refused = self._refusal()
        if refused is not None:
            return refused
        task = SimTask(self.new_task_id(), "BLEND", prompt="/blend")
        task.pool = self._pool(request)
        return self._accept(task)

    async def _describe(self, request: web.Request) -> web.StreamResponse:
        body, stop = await self._begin(request)
        if stop is not None:
            return stop
        assert body is not None
        try:
            size = image_size(body.get("base64"))
        except ValueError as exc:
            return self.reply(4, f"base64格式错误: {exc}")
        refused = self._refusal()
        if refused is not None:
            return refused
        task = SimTask(self.new_task_id(), "DESCRIBE", prompt="/describe", size=size)
        task.pool = self._pool(request)
        return self._accept(task)

    async def _action(self, request: web.Request) -> web.StreamResponse:
        body, stop = await self._begin(request)
        if stop is not None:
            return stop
        assert body is not None
        parent = self.tasks.get(str(body.get("taskId") or ""))
        custom_id = body.get("customId")
        if not isinstance(custom_id, str) or not custom_id:
            return self.reply(4, "customId不能为空")
        if parent is None:
            return self.reply(3, "关联任务不存在或已失效")
        if parent.status != "SUCCESS":
            return self.reply(4, "关联任务状态错误")
        if custom_id not in {b["customId"] for b in parent.buttons}:
            return self.reply(4, "customId参数错误")
        refused = self._refusal()
        if refused is not None:
            return refused
        action = action_of(custom_id)
        task = SimTask(self.new_task_id(), action, prompt=parent.prompt, bot_type=parent.bot_type,
                       custom_id=custom_id, parent=parent.id)  # fmt: skip
        task.pool = self._pool(request)
        task.size = UPSCALE_SIZE if action == "UPSCALE" else GRID_SIZE
        if custom_id.startswith(MODAL_MARKERS):
            task.status = "MODAL"
            return self._accept(task, 21)
        return self._accept(task)

    async def _modal(self, request: web.Request) -> web.StreamResponse:
        body, stop = await self._begin(request)
        if stop is not None:
            return stop
        assert body is not None
        task = self.tasks.get(str(body.get("taskId") or ""))
        if task is None:
            return self.reply(3, "任务不存在或已失效")
        if task.status != "MODAL":
            return self.reply(4, "任务状态错误")
        mask = body.get("maskBase64")
        if task.custom_id.startswith("MJ::Inpaint::"):
            try:
                image_size(mask)
            except ValueError as exc:
                return self.reply(4, f"maskBase64参数错误: {exc}")
        task.modal = {"prompt": body.get("prompt"), "mask": bool(mask)}
        if isinstance(body.get("prompt"), str) and body["prompt"]:
            task.prompt = body["prompt"]
        task.status = "SUBMITTED"
        task.polls = 0
        return self.reply(1, "Submit success", task.id)

    # --- task routes --------------------------------------------------------------------------

    def _advance(self, task: SimTask) -> None:
        if task.status in ("SUCCESS", "FAILURE", "CANCEL", "MODAL"):
            return
        task.polls += 1
        ready = self.config.polls_before_ready
        if task.polls <= ready:
            if task.polls == 1:
                task.status = "NOT_START"
            elif task.polls == 2:
                task.status = "SUBMITTED"
            else:
                task.status = "IN_PROGRESS"
                task.start_time = task.start_time or _now_ms()
            return
        task.start_time = task.start_time or _now_ms()
        task.finish_time = _now_ms()
        if task.outcome in ("failed", "moderated"):
            task.status = "FAILURE"
            task.fail_reason = FAIL_REASON
            return
        task.status = "SUCCESS"
        job_hash = str(uuid.uuid4())
        width, height = task.size
        task.image_url = self.host_image(width, height, "png")
        if task.action == "DESCRIBE":
            task.prompt = "1️⃣ a lighthouse at dusk --ar 1:1\n\n2️⃣ a calm sea --ar 1:1"
            task.buttons = []
        elif task.action == "UPSCALE":
            task.buttons = upscale_buttons(job_hash)
        else:
            task.buttons = grid_buttons(job_hash)

    def task_object(self, task: SimTask) -> JSON:
        ready = max(self.config.polls_before_ready, 1)
        progress = {"NOT_START": "0%", "SUBMITTED": "0%", "MODAL": "0%", "SUCCESS": "100%"}.get(task.status)
        if progress is None:
            progress = f"{min(99, max(10, int(100 * task.polls / (ready + 1))))}%"
        return {
            "id": task.id,
            "action": task.action,
            "customId": task.custom_id,
            "botType": task.bot_type,
            "prompt": task.prompt,
            "promptEn": task.prompt,
            "description": "/imagine " + task.prompt if task.action == "IMAGINE" else "",
            "state": "",
            "submitTime": task.submit_time,
            "startTime": task.start_time,
            "finishTime": task.finish_time,
            "imageUrl": task.image_url or None,
            "status": task.status,
            "progress": progress,
            "failReason": task.fail_reason or None,
            "buttons": task.buttons,
            "maskBase64": "",
            "properties": {
                "finalPrompt": task.prompt,
                "discordInstanceId": "1",
                "discordChannelId": "1",
                "notifyHook": "http://upstream.internal/hook",
                "messageHash": "abc",
            },
        }

    async def _fetch(self, request: web.Request) -> web.StreamResponse:
        denied = self._auth(request)
        if denied is not None:
            return denied
        injected = self.take_injected_failure()
        if injected is not None:
            return injected
        task = self.tasks.get(request.match_info["id"])
        if task is None:
            return web.Response(status=200, body=b"", content_type="application/json")
        self._advance(task)
        return web.json_response(self.task_object(task))

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        denied = self._auth(request)
        if denied is not None:
            return denied
        task = self.tasks.get(request.match_info["id"])
        if task is None:
            return self.reply(3, "任务不存在")
        if task.status in ("SUCCESS", "FAILURE", "CANCEL"):
            return self.reply(4, f"任务已结束: {task.status}")
        task.status = "CANCEL"
        task.fail_reason = "Cancelled by the client"
        task.finish_time = _now_ms()
        return self.reply(1, "success")


def channel_base_url(sim: ImageSim) -> str:
    return sim.base_url


Sim = MidjourneySim
