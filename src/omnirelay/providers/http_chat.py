"""The base of the chat adapters: one HTTP POST per call, with shared timeouts, errors and replies.

A vendor's adapter subclasses ``HTTPChatAdapter`` and fills in its hooks: where a call goes and what
it sends (``_request``), how an error answer is classified (``http_error``), which response headers
such an error carries on (``forwarded_error_headers``) and, where its error bodies are not plain JSON
objects, how to unwrap them (``_error_body``). Everything else is here, once: the cached timeouts,
the POST with TIMEOUT / CONNECT errors, the error answer, the non-streaming reply and the stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, TypeAlias

import aiohttp
import orjson

from omnirelay.providers.base import Capability, FailureKind, ProviderError, UpstreamReply
from omnirelay.settings import ChannelConfig

_JSON = "application/json"
ClientHeaders: TypeAlias = Mapping[str, str] | None  # the client's request headers, where passed in
RequestParts: TypeAlias = tuple[str, bytes, dict[str, str]]  # (url, body, headers) of one call


class HTTPChatAdapter:
    id: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.CHAT})
    dialect: ClassVar[str] = ""  # the wire format of its chat calls (dialects/base.py)
    # Response headers of an error answer kept on its ProviderError (the vendor's retry hints).
    forwarded_error_headers: ClassVar[tuple[str, ...]] = ("retry-after",)

    def __init__(
        self, channel: ChannelConfig, http: aiohttp.ClientSession, *, connect_timeout_s: float = 10.0
    ) -> None:
        self.channel = channel
        self._http = http
        self._connect_s = connect_timeout_s
        self._limits: dict[tuple[float, bool], aiohttp.ClientTimeout] = {}

    # -- what each vendor says ----------------------------------------------------------------

    def _request(
        self, body: bytes, api_key: str, *, upstream_model: str | None, headers: ClientHeaders, stream: bool
    ) -> RequestParts:
        """(url, body, headers) of one call; ``headers`` are the client's, for vendors that forward some."""
        raise NotImplementedError

    @staticmethod
    def http_error(status: int, body: Any, headers: dict[str, str]) -> ProviderError:
        """The error of an answer with an error ``status``; ``body`` is what ``_error_body`` made of it."""
        raise NotImplementedError

    @staticmethod
    def _error_body(parsed: Any) -> Any:
        """The decoded error body as ``http_error`` takes it: a JSON object, else None."""
        return parsed if isinstance(parsed, dict) else None

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

    async def _post(
        self,
        body: bytes,
        api_key: str,
        timeout_s: float,
        *,
        upstream_model: str | None,
        headers: ClientHeaders,
        stream: bool,
    ) -> aiohttp.ClientResponse:
        """POST one call; returns the response once its status says it succeeded."""
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
        if resp.status >= 400:  # checked here so that a success costs no extra coroutine
            await self._raise_for_status(resp)
        return resp

    async def _raise_for_status(self, resp: aiohttp.ClientResponse) -> None:
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
        forwarded = self.forwarded_error_headers
        headers = {h: resp.headers[h] for h in forwarded if h in resp.headers}
        raise self.http_error(resp.status, self._error_body(parsed), headers)

    async def chat(
        self,
        body: bytes,
        api_key: str,
        timeout_s: float,
        *,
        upstream_model: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> UpstreamReply:
        """One non-streaming call. ``upstream_model`` is the channel's name for the model (formats
        that put it in the URL need it), ``headers`` the client's (forwarded where a vendor's
        ``_request`` says so). ``timeout_s`` bounds the whole call."""
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

        ``timeout_s`` bounds the wait for the first byte and every gap between chunks, not the whole
        stream, so a long answer is never cut by it. Read the events with
        ``providers.openai_compat.adapter.iter_sse_events``.
        """
        return await self._post(
            body, api_key, timeout_s, upstream_model=upstream_model, headers=headers, stream=True
        )
