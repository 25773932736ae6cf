"""The adapter for every OpenAI-compatible upstream: pass-through of Chat Completions bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import aiohttp
import orjson

from omnirelay.providers.base import Capability, FailureKind, ProviderError, UpstreamReply
from omnirelay.providers.openai_compat.errors import http_error
from omnirelay.providers.openai_compat.vendors import Vendor, prepare_body, vendor_for
from omnirelay.settings import ChannelConfig

_JSON = "application/json"
_FORWARDED_ERROR_HEADERS = ("retry-after", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")


class OpenAICompatAdapter:
    id: ClassVar[str] = "openai"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.CHAT})
    dialect: ClassVar[str] = "openai_chat"  # the wire format of its chat calls (dialects/base.py)

    def __init__(
        self, channel: ChannelConfig, http: aiohttp.ClientSession, *, connect_timeout_s: float = 10.0
    ) -> None:
        self.channel = channel
        self._http = http
        self._connect_s = connect_timeout_s
        self._limits: dict[tuple[float, bool], aiohttp.ClientTimeout] = {}
        self._chat_url = f"{channel.base_url}/chat/completions"
        # The vendor-table row matching the base_url's host (catalog/vendors.yaml), or None.
        self.vendor: Vendor | None = vendor_for(channel)

    def prepare(self, body_bytes: bytes, body: dict[str, Any] | None, stream: bool) -> bytes:
        """The request body this channel's vendor accepts (see vendors.apply_vendor).

        ``body`` is ``body_bytes`` parsed, or None to parse it here only if needed. Without a vendor
        row, or when the row changes nothing, ``body_bytes`` itself is returned.
        """
        vendor = self.vendor
        if vendor is None:
            return body_bytes
        return prepare_body(body_bytes, body, vendor, stream=stream)

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
        headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": _JSON,
            "Accept": "text/event-stream" if stream else _JSON,
        }
        vendor = self.vendor
        if vendor is not None:
            auth_header = vendor.auth_header
            if auth_header is not None:
                del headers["Authorization"]
                headers[auth_header] = api_key
            headers.update(vendor.extra_headers)
        return headers

    async def _post(
        self, body: bytes, api_key: str, limits: aiohttp.ClientTimeout, stream: bool
    ) -> aiohttp.ClientResponse:
        try:
            return await self._http.post(
                self._chat_url, data=body, headers=self._headers(api_key, stream), timeout=limits
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
        """One non-streaming call. ``upstream_model`` and ``headers`` are part of the adapter
        interface (formats that put the model in the URL, client headers to forward); the
        OpenAI-compatible wire needs neither: the model is already in ``body``."""
        resp = await self._post(body, api_key, self._timeout(timeout_s, False), stream=False)
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
        """POST a streaming request; returns the response once its status says the stream began.

        ``timeout_s`` bounds the wait for the first byte and every gap between chunks, not the whole
        stream, so a long answer is never cut by it.
        """
        resp = await self._post(body, api_key, self._timeout(timeout_s, True), stream=True)
        await self._raise_for_status(resp)
        return resp


async def iter_sse_events(resp: aiohttp.ClientResponse) -> AsyncIterator[list[bytes]]:
    """Yield the complete SSE events of each network read (each without its blank-line separator).

    Grouping per read keeps the number of writes to the client equal to the upstream's, so a chunk is
    forwarded as soon as it is complete and never waits for the next one.
    """
    buffer = b""
    async for data in resp.content.iter_any():
        buffer += data
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
        if b"\n\n" not in buffer:
            continue
        *events, buffer = buffer.split(b"\n\n")
        complete = [e for e in events if e]
        if complete:
            yield complete
    if buffer.strip():
        yield [buffer.strip()]
