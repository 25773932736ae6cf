"""Simulator of Kling's official video API, for the ``kling`` adapter.

As Kling's API reference describes it:

- Auth ``Authorization: Bearer <JWT>``: an HS256 token whose ``iss`` is an access key the simulator
  knows, signed with that key's secret, inside its ``nbf``..``exp`` window. It is verified here
  independently of the adapter's signer. Failures answer 401 with ``code`` 1001 (no header), 1002
  (not a JWT), 1000 (unknown issuer or bad signature), 1003 (not yet valid) or 1004 (expired).
- ``POST /v1/videos/text2video`` ``{model_name, prompt, negative_prompt, cfg_scale, mode,
  aspect_ratio, duration ("5"|"10"), camera_control}`` and ``POST /v1/videos/image2video`` ``{model_name,
  image (URL or bare base64), image_tail, prompt, ...}`` answer ``{code: 0, message: "SUCCEED",
  request_id, data: {task_id, task_status: "submitted", created_at, updated_at}}``. Bad parameters are
  400 ``code`` 1201; a prompt containing ``forbidden`` is 400 ``code`` 1301 (content security).
- ``GET /v1/videos/{text2video|image2video}/{task_id}``: ``processing`` for ``polls_before_ready``
  polls, then ``succeed`` (``task_result.videos[0].url``, an MP4 hosted here) or ``failed``
  (``task_status_msg``). A task polled under the other kind, or unknown, is 404 ``code`` 1203.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any

from aiohttp import web

from tests.upstreams.imaging import JSON, Job
from tests.upstreams.videosim import FAILED, MODERATED, SUCCEEDED, VideoSim

ACCESS_KEY = "ak-test"
SECRET_KEY = "sk-test"
MODELS = frozenset(
    {"kling-v1", "kling-v1-5", "kling-v1-6", "kling-v2-master", "kling-v2-1", "kling-v2-1-master"}
)
I2V_ONLY = frozenset({"kling-v1-5", "kling-v2-1"})
RATIOS = frozenset({"16:9", "9:16", "1:1"})
MODERATION_MESSAGE = "Failure to pass the risk control system"
# HTTP status of an injected failure -> the code its body carries
_INJECTED = {400: 1201, 401: 1000, 403: 1103, 404: 1203, 429: 1302, 500: 5000, 503: 5001, 504: 5002}


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class KlingSim(VideoSim):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.secrets = {ACCESS_KEY: SECRET_KEY}
        self.tokens: list[dict[str, Any]] = []  # the verified claims of every call

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/videos/text2video", self._create),
            web.post("/v1/videos/image2video", self._create),
            web.get("/v1/videos/{kind}/{task_id}", self._get),
        ]

    def error_body(self, status: int, message: str) -> JSON:
        return {"code": _INJECTED.get(status, 5000), "message": message, "request_id": self.new_id("req")}

    def _error(self, status: int, code: int, message: str) -> web.Response:
        return web.json_response(
            {"code": code, "message": message, "request_id": self.new_id("req")}, status=status
        )

    def _auth(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if not header:
            return self._error(401, 1001, "Authorization is empty")
        token = header.removeprefix("Bearer ").strip()
        parts = token.split(".")
        if not header.startswith("Bearer ") or len(parts) != 3:
            return self._error(401, 1002, "Authorization is invalid")
        try:
            head = json.loads(_unb64(parts[0]))
            claims = json.loads(_unb64(parts[1]))
            signature = _unb64(parts[2])
        except (ValueError, binascii.Error):
            return self._error(401, 1002, "Authorization is invalid")
        if head.get("alg") != "HS256" or not isinstance(claims, dict):
            return self._error(401, 1002, "Authorization is invalid")
        secret = self.secrets.get(str(claims.get("iss")))
        expected = (
            hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
            if secret
            else b""
        )
        if not secret or not hmac.compare_digest(expected, signature):
            return self._error(401, 1000, "Authentication failed")
        now = time.time()
        if not isinstance(claims.get("nbf"), int) or claims["nbf"] > now:
            return self._error(401, 1003, "Authorization is not yet valid")
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
            return self._error(401, 1004, "Authorization has expired")
        self.tokens.append(claims)
        return None

    async def _create(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        injected = self.take_injected_failure()
        if injected is not None:
            return injected
        refused = self._auth(request)
        if refused is not None:
            return refused
        kind = request.path.rsplit("/", 1)[-1]
        problem = _validate(kind, body)
        if problem is not None:
            return self._error(400, 1201, problem)
        if "forbidden" in str(body.get("prompt", "")).lower():
            return self._error(400, 1301, "Content security policy triggered")
        job = self.new_job({"kind": kind, **body})
        now = int(time.time() * 1000)
        data = {"task_id": job.id, "task_status": "submitted", "created_at": now, "updated_at": now}
        return web.json_response(
            {"code": 0, "message": "SUCCEED", "request_id": self.new_id("req"), "data": data}
        )

    async def _get(self, request: web.Request) -> web.StreamResponse:
        injected = self.take_injected_failure()
        if injected is not None:
            return injected
        refused = self._auth(request)
        if refused is not None:
            return refused
        job = self.jobs.get(request.match_info["task_id"])
        if job is None or job.request["kind"] != request.match_info["kind"]:
            return self._error(404, 1203, "Task not found")
        return web.json_response(
            {"code": 0, "message": "SUCCEED", "request_id": self.new_id("req"), "data": self._task(job)}
        )

    def _task(self, job: Job) -> JSON:
        state = self.advance(job)
        now = int(time.time() * 1000)
        data: JSON = {
            "task_id": job.id,
            "task_status": "processing",
            "task_status_msg": "",
            "created_at": now,
            "updated_at": now,
        }
        if state == SUCCEEDED:
            data["task_status"] = "succeed"
            videos = [
                {"id": f"v{job.id}", "url": job.outputs[0], "duration": str(job.request.get("duration", "5"))}
            ]
            data["task_result"] = {"videos": videos}
        elif state == FAILED:
            data["task_status"], data["task_status_msg"] = "failed", "Internal error, please try again"
        elif state == MODERATED:
            data["task_status"], data["task_status_msg"] = "failed", MODERATION_MESSAGE
        return data


def _is_image(value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    if value.startswith(("http://", "https://")):
        return True
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return not value.startswith("data:")  # Kling wants bare base64, never a data URL


def _validate(kind: str, body: Any) -> str | None:
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    model = body.get("model_name", "kling-v1")
    if model not in MODELS:
        return f"model_name {model!r} is invalid"
    if kind == "text2video" and model in I2V_ONLY:
        return f"model_name {model} does not support text2video"
    prompt = body.get("prompt")
    if kind == "text2video" and (not isinstance(prompt, str) or not prompt.strip()):
        return "prompt is required"
    if isinstance(prompt, str) and len(prompt) > 2500:
        return "prompt must be at most 2500 characters"
    if body.get("duration", "5") not in ("5", "10"):
        return 'duration must be "5" or "10"'
    if body.get("mode", "std") not in ("std", "pro"):
        return "mode must be std or pro"
    if "aspect_ratio" in body and body["aspect_ratio"] not in RATIOS:
        return "aspect_ratio is invalid"
    cfg = body.get("cfg_scale", 0.5)
    if isinstance(cfg, bool) or not isinstance(cfg, int | float) or not 0 <= cfg <= 1:
        return "cfg_scale must be in [0, 1]"
    camera = body.get("camera_control")
    if camera is not None and (not isinstance(camera, dict) or "type" not in camera):
        return "camera_control must be an object with a type"
    if kind == "image2video":
        if not _is_image(body.get("image")):
            return "image must be an image URL or base64 data without a prefix"
        if "image_tail" in body and not _is_image(body["image_tail"]):
            return "image_tail must be an image URL or base64 data without a prefix"
    return None


def channel_base_url(sim: KlingSim) -> str:
    return sim.base_url


def channel_api_key(sim: KlingSim) -> str:
    return f"{ACCESS_KEY}:{SECRET_KEY}"


Sim = KlingSim
