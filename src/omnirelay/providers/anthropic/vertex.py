"""Claude on Google Vertex AI: the Anthropic Messages body, sent to the model's rawPredict endpoint.

The channel's ``base_url`` is the full prefix up to the models collection, e.g.
``https://us-east5-aiplatform.googleapis.com/v1/projects/my-project/locations/us-east5/publishers/anthropic/models``
(the project and region are read from nowhere else). A call goes to ``{base_url}/{model}:rawPredict``,
or ``:streamRawPredict`` for a stream, with ``Authorization: Bearer <channel key>``: the key is an
OAuth access token, which the operator must refresh (omnirelay does not mint tokens). The body loses
``model`` (it is in the URL) and gains ``"anthropic_version": "vertex-2023-10-16"``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import aiohttp
import orjson

from omnirelay.providers.anthropic.adapter import MessagesAdapter, client_header
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.http_chat import ClientHeaders, RequestParts
from omnirelay.settings import ChannelConfig

VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
MODELS_SUFFIX = "/publishers/anthropic/models"
_JSON = "application/json"


class VertexAnthropicAdapter(MessagesAdapter):
    id: ClassVar[str] = "vertex_anthropic"

    def __init__(
        self, channel: ChannelConfig, http: aiohttp.ClientSession, *, connect_timeout_s: float = 10.0
    ) -> None:
        super().__init__(channel, http, connect_timeout_s=connect_timeout_s)
        base = channel.base_url.rstrip("/")
        if not base.endswith(MODELS_SUFFIX):
            raise ValueError(
                f"channel {channel.name!r}: a vertex_anthropic base_url is the prefix up to the models "
                "collection, e.g. https://us-east5-aiplatform.googleapis.com/v1/projects/PROJECT/"
                f"locations/us-east5{MODELS_SUFFIX}"
            )
        self._models_url = base

    def _request(
        self, body: bytes, api_key: str, *, upstream_model: str | None, headers: ClientHeaders, stream: bool
    ) -> RequestParts:
        try:
            data: Any = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise ProviderError(
                FailureKind.HTTP, "the request body is not a JSON object", retryable=False, client_fault=True
            )
        model = data.pop("model", None)
        model = upstream_model or model
        if not isinstance(model, str) or not model:
            raise ProviderError(
                FailureKind.HTTP, "no model to call on Vertex AI", retryable=False, client_fault=True
            )
        data["anthropic_version"] = VERTEX_ANTHROPIC_VERSION
        action = "streamRawPredict" if stream else "rawPredict"
        sent = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": _JSON,
            "Accept": "text/event-stream" if stream else _JSON,
        }
        beta = client_header(headers, "anthropic-beta")
        if beta:
            sent["anthropic-beta"] = beta
        return f"{self._models_url}/{model}:{action}", orjson.dumps(data), sent
