"""The base of every image adapter: vendor HTTP calls with classified errors, and polling.

An adapter subclasses ``ImageAdapter``, sets ``id`` (== its folder name == the channel's
``provider`` value) and implements ``generate_image``. It maps with pure functions
(``to_request`` / ``from_response`` in its own module) and uses ``call_json`` and ``poll`` from here,
so every vendor gets the same timeouts, error classification and polling discipline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import aiohttp
import orjson

from omnirelay.core.images import ImageJob, ImageResult
from omnirelay.providers.base import Capability, FailureKind, ProviderError
from omnirelay.providers.openai_compat.errors import classify_status, error_message
from omnirelay.settings import ChannelConfig

T = TypeVar("T")


class ImageAdapter:
    id: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.IMAGE})
    # Seconds between polls of an asynchronous vendor, and the cap of its backoff.
    poll_interval_s: float = 1.0
    poll_max_interval_s: float = 5.0

    def __init__(
        self, channel: ChannelConfig, http: aiohttp.ClientSession, *, connect_timeout_s: float = 10.0
    ) -> None:
        self.channel = channel
        self.http = http
        self.base_url = channel.base_url
        self.connect_timeout_s = connect_timeout_s

    async def generate_image(self, job: ImageJob, api_key: str, timeout_s: float) -> ImageResult:
        raise NotImplementedError

    # --- helpers ---------------------------------------------------------------------------------

    def classify(self, status: int, body: Any) -> tuple[bool, bool]:
        """(retry elsewhere, client's fault) for an error status; vendors with codes override."""
        return classify_status(status, body if isinstance(body, dict) else None)

    def message_of(self, body: Any, fallback: str) -> str:
        return error_message(body if isinstance(body, dict) else None, fallback)

    async def call_json(
        self,
        method: str,
        url: str,
        *,
        deadline: float,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: aiohttp.FormData | bytes | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """One vendor call; returns the decoded JSON body of a 2xx answer, raises ProviderError else."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProviderError(FailureKind.TIMEOUT, "upstream timed out", retryable=True)
        timeout = aiohttp.ClientTimeout(total=remaining, connect=min(self.connect_timeout_s, remaining))
        body: Any = data
        send_headers = dict(headers or {})
        if json is not None:
            body = orjson.dumps(json)
            send_headers.setdefault("Content-Type", "application/json")
        try:
            async with self.http.request(
                method, url, data=body, headers=send_headers, params=params, timeout=timeout
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ProviderError(FailureKind.TIMEOUT, "upstream timed out", retryable=True) from exc
        except aiohttp.ClientError as exc:
            raise ProviderError(
                FailureKind.CONNECT, f"upstream connection failed ({type(exc).__name__})", retryable=True
            ) from exc
        try:
            parsed = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            parsed = None
        if status >= 400:
            retryable, client_fault = self.classify(status, parsed)
            raise ProviderError(
                FailureKind.HTTP,
                self.message_of(parsed, f"upstream answered HTTP {status}"),
                status=status,
                body=parsed if isinstance(parsed, dict) else None,
                retryable=retryable,
                client_fault=client_fault,
            )
        if parsed is None:
            raise ProviderError(
                FailureKind.HTTP,
                "upstream answered with a body that is not JSON",
                status=status,
                retryable=True,
            )
        return parsed

    async def poll(
        self,
        fetch: Callable[[], Awaitable[T]],
        is_done: Callable[[T], bool],
        *,
        deadline: float,
        first_wait_s: float | None = None,
    ) -> tuple[T, int]:
        """Call ``fetch`` until ``is_done`` says so, backing off from ``poll_interval_s`` to the cap.

        Returns the last answer and the number of polls. Runs out of time with a TIMEOUT error: for a
        synchronous route that is a 504, never a verdict that the job failed.
        """
        wait = self.poll_interval_s if first_wait_s is None else first_wait_s
        polls = 0
        while True:
            if wait > 0:
                if time.monotonic() + wait >= deadline:
                    raise ProviderError(
                        FailureKind.TIMEOUT,
                        f"the upstream job was not done after {polls} polls",
                        retryable=False,
                    )
                await asyncio.sleep(wait)
            try:
                answer = await fetch()
            except ProviderError as exc:
                if exc.kind is FailureKind.TIMEOUT and exc.retryable:
                    # The job is already submitted: trying another channel would pay for it twice.
                    raise ProviderError(FailureKind.TIMEOUT, exc.message, retryable=False) from exc
                raise
            polls += 1
            if is_done(answer):
                return answer, polls
            wait = min(max(wait, self.poll_interval_s) * 1.5, self.poll_max_interval_s)


def generation_failed(message: str, *, moderated: bool = False) -> ProviderError:
    """The vendor finished the job without an image: moderation is the client's fault (422)."""
    return ProviderError(FailureKind.GENERATION, message, retryable=False, client_fault=moderated)


# --- small pure helpers several adapters share -------------------------------------------------------

TRIMMED_DATA_URL_MIN = 100  # data URLs at least this long are trimmed out of a raw upstream result
_URL_MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


def media_type_of_url(url: str) -> str | None:
    """The image type a result URL's file name suggests, if any (the bytes decide in the end)."""
    path = urlsplit(url).path.lower()
    return next((t for ext, t in _URL_MEDIA_TYPES.items() if path.endswith(ext)), None)


def trim_data_urls(value: Any) -> Any:
    """``value`` with long data URLs (echoed input images) replaced by a short note."""
    if isinstance(value, str):
        if value.startswith("data:") and len(value) >= TRIMMED_DATA_URL_MIN:
            return f"{value.split(',', 1)[0]},<{len(value)} characters trimmed>"
        return value
    if isinstance(value, list):
        return [trim_data_urls(item) for item in value]
    if isinstance(value, dict):
        return {key: trim_data_urls(item) for key, item in value.items()}
    return value
