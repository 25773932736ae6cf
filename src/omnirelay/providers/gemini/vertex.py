"""Gemini on Vertex AI: the Gemini wire format sent to Google Cloud.

The channel's ``base_url`` is the publisher-models prefix, ending in ``/models``::

    https://{LOCATION}-aiplatform.googleapis.com/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/google/models

(``https://aiplatform.googleapis.com/v1/projects/{PROJECT}/locations/global/publishers/google/models``
for the global endpoint). Calls are ``POST {base_url}/{model}:generateContent`` and
``{base_url}/{model}:streamGenerateContent?alt=sse``. The channel's api key is an OAuth access token
sent as ``Authorization: Bearer``; minting and refreshing it (service account, workload identity) is
outside the adapter, so a channel whose token expired answers 401 UNAUTHENTICATED and is retried
elsewhere.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote

from omnirelay.providers.gemini.adapter import GoogleChatAdapter


class VertexGeminiAdapter(GoogleChatAdapter):
    id: ClassVar[str] = "vertex_gemini"

    def url(self, upstream_model: str | None, stream: bool) -> str:
        if not upstream_model:
            raise ValueError("a Gemini call needs upstream_model: the model goes in the URL")
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"{self.channel.base_url}/{quote(upstream_model, safe='-._~@')}:{action}"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}
