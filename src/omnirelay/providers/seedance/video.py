"""ByteDance Seedance through Volcengine Ark's content generation tasks.

The channel's ``base_url`` is ``https://ark.cn-beijing.volces.com`` (BytePlus:
``https://ark.ap-southeast.bytepluses.com``), auth ``Authorization: Bearer <Ark API key>``.
``POST /api/v3/contents/generations/tasks`` ``{model, content: [{type: "text", text}, {type:
"image_url", image_url: {url}, role}]}`` answers ``{id}``; ``GET /api/v3/contents/generations/tasks/{id}``
answers ``{id, model, status, content: {video_url}, error?, usage}`` with ``status`` ``queued`` |
``running`` | ``succeeded`` | ``failed`` | ``cancelled``.

Generation settings travel as text commands after the prompt (``--resolution 1080p --ratio 16:9
--duration 5 ...``); a command already in the client's prompt is left as the client wrote it. Errors
are ``{"error": {code, message, param, type}}``; ``CODES`` maps ``code`` (a dotted code matches its
longest listed prefix).
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

from omnirelay.core.videos import (
    CHANNEL,
    CLIENT,
    MODERATED,
    RATE,
    SERVER,
    ErrorRule,
    VideoAdapter,
    VideoJob,
    VideoResult,
    missing_id,
    not_json_object,
    str_field,
    trim_inline,
)
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.image_adapter import generation_failed

TASKS_PATH = "/api/v3/contents/generations/tasks"
IN_PROGRESS = frozenset({"queued", "running"})
SUCCEEDED = "succeeded"
FAILED = frozenset({"failed", "cancelled"})
# job attribute or extra -> the text command it becomes
COMMANDS = (
    ("resolution", "--resolution"),
    ("aspect_ratio", "--ratio"),
    ("duration", "--duration"),
    ("fps", "--framespersecond"),
    ("camera_fixed", "--camerafixed"),
    ("seed", "--seed"),
    ("watermark", "--watermark"),
)
# Short spellings of the same commands, which a client may have written in the prompt.
_SHORT = {
    "--resolution": "--rs",
    "--ratio": "--rt",
    "--duration": "--dur",
    "--framespersecond": "--fps",
    "--camerafixed": "--cf",
    "--seed": "--seed",
    "--watermark": "--wm",
}

# Ark ``error.code`` -> what it means
CODES: dict[str, ErrorRule] = {
    "AuthenticationError": CHANNEL,
    "AccessDenied": ErrorRule(403, True, False),
    "AccountOverdueError": ErrorRule(402, True, False),
    "ModelNotOpen": ErrorRule(403, True, False),  # the model is not activated on the channel's account
    "InvalidEndpointOrModel": ErrorRule(404, True, False),  # .NotFound: not on the channel's account
    "InvalidParameter": CLIENT,
    "MissingParameter": CLIENT,
    "InvalidImageURL": CLIENT,
    "InputTextSensitiveContentDetected": MODERATED,
    "InputImageSensitiveContentDetected": MODERATED,
    "OutputVideoSensitiveContentDetected": MODERATED,
    "SensitiveContentDetected": MODERATED,
    "RateLimitExceeded": RATE,  # .EndpointRPMExceeded, .EndpointTPMExceeded
    "QuotaExceeded": RATE,
    "ServerOverloaded": RATE,
    "InternalServiceError": SERVER,
}


def code_rule(code: str | None) -> ErrorRule | None:
    if not code:
        return None
    matches = [prefix for prefix in CODES if code == prefix or code.startswith(prefix + ".")]
    return CODES[max(matches, key=len)] if matches else None


def _command_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def prompt_text(job: VideoJob) -> str:
    """The prompt with the job's settings appended as Seedance text commands."""
    text = job.prompt.strip()
    values: dict[str, Any] = {
        "resolution": job.resolution.lower() if job.resolution else None,
        "aspect_ratio": job.aspect_ratio,
        "duration": job.duration,
        "fps": job.fps,
        **{name: job.extra.get(name) for name in ("camera_fixed", "seed", "watermark")},
    }
    for name, command in COMMANDS:
        value = values.get(name)
        if value is None or f"{command} " in text or f"{_SHORT[command]} " in text:
            continue
        text = f"{text} {command} {_command_value(value)}"
    return text


def to_request(job: VideoJob) -> dict[str, Any]:
    if job.mode not in ("t2v", "i2v"):
        raise ProviderError(
            FailureKind.HTTP,
            f"Seedance does not do {job.mode}",
            status=400,
            retryable=False,
            client_fault=True,
        )
    content: list[dict[str, Any]] = [{"type": "text", "text": prompt_text(job)}]
    first, last = job.image_ref(), job.end_image_ref()
    if first:
        entry: dict[str, Any] = {"type": "image_url", "image_url": {"url": first}}
        if last:
            entry["role"] = "first_frame"
        content.append(entry)
    if last:
        content.append({"type": "image_url", "image_url": {"url": last}, "role": "last_frame"})
    # No callback_url, whatever the client sent: the gateway polls, and calls the client's webhook.
    return {"model": job.upstream_model, "content": content}


def from_task(body: Any) -> VideoResult | None:
    if not isinstance(body, dict):
        raise not_json_object("Ark")
    status = body.get("status")
    if status == SUCCEEDED:
        url = str_field(body, "content", "video_url")
        if url is None:
            raise generation_failed("Seedance: the task succeeded without content.video_url")
        return VideoResult(url=url, raw=trim_inline(body), upstream_task_id=str_field(body, "id"))
    if status in FAILED:
        code = str_field(body, "error", "code")
        message = str_field(body, "error", "message") or f"the task {status}"
        rule = code_rule(code) or SERVER
        raise generation_failed(
            f"Seedance: {message}" + (f" ({code})" if code else ""), moderated=rule.client_fault
        )
    return None


class SeedanceVideoAdapter(VideoAdapter):
    id: ClassVar[str] = "seedance"

    def error_rule(self, status: int, body: Any) -> ErrorRule | None:
        return code_rule(str_field(body, "error", "code"))

    def message_of(self, body: Any, fallback: str) -> str:
        message, code = str_field(body, "error", "message"), str_field(body, "error", "code")
        return f"Ark: {message}" + (f" ({code})" if code else "") if message else fallback

    def _headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    async def submit(self, job: VideoJob, api_key: str, deadline: float) -> str:
        answer = await self.request(
            "POST",
            f"{self.base_url}{TASKS_PATH}",
            deadline=deadline,
            headers=self._headers(api_key),
            json=to_request(job),
        )
        task_id = str_field(answer, "id")
        if task_id is None:
            raise missing_id("Ark")
        return task_id

    async def check(self, task_id: str, api_key: str, deadline: float) -> VideoResult | None:
        url = f"{self.base_url}{TASKS_PATH}/{quote(task_id, safe='')}"
        answer = await self.request("GET", url, deadline=deadline, headers=self._headers(api_key))
        result = from_task(answer)
        if result is not None and result.upstream_task_id is None:
            result.upstream_task_id = task_id
        return result
