"""The adapter for every OpenAI-compatible upstream: pass-through of Chat Completions bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

import aiohttp

from omnirelay.providers.base import Capability
from omnirelay.providers.http_chat import ClientHeaders, HTTPChatAdapter, RequestParts
from omnirelay.providers.openai_compat.errors import http_error
from omnirelay.providers.openai_compat.vendors import Vendor, prepare_body, vendor_for
from omnirelay.settings import ChannelConfig

_JSON = "application/json"
_FORWARDED_ERROR_HEADERS = ("retry-after", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")


class OpenAICompatAdapter(HTTPChatAdapter):
    id: ClassVar[str] = "openai"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.CHAT})
    dialect: ClassVar[str] = "openai_chat"  # the wire format of its chat calls (dialects/base.py)
    forwarded_error_headers: ClassVar[tuple[str, ...]] = _FORWARDED_ERROR_HEADERS
    http_error = staticmethod(http_error)

    def __init__(
        self, channel: ChannelConfig, http: aiohttp.ClientSession, *, connect_timeout_s: float = 10.0
    ) -> None:
        super().__init__(channel, http, connect_timeout_s=connect_timeout_s)
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

    def _request(
        self, body: bytes, api_key: str, *, upstream_model: str | None, headers: ClientHeaders, stream: bool
    ) -> RequestParts:
        """The OpenAI-compatible wire needs neither ``upstream_model`` (the model is already in
        ``body``) nor the client's ``headers``."""
        return self._chat_url, body, self._headers(api_key, stream)


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
