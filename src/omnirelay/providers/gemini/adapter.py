"""The Gemini API as a chat upstream: ``POST {base_url}/v1beta/models/{model}:generateContent``.

The channel's ``base_url`` is the API root, e.g. ``https://generativelanguage.googleapis.com``; its
key goes in the ``x-goog-api-key`` header, never in the URL (URLs end up in logs). Bodies are Gemini
``generateContent`` bodies (dialects/gemini.py), so the model is not in them: it comes as
``upstream_model`` and goes in the URL. A stream is ``:streamGenerateContent?alt=sse``, whose SSE
events ``iter_sse_events`` reads (Google separates them with CRLF). Errors are Google's and are
classified through the tables of ``errors.py``.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

from omnirelay.providers.base import Capability
from omnirelay.providers.gemini.errors import http_error
from omnirelay.providers.http_chat import ClientHeaders, HTTPChatAdapter, RequestParts

_JSON = "application/json"
_FORWARDED_ERROR_HEADERS = ("retry-after",)


def model_path(upstream_model: str | None) -> str:
    """``models/{model}`` for a model name; a resource name (``tunedModels/x``) is kept as given."""
    if not upstream_model:
        raise ValueError("a Gemini call needs upstream_model: the model goes in the URL")
    if "/" in upstream_model:
        return quote(upstream_model, safe="/-._~@")
    return "models/" + quote(upstream_model, safe="-._~@")


class GoogleChatAdapter(HTTPChatAdapter):
    """What the Gemini API and Vertex AI share: the Gemini dialect and Google's error answers.

    ``upstream_model`` is required (it is part of the URL); client ``headers`` are not forwarded to
    Google.
    """

    id: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.CHAT})
    dialect: ClassVar[str] = "gemini"  # the wire format of its chat calls (dialects/base.py)
    forwarded_error_headers: ClassVar[tuple[str, ...]] = _FORWARDED_ERROR_HEADERS
    http_error = staticmethod(http_error)

    # -- what differs between Google's two front doors --------------------------------------

    def url(self, upstream_model: str | None, stream: bool) -> str:
        raise NotImplementedError

    def auth_headers(self, api_key: str) -> dict[str, str]:
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------

    def _request(
        self, body: bytes, api_key: str, *, upstream_model: str | None, headers: ClientHeaders, stream: bool
    ) -> RequestParts:
        url = self.url(upstream_model, stream)  # first: a missing model fails before anything else
        sent = {
            **self.auth_headers(api_key),
            "Content-Type": _JSON,
            "Accept": "text/event-stream" if stream else _JSON,
        }
        return url, body, sent

    @staticmethod
    def _error_body(parsed: Any) -> Any:
        """Google's error body as decoded: ``errors.http_error`` unwraps an array answer itself."""
        return parsed


class GeminiAdapter(GoogleChatAdapter):
    """The Gemini API (Google AI Studio keys)."""

    id: ClassVar[str] = "gemini"

    def url(self, upstream_model: str | None, stream: bool) -> str:
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"{self.channel.base_url}/v1beta/{model_path(upstream_model)}:{action}"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-goog-api-key": api_key}
