"""Replicate's predictions API, as used for the models 302.AI deploys itself (``302ai/*``).

``POST {base}/v1/models/{owner}/{name}/predictions`` (``Authorization: Bearer``) with
``{"input": {...}}`` creates a prediction (``upstream_model`` ``"owner/name:version"`` uses
``POST /v1/predictions`` with ``version`` instead); ``GET {base}/v1/predictions/{id}`` polls it until
its ``status`` is ``succeeded`` (``output``: a list of URLs, one URL, or — as 302.AI's own V1 answer
shows — a JSON-encoded string of a list), ``failed`` (``error``) or ``canceled``. With the
``prefer_wait_s`` option the create call carries ``Prefer: wait=N`` and may answer the finished
prediction at once. Errors are problem+json: ``{"title", "detail", "status"}``.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any, ClassVar
from urllib.parse import quote, unquote_to_bytes

import orjson

from omnirelay.core.images import GeneratedImage, ImageJob, ImageResult
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.image_adapter import (
    ImageAdapter,
    generation_failed,
    media_type_of_url,
    trim_data_urls,
)

SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELED = "canceled"
IN_PROGRESS = frozenset({"starting", "processing"})
# Words in a failed prediction's ``error`` that mean the safety checker refused the output or prompt.
MODERATION_MARKERS = ("nsfw", "safety", "flagged", "moderat", "sensitive content", "content policy")
MAX_PREFER_WAIT_S = 60  # the API's limit for ``Prefer: wait=N``


def output_format_of(fmt: str) -> str:
    """Replicate's image models name JPEG ``jpg``."""
    fmt = fmt.lower()
    return "jpg" if fmt in ("jpg", "jpeg") else fmt


def to_input(job: ImageJob) -> dict[str, Any]:
    """The prediction's ``input``: the client's extras, overridden by the fields the job fixes."""
    fixed: dict[str, Any] = {
        "prompt": job.prompt,
        "width": job.width,
        "height": job.height,
        "num_outputs": job.n,
        "output_format": output_format_of(job.output_format),
    }
    if job.aspect_ratio is not None:  # set by the row's ratio rule, or passed through (t2i only)
        fixed["aspect_ratio"] = job.aspect_ratio
    if job.negative_prompt:
        fixed["negative_prompt"] = job.negative_prompt
    if job.image is not None:
        fixed["image"] = job.image.data_url()
    if job.mask is not None:
        fixed["mask"] = job.mask.data_url()
    if job.seed is not None:
        fixed["seed"] = job.seed
    extras = {k: v for k, v in job.extra.items() if v is not None}
    return {**extras, **fixed}


def to_request(job: ImageJob) -> tuple[str, dict[str, Any]]:
    """(path under the base URL, JSON body) of the create call."""
    model = job.spec.upstream_model
    name, sep, version = model.partition(":")
    if sep:
        return "/v1/predictions", {"version": version, "input": to_input(job)}
    owner, _, model_name = name.partition("/")
    if not owner or not model_name:
        raise ValueError(f"replicate upstream_model must be 'owner/name', got {model!r}")
    return f"/v1/models/{quote(owner)}/{quote(model_name)}/predictions", {"input": to_input(job)}


def output_urls(output: Any) -> list[str]:
    """The file URLs of a prediction's ``output``: a list, one URL, a JSON-encoded list, or an object."""
    if output is None:
        return []
    if isinstance(output, str):
        text = output.strip()
        if text.startswith(("[", "{", '"')):
            try:
                return output_urls(orjson.loads(text))
            except orjson.JSONDecodeError:
                return []
        return [text] if text else []
    if isinstance(output, list):
        return [url for item in output for url in output_urls(item)]
    if isinstance(output, dict):  # some models answer {"image": url} or {"images": [...]}
        return [url for value in output.values() for url in output_urls(value)]
    return []


def image_of(url: str) -> GeneratedImage:
    """A result file: bytes when the API sent a data URL, else the URL to download."""
    if url.startswith("data:"):
        header, _, payload = url[5:].partition(",")
        media_type = header.split(";")[0] or "application/octet-stream"
        try:
            data = (
                base64.b64decode(payload, validate=True)
                if header.endswith(";base64")
                else unquote_to_bytes(payload)
            )
        except (binascii.Error, ValueError):
            raise generation_failed("the prediction's output is a malformed data URL") from None
        return GeneratedImage(data=data, media_type=media_type)
    return GeneratedImage(url=url, media_type=media_type_of_url(url))


def is_moderation(error: str) -> bool:
    lowered = error.lower()
    return any(marker in lowered for marker in MODERATION_MARKERS)


def from_prediction(prediction: Any) -> ImageResult | None:
    """The prediction as a result; None while it runs; raises on failed / canceled."""
    if not isinstance(prediction, dict):
        raise ProviderError(FailureKind.HTTP, "the prediction is not a JSON object", retryable=True)
    status = prediction.get("status")
    task_id = prediction.get("id") if isinstance(prediction.get("id"), str) else None
    if status == SUCCEEDED:
        urls = output_urls(prediction.get("output"))
        if not urls:
            raise generation_failed("the prediction succeeded without an image in its output")
        return ImageResult(
            images=[image_of(url) for url in urls], raw=trim_data_urls(prediction), upstream_task_id=task_id
        )
    if status == FAILED:
        error = prediction.get("error")
        message = str(error) if error else "the prediction failed"
        raise generation_failed(message, moderated=is_moderation(message))
    if status == CANCELED:
        raise generation_failed("the prediction was canceled")
    return None  # starting, processing, or a status not known yet: keep polling


def problem_message(body: Any, fallback: str) -> str:
    """problem+json: ``detail`` (else ``title``); a few endpoints answer ``{"detail"}`` alone."""
    if not isinstance(body, dict):
        return fallback
    for key in ("detail", "title"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return fallback


# status -> (retry on the next candidate, the client's fault)
_STATUS_RULES: dict[int, tuple[bool, bool]] = {
    400: (False, True),
    401: (True, False),  # the channel's token is wrong
    402: (True, False),  # the channel's account has no credit / hit its spend limit
    403: (True, False),
    404: (True, False),  # this channel does not have the model deployed (or lost the prediction)
    409: (True, False),
    413: (False, True),
    422: (False, True),  # input validation failed: the client's parameters
    429: (True, False),  # throttled
}


class ReplicateImageAdapter(ImageAdapter):
    id: ClassVar[str] = "replicate"
    poll_interval_s = 1.0
    poll_max_interval_s = 4.0
    # Seconds of ``Prefer: wait`` on create (0: off); a model row's ``options.prefer_wait_s`` wins.
    prefer_wait_s: ClassVar[int] = 0

    def classify(self, status: int, body: Any) -> tuple[bool, bool]:
        if status in _STATUS_RULES:
            return _STATUS_RULES[status]
        return (True, False) if status >= 500 else (False, True)

    def message_of(self, body: Any, fallback: str) -> str:
        return problem_message(body, fallback)

    def _headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}

    def _wait_header(self, job: ImageJob, deadline: float) -> str | None:
        wanted = int(job.spec.options.get("prefer_wait_s", self.prefer_wait_s) or 0)
        room = int(deadline - time.monotonic()) - 1
        wait = min(wanted, MAX_PREFER_WAIT_S, room)
        return f"wait={wait}" if wait >= 1 else None

    async def create_prediction(self, job: ImageJob, api_key: str, deadline: float) -> dict[str, Any]:
        """The create call; returns the prediction object as answered (finished with Prefer: wait)."""
        path, body = to_request(job)
        headers = self._headers(api_key)
        prefer = self._wait_header(job, deadline)
        if prefer is not None:
            headers["Prefer"] = prefer
        answer = await self.call_json(
            "POST", self.base_url.rstrip("/") + path, deadline=deadline, headers=headers, json=body
        )
        if not isinstance(answer, dict) or not isinstance(answer.get("id"), str) or not answer["id"]:
            raise ProviderError(FailureKind.HTTP, "the prediction was created without an id", retryable=True)
        return answer

    async def submit(self, job: ImageJob, api_key: str, deadline: float) -> str:
        """Create the prediction; returns its id."""
        prediction = await self.create_prediction(job, api_key, deadline)
        return str(prediction["id"])

    async def check(self, task_id: str, api_key: str, deadline: float) -> ImageResult | None:
        """One poll: the result when succeeded, None while running, raises on failed / canceled."""
        url = f"{self.base_url.rstrip('/')}/v1/predictions/{quote(task_id, safe='')}"
        answer = await self.call_json("GET", url, deadline=deadline, headers=self._headers(api_key))
        result = from_prediction(answer)
        if result is not None:
            result.upstream_task_id = task_id
        return result

    async def generate_image(self, job: ImageJob, api_key: str, timeout_s: float) -> ImageResult:
        deadline = time.monotonic() + timeout_s
        prediction = await self.create_prediction(job, api_key, deadline)
        task_id = str(prediction["id"])
        done = from_prediction(prediction)
        if done is not None:  # finished within Prefer: wait
            done.upstream_task_id = task_id
            return done

        async def fetch() -> ImageResult | None:
            return await self.check(task_id, api_key, deadline)

        result, polls = await self.poll(fetch, lambda r: r is not None, deadline=deadline)
        assert result is not None
        result.polls = polls
        return result
