"""HiDream-I1 text-to-image, an asynchronous API: submit a task, then poll its result.

- ``POST {base_url}/api/v1/image/generate`` (Bearer key) with ``{model, prompt, negative_prompt,
  width, height, seed, n}`` answers ``{code: 0, message, result: {task_id}}``;
- ``GET {base_url}/api/v1/image/result?task_id=...`` answers ``{code: 0, result: {task_id, status,
  images, error}}`` with status 0 pending, 1 running, 2 succeeded, 3 failed, 4 moderated.

No public reference of HiDream's own API was found; this shape is the documented assumption of
docs/providers/hidream.md, including its errors: an HTTP error status, or a non-zero ``code`` in a
200 answer, read like an HTTP status (``CODE_RULES``).

``submit`` and ``check`` are separate coroutines so that a task engine can submit now and check
later; ``generate_image`` does both, polling with the base class's backoff.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from omnirelay.core.images import GeneratedImage, ImageJob, ImageResult
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.image_adapter import ImageAdapter, generation_failed
from omnirelay.providers.openai_compat.errors import classify_status

PENDING, RUNNING, SUCCEEDED, FAILED, MODERATED = 0, 1, 2, 3, 4
IN_PROGRESS = frozenset({PENDING, RUNNING})

# A non-zero ``code`` in a 200 answer -> (HTTP status it amounts to, retry elsewhere, client's fault).
# Codes outside the table are read as an HTTP status when they are one, else as an upstream failure.
CODE_RULES: dict[int, tuple[int, bool, bool]] = {
    400: (400, False, True),  # invalid parameters
    401: (401, True, False),  # bad key: the channel's
    402: (402, True, False),  # no credit left on the channel's account
    403: (403, True, False),
    404: (404, True, False),  # unknown task or model on this channel
    429: (429, True, False),
    500: (500, True, False),
    503: (503, True, False),
}


def hidream_request(job: ImageJob) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": job.spec.upstream_model,
        "prompt": job.prompt,
        "width": job.width,
        "height": job.height,
        "n": max(1, job.n),
    }
    if job.negative_prompt:
        body["negative_prompt"] = job.negative_prompt
    if job.seed is not None:
        body["seed"] = job.seed
    return body


def code_error(body: dict[str, Any]) -> ProviderError:
    """The error for an answer whose ``code`` is not 0."""
    code = body.get("code")
    number = code if isinstance(code, int) and not isinstance(code, bool) else None
    if number in CODE_RULES:
        status, retryable, client_fault = CODE_RULES[number]
    elif number is not None and 400 <= number <= 599:
        status = number
        retryable, client_fault = classify_status(number, None)
    else:
        status, retryable, client_fault = 502, True, False
    message = body.get("message")
    return ProviderError(
        FailureKind.HTTP,
        f"HiDream: {message if isinstance(message, str) and message else 'error'} (code {code})",
        status=status,
        body=body,
        retryable=retryable,
        client_fault=client_fault,
    )


def _ok_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or body.get("code") != 0:
        raise code_error(body if isinstance(body, dict) else {})
    result = body.get("result")
    if not isinstance(result, dict):
        raise ProviderError(FailureKind.HTTP, "HiDream answered without a result", status=502, retryable=True)
    return result


def task_id_of(body: Any) -> str:
    task_id = _ok_body(body).get("task_id")
    if not isinstance(task_id, str | int) or isinstance(task_id, bool) or str(task_id) == "":
        raise ProviderError(
            FailureKind.HTTP, "HiDream answered without a task id", status=502, retryable=True
        )
    return str(task_id)


def result_of(body: Any, task_id: str) -> ImageResult | None:
    """The finished result of a poll answer; None while the task runs; raises when it failed."""
    result = _ok_body(body)
    status = result.get("status")
    if status in IN_PROGRESS:
        return None
    error = result.get("error")
    why = error if isinstance(error, str) and error else None
    if status == MODERATED:
        raise generation_failed(f"HiDream refused the task: {why or 'content moderation'}", moderated=True)
    if status == FAILED:
        raise generation_failed(f"HiDream failed the task: {why or 'no reason given'}")
    if status != SUCCEEDED:
        raise ProviderError(
            FailureKind.HTTP,
            f"HiDream reported an unknown task status {status!r}",
            status=502,
            retryable=True,
        )
    urls = result.get("images")
    images = (
        [GeneratedImage(url=u) for u in urls if isinstance(u, str) and u] if isinstance(urls, list) else []
    )
    if not images:
        raise generation_failed("HiDream finished the task without an image")
    return ImageResult(images=images, raw=body, upstream_task_id=task_id)


class HidreamImageAdapter(ImageAdapter):
    id: ClassVar[str] = "hidream"

    def classify(self, status: int, body: Any) -> tuple[bool, bool]:
        code = body.get("code") if isinstance(body, dict) else None
        if isinstance(code, int) and not isinstance(code, bool) and code in CODE_RULES:
            _, retryable, client_fault = CODE_RULES[code]
            return retryable, client_fault
        return classify_status(status, body if isinstance(body, dict) else None)

    def _headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    async def submit(self, job: ImageJob, api_key: str, deadline: float) -> str:
        """Start the task; its HiDream task id."""
        body = await self.call_json(
            "POST",
            f"{self.base_url}/api/v1/image/generate",
            deadline=deadline,
            headers=self._headers(api_key),
            json=hidream_request(job),
        )
        return task_id_of(body)

    async def check(self, task_id: str, api_key: str, deadline: float) -> ImageResult | None:
        """One poll: the result when the task is done, None while it runs; raises when it failed."""
        body = await self.call_json(
            "GET",
            f"{self.base_url}/api/v1/image/result",
            deadline=deadline,
            headers=self._headers(api_key),
            params={"task_id": task_id},
        )
        return result_of(body, task_id)

    async def generate_image(self, job: ImageJob, api_key: str, timeout_s: float) -> ImageResult:
        deadline = time.monotonic() + timeout_s
        task_id = await self.submit(job, api_key, deadline)

        async def fetch() -> ImageResult | None:
            return await self.check(task_id, api_key, deadline)

        try:
            result, polls = await self.poll(fetch, lambda answer: answer is not None, deadline=deadline)
        except ProviderError as exc:
            if exc.kind is FailureKind.TIMEOUT:
                exc.message = f"{exc.message} (HiDream task {task_id})"
                exc.args = (exc.message,)
            raise
        assert result is not None
        result.polls = polls
        return result
