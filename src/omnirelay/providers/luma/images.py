"""Luma's Dream Machine image API (Photon): create a generation, then poll it.

``POST {base}/dream-machine/v1/generations/image`` (``Authorization: Bearer``) with ``{prompt, model,
aspect_ratio, image_ref?, style_ref?, character_ref?, modify_image_ref?}`` answers a generation
object ``{id, state, failure_reason, assets, model, request, created_at}``; ``GET
{base}/dream-machine/v1/generations/{id}`` is polled until ``state`` is ``completed``
(``assets.image`` is the image URL) or ``failed`` (``failure_reason``). Errors are
``{"detail": "..."}`` (a list of ``{loc, msg}`` for request validation).

Input images reach Luma as references: by default every input image is an ``image_ref``; the
client's ``image_role`` extra picks ``style_ref``, ``character_ref`` or ``modify_image_ref`` instead,
and ``image_weight`` the weight. The gateway holds input images as bytes, so they are sent as data
URLs; a client may also pass Luma's own reference fields (with public URLs) as extras.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar
from urllib.parse import quote

from omnirelay.core.images import GeneratedImage, ImageJob, ImageResult
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.image_adapter import (
    ImageAdapter,
    generation_failed,
    media_type_of_url,
    trim_data_urls,
)

COMPLETED = "completed"
FAILED = "failed"
IN_PROGRESS = frozenset({"queued", "dreaming"})
GENERATIONS_PATH = "/dream-machine/v1/generations"
REFERENCE_FIELDS = ("image_ref", "style_ref", "character_ref", "modify_image_ref")
DEFAULT_WEIGHTS = {"image_ref": 0.85, "style_ref": 0.8, "modify_image_ref": 1.0}
MAX_REFS = 4  # image_ref / style_ref take at most this many images
# Words in a ``failure_reason`` that mean moderation refused the prompt or the image.
MODERATION_MARKERS = ("moderat", "nsfw", "flagged", "safety", "inappropriate", "policy")


def references(job: ImageJob) -> dict[str, Any]:
    """The input images as Luma reference fields, by the client's ``image_role`` (default image_ref)."""
    if not job.images:
        return {}
    role = str(job.extra.get("image_role") or "image_ref")
    if role not in REFERENCE_FIELDS:
        raise ProviderError(
            FailureKind.HTTP,
            f"image_role must be one of {', '.join(REFERENCE_FIELDS)}",
            status=400,
            retryable=False,
            client_fault=True,
        )
    urls = [image.data_url() for image in job.images]
    weight = job.extra.get("image_weight")
    if role == "character_ref":
        return {"character_ref": {"identity0": {"images": urls[:MAX_REFS]}}}
    w = float(weight) if isinstance(weight, (int, float)) else DEFAULT_WEIGHTS[role]
    if role == "modify_image_ref":
        return {"modify_image_ref": {"url": urls[0], "weight": w}}
    return {role: [{"url": url, "weight": w} for url in urls[:MAX_REFS]]}


def to_request(job: ImageJob) -> dict[str, Any]:
    """The JSON body of the create call."""
    body: dict[str, Any] = {"prompt": job.prompt, "model": job.spec.upstream_model}
    if job.aspect_ratio:
        body["aspect_ratio"] = job.aspect_ratio
    for field in REFERENCE_FIELDS:  # the client's own references (public URLs), as Luma spells them
        if job.extra.get(field) is not None:
            body[field] = job.extra[field]
    body.update(references(job))
    return body


def is_moderation(reason: str) -> bool:
    lowered = reason.lower()
    return any(marker in lowered for marker in MODERATION_MARKERS)


def from_generation(generation: Any) -> ImageResult | None:
    """The generation as a result; None while queued/dreaming; raises when it failed."""
    if not isinstance(generation, dict):
        raise ProviderError(FailureKind.HTTP, "the generation is not a JSON object", retryable=True)
    state = generation.get("state")
    task_id = generation.get("id") if isinstance(generation.get("id"), str) else None
    if state == COMPLETED:
        assets = generation.get("assets")
        url = assets.get("image") if isinstance(assets, dict) else None
        if not isinstance(url, str) or not url:
            raise generation_failed("the generation completed without assets.image")
        image = GeneratedImage(url=url, media_type=media_type_of_url(url))
        return ImageResult(images=[image], raw=trim_data_urls(generation), upstream_task_id=task_id)
    if state == FAILED:
        reason = generation.get("failure_reason")
        message = str(reason) if reason else "the generation failed"
        raise generation_failed(message, moderated=is_moderation(message))
    return None  # queued, dreaming, or a state not known yet: keep polling


def detail_message(body: Any, fallback: str) -> str:
    if not isinstance(body, dict):
        return fallback
    detail = body.get("detail")
    if isinstance(detail, str) and detail.strip():
        return detail.strip()
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
    400: (False, True),  # a bad prompt / ratio / reference
    401: (True, False),  # the channel's key is wrong
    402: (True, False),
    403: (True, False),
    404: (True, False),  # the generation is unknown to this channel
    413: (False, True),
    422: (False, True),  # request validation
    429: (True, False),  # rate limit / too many concurrent generations
}
_CHANNEL_MARKERS = ("credit", "balance", "billing", "quota")  # a 400 about the channel's account


class LumaImageAdapter(ImageAdapter):
    id: ClassVar[str] = "luma"
    poll_interval_s = 1.0
    poll_max_interval_s = 5.0

    def classify(self, status: int, body: Any) -> tuple[bool, bool]:
        if status in (400, 403):
            message = detail_message(body, "").lower()
            if any(marker in message for marker in _CHANNEL_MARKERS):
                return (True, False)
        if status in _STATUS_RULES:
            return _STATUS_RULES[status]
        return (True, False) if status >= 500 else (False, True)

    def message_of(self, body: Any, fallback: str) -> str:
        return detail_message(body, fallback)

    def _headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}

    async def submit(self, job: ImageJob, api_key: str, deadline: float) -> str:
        """Create the generation; returns its id."""
        answer = await self.call_json(
            "POST",
            f"{self.base_url.rstrip('/')}{GENERATIONS_PATH}/image",
            deadline=deadline,
            headers=self._headers(api_key),
            json=to_request(job),
        )
        task_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError(FailureKind.HTTP, "the generation was created without an id", retryable=True)
        return task_id

    async def check(self, task_id: str, api_key: str, deadline: float) -> ImageResult | None:
        """One poll: the result when completed, None while queued/dreaming, raises when failed."""
        url = f"{self.base_url.rstrip('/')}{GENERATIONS_PATH}/{quote(task_id, safe='')}"
        answer = await self.call_json("GET", url, deadline=deadline, headers=self._headers(api_key))
        result = from_generation(answer)
        if result is not None:
            result.upstream_task_id = task_id
        return result

    async def generate_image(self, job: ImageJob, api_key: str, timeout_s: float) -> ImageResult:
        deadline = time.monotonic() + timeout_s
        task_id = await self.submit(job, api_key, deadline)

        async def fetch() -> ImageResult | None:
            return await self.check(task_id, api_key, deadline)

        result, polls = await self.poll(fetch, lambda r: r is not None, deadline=deadline)
        assert result is not None
        result.polls = polls
        return result
