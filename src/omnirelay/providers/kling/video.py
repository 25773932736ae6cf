"""Kling's official video API: ``POST /v1/videos/text2video`` | ``/v1/videos/image2video``, then poll.

The channel's ``base_url`` is ``https://api-singapore.klingai.com`` (or ``https://api.klingai.com``);
its ``api_key`` is ``ACCESS_KEY:SECRET_KEY``. Every call carries ``Authorization: Bearer <JWT>``, an
HS256 token signed with the secret key whose claims are ``iss`` (the access key), ``exp`` and ``nbf``.

Answers are Kling's envelope ``{code, message, request_id, data}``; ``code`` 0 is success, every
other code has a row in ``CODES``. A job is ``data.task_id`` with ``data.task_status``
``submitted`` | ``processing`` | ``succeed`` | ``failed``; the result is
``data.task_result.videos[0].url``. A task is polled at the path of its kind
(``GET /v1/videos/{text2video|image2video}/{task_id}``), so the id ``submit`` returns is
``<kind>:<task_id>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any, ClassVar
from urllib.parse import quote

import orjson

from omnirelay.core.videos import (
    CHANNEL,
    CLIENT,
    MODERATED,
    MODERATION_MARKERS,
    RATE,
    SERVER,
    ErrorRule,
    VideoAdapter,
    VideoJob,
    VideoResult,
    marker_in,
    missing_id,
    not_json_object,
    rule_error,
    str_field,
    trim_inline,
)
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.image_adapter import generation_failed

TOKEN_TTL_S = 1800
NOT_BEFORE_S = 5  # nbf a little in the past: clocks differ
KINDS = {"t2v": "text2video", "i2v": "image2video"}
IN_PROGRESS = frozenset({"submitted", "processing"})
SUCCEED = "succeed"
FAILED = "failed"
# Kling fields a client may send as model-specific extras, passed through as they are.
EXTRA_FIELDS = ("mode", "cfg_scale", "camera_control", "static_mask", "dynamic_masks", "external_task_id")

# Kling's ``code`` -> what it means (the HTTP status Kling sends with it is in the comment).
CODES: dict[int, ErrorRule] = {
    1000: CHANNEL,  # 401 authentication failed
    1001: CHANNEL,  # 401 Authorization header empty
    1002: CHANNEL,  # 401 Authorization invalid
    1003: CHANNEL,  # 401 token not yet valid (nbf)
    1004: CHANNEL,  # 401 token expired
    1100: ErrorRule(403, True, False),  # 429 account exception
    1101: ErrorRule(402, True, False),  # 429 account in arrears
    1102: ErrorRule(402, True, False),  # 429 resource pack exhausted or expired
    1103: ErrorRule(403, True, False),  # 403 no access to this resource (model) on the channel's account
    1200: CLIENT,  # 400 invalid request parameters
    1201: CLIENT,  # 400 invalid parameter value
    1202: ErrorRule(404, False, True),  # 404 invalid method
    1203: ErrorRule(404, True, False),  # 404 the resource (model, task) does not exist on this account
    1300: MODERATED,  # 400 platform policy triggered
    1301: MODERATED,  # 400 content security policy triggered
    1302: RATE,  # 429 requests too fast
    1303: RATE,  # 429 concurrency or QPS over the package limit
    1304: ErrorRule(403, True, False),  # 429 IP allow-list policy
    5000: SERVER,  # 500 internal error
    5001: ErrorRule(503, True, False),  # 503 service temporarily unavailable
    5002: ErrorRule(504, True, False),  # 504 internal timeout
}


# --- the token ------------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def kling_token(access_key: str, secret_key: str, *, now: int | None = None, ttl_s: int = TOKEN_TTL_S) -> str:
    """The HS256 JWT Kling expects: header ``{alg, typ}``, claims ``{iss, exp, nbf}``."""
    issued = int(time.time()) if now is None else now
    header = _b64url(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
    claims = _b64url(orjson.dumps({"iss": access_key, "exp": issued + ttl_s, "nbf": issued - NOT_BEFORE_S}))
    signing_input = f"{header}.{claims}".encode()
    signature = hmac.new(secret_key.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64url(signature)}"


def credentials(api_key: str) -> tuple[str, str]:
    """``"AK:SK"`` -> (AK, SK); a key of another shape is the channel's configuration error."""
    access, sep, secret = api_key.partition(":")
    if not sep or not access.strip() or not secret.strip():
        raise ProviderError(
            FailureKind.HTTP,
            "the Kling channel's api_key must be ACCESS_KEY:SECRET_KEY",
            status=401,
            retryable=True,
        )
    return access.strip(), secret.strip()


# --- the mapping ----------------------------------------------------------------------------------


def to_request(job: VideoJob) -> tuple[str, dict[str, Any]]:
    """(kind, JSON body) of the create call."""
    kind = KINDS.get(job.mode)
    if kind is None:
        raise ProviderError(
            FailureKind.HTTP, f"Kling does not do {job.mode}", status=400, retryable=False, client_fault=True
        )
    body: dict[str, Any] = {"model_name": job.upstream_model, "prompt": job.prompt}
    if job.negative_prompt:
        body["negative_prompt"] = job.negative_prompt
    body["duration"] = str(job.seconds)
    if kind == "text2video":
        if job.aspect_ratio:
            body["aspect_ratio"] = job.aspect_ratio
    else:
        # Kling takes the image as a URL or as bare base64 (no data: prefix).
        if job.image is not None:
            body["image"] = base64.b64encode(job.image.data).decode()
        if job.end_image is not None:
            body["image_tail"] = base64.b64encode(job.end_image.data).decode()
    for name in EXTRA_FIELDS:
        if job.extra.get(name) is not None:
            body[name] = job.extra[name]
    if "mode" not in body and job.spec.options.get("mode"):
        body["mode"] = job.spec.options["mode"]
    return kind, body


def code_of(body: Any) -> int | None:
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def envelope_error(body: Any) -> ProviderError:
    """The error of an answer whose ``code`` is not 0."""
    code = code_of(body)
    message = str_field(body, "message") or "error"
    rule = CODES.get(code, SERVER) if code is not None else SERVER
    return rule_error(rule, f"Kling: {message} (code {code})", body)


def from_task(body: Any) -> VideoResult | None:
    """A task answer as a result; None while submitted/processing; raises when it failed."""
    if not isinstance(body, dict):
        raise not_json_object("Kling")
    if code_of(body) not in (0, None):
        raise envelope_error(body)
    data = body.get("data")
    if not isinstance(data, dict):
        raise not_json_object("Kling")
    status = data.get("task_status")
    if status == SUCCEED:
        videos = (
            (data.get("task_result") or {}).get("videos")
            if isinstance(data.get("task_result"), dict)
            else None
        )
        first = videos[0] if isinstance(videos, list) and videos and isinstance(videos[0], dict) else {}
        url = str_field(first, "url")
        if url is None:
            raise generation_failed("Kling: the task succeeded without a video")
        duration = str_field(first, "duration")
        return VideoResult(
            url=url,
            raw=trim_inline(body),
            upstream_task_id=str_field(data, "task_id"),
            duration=float(duration) if duration and duration.replace(".", "", 1).isdigit() else None,
        )
    if status == FAILED:
        reason = str_field(data, "task_status_msg") or "the task failed"
        raise generation_failed(f"Kling: {reason}", moderated=marker_in(reason, MODERATION_MARKERS))
    return None  # submitted, processing, or a state not known yet: keep polling


class KlingVideoAdapter(VideoAdapter):
    id: ClassVar[str] = "kling"

    def error_rule(self, status: int, body: Any) -> ErrorRule | None:
        code = code_of(body)
        return CODES.get(code) if code is not None else None

    def message_of(self, body: Any, fallback: str) -> str:
        message = str_field(body, "message")
        return f"Kling: {message} (code {code_of(body)})" if message else fallback

    def _headers(self, api_key: str) -> dict[str, str]:
        access, secret = credentials(api_key)
        return {"Authorization": f"Bearer {kling_token(access, secret)}", "Accept": "application/json"}

    async def submit(self, job: VideoJob, api_key: str, deadline: float) -> str:
        kind, body = to_request(job)
        answer = await self.request(
            "POST",
            f"{self.base_url}/v1/videos/{kind}",
            deadline=deadline,
            headers=self._headers(api_key),
            json=body,
        )
        if code_of(answer) not in (0, None):
            raise envelope_error(answer)
        task_id = str_field(answer, "data", "task_id")
        if task_id is None:
            raise missing_id("Kling")
        return f"{kind}:{task_id}"

    async def check(self, task_id: str, api_key: str, deadline: float) -> VideoResult | None:
        kind, sep, upstream_id = task_id.partition(":")
        if not sep or kind not in KINDS.values():
            kind, upstream_id = "text2video", task_id
        url = f"{self.base_url}/v1/videos/{kind}/{quote(upstream_id, safe='')}"
        answer = await self.request("GET", url, deadline=deadline, headers=self._headers(api_key))
        result = from_task(answer)
        if result is not None and result.upstream_task_id is None:
            result.upstream_task_id = upstream_id
        return result
