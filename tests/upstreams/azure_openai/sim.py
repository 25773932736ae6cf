"""Azure OpenAI simulator: the OpenAI simulator's replies on Azure's deployment URLs.

``POST /openai/deployments/{deployment}/chat/completions?api-version=...`` with an ``api-key`` header,
and the version-less v1 API ``POST /openai/v1/chat/completions`` (deployment in ``model``). Replies,
streams, usage, tools and the failure knobs (``sim.config``) are the OpenAI simulator's own
(tests/upstreams/openai/sim.py); what differs is Azure's:

- auth: the ``api-key`` header; a missing or wrong key is 401 ``{"error": {"code": "401", ...}}``;
- a missing or unknown ``api-version`` is 404 ``{"error": {"code": "404", "message": "Resource not
  found"}}``; an unknown deployment is 404 ``code: "DeploymentNotFound"``;
- the deployment decides the model (``deployments`` maps deployment -> model name); the body's
  ``model`` is ignored, as Azure does; answers carry ``prompt_filter_results`` and per-choice
  ``content_filter_results`` like Azure's;
- content filter: a prompt containing one of ``blocked_words`` is refused with Azure's 400
  ``code: "content_filter"`` body.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from tests.upstreams.openai.sim import (
    JSON,
    OpenAISim,
    SimConfig,
    _drop_connection,
    _injected_failure,
    _invalid_url,
    _loads_or_none,
    _message_text,
    _validate_chat,
)

DEFAULT_AZURE_KEY = "azure-key-0123456789abcdef"
DEFAULT_DEPLOYMENTS = {"chat-deploy": "gpt-4o-mini", "reasoner-deploy": "sim-reasoner"}
API_VERSIONS = frozenset({"2024-06-01", "2024-10-21", "2025-01-01-preview", "2025-04-01-preview"})
_FILTER_CLEAN = {
    category: {"filtered": False, "severity": "safe"}
    for category in ("hate", "self_harm", "sexual", "violence")
}


def azure_error(http_status: int, code: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, **extra}}, status=http_status)


class AzureOpenAISim(OpenAISim):
    """``OpenAISim`` on Azure's paths; ``root_url`` is what a channel's ``base_url`` takes."""

    def __init__(
        self,
        api_keys: Iterable[str] | None = None,
        config: SimConfig | None = None,
        deployments: dict[str, str] | None = None,
    ) -> None:
        super().__init__(api_keys if api_keys is not None else {DEFAULT_AZURE_KEY}, config)
        self.deployments = dict(deployments if deployments is not None else DEFAULT_DEPLOYMENTS)
        self.blocked_words: set[str] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(middlewares=[self._record_middleware])
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._azure_chat)
        app.router.add_post("/openai/v1/chat/completions", self._azure_chat)
        app.router.add_route("*", "/{tail:.*}", _invalid_url)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner, self._host, self._port = runner, host, runner.addresses[0][1]

    async def __aenter__(self) -> AzureOpenAISim:
        await self.start()
        return self

    @property
    def azure_requests(self) -> list[Any]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    async def _azure_chat(self, request: web.Request) -> web.StreamResponse:
        cfg = self.config
        if cfg.latency_ms > 0:
            await asyncio.sleep(cfg.latency_ms / 1000)
        if cfg.drop_connection_next > 0:
            cfg.drop_connection_next -= 1
            return _drop_connection(request)
        v1 = request.path.startswith("/openai/v1/")
        version = request.query.get("api-version")
        if not v1 and version not in API_VERSIONS:
            return azure_error(404, "404", "Resource not found")
        if request.headers.get("api-key") not in self.api_keys:
            return azure_error(
                401,
                "401",
                "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
                "provide a valid key for an active subscription and use a correct regional API endpoint "
                "for your resource.",
            )
        raw = await request.read()
        body = _loads_or_none(raw)
        deployment = (
            body.get("model") if v1 and isinstance(body, dict) else request.match_info.get("deployment")
        )
        model = self.deployments.get(str(deployment))
        if model is None:
            return azure_error(
                404,
                "DeploymentNotFound",
                "The API deployment for this resource does not exist. If you created the deployment "
                "within the last 5 minutes, please wait a moment and try again.",
            )
        if cfg.fail_next:
            return _injected_failure(cfg.fail_next.pop(0), model, cfg.retry_after_s)
        if isinstance(body, dict):
            body = {**body, "model": model}
        if (invalid := _validate_chat(raw, body, cfg.models)) is not None:
            return invalid
        assert isinstance(body, dict)
        if self._blocked(body):
            return azure_error(
                400,
                "content_filter",
                "The response was filtered due to the prompt triggering Azure OpenAI's content "
                "management policy. Please modify your prompt and retry.",
                param="prompt",
                type=None,
                status=400,
                innererror={
                    "code": "ResponsibleAIPolicyViolation",
                    "content_filter_result": {
                        **_FILTER_CLEAN,
                        "violence": {"filtered": True, "severity": "high"},
                    },
                },
            )
        response = await self._respond(request, body)
        if isinstance(response, web.Response) and response.body is not None:
            response.body = _with_filter_results(response.body)
        return response

    def _blocked(self, body: JSON) -> bool:
        text = " ".join(_message_text(m) for m in body.get("messages") or [] if isinstance(m, dict))
        return any(word in text for word in self.blocked_words)


def _with_filter_results(raw: Any) -> bytes:
    """Add Azure's content-filter annotations to a whole (non-streamed) answer."""
    data = _loads_or_none(bytes(raw))
    if not isinstance(data, dict):
        return bytes(raw)
    data["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": _FILTER_CLEAN}]
    for choice in data.get("choices") or []:
        choice["content_filter_results"] = _FILTER_CLEAN
    return json.dumps(data).encode()


def channel_base_url(sim: AzureOpenAISim, api_version: str | None = None) -> str:
    return sim.root_url + (f"?api-version={api_version}" if api_version else "")
