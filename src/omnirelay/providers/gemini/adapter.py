"""The Gemini API as a chat upstream: ``POST {base_url}/v1beta/models/{model}:generateContent``.

The channel's ``base_url`` is the API root, e.g. ``https://generativelanguage.googleapis.com``; its
key goes in the ``x-goog-api-key`` header, never in the URL (URLs end up in logs). Bodies are Gemini
``generateContent`` bodies (dialects/gemini.py), so the model is not in them: it comes as
``upstream_model`` and goes in the URL. A stream is ``:streamGenerateContent?alt=sse``, whose SSE
events ``iter_sse_events`` reads (Google separates them with CRLF). Errors are Google's and are
classified through the tables of ``errors.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import quote

import aiohttp
import orjson

from omnirelay.providers.base import Capability, FailureKind, ProviderError, UpstreamReply
from omnirelay.providers.gemini.errors import http_error
from omnirelay.settings import ChannelConfig

_JSON = "application/json"
_FORWARDED_ERROR_HEADERS = ("retry-after",)


def model_path(upstream_model: str | None) -> str:
    """``models/{model}`` for a model name; a resource name (``tunedModels/x``) is kept as given."""
    if not upstream_model:
        raise ValueError("a Gemini call needs upstream_model: the model goes in the URL")
    if "/" in upstream_model:
        return quote(upstream_model, safe="/-._~@")
    return "models/" + quote(upstream_model, safe="-._~@")


class GoogleChatAdapter:
    """What the Gemini API and Vertex AI share: timeouts, the POST, error answers, the reply."""

    id: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.CHAT})
    dialect: ClassVar[str] = "gemini"  # the wire format of its chat calls (dialects/base.py)

    def __init__(
        self, channel: ChannelConfig, http: aiohttp.ClientSession, *, connect_timeout_s: float = 10.0
    ) -> None:
        self.channel = channel
        self._http = http
        self._connect_s = connect_timeout_s
        self._limits: dict[tuple[float, bool], aiohttp.ClientTimeout] = {}

    # -- what differs between Google's two front doors --------------------------------------

    def url(self, upstream_model: str | None, stream: bool) -> str:
        raise NotImplementedError

    def auth_headers(self, api_key: str) -> dict[str, str]:
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------

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

    def _headers(self, api_key: str, stream: bool) -> dict[str, str]:
        return {
            **self.auth_headers(api_key),
            "Content-Type": _JSON,
            "Accept": "text/event-stream" if stream else _JSON,
        }

    async def _post(
        self, url: str, body: bytes, api_key: str, limits: aiohttp.ClientTimeout, stream: bool
    ) -> aiohttp.ClientResponse:
        try:
            return await self._http.post(
                url, data=body, headers=self._headers(api_key, stream), timeout=limits
            )
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ProviderError(FailureKind.TIMEOUT, "upstream timed out", retryable=True) from exc
        except aiohttp.ClientError as exc:
            raise ProviderError(
                FailureKind.CONNECT, f"upstream connection failed ({type(exc).__name__})", retryable=True
            ) from exc

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
        headers = {h: resp.headers[h] for h in _FORWARDED_ERROR_HEADERS if h in resp.headers}
        raise http_error(resp.status, parsed, headers)

    async def chat(
        self,
        body: bytes,
        api_key: str,
        timeout_s: float,
        *,
        upstream_model: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> UpstreamReply:
        """One ``generateContent`` call. ``upstream_model`` is required (it is part of the URL);
        client ``headers`` are not forwarded to Google."""
        url = self.url(upstream_model, stream=False)
        resp = await self._post(url, body, api_key, self._timeout(timeout_s, False), stream=False)
        await self._raise_for_status(resp)
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
        """POST ``streamGenerateContent?alt=sse``; returns the response once its status says the
        stream began. ``timeout_s`` bounds the wait for the first byte and every gap between chunks."""
        url = self.url(upstream_model, stream=True)
        resp = await self._post(url, body, api_key, self._timeout(timeout_s, True), stream=True)
        await self._raise_for_status(resp)
        return resp


class GeminiAdapter(GoogleChatAdapter):
    """The Gemini API (Google AI Studio keys)."""

    id: ClassVar[str] = "gemini"

    def url(self, upstream_model: str | None, stream: bool) -> str:
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"{self.channel.base_url}/v1beta/{model_path(upstream_model)}:{action}"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-goog-api-key": api_key}
