"""The adapter for the Anthropic Messages API (``POST {base_url}/v1/messages``).

Its chat bodies are Anthropic Messages bodies (``dialect = "anthropic"``): a client speaking Anthropic
is passed through byte for byte, any other format is translated by ``dialects/anthropic.py``. The
channel's ``base_url`` is the API host, e.g. ``https://api.anthropic.com`` (a trailing ``/v1`` is
accepted too). See docs/providers/anthropic.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import aiohttp
import orjson

from omnirelay.providers.anthropic.errors import http_error
from omnirelay.providers.base import Capability, FailureKind, ProviderError, UpstreamReply
from omnirelay.settings import ChannelConfig

ANTHROPIC_VERSION = "2023-06-01"  # sent when the client gave no anthropic-version of its own
# Client headers the adapters forward when the engine passes them in ``headers``.
FORWARDED_CLIENT_HEADERS = ("anthropic-version", "anthropic-beta")
_FORWARDED_ERROR_HEADERS = (
    "retry-after",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-reset",
    "anthropic-ratelimit-input-tokens-reset",
    "anthropic-ratelimit-output-tokens-reset",
)
_JSON = "application/json"


def client_header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A header of the client's, whatever the case of its name in ``headers``."""
    if not headers:
        return None
    value = headers.get(name)
    if value is None:
        for key, item in headers.items():
            if key.lower() == name:
                value = item
                break
    return value.strip() or None if isinstance(value, str) else None


class MessagesAdapter:
    """What the Anthropic and Vertex adapters share: timeouts, the POST, error classification.

    Subclasses say where a call goes and how it is authenticated (``_request``).
    """

    id: ClassVar[str] = "anthropic"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.CHAT})
    dialect: ClassVar[str] = "anthropic"  # the wire format of its chat calls (dialects/base.py)

    def __init__(
        self, channel: ChannelConfig, http: aiohttp.ClientSession, *, connect_timeout_s: float = 10.0
    ) -> None:
        self.channel = channel
        self._http = http
        self._connect_s = connect_timeout_s
        self._limits: dict[tuple[float, bool], aiohttp.ClientTimeout] = {}

    def _request(
        self,
        body: bytes,
        api_key: str,
        *,
        upstream_model: str | None,
        headers: Mapping[str, str] | None,
        stream: bool,
    ) -> tuple[str, bytes, dict[str, str]]:
        """(url, body, headers) of one call."""
        raise NotImplementedError

    def _timeout(self, seconds: float, stream: bool) -> aiohttp.ClientTimeout:
        """Timeouts are immutable, so one object per (seconds, kind) is shared by every call."""
        key = (round(seconds, 1), stream)
        limits = self._limits.get(key)
        if limits is None:
            if len(self._limits) > 256:
                self._limits.clear()
            if stream:
                limits = aiohttp.ClientTimeout(total=None, connect=self._connect_s, sock_read=key[0])
            else:
                limits = aiohttp.ClientTimeout(total=key[0], connect=self._connect_s)
            self._limits[key] = limits
        return limits

    async def _post(
        self,
        body: bytes,
        api_key: str,
        timeout_s: float,
        *,
        upstream_model: str | None,
        headers: Mapping[str, str] | None,
        stream: bool,
    ) -> aiohttp.ClientResponse:
        url, data, sent_headers = self._request(
            body, api_key, upstream_model=upstream_model, headers=headers, stream=stream
        )
        try:
            resp = await self._http.post(
                url, data=data, headers=sent_headers, timeout=self._timeout(timeout_s, stream)
            )
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ProviderError(FailureKind.TIMEOUT, "upstream timed out", retryable=True) from exc
        except aiohttp.ClientError as exc:
            raise ProviderError(
                FailureKind.CONNECT, f"upstream connection failed ({type(exc).__name__})", retryable=True
            ) from exc
        await self._raise_for_status(resp)
        return resp

    @staticmethod
    async def _raise_for_status(resp: aiohttp.ClientResponse) -> None:
        if resp.status < 400:
            return
        try:
            raw = await resp.read()
        except (TimeoutError, aiohttp.ClientError):
            raw = b""
        finally:
            resp.release()
        try:
            parsed = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list) and parsed and isinstance(parsed[0], dict):
            parsed = parsed[0]  # Google front ends sometimes wrap the error object in a list
        body = parsed if isinstance(parsed, dict) else None
        headers = {h: resp.headers[h] for h in _FORWARDED_ERROR_HEADERS if h in resp.headers}
        raise http_error(resp.status, body, headers)

    async def chat(
        self,
        body: bytes,
        api_key: str,
        timeout_s: float,
        *,
        upstream_model: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> UpstreamReply:
        """One non-streaming call; ``headers`` are the client's (anthropic-version, anthropic-beta)."""
        resp = await self._post(
            body, api_key, timeout_s, upstream_model=upstream_model, headers=headers, stream=False
        )
        try:
            data = await resp.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ProviderError(FailureKind.TIMEOUT, "upstream timed out", retryable=True) from exc
        except aiohttp.ClientError as exc:
            raise ProviderError(
                FailureKind.CONNECT, "upstream dropped the connection mid-response", retryable=True
            ) from exc
        finally:
            resp.release()
        return UpstreamReply(resp.status, data, resp.headers.get("Content-Type", _JSON))

    async def open_stream(
        self,
        body: bytes,
        api_key: str,
        timeout_s: float,
        *,
        upstream_model: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        """POST a streaming request; returns the response once its status says the stream began.

        ``timeout_s`` bounds the wait for the first byte and every gap between events, not the whole
        stream. Read the events with ``providers.openai_compat.adapter.iter_sse_events``.
        """
        return await self._post(
            body, api_key, timeout_s, upstream_model=upstream_model, headers=headers, stream=True
        )


class AnthropicAdapter(MessagesAdapter):
    id: ClassVar[str] = "anthropic"

    def __init__(
        self, channel: ChannelConfig, http: aiohttp.ClientSession, *, connect_timeout_s: float = 10.0
    ) -> None:
        super().__init__(channel, http, connect_timeout_s=connect_timeout_s)
        base = channel.base_url.rstrip("/")
        self._url = f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"

    def _request(
        self,
        body: bytes,
        api_key: str,
        *,
        upstream_model: str | None,
        headers: Mapping[str, str] | None,
        stream: bool,
    ) -> tuple[str, bytes, dict[str, str]]:
        """The model is already in ``body``; the client's anthropic-version and anthropic-beta are kept."""
        sent = {
            "x-api-key": api_key,
            "anthropic-version": client_header(headers, "anthropic-version") or ANTHROPIC_VERSION,
            "Content-Type": _JSON,
            "Accept": "text/event-stream" if stream else _JSON,
        }
        beta = client_header(headers, "anthropic-beta")
        if beta:
            sent["anthropic-beta"] = beta
        return self._url, body, sent
