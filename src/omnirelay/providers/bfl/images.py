"""Black Forest Labs (the official Flux API): submit a task, then poll ``/v1/get_result``.

``POST {base}/v1/{model}`` with the key in ``x-key`` answers ``{id, polling_url}``; the task is then
polled until its ``status`` is ``Ready`` (``result.sample`` is a signed URL of the image, valid for a
few minutes), ``Error``, ``Request Moderated`` / ``Content Moderated``, or ``Task not found``.

The request body depends on the model family (see docs/providers/bfl.md): the Ultra models take
an ``aspect_ratio`` (the job's, else the ratio of its width and height), the other text-to-image
models ``width``/``height`` (multiples of 32, 256..1440), Fill takes ``image`` + ``mask``,
Canny/Depth take ``control_image`` (all base64), and the ``*-finetuned`` models add
``finetune_id`` / ``finetune_strength`` from the client's extras.
"""

from __future__ import annotations

import base64
import math
import time
from typing import Any, ClassVar

from omnirelay.core.images import GeneratedImage, ImageJob, ImageResult
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.image_adapter import (
    ImageAdapter,
    generation_failed,
    media_type_of_url,
)

# get_result statuses (the API's StatusResponse enum).
READY = "Ready"
PENDING = "Pending"
FAILED_STATUSES = frozenset({"Error"})
MODERATED_STATUSES = frozenset({"Request Moderated", "Content Moderated"})
NOT_FOUND = "Task not found"

MIN_SIDE, MAX_SIDE, SIDE_STEP = 256, 1440, 32

# Client extras passed through, per model family (never the fields the adapter sets itself).
_FAMILY_EXTRAS: dict[str, tuple[str, ...]] = {
    "ultra": ("raw", "image_prompt_strength"),
    "sized": ("steps", "guidance", "interval"),
    "fill": ("steps", "guidance"),
    "control": ("steps", "guidance", "canny_low_threshold", "canny_high_threshold", "preprocessed_image"),
}
_COMMON_EXTRAS = ("safety_tolerance", "prompt_upsampling")
_FINETUNE_EXTRAS = ("finetune_id", "finetune_strength")


def model_family(upstream_model: str) -> str:
    """``ultra`` (aspect ratio), ``fill`` (image + mask), ``control`` (canny/depth) or ``sized``."""
    if "ultra" in upstream_model:
        return "ultra"
    if "-fill" in upstream_model:
        return "fill"
    if "-canny" in upstream_model or "-depth" in upstream_model:
        return "control"
    return "sized"


def snap_side(value: int) -> int:
    """The nearest side the API accepts: a multiple of 32 within 256..1440."""
    snapped = round(value / SIDE_STEP) * SIDE_STEP
    return max(MIN_SIDE, min(MAX_SIDE, snapped))


def ratio_of_size(width: int, height: int) -> str:
    """``W:H`` of a size, reduced, and kept within the Ultra models' range (21:9 to 9:21)."""
    w, h = max(1, width), max(1, height)
    if w * 9 > h * 21:
        return "21:9"
    if h * 9 > w * 21:
        return "9:21"
    divisor = math.gcd(w, h)
    return f"{w // divisor}:{h // divisor}"


def output_format_of(fmt: str) -> str:
    """BFL renders ``jpeg`` or ``png``; anything else asked for is rendered as PNG."""
    return "jpeg" if fmt.lower() in ("jpg", "jpeg") else "png"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def to_request(job: ImageJob) -> tuple[str, dict[str, Any]]:
    """(path under the base URL, JSON body) of the submit call for this job."""
    model = job.spec.upstream_model
    family = model_family(model)
    body: dict[str, Any] = {"prompt": job.prompt}
    if family == "ultra":
        body["aspect_ratio"] = job.aspect_ratio or ratio_of_size(job.width, job.height)
        if job.image is not None:
            body["image_prompt"] = _b64(job.image.data)
    elif family == "sized":
        body["width"] = snap_side(job.width)
        body["height"] = snap_side(job.height)
        if job.image is not None:
            body["image_prompt"] = _b64(job.image.data)
    elif family == "fill":
        if job.image is not None:
            body["image"] = _b64(job.image.data)
        if job.mask is not None:
            body["mask"] = _b64(job.mask.data)
    elif job.image is not None:  # control
        body["control_image"] = _b64(job.image.data)
    if job.seed is not None:
        body["seed"] = job.seed
    body["output_format"] = output_format_of(job.output_format)
    allowed = [*_COMMON_EXTRAS, *_FAMILY_EXTRAS[family]]
    if "finetuned" in model:
        allowed.extend(_FINETUNE_EXTRAS)
    for key in allowed:
        if key in job.extra and job.extra[key] is not None:
            body[key] = job.extra[key]
    return f"/v1/{model}", body


def _reasons(answer: dict[str, Any]) -> str:
    details = answer.get("details")
    if isinstance(details, dict):
        parts = [f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in details.items()]
        return "; ".join(parts)
    if isinstance(details, str):
        return details
    return ""


def from_result(answer: Any, task_id: str) -> ImageResult | None:
    """The get_result answer as a result; None while pending; raises on a failed verdict."""
    if not isinstance(answer, dict):
        raise ProviderError(FailureKind.HTTP, "get_result answered with a non-object", retryable=True)
    status = answer.get("status")
    if status == READY:
        result = answer.get("result")
        sample = result.get("sample") if isinstance(result, dict) else None
        if not isinstance(sample, str) or not sample:
            raise generation_failed("the task is Ready but has no result.sample")
        image = GeneratedImage(url=sample, media_type=media_type_of_url(sample))
        return ImageResult(images=[image], raw=answer, upstream_task_id=task_id)
    if status in MODERATED_STATUSES:
        reasons = _reasons(answer)
        raise generation_failed(f"{status}{': ' + reasons if reasons else ''}", moderated=True)
    if status in FAILED_STATUSES:
        reasons = _reasons(answer)
        raise generation_failed(f"the generation failed{': ' + reasons if reasons else ''}")
    if status == NOT_FOUND:
        # The task is lost upstream (expired, or polled on another region): no verdict on the
        # client's request, so another channel may run it again. Read as the 404 it means, like a
        # lost prediction / generation of the other asynchronous vendors.
        raise ProviderError(
            FailureKind.HTTP,
            f"the upstream task {task_id} was not found",
            status=404,
            body=answer,
            retryable=True,
        )
    return None  # Pending, or a status this adapter does not know yet: keep polling


def detail_message(body: Any, fallback: str) -> str:
    """BFL errors are FastAPI-shaped: ``{"detail": "text"}`` or ``{"detail": [{loc, msg}, ...]}``."""
    if not isinstance(body, dict):
        return fallback
    detail = body.get("detail")
    if isinstance(detail, str) and detail:
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                msg = str(item.get("msg", "invalid"))
                parts.append(f"{loc}: {msg}" if loc else msg)
        if parts:
            return "; ".join(parts)
    return fallback


# status -> (retry on the next candidate, the client's fault)
_STATUS_RULES: dict[int, tuple[bool, bool]] = {
    400: (False, True),
    401: (True, False),  # the channel's key is wrong
    402: (True, False),  # the channel's account is out of credits
    403: (True, False),  # BFL's answer to a missing or invalid x-key
    404: (True, False),  # the channel does not serve this model endpoint
    413: (False, True),
    422: (False, True),  # validation: the client's parameters
    429: (True, False),  # too many active tasks on the channel's account
}


class BFLImageAdapter(ImageAdapter):
    id: ClassVar[str] = "bfl"
    poll_interval_s = 0.5
    poll_max_interval_s = 3.0

    def classify(self, status: int, body: Any) -> tuple[bool, bool]:
        if status in _STATUS_RULES:
            return _STATUS_RULES[status]
        return (True, False) if status >= 500 else (False, True)

    def message_of(self, body: Any, fallback: str) -> str:
        return detail_message(body, fallback)

    def _headers(self, api_key: str) -> dict[str, str]:
        return {"x-key": api_key, "Accept": "application/json"}

    def _result_url(self, task_id: str, polling_url: str | None) -> tuple[str, dict[str, str] | None]:
        base = self.base_url.rstrip("/")
        if polling_url and (polling_url == base or polling_url.startswith(base + "/")):
            return polling_url, None
        return f"{base}/v1/get_result", {"id": task_id}

    async def submit_task(self, job: ImageJob, api_key: str, deadline: float) -> tuple[str, str | None]:
        """Submit; returns (task id, polling_url as given by the API)."""
        path, body = to_request(job)
        answer = await self.call_json(
            "POST",
            self.base_url.rstrip("/") + path,
            deadline=deadline,
            headers=self._headers(api_key),
            json=body,
        )
        task_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError(FailureKind.HTTP, "BFL accepted the task without an id", retryable=True)
        polling_url = answer.get("polling_url")
        return task_id, polling_url if isinstance(polling_url, str) else None

    async def submit(self, job: ImageJob, api_key: str, deadline: float) -> str:
        """Submit the job; returns the upstream task id."""
        task_id, _ = await self.submit_task(job, api_key, deadline)
        return task_id

    async def check(
        self, task_id: str, api_key: str, deadline: float, *, polling_url: str | None = None
    ) -> ImageResult | None:
        """One poll: the result when Ready, None while pending, raises on a failed verdict.

        ``polling_url`` (from the submit answer) is used only when it lies under the channel's base
        URL, so the key is never sent to another host; otherwise ``/v1/get_result?id=``.
        """
        url, params = self._result_url(task_id, polling_url)
        answer = await self.call_json(
            "GET", url, deadline=deadline, headers=self._headers(api_key), params=params
        )
        return from_result(answer, task_id)

    async def generate_image(self, job: ImageJob, api_key: str, timeout_s: float) -> ImageResult:
        deadline = time.monotonic() + timeout_s
        task_id, polling_url = await self.submit_task(job, api_key, deadline)

        async def fetch() -> ImageResult | None:
            return await self.check(task_id, api_key, deadline, polling_url=polling_url)

        result, polls = await self.poll(fetch, lambda r: r is not None, deadline=deadline)
        assert result is not None
        result.polls = polls
        return result
