"""The adapter for the Anthropic Messages API (``POST {base_url}/v1/messages``).

Its chat bodies are Anthropic Messages bodies (``dialect = "anthropic"``): a client speaking Anthropic
is passed through byte for byte, any other format is translated by ``dialects/anthropic.py``. The
channel's ``base_url`` is the API host, e.g. ``https://api.anthropic.com`` (a trailing ``/v1`` is
accepted too). See docs/providers/anthropic.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import aiohttp

from omnirelay.providers.anthropic.errors import http_error
from omnirelay.providers.base import Capability
from omnirelay.providers.http_chat import ClientHeaders, HTTPChatAdapter, RequestParts
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


class MessagesAdapter(HTTPChatAdapter):
    """What the Anthropic and Vertex adapters share: the Messages dialect and its error answers.

    Subclasses say where a call goes and how it is authenticated (``_request``).
    """

    id: ClassVar[str] = "anthropic"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.CHAT})
    dialect: ClassVar[str] = "anthropic"  # the wire format of its chat calls (dialects/base.py)
    forwarded_error_headers: ClassVar[tuple[str, ...]] = _FORWARDED_ERROR_HEADERS
    http_error = staticmethod(http_error)

    @staticmethod
    def _error_body(parsed: Any) -> dict[str, Any] | None:
        if isinstance(parsed, list) and parsed and isinstance(parsed[0], dict):
            parsed = parsed[0]  # Google front ends sometimes wrap the error object in a list
        return parsed if isinstance(parsed, dict) else None


class AnthropicAdapter(MessagesAdapter):
    id: ClassVar[str] = "anthropic"

    def __init__(
        self, channel: ChannelConfig, http: aiohttp.ClientSession, *, connect_timeout_s: float = 10.0
    ) -> None:
        super().__init__(channel, http, connect_timeout_s=connect_timeout_s)
        base = channel.base_url.rstrip("/")
        self._url = f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"

    def _request(
        self, body: bytes, api_key: str, *, upstream_model: str | None, headers: ClientHeaders, stream: bool
    ) -> RequestParts:
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
