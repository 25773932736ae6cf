"""In-process simulator of the OpenAI Chat Completions API, used as the gateway's test upstream.

It speaks the public wire format (paths, Bearer auth, response objects, error bodies, SSE
streaming) with deterministic content, and has a control API under ``/_sim/`` (mirrored by
``OpenAISim.config``) to inject latency, HTTP errors, dropped connections and cut streams.
See README.md beside this file.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import json
import re
import secrets
import string
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.upstreams.threaded import start_in_thread

JSON = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# An entry of SimConfig.fail_next: an HTTP status, or {"status": int, "body"?: dict, "headers"?: dict}.
FailSpec = int | dict[str, Any]

DEFAULT_API_KEY = "sk-upstream-test"
DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "sim-model", "deepseek-chat", "sim-reasoner")
DEFAULT_REASONING_MODELS = frozenset({"sim-reasoner"})
SYSTEM_FINGERPRINT = "fp_5e1a0c0d7b"
MODEL_CREATED = 1_700_000_000
TOOL_ARGUMENT_FRAGMENT = 8  # characters of tool-call arguments per streamed delta

_ALNUM = string.ascii_letters + string.digits
_request_started: contextvars.ContextVar[float] = contextvars.ContextVar("sim_request_started")


@dataclass
class SimConfig:
    """Behaviour knobs; settable from Python (``sim.config.x = ...``) or ``POST /_sim/config``."""

    latency_ms: float = 0  # delay before a chat response's headers
    chunk_delay_ms: float = 0  # delay between two stream events
    fail_next: list[FailSpec] = field(default_factory=list)  # errors for the next chat requests
    drop_connection_next: int = 0  # close the socket without a response, next N chat requests
    stream_cut_after: int | None = None  # abort streams after this many events
    reply: str | None = None  # fixed reply text instead of the echo
    omit_stream_usage: bool = False  # never send the usage chunk, even when asked
    cached_tokens: int = 0  # reported in usage.prompt_tokens_details.cached_tokens
    model_alias: str | None = None  # model name to report instead of the requested one
    retry_after_s: int = 1  # retry-after of injected 429s
    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    reasoning_models: set[str] = field(default_factory=lambda: set(DEFAULT_REASONING_MODELS))

    def update(self, values: Mapping[str, Any]) -> None:
        """Set the given fields; unknown names raise ValueError and change nothing."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(unknown)}")
        for name, value in values.items():
            if name == "reasoning_models":
                value = set(value)
            elif name in ("fail_next", "models"):
                value = list(value)
            setattr(self, name, value)

    def copy_from(self, other: SimConfig) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, _copy(getattr(other, f.name)))

    def to_json(self) -> JSON:
        data = dataclasses.asdict(self)
        data["reasoning_models"] = sorted(self.reasoning_models)
        return data


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


@dataclass
class _Choice:
    content: str | None
    finish_reason: str
    reasoning: str | None = None
    tool_calls: list[JSON] = field(default_factory=list)


class OpenAISim:
    """An aiohttp server that behaves like ``https://api.openai.com/v1`` for chat completions."""

    def __init__(self, api_keys: Iterable[str] | None = None, config: SimConfig | None = None) -> None:
        self.api_keys: set[str] = set(api_keys) if api_keys is not None else {DEFAULT_API_KEY}
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
        app.on_response_prepare.append(_add_openai_headers)
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model}", self._retrieve_model)
        app.router.add_get("/_sim/config", self._get_config)
        app.router.add_post("/_sim/config", self._set_config)
        app.router.add_post("/_sim/reset", self._reset)
        app.router.add_get("/_sim/requests", self._get_requests)
        app.router.add_get("/_sim/stats", self._get_stats)
        app.router.add_route("*", "/{tail:.*}", _invalid_url)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner, self._host, self._port = runner, host, runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> OpenAISim:
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
    def root_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as base_url, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"{self.root_url}/v1"

    def reset(self) -> None:
        """Restore the constructor's config, clear recorded requests and the cancel counter."""
        self.config.copy_from(self._defaults)
        self.requests.clear()
        self.cancelled_streams = 0

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    # -- OpenAI endpoints ------------------------------------------------------------------

    @web.middleware
    async def _record_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        _request_started.set(time.monotonic())
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

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        cfg = self.config
        if cfg.latency_ms > 0:
            await asyncio.sleep(cfg.latency_ms / 1000)
        if cfg.drop_connection_next > 0:
            cfg.drop_connection_next -= 1
            return _drop_connection(request)
        if (denied := self._check_auth(request)) is not None:
            return denied
        raw = await request.read()
        body = _loads_or_none(raw)
        if cfg.fail_next:
            model = body.get("model") if isinstance(body, dict) else None
            return _injected_failure(cfg.fail_next.pop(0), str(model or "gpt-4o-mini"), cfg.retry_after_s)
        if (invalid := _validate_chat(raw, body, cfg.models)) is not None:
            return invalid
        assert isinstance(body, dict)
        return await self._respond(request, body)

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._check_auth(request)) is not None:
            return denied
        return web.json_response({"object": "list", "data": [_model_object(m) for m in self.config.models]})

    async def _retrieve_model(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._check_auth(request)) is not None:
            return denied
        model = request.match_info["model"]
        if model not in self.config.models:
            return error_response(
                404,
                f"The model '{model}' does not exist",
                "invalid_request_error",
                "model",
                "model_not_found",
            )
        return web.json_response(_model_object(model))

    def _check_auth(self, request: web.Request) -> web.Response | None:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return error_response(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field "
                "(with blank username) if you're accessing the API from your browser and are prompted for "
                "a username and password. You can obtain an API key from "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
            )
        if key not in self.api_keys:
            return error_response(
                401,
                f"Incorrect API key provided: {mask_key(key)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                code="invalid_api_key",
            )
        return None

    # -- completions -----------------------------------------------------------------------

    async def _respond(self, request: web.Request, body: JSON) -> web.StreamResponse:
        model = str(body["model"])
        choices = [self._make_choice(body) for _ in range(int(body.get("n") or 1))]
        usage = self._usage(body["messages"], choices)
        head = {
            "id": "chatcmpl-" + _random_id(29),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.config.model_alias or model,
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }
        want_logprobs = bool(body.get("logprobs"))
        top_logprobs = int(body.get("top_logprobs") or 0)
        if body.get("stream"):
            options = body.get("stream_options") or {}
            with_usage = bool(options.get("include_usage")) and not self.config.omit_stream_usage
            events = _stream_chunks(head, choices, usage if with_usage else None, want_logprobs, top_logprobs)
            return await self._stream(request, events)
        return web.json_response(
            {
                **head,
                "choices": [
                    {
                        "index": i,
                        "message": _message(c),
                        "logprobs": _logprobs(c.content, top_logprobs) if want_logprobs else None,
                        "finish_reason": c.finish_reason,
                    }
                    for i, c in enumerate(choices)
                ],
                "usage": usage,
            }
        )

    def _make_choice(self, body: JSON) -> _Choice:
        messages: list[JSON] = body["messages"]
        user_text = _last_user_text(messages)
        reasoning = None
        if str(body["model"]) in self.config.reasoning_models:
            reasoning = f"Thinking about the request: {user_text}".strip()
        tool_calls = _tool_calls(body, user_text)
        if tool_calls:
            return _Choice(None, "tool_calls", reasoning, tool_calls)
        content = self.config.reply if self.config.reply is not None else _default_content(body, user_text)
        finish_reason = "stop"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        pieces = word_pieces(content)
        if isinstance(limit, int) and len(pieces) > limit:
            content, finish_reason = "".join(pieces[:limit]).rstrip(), "length"
        return _Choice(content, finish_reason, reasoning)

    def _usage(self, messages: list[JSON], choices: list[_Choice]) -> JSON:
        prompt = sum(len(_message_text(m).split()) + 3 for m in messages)
        reasoning = sum(len((c.reasoning or "").split()) for c in choices)
        completion = reasoning + sum(
            len((c.content or "").split())
            + sum(len(t["function"]["arguments"].split()) + 1 for t in c.tool_calls)
            for c in choices
        )
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": self.config.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    async def _stream(self, request: web.Request, events: Iterable[JSON | str]) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
        )
        self.active_streams += 1
        try:
            await response.prepare(request)
            for sent, event in enumerate(events):
                cut_after = self.config.stream_cut_after
                if cut_after is not None and sent >= cut_after:
                    _drop_connection(request)
                    return response
                if sent and self.config.chunk_delay_ms > 0:
                    await asyncio.sleep(self.config.chunk_delay_ms / 1000)
                data = event if isinstance(event, str) else _dumps(event)
                await response.write(f"data: {data}\n\n".encode())
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
            return error_response(400, "expected a JSON object of config fields", "invalid_request_error")
        try:
            self.config.update(values)
        except (ValueError, TypeError) as exc:
            return error_response(400, str(exc), "invalid_request_error")
        return web.json_response(self.config.to_json())

    async def _reset(self, request: web.Request) -> web.StreamResponse:
        self.reset()
        return web.json_response(self.config.to_json())

    async def _get_requests(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"object": "list", "data": [r.to_json() for r in self.requests]})

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
) -> tuple[OpenAISim, Callable[[], None]]:
    """Start a simulator on its own event loop in a daemon thread; returns it and a stop function.

    For sync clients and for a gateway under test in another process. Setting ``sim.config``
    fields from the calling thread is fine.
    """
    sim = OpenAISim(api_keys, config)
    stop = start_in_thread(sim, name="openai-sim", host=host, port=port)
    return sim, stop


@contextlib.contextmanager
def sim_in_thread(
    api_keys: Iterable[str] | None = None, config: SimConfig | None = None
) -> Iterator[OpenAISim]:
    """``with sim_in_thread() as sim:`` — run_sim_in_thread, stopped on exit."""
    sim, stop = run_sim_in_thread(api_keys, config)
    try:
        yield sim
    finally:
        stop()


# -- errors ----------------------------------------------------------------------------------


def error_response(
    status: int,
    message: str,
    type_: str,
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """A response with OpenAI's error body ``{"error": {message, type, param, code}}``."""
    error = {"message": message, "type": type_, "param": param, "code": code}
    return web.json_response({"error": error}, status=status, headers=headers)


def mask_key(key: str) -> str:
    """The key as OpenAI echoes it in 'Incorrect API key' errors: short keys whole, long ones masked."""
    if len(key) <= 10:
        return key
    return key[:6] + "*" * (len(key) - 10) + key[-4:]


def _validate_chat(raw: bytes, body: Any, models: list[str]) -> web.Response | None:
    invalid = "invalid_request_error"
    if not isinstance(body, dict):
        if raw and body is not None:
            return error_response(400, "Invalid type for request body: expected an object.", invalid)
        return error_response(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
            "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
            "valid JSON. If you have trouble figuring out how to fix this, please contact us through our "
            "help center at help.openai.com.)",
            invalid,
        )
    if not body.get("model"):
        return error_response(400, "you must provide a model parameter", invalid, "model")
    messages = body.get("messages")
    if messages is None:
        return error_response(
            400, "Missing required parameter: 'messages'.", invalid, "messages", "missing_required_parameter"
        )
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return error_response(
            400,
            "Invalid type for 'messages': expected an array of objects.",
            invalid,
            "messages",
            "invalid_type",
        )
    if not messages:
        return error_response(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            invalid,
            "messages",
            "empty_array",
        )
    n = body.get("n")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 128):
        return error_response(400, f"Invalid value for 'n': {n!r}. Expected 1 to 128.", invalid, "n")
    if body.get("stream_options") is not None and not body.get("stream"):
        return error_response(
            400,
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            invalid,
            "stream_options",
        )
    if body["model"] not in models:
        return error_response(
            404,
            f"The model `{body['model']}` does not exist or you do not have access to it.",
            invalid,
            code="model_not_found",
        )
    return None


# status -> (message, type, code) of an injected failure; {model} is filled in.
_FAILURES: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request (simulated failure).", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: (
        "Country, region, or territory not supported",
        "request_forbidden",
        "unsupported_country_region_territory",
    ),
    404: (
        "The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    429: (
        "Rate limit reached for {model} in organization org-sim on requests per min (RPM): Limit 3, "
        "Used 3, Requested 1. Please try again in 20s. "
        "Visit https://platform.openai.com/account/rate-limits to learn more.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
    504: ("Gateway timeout.", "server_error", None),
}


def _injected_failure(spec: FailSpec, model: str, retry_after_s: int) -> web.Response:
    custom: JSON = spec if isinstance(spec, dict) else {"status": spec}
    status = int(custom["status"])
    headers = dict(_RATE_LIMIT_HEADERS)
    if status == 429:
        headers.update(
            {
                "retry-after": str(retry_after_s),
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": f"{retry_after_s}s",
            }
        )
    headers.update(custom.get("headers") or {})
    if "body" in custom:
        return web.json_response(custom["body"], status=status, headers=headers)
    fallback_type = "server_error" if status >= 500 else "invalid_request_error"
    message, type_, code = _FAILURES.get(status, (f"Simulated HTTP {status} error.", fallback_type, None))
    return error_response(status, message.format(model=model), type_, None, code, headers)


def _drop_connection(request: web.Request) -> web.Response:
    """Close the socket; the returned response is never sent (aiohttp sees the closed transport)."""
    if request.transport is not None:
        request.transport.close()
    return web.Response()


async def _invalid_url(request: web.Request) -> web.StreamResponse:
    return error_response(404, f"Invalid URL ({request.method} {request.path})", "invalid_request_error")


_RATE_LIMIT_HEADERS = {
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-remaining-requests": "9999",
    "x-ratelimit-reset-requests": "6ms",
    "x-ratelimit-limit-tokens": "10000000",
    "x-ratelimit-remaining-tokens": "9999990",
    "x-ratelimit-reset-tokens": "0s",
}


async def _add_openai_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    if request.path.startswith("/_sim/"):
        return
    elapsed_ms = (time.monotonic() - _request_started.get(time.monotonic())) * 1000
    response.headers.setdefault("x-request-id", "req_" + secrets.token_hex(16))
    response.headers.setdefault("openai-version", "2020-10-01")
    response.headers.setdefault("openai-organization", "user-sim")
    response.headers.setdefault("openai-processing-ms", str(int(elapsed_ms)))
    if request.path == "/v1/chat/completions":
        for name, value in _RATE_LIMIT_HEADERS.items():
            response.headers.setdefault(name, value)


# -- content ---------------------------------------------------------------------------------


def _text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def _message_text(message: JSON) -> str:
    return _text_of(message.get("content"))


def _last_user_text(messages: list[JSON]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _message_text(message)
    return ""


def _default_content(body: JSON, user_text: str) -> str:
    echo = "Echo: " + user_text
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_object":
        return json.dumps({"reply": echo})
    if kind == "json_schema":
        assert isinstance(response_format, dict)
        schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
        return json.dumps(placeholder(schema))
    return echo


def placeholder(schema: Any) -> Any:
    """A value matching a JSON schema: each required property set to a placeholder of its type."""
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        if schema.get(combinator):
            return placeholder(schema[combinator][0])
    kind = schema.get("type", "object" if "properties" in schema else None)
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: placeholder(properties.get(name)) for name in schema.get("required") or []}
    defaults: dict[str, Any] = {
        "string": "placeholder",
        "integer": 0,
        "number": 0,
        "boolean": False,
        "array": [],
    }
    return defaults.get(str(kind))


def _tool_calls(body: JSON, user_text: str) -> list[JSON]:
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
    choice = body.get("tool_choice")
    last_role = body["messages"][-1].get("role")
    if not tools or last_role != "user" or choice == "none":
        return []
    if isinstance(choice, dict) and "function" in choice:
        forced = choice["function"].get("name")
        tools = [t for t in tools if t["function"].get("name") == forced] or tools[:1]
    elif "call all tools" not in user_text.lower() or body.get("parallel_tool_calls") is False:
        tools = tools[:1]
    return [
        {
            "id": "call_" + _random_id(24),
            "type": "function",
            "function": {
                "name": t["function"]["name"],
                "arguments": _dumps(placeholder(t["function"].get("parameters") or {"type": "object"})),
            },
        }
        for t in tools
    ]


def _message(choice: _Choice) -> JSON:
    message: JSON = {"role": "assistant", "content": choice.content, "refusal": None, "annotations": []}
    if choice.reasoning is not None:
        message["reasoning_content"] = choice.reasoning
    if choice.tool_calls:
        message["tool_calls"] = choice.tool_calls
    return message


def word_pieces(text: str) -> list[str]:
    """Split text into one piece per word, keeping the spacing: ``"".join(pieces) == text``."""
    pieces: list[str] = re.findall(r"\s*\S+\s*$|\s*\S+", text)
    return pieces or ([text] if text else [])


def _token_logprob(token: str, top: int) -> JSON:
    alternatives = [token] + [f"alt{k}" for k in range(1, top)]
    return {
        "token": token,
        "logprob": -0.01,
        "bytes": list(token.encode()),
        "top_logprobs": [
            {"token": t, "logprob": -0.01 if k == 0 else -float(k), "bytes": list(t.encode())}
            for k, t in enumerate(alternatives[:top])
        ],
    }


def _logprobs(content: str | None, top: int) -> JSON:
    if content is None:
        return {"content": None, "refusal": None}
    return {"content": [_token_logprob(p, top) for p in word_pieces(content)], "refusal": None}


def _stream_chunks(
    head: JSON, choices: list[_Choice], usage: JSON | None, want_logprobs: bool, top: int
) -> Iterator[JSON | str]:
    """The SSE payloads of a streamed completion, ending with the literal ``[DONE]``."""

    def chunk(
        index: int, delta: JSON, finish_reason: str | None = None, logprobs: JSON | None = None
    ) -> JSON:
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}
        data: JSON = {**head, "object": "chat.completion.chunk", "choices": [choice]}
        if usage is not None:
            data["usage"] = None
        return data

    for i, c in enumerate(choices):
        opening = "" if c.content is not None else None
        yield chunk(i, {"role": "assistant", "content": opening, "refusal": None})
        for piece in word_pieces(c.reasoning or ""):
            yield chunk(i, {"content": None, "reasoning_content": piece})
        for piece in word_pieces(c.content or ""):
            lp = {"content": [_token_logprob(piece, top)], "refusal": None} if want_logprobs else None
            yield chunk(i, {"content": piece}, logprobs=lp)
        for k, call in enumerate(c.tool_calls):
            name, arguments = call["function"]["name"], call["function"]["arguments"]
            first = {
                "index": k,
                "id": call["id"],
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            yield chunk(i, {"tool_calls": [first]})
            for start in range(0, len(arguments), TOOL_ARGUMENT_FRAGMENT):
                fragment = arguments[start : start + TOOL_ARGUMENT_FRAGMENT]
                yield chunk(i, {"tool_calls": [{"index": k, "function": {"arguments": fragment}}]})
        yield chunk(i, {}, c.finish_reason)
    if usage is not None:
        yield {**head, "object": "chat.completion.chunk", "choices": [], "usage": usage}
    yield "[DONE]"


# -- small helpers ---------------------------------------------------------------------------


def _model_object(model: str) -> JSON:
    owner = "openai" if model.startswith(("gpt", "o1", "o3", "o4")) else "system"
    return {"id": model, "object": "model", "created": MODEL_CREATED, "owned_by": owner}


def _random_id(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def _loads_or_none(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _copy(value: Any) -> Any:
    return type(value)(value) if isinstance(value, list | set | dict) else value
