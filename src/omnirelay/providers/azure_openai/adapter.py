"""The Azure OpenAI adapter: OpenAI Chat Completions bodies, posted to a deployment's URL.

Azure serves each model as a named *deployment* of a resource:
``POST {base_url}/openai/deployments/{deployment}/chat/completions?api-version=<v>`` with the key in
an ``api-key`` header. The deployment is the channel's upstream model name (its ``models`` map turns a
public name into the deployment name). ``api-version`` comes from the channel's ``base_url`` query
string (``https://res.openai.azure.com?api-version=2025-01-01-preview``), else
``DEFAULT_API_VERSION``. A ``base_url`` ending in ``/openai/v1`` selects Azure's version-less v1 API
instead: ``POST {base_url}/chat/completions`` with the deployment as ``model`` in the body.

Bodies and answers are OpenAI's, so the pass-through path and the ``openai_chat`` dialect apply
unchanged; the body's ``model`` field is left as it is (Azure ignores it on deployment URLs). Errors
are OpenAI-shaped, plus Azure's content filter (``code: "content_filter"``, the client's fault) and
404s for a missing deployment or a wrong path or API version (the channel's fault: another channel
may serve the model). See docs/providers/azure_openai.md.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

import aiohttp
import orjson

from omnirelay.providers.base import Capability, ProviderError
from omnirelay.providers.http_chat import ClientHeaders, RequestParts
from omnirelay.providers.openai_compat.adapter import OpenAICompatAdapter
from omnirelay.providers.openai_compat.errors import classified_error, classify_status
from omnirelay.settings import ChannelConfig

DEFAULT_API_VERSION = "2024-10-21"  # the data-plane inference GA version this adapter was written for
_JSON = "application/json"
_FORWARDED_ERROR_HEADERS = (
    "retry-after",
    "retry-after-ms",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
)
# Azure error codes -> (retry on the next candidate, the client's fault); they win over the status.
_AZURE_CODES: dict[str, tuple[bool, bool]] = {
    "content_filter": (False, True),  # the prompt tripped the resource's content filter
    "ResponsibleAIPolicyViolation": (False, True),  # the same, as innererror.code
    "DeploymentNotFound": (True, False),  # the channel names a deployment the resource lacks
    "OperationNotSupported": (True, False),  # the deployment's model does not do chat completions
}


def split_base_url(base_url: str) -> tuple[str, str | None, bool]:
    """``base_url`` -> (resource root without a trailing ``/openai``, its api-version, is the v1 API)."""
    parts = urlsplit(base_url)
    versions = parse_qs(parts.query).get("api-version")
    version = versions[0] if versions and versions[0] else None
    path = parts.path.rstrip("/")
    v1 = path.endswith("/openai/v1")
    if not v1 and path.endswith("/openai"):
        path = path[: -len("/openai")]
    return urlunsplit((parts.scheme, parts.netloc, path, "", "")), version, v1


def chat_url(base_url: str, deployment: str) -> str:
    root, version, v1 = split_base_url(base_url)
    if v1:
        return f"{root}/chat/completions" + (f"?api-version={quote(version, safe='')}" if version else "")
    api_version = quote(version or DEFAULT_API_VERSION, safe="")
    return (
        f"{root}/openai/deployments/{quote(deployment, safe='')}/chat/completions?api-version={api_version}"
    )


def classify(status: int, body: dict[str, Any] | None) -> tuple[bool, bool]:
    """(retryable, client_fault) of an Azure error answer."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        inner = error.get("innererror")
        codes = [error.get("code"), inner.get("code") if isinstance(inner, dict) else None]
        for code in codes:
            if isinstance(code, str) and code in _AZURE_CODES:
                return _AZURE_CODES[code]
    if status == 404:  # the URL is built from the channel's settings alone
        return (True, False)
    return classify_status(status, body)


def http_error(status: int, body: dict[str, Any] | None, headers: dict[str, str]) -> ProviderError:
    return classified_error(status, body, headers, classify)


def _model_of(body: bytes) -> str:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    model = parsed.get("model") if isinstance(parsed, dict) else None
    if not isinstance(model, str) or not model:
        raise ValueError("Azure OpenAI needs the deployment name: pass upstream_model")
    return model


class AzureOpenAIAdapter(OpenAICompatAdapter):
    id: ClassVar[str] = "azure_openai"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.CHAT})
    dialect: ClassVar[str] = "openai_chat"
    forwarded_error_headers: ClassVar[tuple[str, ...]] = _FORWARDED_ERROR_HEADERS
    http_error = staticmethod(http_error)

    def __init__(
        self, channel: ChannelConfig, http: aiohttp.ClientSession, *, connect_timeout_s: float = 10.0
    ) -> None:
        super().__init__(channel, http, connect_timeout_s=connect_timeout_s)
        self._urls: dict[str, str] = {}

    def chat_url(self, deployment: str) -> str:
        url = self._urls.get(deployment)
        if url is None:
            if len(self._urls) > 1024:
                self._urls.clear()
            url = self._urls[deployment] = chat_url(self.channel.base_url, deployment)
        return url

    def _headers(self, api_key: str, stream: bool) -> dict[str, str]:
        return {
            "api-key": api_key,
            "Content-Type": _JSON,
            "Accept": "text/event-stream" if stream else _JSON,
        }

    def _request(
        self, body: bytes, api_key: str, *, upstream_model: str | None, headers: ClientHeaders, stream: bool
    ) -> RequestParts:
        """A call goes to the deployment ``upstream_model`` (else the body's ``model``)."""
        return self.chat_url(upstream_model or _model_of(body)), body, self._headers(api_key, stream)
