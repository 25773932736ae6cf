"""In-process simulator of the Anthropic Messages API, used as the gateway's test upstream.

It speaks the public wire format (``POST /v1/messages`` with ``x-api-key`` and ``anthropic-version``,
the ``message`` object, Anthropic's error body, the SSE event sequence with ``ping``, per-block
``content_block_*`` events, ``input_json_delta`` fragments and ``signature_delta``) with deterministic
content. It also answers Claude-on-Vertex calls
(``POST /v1/projects/{p}/locations/{r}/publishers/anthropic/models/{model}:rawPredict`` and
``:streamRawPredict``, Bearer token, ``anthropic_version`` in the body, no ``model`` in it).

Behaviour (deterministic):
- reply: ``"Echo: " + <text of the last user message>`` (its text blocks, else its tool results'
  text), or ``config.reply``; ``max_tokens`` keeps that many words (``stop_reason: "max_tokens"``);
  the first ``stop_sequences`` entry found cuts the text (``stop_reason: "stop_sequence"``);
- tools: with custom ``tools``, ``tool_choice`` not ``none`` and a last user message holding no
  tool_result, the reply is tool_use blocks (``stop_reason: "tool_use"``): the first tool, every tool
  when the user text contains "call all tools" (unless ``disable_parallel_tool_use``), or the forced
  one; ``input`` sets each required property to a placeholder of its type; ``config.tool_preamble``
  adds a text block before them;
- thinking (``thinking.type`` enabled or adaptive): a ``thinking`` block first,
  ``"Thinking about the request: <user text>"``, signed (``sign_thinking``); when the user text contains
  "redacted", a ``redacted_thinking`` block follows it. Thinking blocks sent back in assistant turns
  must carry the signature this simulator gave them, else 400;
- usage: ``input_tokens`` = Σ over messages (words + 3) + words of the system prompt;
  ``output_tokens`` = words of text and thinking + per tool call (words of its input JSON + 1);
  ``cache_read_input_tokens`` / ``cache_creation_input_tokens`` from the config, as given (Anthropic's
  ``input_tokens`` excludes them). ``config.omit_usage`` drops every usage field.
- checks: bad or missing key (``x-api-key``, or ``Authorization: Bearer`` as recent SDKs send it)
  → 401 ``authentication_error``; no ``anthropic-version`` header → 400;
  no ``max_tokens`` → 400; an unknown model → 404 ``not_found_error``; empty text blocks, unsigned or
  wrongly signed thinking, tool_use ids without a tool_result in the next message, tool_results without
  a tool_use in the previous one, tool_results after other content, forced tool_choice or a
  temperature other than 1 with thinking, a thinking budget under 1024 or not under max_tokens → 400.

The control API under ``/_sim/`` (config, reset, requests, stats) mirrors ``AnthropicSim.config``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import hmac
import json
import re
import secrets
import string
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.upstreams.openai.sim import placeholder, word_pieces
from tests.upstreams.threaded import start_in_thread

JSON = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# An entry of SimConfig.fail_next: an HTTP status, or {"status": int, "body"?: dict, "headers"?: dict}.
FailSpec = int | dict[str, Any]

DEFAULT_API_KEY = "sk-ant-upstream-test"
DEFAULT_VERTEX_TOKEN = "ya29.vertex-upstream-test"
DEFAULT_MODELS = (
    "claude-sonnet-4-5",
    "claude-opus-4-1",
    "claude-3-5-haiku-latest",
    "sim-claude",
    "claude-sonnet-4-5@20250929",
)
VERTEX_VERSION = "vertex-2023-10-16"
TOOL_ARGUMENT_FRAGMENT = 8  # characters of tool input JSON per input_json_delta
_SIGNING_KEY = b"omnirelay-anthropic-sim"
_ALNUM = string.ascii_letters + string.digits
_TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_BLOCK_TYPES = frozenset(
    {"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"}
)


@dataclass
class SimConfig:
    """Behaviour knobs; settable from Python (``sim.config.x = ...``) or ``POST /_sim/config``."""

    latency_ms: float = 0  # delay before a response's headers
    chunk_delay_ms: float = 0  # delay between two stream events
    fail_next: list[FailSpec] = field(default_factory=list)  # errors for the next message requests
    drop_connection_next: int = 0  # close the socket without a response, next N message requests
    stream_cut_after: int | None = None  # drop the connection after this many stream events
    stream_error_after: int | None = None  # send an overloaded_error event after this many events
    reply: str | None = None  # fixed reply text instead of the echo
    tool_preamble: str | None = None  # a text block before tool_use blocks
    omit_usage: bool = False  # no usage anywhere (an Anthropic-compatible vendor that reports none)
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    model_alias: str | None = None  # model name to report instead of the requested one
    retry_after_s: int = 1  # retry-after of injected 429s and 529s
    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))

    def update(self, values: Mapping[str, Any]) -> None:
        """Set the given fields; unknown names raise ValueError and change nothing."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(unknown)}")
        for name, value in values.items():
            setattr(self, name, list(value) if name in ("fail_next", "models") else value)

    def copy_from(self, other: SimConfig) -> None:
        for f in dataclasses.fields(self):
            value = getattr(other, f.name)
            setattr(self, f.name, list(value) if isinstance(value, list) else value)

    def to_json(self) -> JSON:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the simulator received it (header names lower-cased)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any  # the parsed body; None when empty or not JSON

    def to_json(self) -> JSON:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "json": self.json,
            "body": self.body.decode("utf-8", "replace"),
        }


def sign_thinking(text: str) -> str:
    """The signature this simulator gives a thinking block (and expects back with it)."""
    return base64.b64encode(hmac.new(_SIGNING_KEY, text.encode(), hashlib.sha256).digest()).decode()


def error_body(type_: str, message: str) -> JSON:
    return {"type": "error", "error": {"type": type_, "message": message}, "request_id": _request_id()}


def error_response(
    status: int, type_: str, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A response with Anthropic's error body ``{"type": "error", "error": {type, message}}``."""
    return web.json_response(error_body(type_, message), status=status, headers=headers)


class AnthropicSim:
    """An aiohttp server that behaves like ``https://api.anthropic.com`` for the Messages API."""

    def __init__(
        self,
        api_keys: Iterable[str] | None = None,
        config: SimConfig | None = None,
        vertex_tokens: Iterable[str] | None = None,
    ) -> None:
        self.api_keys: set[str] = set(api_keys) if api_keys is not None else {DEFAULT_API_KEY}
        self.vertex_tokens: set[str] = (
            set(vertex_tokens) if vertex_tokens is not None else {DEFAULT_VERTEX_TOKEN}
        )
        self._defaults = config or SimConfig()
        self.config = SimConfig()
        self.config.copy_from(self._defaults)
        self.requests: list[RecordedRequest] = []
        self.active_streams = 0
        self.cancelled_streams = 0
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._host = "127.0.0.1"

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(middlewares=[self._record_middleware])
        app.on_response_prepare.append(_add_headers)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_post(
            "/v1/projects/{project}/locations/{region}/publishers/anthropic/models/{target}", self._vertex
        )
        app.router.add_get("/_sim/config", self._get_config)
        app.router.add_post("/_sim/config", self._set_config)
        app.router.add_post("/_sim/reset", self._reset)
        app.router.add_get("/_sim/requests", self._get_requests)
        app.router.add_get("/_sim/stats", self._get_stats)
        app.router.add_route("*", "/{tail:.*}", _not_found)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner, self._host, self._port = runner, host, runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> AnthropicSim:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the simulator is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """What an Anthropic client (and a channel) takes as base_url: ``http://127.0.0.1:PORT``."""
        return f"http://{self._host}:{self.port}"

    def vertex_base_url(self, project: str = "sim-project", region: str = "us-east5") -> str:
        """A vertex_anthropic channel's base_url: the prefix up to ``.../publishers/anthropic/models``."""
        return f"{self.base_url}/v1/projects/{project}/locations/{region}/publishers/anthropic/models"

    def reset(self) -> None:
        """Restore the constructor's config, clear recorded requests and the cancel counter."""
        self.config.copy_from(self._defaults)
        self.requests.clear()
        self.cancelled_streams = 0

    @property
    def message_requests(self) -> list[RecordedRequest]:
        """The Messages calls received, direct and Vertex."""
        return [r for r in self.requests if r.path == "/v1/messages" or r.path.endswith("Predict")]

    # -- endpoints -------------------------------------------------------------------------

    @web.middleware
    async def _record_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/_sim/"):
            raw = await request.read()
            self.requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.path,
                    query=dict(request.query),
                    headers={k.lower(): v for k, v in request.headers.items()},
                    body=raw,
                    json=_loads_or_none(raw),
                )
            )
        return await handler(request)

    def _check_key(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("x-api-key", "").strip()
        scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
        if not key and scheme.lower() == "bearer":
            key = bearer.strip()  # recent SDKs send the API key as a Bearer token
        if not key:
            return error_response(401, "authentication_error", "x-api-key header is required")
        if key not in self.api_keys:
            return error_response(401, "authentication_error", "invalid x-api-key")
        return None

    def _check_version(self, request: web.Request) -> web.Response | None:
        if not request.headers.get("anthropic-version", "").strip():
            return error_response(400, "invalid_request_error", "anthropic-version: header is required")
        return None

    def _check_token(self, request: web.Request) -> web.Response | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() not in self.vertex_tokens:
            body = {
                "error": {
                    "code": 401,
                    "message": "Request had invalid authentication credentials. Expected OAuth 2 access "
                    "token, login cookie or other valid authentication credential.",
                    "status": "UNAUTHENTICATED",
                }
            }
            return web.json_response(body, status=401)
        return None

    async def _before(self, request: web.Request) -> web.Response | None:
        """Latency and dropped connections, common to both routes."""
        cfg = self.config
        if cfg.latency_ms > 0:
            await asyncio.sleep(cfg.latency_ms / 1000)
        if cfg.drop_connection_next > 0:
            cfg.drop_connection_next -= 1
            return _drop_connection(request)
        return None

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        if (early := await self._before(request)) is not None:
            return early
        if (denied := self._check_key(request) or self._check_version(request)) is not None:
            return denied
        body = _loads_or_none(await request.read())
        if self.config.fail_next:
            model = body.get("model") if isinstance(body, dict) else None
            return _injected_failure(
                self.config.fail_next.pop(0), str(model or ""), self.config.retry_after_s
            )
        if not isinstance(body, dict):
            return error_response(400, "invalid_request_error", "The request body must be a JSON object.")
        if not body.get("model"):
            return error_response(400, "invalid_request_error", "model: Field required")
        if (invalid := _validate(body, str(body["model"]), self.config.models)) is not None:
            return invalid
        return await self._respond(request, body, str(body["model"]))

    async def _vertex(self, request: web.Request) -> web.StreamResponse:
        model, _, action = request.match_info["target"].rpartition(":")
        if action not in ("rawPredict", "streamRawPredict") or not model:
            return await _not_found(request)
        if (early := await self._before(request)) is not None:
            return early
        if (denied := self._check_token(request)) is not None:
            return denied
        body = _loads_or_none(await request.read())
        if self.config.fail_next:
            return _injected_failure(self.config.fail_next.pop(0), model, self.config.retry_after_s)
        if not isinstance(body, dict):
            return error_response(400, "invalid_request_error", "The request body must be a JSON object.")
        if body.get("anthropic_version") != VERTEX_VERSION:
            return error_response(
                400, "invalid_request_error", f"anthropic_version: Input should be '{VERTEX_VERSION}'"
            )
        if "model" in body:
            return error_response(400, "invalid_request_error", "model: Extra inputs are not permitted")
        if (invalid := _validate(body, model, self.config.models)) is not None:
            return invalid
        if bool(body.get("stream")) != (action == "streamRawPredict"):
            return error_response(
                400, "invalid_request_error", f"stream must be {action == 'streamRawPredict'} for {action}"
            )
        return await self._respond(request, body, model)

    async def _count_tokens(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._check_key(request) or self._check_version(request)) is not None:
            return denied
        body = _loads_or_none(await request.read())
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return error_response(400, "invalid_request_error", "messages: Field required")
        return web.json_response({"input_tokens": _input_tokens(body)})

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._check_key(request)) is not None:
            return denied
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
            for m in self.config.models
        ]
        first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
        return web.json_response({"data": data, "has_more": False, "first_id": first, "last_id": last})

    # -- replies ---------------------------------------------------------------------------

    async def _respond(self, request: web.Request, body: JSON, model: str) -> web.StreamResponse:
        blocks, stop_reason, stop_sequence = _reply(body, self.config)
        usage: JSON | None = None
        if not self.config.omit_usage:
            usage = {
                "input_tokens": _input_tokens(body),
                "cache_creation_input_tokens": self.config.cache_creation_input_tokens,
                "cache_read_input_tokens": self.config.cache_read_input_tokens,
                "output_tokens": _output_tokens(blocks),
                "service_tier": "standard",
            }
        message: JSON = {
            "id": "msg_" + _random_id(24),
            "type": "message",
            "role": "assistant",
            "model": self.config.model_alias or model,
            "content": blocks,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
        }
        if usage is not None:
            message["usage"] = usage
        if body.get("stream"):
            return await self._stream(request, _stream_events(message))
        return web.json_response(message)

    async def _stream(self, request: web.Request, events: Iterable[tuple[str, JSON]]) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
        )
        self.active_streams += 1
        try:
            await response.prepare(request)
            for sent, (kind, data) in enumerate(events):
                cfg = self.config
                if cfg.stream_cut_after is not None and sent >= cfg.stream_cut_after:
                    _drop_connection(request)
                    return response
                if cfg.stream_error_after is not None and sent >= cfg.stream_error_after:
                    kind, data = "error", error_body("overloaded_error", "Overloaded")
                    await response.write(_sse(kind, data))
                    break
                if sent and cfg.chunk_delay_ms > 0:
                    await asyncio.sleep(cfg.chunk_delay_ms / 1000)
                await response.write(_sse(kind, data))
            await response.write_eof()
        except ConnectionError:  # the client went away: aiohttp reports it on the next write
            self.cancelled_streams += 1
        except asyncio.CancelledError:  # the handler was cancelled (client gone, or server stopping)
            self.cancelled_streams += 1
            raise
        finally:
            self.active_streams -= 1
        return response

    # -- control API -----------------------------------------------------------------------

    async def _get_config(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.config.to_json())

    async def _set_config(self, request: web.Request) -> web.StreamResponse:
        values = _loads_or_none(await request.read())
        if not isinstance(values, dict):
            return error_response(400, "invalid_request_error", "expected a JSON object of config fields")
        try:
            self.config.update(values)
        except (ValueError, TypeError) as exc:
            return error_response(400, "invalid_request_error", str(exc))
        return web.json_response(self.config.to_json())

    async def _reset(self, request: web.Request) -> web.StreamResponse:
        self.reset()
        return web.json_response(self.config.to_json())

    async def _get_requests(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"data": [r.to_json() for r in self.requests]})

    async def _get_stats(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "requests": len(self.requests),
                "active_streams": self.active_streams,
                "cancelled_streams": self.cancelled_streams,
            }
        )


# -- running on a thread of its own ----------------------------------------------------------


def run_sim_in_thread(
    api_keys: Iterable[str] | None = None,
    config: SimConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> tuple[AnthropicSim, Callable[[], None]]:
    """Start a simulator on its own event loop in a daemon thread; returns it and a stop function.

    For sync clients and for a gateway under test in another process. Setting ``sim.config``
    fields from the calling thread is fine.
    """
    sim = AnthropicSim(api_keys, config)
    stop = start_in_thread(sim, name="anthropic-sim", host=host, port=port)
    return sim, stop


@contextlib.contextmanager
def sim_in_thread(
    api_keys: Iterable[str] | None = None, config: SimConfig | None = None
) -> Iterator[AnthropicSim]:
    """``with sim_in_thread() as sim:`` — run_sim_in_thread, stopped on exit."""
    sim, stop = run_sim_in_thread(api_keys, config)
    try:
        yield sim
    finally:
        stop()


# -- validation ------------------------------------------------------------------------------


def _bad(message: str) -> web.Response:
    return error_response(400, "invalid_request_error", message)


def _validate_block(block: Any, role: str, where: str) -> web.Response | None:
    if not isinstance(block, dict) or block.get("type") not in _BLOCK_TYPES:
        kind = block.get("type") if isinstance(block, dict) else None
        return _bad(
            f"{where}.type: Input tag {kind!r} found using 'type' does not match any of the expected tags"
        )
    kind = block["type"]
    if kind == "text" and (not isinstance(block.get("text"), str) or not block["text"]):
        return _bad(f"{where}: text content blocks must be non-empty")
    if kind == "image":
        source = block.get("source")
        if not isinstance(source, dict):
            return _bad(f"{where}.source: Field required")
        if source.get("type") == "base64":
            if source.get("media_type") not in _MEDIA_TYPES:
                return _bad(
                    f"{where}.source.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' "
                    "or 'image/webp'"
                )
            if not isinstance(source.get("data"), str) or not source["data"]:
                return _bad(f"{where}.source.data: Field required")
        elif source.get("type") == "url":
            if not isinstance(source.get("url"), str):
                return _bad(f"{where}.source.url: Field required")
        else:
            return _bad(f"{where}.source.type: Input should be 'base64' or 'url'")
    if kind in ("tool_use", "thinking", "redacted_thinking") and role != "assistant":
        return _bad(f"{where}: {kind} blocks are only allowed in assistant messages")
    if kind == "tool_result" and role != "user":
        return _bad(f"{where}: tool_result blocks are only allowed in user messages")
    if kind == "tool_use":
        if not isinstance(block.get("id"), str) or not _TOOL_ID.match(block["id"]):
            return _bad(f"{where}.id: String should match pattern '^[a-zA-Z0-9_-]+$'")
        if not isinstance(block.get("name"), str) or not isinstance(block.get("input"), dict):
            return _bad(f"{where}: tool_use blocks need a 'name' and an object 'input'")
    if kind == "tool_result":
        if not isinstance(block.get("tool_use_id"), str) or not _TOOL_ID.match(block["tool_use_id"]):
            return _bad(f"{where}.tool_use_id: String should match pattern '^[a-zA-Z0-9_-]+$'")
        content = block.get("content")
        if isinstance(content, list):
            for k, item in enumerate(content):
                if not isinstance(item, dict) or item.get("type") not in ("text", "image"):
                    return _bad(f"{where}.content.{k}: tool_result content must be text or image blocks")
                if (invalid := _validate_block(item, "user", f"{where}.content.{k}")) is not None:
                    return invalid
        elif content is not None and not isinstance(content, str):
            return _bad(f"{where}.content: Input should be a valid string or list")
    if kind == "thinking":
        signature = block.get("signature")
        if not isinstance(signature, str) or not signature:
            return _bad(f"{where}.thinking.signature: Field required")
        if not hmac.compare_digest(signature, sign_thinking(str(block.get("thinking") or ""))):
            return _bad(f"{where}: Invalid `signature` in `thinking` block")
    if kind == "redacted_thinking" and (not isinstance(block.get("data"), str) or not block["data"]):
        return _bad(f"{where}.data: Field required")
    return None


def _validate_messages(messages: Any) -> web.Response | None:
    if messages is None:
        return _bad("messages: Field required")
    if not isinstance(messages, list) or not messages:
        return _bad("messages: at least one message is required")
    previous_calls: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return _bad(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        role, content = message["role"], message.get("content")
        last = i == len(messages) - 1
        if isinstance(content, str):
            blocks: list[Any] = [{"type": "text", "text": content}] if content else []
        elif isinstance(content, list):
            blocks = content
        else:
            return _bad(f"messages.{i}.content: Input should be a valid string or list")
        if not blocks and not (last and role == "assistant"):
            return _bad(
                f"messages.{i}: all messages must have non-empty content except for the optional final "
                "assistant message"
            )
        for j, block in enumerate(blocks):
            if (invalid := _validate_block(block, role, f"messages.{i}.content.{j}")) is not None:
                return invalid
        types = [b["type"] for b in blocks]
        if "tool_result" in types and any(t != "tool_result" for t in types[: types.index("tool_result")]):
            return _bad(f"messages.{i}: tool_result blocks must come before any other content")
        results = {b["tool_use_id"] for b in blocks if b["type"] == "tool_result"}
        unexpected = sorted(results - previous_calls)
        if unexpected:
            return _bad(
                f"messages.{i}: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{', '.join(unexpected)}. Each `tool_result` block must have a corresponding `tool_use` "
                "block in the previous message."
            )
        missing = sorted(previous_calls - results)
        if missing:
            return _bad(
                f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block "
                "in the next message."
            )
        previous_calls = {b["id"] for b in blocks if b["type"] == "tool_use"}
        following = None if last else messages[i + 1]
        if previous_calls and isinstance(following, dict) and following.get("role") != "user":
            return _bad(
                f"messages.{i + 1}: `tool_use` ids were found without `tool_result` blocks immediately "
                f"after: {', '.join(sorted(previous_calls))}."
            )
    return None


def _validate_tools(body: JSON) -> web.Response | None:
    tools = body.get("tools")
    if tools is None:
        return None
    if not isinstance(tools, list):
        return _bad("tools: Input should be a valid list")
    names = set()
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type", "custom") != "custom":
            return _bad(f"tools.{i}: the simulator serves custom tools only")
        if not isinstance(tool.get("name"), str) or not _TOOL_NAME.match(tool["name"]):
            return _bad(f"tools.{i}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            return _bad(f"tools.{i}.input_schema.type: Input should be 'object'")
        names.add(tool["name"])
    choice = body.get("tool_choice")
    if choice is not None:
        if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
            return _bad("tool_choice: Input tag does not match any of the expected tags")
        if choice["type"] == "tool" and choice.get("name") not in names:
            return _bad(f"tool_choice.name: no tool named {choice.get('name')!r}")
    return None


def _validate(body: JSON, model: str, models: list[str]) -> web.Response | None:
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        return _bad("max_tokens: Field required")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        return _bad("max_tokens: Input should be greater than or equal to 1")
    if (invalid := _validate_messages(body.get("messages"))) is not None:
        return invalid
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        return _bad("system: Input should be a valid string or list")
    if isinstance(system, list):
        for i, block in enumerate(system):
            if not isinstance(block, dict) or block.get("type") != "text" or not block.get("text"):
                return _bad(f"system.{i}: system blocks must be non-empty text blocks")
    if (invalid := _validate_tools(body)) is not None:
        return invalid
    temperature = body.get("temperature")
    if temperature is not None and (not isinstance(temperature, int | float) or not 0 <= temperature <= 1):
        return _bad("temperature: Input should be less than or equal to 1")
    thinking = body.get("thinking")
    if thinking is not None:
        kind = thinking.get("type") if isinstance(thinking, dict) else None
        if kind not in ("enabled", "disabled", "adaptive"):
            return _bad("thinking: Input tag does not match any of the expected tags")
        if kind == "enabled":
            assert isinstance(thinking, dict)
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int) or budget < 1024:
                return _bad("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
            if budget >= max_tokens:
                return _bad("`max_tokens` must be greater than `thinking.budget_tokens`")
        if kind in ("enabled", "adaptive"):
            if temperature is not None and temperature != 1:
                return _bad("`temperature` may only be set to 1 when thinking is enabled")
            if body.get("top_k") is not None:
                return _bad("`top_k` must be unset when thinking is enabled")
            choice = body.get("tool_choice")
            if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
                return _bad("Thinking may not be enabled when tool_choice forces tool use.")
    stops = body.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)):
        return _bad("stop_sequences: Input should be a valid list of strings")
    if model not in models:
        return error_response(404, "not_found_error", f"model: {model}")
    return None


# -- content ---------------------------------------------------------------------------------


def _block_text(block: Any) -> str:
    if not isinstance(block, dict):
        return ""
    if block.get("type") == "text":
        return str(block.get("text") or "")
    if block.get("type") == "tool_result":
        content = block.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(_block_text(b) for b in content)
    if block.get("type") == "tool_use":
        return json.dumps(block.get("input"))
    if block.get("type") == "thinking":
        return str(block.get("thinking") or "")
    return ""


def _blocks(content: Any) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return content if isinstance(content, list) else []


def _message_text(message: JSON) -> str:
    return " ".join(t for t in (_block_text(b) for b in _blocks(message.get("content"))) if t)


def _last_user_text(messages: list[JSON]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            blocks = _blocks(message.get("content"))
            texts = [
                str(b.get("text") or "") for b in blocks if isinstance(b, dict) and b.get("type") == "text"
            ]
            return " ".join(t for t in texts if t) or _message_text(message)
    return ""


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return " ".join(str(b.get("text") or "") for b in system if isinstance(b, dict))
    return ""


def _input_tokens(body: JSON) -> int:
    messages = body.get("messages") or []
    words = sum(len(_message_text(m).split()) + 3 for m in messages if isinstance(m, dict))
    return words + len(_system_text(body.get("system")).split())


def _output_tokens(blocks: list[JSON]) -> int:
    total = 0
    for block in blocks:
        if block["type"] == "text":
            total += len(block["text"].split())
        elif block["type"] == "thinking":
            total += len(block["thinking"].split())
        elif block["type"] == "tool_use":
            total += len(json.dumps(block["input"]).split()) + 1
        elif block["type"] == "redacted_thinking":
            total += 8
    return total


def _tool_blocks(body: JSON, user_text: str) -> list[JSON]:
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    choice = body.get("tool_choice") if isinstance(body.get("tool_choice"), dict) else {}
    assert isinstance(choice, dict)
    last = body["messages"][-1]
    answered = any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in _blocks(last.get("content"))
    )
    if not tools or last.get("role") != "user" or answered or choice.get("type") == "none":
        return []
    if choice.get("type") == "tool":
        tools = [t for t in tools if t["name"] == choice.get("name")]
    elif choice.get("disable_parallel_tool_use") or "call all tools" not in user_text.lower():
        tools = tools[:1]
    return [
        {
            "type": "tool_use",
            "id": "toolu_" + _random_id(24),
            "name": t["name"],
            "input": placeholder(t.get("input_schema") or {"type": "object"}),
        }
        for t in tools
    ]


def _reply(body: JSON, cfg: SimConfig) -> tuple[list[JSON], str, str | None]:
    """The content blocks, stop_reason and stop_sequence of the answer to ``body``."""
    user_text = _last_user_text(body["messages"])
    blocks: list[JSON] = []
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
        text = f"Thinking about the request: {user_text}".strip()
        blocks.append({"type": "thinking", "thinking": text, "signature": sign_thinking(text)})
        if "redacted" in user_text.lower():
            data = base64.b64encode(f"redacted:{user_text}".encode()).decode()
            blocks.append({"type": "redacted_thinking", "data": data})
    calls = _tool_blocks(body, user_text)
    if calls:
        if cfg.tool_preamble:
            blocks.append({"type": "text", "text": cfg.tool_preamble})
        return blocks + calls, "tool_use", None
    content = cfg.reply if cfg.reply is not None else f"Echo: {user_text}"
    stop_reason, stop_sequence = "end_turn", None
    found = [(content.find(s), s) for s in body.get("stop_sequences") or [] if s and s in content]
    if found:
        at, stop_sequence = min(found)
        content, stop_reason = content[:at], "stop_sequence"
    pieces = word_pieces(content)
    if len(pieces) > body["max_tokens"]:
        content, stop_reason, stop_sequence = (
            "".join(pieces[: body["max_tokens"]]).rstrip(),
            "max_tokens",
            None,
        )
    if content:
        blocks.append({"type": "text", "text": content})
    return blocks, stop_reason, stop_sequence


def _stream_events(message: JSON) -> Iterator[tuple[str, JSON]]:
    """Anthropic's event sequence for ``message``, as (event name, data) pairs."""
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    usage = message.get("usage")
    if usage is not None:
        start["usage"] = {**usage, "output_tokens": 1}
    yield "message_start", {"type": "message_start", "message": start}
    yield "ping", {"type": "ping"}
    for index, block in enumerate(message["content"]):

        def delta(payload: JSON, at: int = index) -> tuple[str, JSON]:
            return "content_block_delta", {"type": "content_block_delta", "index": at, "delta": payload}

        kind = block["type"]
        if kind == "text":
            opening: JSON = {"type": "text", "text": ""}
        elif kind == "thinking":
            opening = {"type": "thinking", "thinking": "", "signature": ""}
        elif kind == "tool_use":
            opening = {**block, "input": {}}
        else:
            opening = block
        yield "content_block_start", {"type": "content_block_start", "index": index, "content_block": opening}
        if kind == "text":
            for piece in word_pieces(block["text"]):
                yield delta({"type": "text_delta", "text": piece})
        elif kind == "thinking":
            for piece in word_pieces(block["thinking"]):
                yield delta({"type": "thinking_delta", "thinking": piece})
            yield delta({"type": "signature_delta", "signature": block["signature"]})
        elif kind == "tool_use":
            arguments = json.dumps(block["input"], separators=(",", ":"))
            yield delta({"type": "input_json_delta", "partial_json": ""})
            for at in range(0, len(arguments), TOOL_ARGUMENT_FRAGMENT):
                yield delta(
                    {"type": "input_json_delta", "partial_json": arguments[at : at + TOOL_ARGUMENT_FRAGMENT]}
                )
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    final: JSON = {
        "type": "message_delta",
        "delta": {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]},
    }
    if usage is not None:
        final["usage"] = {"output_tokens": usage["output_tokens"]}
    yield "message_delta", final
    yield "message_stop", {"type": "message_stop"}


# -- errors and plumbing ---------------------------------------------------------------------

# status -> (type, message) of an injected failure; {model} is filled in.
_FAILURES: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request (simulated failure)."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "This request could not be billed (simulated failure)."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "model: {model}"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of 50 requests per minute.",
    ),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}


def _injected_failure(spec: FailSpec, model: str, retry_after_s: int) -> web.Response:
    custom: JSON = spec if isinstance(spec, dict) else {"status": spec}
    status = int(custom["status"])
    headers: dict[str, str] = {}
    if status in (429, 529):
        headers["retry-after"] = str(retry_after_s)
    headers.update(custom.get("headers") or {})
    if "body" in custom:
        return web.json_response(custom["body"], status=status, headers=headers)
    fallback = ("api_error", f"Simulated HTTP {status} error.")
    if status < 500:
        fallback = ("invalid_request_error", f"Simulated HTTP {status} error.")
    type_, message = _FAILURES.get(status, fallback)
    return error_response(status, type_, message.format(model=model), headers)


def _drop_connection(request: web.Request) -> web.Response:
    """Close the socket; the returned response is never sent (aiohttp sees the closed transport)."""
    if request.transport is not None:
        request.transport.close()
    return web.Response()


async def _not_found(request: web.Request) -> web.StreamResponse:
    return error_response(404, "not_found_error", f"Not found: {request.method} {request.path}")


_RATE_LIMIT_HEADERS = {
    "anthropic-ratelimit-requests-limit": "4000",
    "anthropic-ratelimit-requests-remaining": "3999",
    "anthropic-ratelimit-requests-reset": "2025-01-01T00:00:01Z",
    "anthropic-ratelimit-tokens-limit": "400000",
    "anthropic-ratelimit-tokens-remaining": "399990",
    "anthropic-ratelimit-tokens-reset": "2025-01-01T00:00:01Z",
}


async def _add_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    if request.path.startswith("/_sim/"):
        return
    response.headers.setdefault("request-id", _request_id())
    response.headers.setdefault("anthropic-organization-id", "sim-organization")
    if request.path == "/v1/messages":
        for name, value in _RATE_LIMIT_HEADERS.items():
            response.headers.setdefault(name, value)


def _sse(kind: str, data: JSON) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _request_id() -> str:
    return "req_" + _random_id(24)


def _random_id(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def _loads_or_none(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
