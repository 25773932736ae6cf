"""In-process simulator of the Gemini API (``generateContent``), the gateway's Gemini test upstream.

It speaks the public wire format: ``POST /v1beta/models/{model}:generateContent`` (and the same
under ``/v1``, the google-genai SDK's default version),
``:streamGenerateContent`` (SSE with ``?alt=sse``, events ``data: <json>\\r\\n\\r\\n`` as Google sends
them; a JSON array without it), ``:countTokens``, ``GET /v1beta/models[/{model}]``, auth by
``x-goog-api-key`` or ``?key=``, Google's error bodies ``{"error": {code, message, status, details}}``.
The same calls also answer on Vertex AI's path
(``/v1/projects/{p}/locations/{l}/publishers/google/models/{model}:generateContent``) with
``Authorization: Bearer <token>``.

Replies are deterministic: ``"Echo: " + <text of the last user turn>``; function declarations give
``functionCall`` parts (the first function, or every one when the user text contains "call all
tools"); thinking models report thought tokens and, with ``thinkingConfig.includeThoughts``, send a
thought part and put a ``thoughtSignature`` on the first answer part (also on a function call turn).
Bodies are checked as strictly as Google does for unknown field names, so a translator that writes a
wrong key fails here. ``GeminiSim.config`` (or ``POST /_sim/config``) injects latency, errors,
dropped connections and cut streams.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import hashlib
import json
import re
import secrets
import string
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.upstreams.openai.sim import RecordedRequest, placeholder, word_pieces
from tests.upstreams.threaded import start_in_thread

JSON = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# An entry of SimConfig.fail_next: an HTTP status, or
# {"status": int, "body"?: dict, "headers"?: dict, "reason"?: str (an ErrorInfo reason to add)}.
FailSpec = int | dict[str, Any]

DEFAULT_API_KEY = "AIzaSy-sim-upstream-test-key"
DEFAULT_VERTEX_TOKEN = "ya29.sim-vertex-access-token"
DEFAULT_MODELS = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash", "gemini-3-pro-preview")
DEFAULT_THINKING_MODELS = frozenset({"gemini-2.5-flash", "gemini-2.5-pro", "gemini-3-pro-preview"})
# Models that, like Gemini 3, reject a function call turn of the current turn without a signature.
DEFAULT_SIGNATURE_MODELS = frozenset({"gemini-3-pro-preview"})
INPUT_TOKEN_LIMIT = 1_048_576
OUTPUT_TOKEN_LIMIT = 65_536
METHODS = ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"]

_ALNUM = string.ascii_letters + string.digits
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_FAILURES = {
    400: "Request contains an invalid argument.",
    401: "Request had invalid authentication credentials.",
    403: "The caller does not have permission",
    429: "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}


@dataclass
class SimConfig:
    """Behaviour knobs; settable from Python (``sim.config.x = ...``) or ``POST /_sim/config``."""

    latency_ms: float = 0  # delay before a generate response's headers
    chunk_delay_ms: float = 0  # delay between two stream events
    fail_next: list[FailSpec] = field(default_factory=list)  # errors for the next generate calls
    drop_connection_next: int = 0  # close the socket without a response, next N generate calls
    stream_cut_after: int | None = None  # abort streams after this many events
    reply: str | None = None  # fixed reply text instead of the echo
    cached_tokens: int = 0  # reported as cachedContentTokenCount (and counted inside the prompt)
    thinking: bool = True  # thinking models think (False: no model does)
    function_call_ids: bool = False  # give functionCall parts an id (the Gemini API usually does not)
    model_version: str | None = None  # modelVersion to report instead of the requested model
    retry_delay_s: int = 7  # RetryInfo.retryDelay of injected 429s
    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    thinking_models: set[str] = field(default_factory=lambda: set(DEFAULT_THINKING_MODELS))
    signature_models: set[str] = field(default_factory=lambda: set(DEFAULT_SIGNATURE_MODELS))

    def update(self, values: Mapping[str, Any]) -> None:
        """Set the given fields; unknown names raise ValueError and change nothing."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(unknown)}")
        for name, value in values.items():
            if name in ("thinking_models", "signature_models"):
                value = set(value)
            elif name in ("fail_next", "models"):
                value = list(value)
            setattr(self, name, value)

    def copy_from(self, other: SimConfig) -> None:
        for f in dataclasses.fields(self):
            value = getattr(other, f.name)
            setattr(self, f.name, type(value)(value) if isinstance(value, list | set | dict) else value)

    def to_json(self) -> JSON:
        data = dataclasses.asdict(self)
        data["thinking_models"] = sorted(self.thinking_models)
        data["signature_models"] = sorted(self.signature_models)
        return data


@dataclass
class _Candidate:
    parts: list[JSON]  # the whole answer, thought part first
    finish_reason: str
    text_tokens: int


class GeminiSim:
    """An aiohttp server that behaves like ``https://generativelanguage.googleapis.com``."""

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
        for version in ("v1beta", "v1"):  # the google-genai SDK's default is v1 in recent releases
            app.router.add_post(f"/{version}/models/{{target}}", self._gemini_call)
            app.router.add_get(f"/{version}/models", self._list_models)
            app.router.add_get(f"/{version}/models/{{model}}", self._get_model)
        app.router.add_post(
            "/v1/projects/{project}/locations/{location}/publishers/google/models/{target}",
            self._vertex_call,
        )
        app.router.add_get("/_sim/config", self._get_config)
        app.router.add_post("/_sim/config", self._set_config)
        app.router.add_post("/_sim/reset", self._reset)
        app.router.add_get("/_sim/requests", self._get_requests)
        app.router.add_route("*", "/{tail:.*}", _not_found_path)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner, self._host, self._port = runner, host, runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> GeminiSim:
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
        """The API root, as the google-genai SDK and a ``gemini`` channel take it (no ``/v1beta``)."""
        return f"http://{self._host}:{self.port}"

    def vertex_base_url(self, project: str = "sim-project", location: str = "us-central1") -> str:
        """A ``vertex_gemini`` channel's base_url: the publisher-models prefix."""
        return f"{self.base_url}/v1/projects/{project}/locations/{location}/publishers/google/models"

    def reset(self) -> None:
        """Restore the constructor's config, clear recorded requests and the cancel counter."""
        self.config.copy_from(self._defaults)
        self.requests.clear()
        self.cancelled_streams = 0

    @property
    def generate_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST" and "GenerateContent" in r.path]

    # -- endpoints ---------------------------------------------------------------------------

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

    async def _gemini_call(self, request: web.Request) -> web.StreamResponse:
        return await self._call(request, vertex=False)

    async def _vertex_call(self, request: web.Request) -> web.StreamResponse:
        return await self._call(request, vertex=True)

    async def _call(self, request: web.Request, *, vertex: bool) -> web.StreamResponse:
        cfg = self.config
        if cfg.latency_ms > 0:
            await asyncio.sleep(cfg.latency_ms / 1000)
        if cfg.drop_connection_next > 0:
            cfg.drop_connection_next -= 1
            return _drop_connection(request)
        denied = self._check_bearer(request) if vertex else self._check_key(request)
        if denied is not None:
            return denied
        model, _, action = request.match_info["target"].partition(":")
        raw = await request.read()
        body = _loads_or_none(raw)
        if cfg.fail_next:
            return _injected_failure(cfg.fail_next.pop(0), model, cfg.retry_delay_s)
        if model not in cfg.models:
            return _model_not_found(request, model, action or "generateContent", vertex)
        if action not in ("generateContent", "streamGenerateContent", "countTokens"):
            return google_error(404, f"Method not found: {action or '(none)'}.")
        if action == "countTokens" and isinstance(body, dict) and "generateContentRequest" in body:
            body = body["generateContentRequest"]
        invalid = _validate(raw, body, vertex=vertex, check_signatures=model in cfg.signature_models)
        if invalid is not None:
            return invalid
        assert isinstance(body, dict)
        if action == "countTokens":
            prompt = self._prompt_tokens(body)
            counted: JSON = {"totalTokens": prompt, "promptTokensDetails": [_modality(prompt)]}
            if cfg.cached_tokens:
                counted["cachedContentTokenCount"] = cfg.cached_tokens
            return web.json_response(counted)
        candidates = [self._candidate(body, model) for _ in range(_candidate_count(body))]
        usage = self._usage(body, model, candidates)
        head = {"modelVersion": cfg.model_version or model, "responseId": _random_id(22)}
        if action == "generateContent":
            return web.json_response(
                {
                    "candidates": [
                        {
                            "content": {"parts": c.parts, "role": "model"},
                            "finishReason": c.finish_reason,
                            "index": i,
                        }
                        for i, c in enumerate(candidates)
                    ],
                    "usageMetadata": usage,
                    **head,
                }
            )
        chunks = list(_stream_chunks(head, candidates, usage))
        if request.query.get("alt") == "sse":
            return await self._stream(request, chunks)
        return web.json_response(chunks)

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._check_key(request)) is not None:
            return denied
        return web.json_response({"models": [self._model_object(m) for m in self.config.models]})

    async def _get_model(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._check_key(request)) is not None:
            return denied
        model = request.match_info["model"]
        if model not in self.config.models:
            version = request.path.split("/")[1]
            return google_error(404, f"models/{model} is not found for API version {version}")
        return web.json_response(self._model_object(model))

    def _check_key(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            return google_error(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
            )
        if key not in self.api_keys:
            return google_error(
                400,
                "API key not valid. Please pass a valid API key.",
                details=[
                    _error_info("API_KEY_INVALID"),
                    {
                        "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                        "locale": "en-US",
                        "message": "API key not valid. Please pass a valid API key.",
                    },
                ],
            )
        return None

    def _check_bearer(self, request: web.Request) -> web.Response | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return google_error(
                401,
                "Request is missing required authentication credential. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential.",
                details=[_error_info("CREDENTIALS_MISSING")],
            )
        if token.strip() not in self.vertex_tokens:
            return google_error(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
                "cookie or other valid authentication credential.",
                details=[_error_info("ACCESS_TOKEN_TYPE_UNSUPPORTED")],
            )
        return None

    def _model_object(self, model: str) -> JSON:
        return {
            "name": f"models/{model}",
            "version": "001",
            "displayName": model.replace("-", " ").title(),
            "description": f"Simulated {model}.",
            "inputTokenLimit": INPUT_TOKEN_LIMIT,
            "outputTokenLimit": OUTPUT_TOKEN_LIMIT,
            "supportedGenerationMethods": list(METHODS),
            "temperature": 1,
            "topP": 0.95,
            "topK": 64,
            "maxTemperature": 2,
            "thinking": model in self.config.thinking_models,
        }

    # -- content -----------------------------------------------------------------------------

    def _thinks(self, body: JSON, model: str) -> bool:
        thinking = _thinking_config(body)
        budget = _key(thinking, "thinkingBudget")
        return self.config.thinking and model in self.config.thinking_models and budget != 0

    def _candidate(self, body: JSON, model: str) -> _Candidate:
        user_text = _last_user_text(body["contents"])
        thinks = self._thinks(body, model)
        shows_thoughts = thinks and _key(_thinking_config(body), "includeThoughts") is True
        thought = f"Thinking about the request: {user_text}".strip()
        parts: list[JSON] = [{"text": thought, "thought": True}] if shows_thoughts else []
        calls = _function_calls(body, user_text, self.config.function_call_ids)
        if calls:
            answer, finish, tokens = calls, "STOP", 0
        else:
            text = self.config.reply if self.config.reply is not None else _default_text(body, user_text)
            finish = "STOP"
            limit = _key(_generation_config(body), "maxOutputTokens")
            pieces = word_pieces(text)
            if isinstance(limit, int) and len(pieces) > limit:
                text, finish = "".join(pieces[:limit]).rstrip(), "MAX_TOKENS"
            answer, tokens = [{"text": text}], len(text.split())
        if thinks and (shows_thoughts or calls):
            answer[0]["thoughtSignature"] = signature_for(thought)
        return _Candidate(parts + answer, finish, tokens)

    def _prompt_tokens(self, body: JSON) -> int:
        contents = body.get("contents") or []
        system = _key(body, "systemInstruction")
        count = sum(len(_content_text(c).split()) + 3 for c in contents if isinstance(c, dict))
        if isinstance(system, dict):
            count += len(_content_text(system).split())
        return count + self.config.cached_tokens

    def _usage(self, body: JSON, model: str, candidates: list[_Candidate]) -> JSON:
        prompt = self._prompt_tokens(body)
        output = 0
        thoughts = 0
        for c in candidates:
            output += c.text_tokens
            for part in c.parts:
                call = part.get("functionCall")
                if call is not None:
                    output += len(json.dumps(call.get("args", {})).split()) + 1
                elif part.get("thought"):
                    thoughts += len(part["text"].split())
        if self._thinks(body, model) and not thoughts:
            thoughts = len(f"Thinking about the request: {_last_user_text(body['contents'])}".split())
        usage: JSON = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": output,
            "totalTokenCount": prompt + output + thoughts,
            "promptTokensDetails": [_modality(prompt)],
        }
        if self.config.cached_tokens:
            usage["cachedContentTokenCount"] = self.config.cached_tokens
            usage["cacheTokensDetails"] = [_modality(self.config.cached_tokens)]
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        return usage

    async def _stream(self, request: web.Request, chunks: list[JSON]) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        self.active_streams += 1
        try:
            await response.prepare(request)
            for sent, chunk in enumerate(chunks):
                cut_after = self.config.stream_cut_after
                if cut_after is not None and sent >= cut_after:
                    _drop_connection(request)
                    return response
                if sent and self.config.chunk_delay_ms > 0:
                    await asyncio.sleep(self.config.chunk_delay_ms / 1000)
                await response.write(b"data: " + _dumps(chunk).encode() + b"\r\n\r\n")
            await response.write_eof()
        except ConnectionError:
            self.cancelled_streams += 1
        except asyncio.CancelledError:
            self.cancelled_streams += 1
            raise
        finally:
            self.active_streams -= 1
        return response

    # -- control API -------------------------------------------------------------------------

    async def _get_config(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.config.to_json())

    async def _set_config(self, request: web.Request) -> web.StreamResponse:
        values = _loads_or_none(await request.read())
        if not isinstance(values, dict):
            return google_error(400, "expected a JSON object of config fields")
        try:
            self.config.update(values)
        except (ValueError, TypeError) as exc:
            return google_error(400, str(exc))
        return web.json_response(self.config.to_json())

    async def _reset(self, request: web.Request) -> web.StreamResponse:
        self.reset()
        return web.json_response(self.config.to_json())

    async def _get_requests(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"requests": [r.to_json() for r in self.requests]})


# -- running on a thread of its own ----------------------------------------------------------


def run_sim_in_thread(
    api_keys: Iterable[str] | None = None,
    config: SimConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> tuple[GeminiSim, Callable[[], None]]:
    """Start a simulator on its own event loop in a daemon thread; returns it and a stop function."""
    sim = GeminiSim(api_keys, config)
    stop = start_in_thread(sim, name="gemini-sim", host=host, port=port)
    return sim, stop


@contextlib.contextmanager
def sim_in_thread(
    api_keys: Iterable[str] | None = None, config: SimConfig | None = None
) -> Iterator[GeminiSim]:
    """``with sim_in_thread() as sim:`` — run_sim_in_thread, stopped on exit."""
    sim, stop = run_sim_in_thread(api_keys, config)
    try:
        yield sim
    finally:
        stop()


# -- errors ----------------------------------------------------------------------------------


def google_error(
    code: int,
    message: str,
    *,
    status: str | None = None,
    details: list[JSON] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """A response with Google's error body ``{"error": {code, message, status[, details]}}``."""
    error: JSON = {"code": code, "message": message, "status": status or STATUS_NAMES.get(code, "UNKNOWN")}
    if details:
        error["details"] = details
    return web.json_response({"error": error}, status=code, headers=headers)


def _error_info(reason: str) -> JSON:
    return {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com"},
    }


def _injected_failure(spec: FailSpec, model: str, retry_delay_s: int) -> web.Response:
    custom: JSON = spec if isinstance(spec, dict) else {"status": spec}
    code = int(custom["status"])
    headers = dict(custom.get("headers") or {})
    if "body" in custom:
        return web.json_response(custom["body"], status=code, headers=headers)
    details: list[JSON] = []
    if custom.get("reason"):
        details.append(_error_info(str(custom["reason"])))
    if code == 429:
        details += [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
                        "quotaDimensions": {"location": "global", "model": model},
                        "quotaValue": "10",
                    }
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_delay_s}s"},
        ]
    if code == 404:
        message = (
            f"models/{model} is not found for API version v1beta, or is not supported for generateContent."
        )
    else:
        message = _FAILURES.get(code, f"Simulated HTTP {code} error.")
    return google_error(code, message, details=details or None, headers=headers)


def _model_not_found(request: web.Request, model: str, action: str, vertex: bool) -> web.Response:
    if vertex:
        info = request.match_info
        name = f"projects/{info['project']}/locations/{info['location']}/publishers/google/models/{model}"
        return google_error(
            404,
            f"Publisher Model `{name}` was not found or your project does not have access to it. Please "
            "ensure you are using a valid model version.",
        )
    version = request.path.split("/")[1]
    return google_error(
        404,
        f"models/{model} is not found for API version {version}, or is not supported for {action}. Call "
        "ListModels to see the list of available models and their supported methods.",
    )


def _drop_connection(request: web.Request) -> web.Response:
    if request.transport is not None:
        request.transport.close()
    return web.Response()


async def _not_found_path(request: web.Request) -> web.StreamResponse:
    return google_error(404, f"The requested URL {request.path} was not found on this server.")


# -- validation: Google rejects unknown field names, so a translator's wrong key fails here -----


def _names(*camel: str) -> frozenset[str]:
    snake = [re.sub(r"(?<!^)([A-Z])", r"_\1", n).lower() for n in camel]
    return frozenset([*camel, *snake])


_TOP_FIELDS = _names(
    "model",
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "safetySettings",
    "generationConfig",
    "cachedContent",
    "labels",
)
_CONFIG_FIELDS = _names(
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "imageConfig",
    "mediaResolution",
) | {"_responseJsonSchema"}
_THINKING_FIELDS = _names("includeThoughts", "thinkingBudget", "thinkingLevel")
_PART_DATA = _names(
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
)
_PART_FIELDS = _PART_DATA | _names(
    "thought", "thoughtSignature", "videoMetadata", "partMetadata", "mediaResolution"
)
_CONTENT_FIELDS = frozenset({"role", "parts"})
_TOOL_FIELDS = _names(
    "functionDeclarations",
    "googleSearch",
    "googleSearchRetrieval",
    "codeExecution",
    "urlContext",
    "fileSearch",
    "googleMaps",
    "computerUse",
)
_DECLARATION_FIELDS = _names(
    "name", "description", "parameters", "parametersJsonSchema", "response", "responseJsonSchema", "behavior"
)
_MODES = frozenset({"AUTO", "ANY", "NONE", "VALIDATED", "MODE_UNSPECIFIED"})


def _bad(message: str) -> web.Response:
    return google_error(400, message)


def _unknown(fields: Iterable[str], known: frozenset[str], where: str) -> web.Response | None:
    for name in fields:
        if name not in known:
            at = f" at '{where}'" if where else ""
            return _bad(f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.')
    return None


def _is_base64(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    standard = value.replace("-", "+").replace("_", "/")  # protobuf JSON takes both alphabets
    try:
        base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _validate(raw: bytes, body: Any, *, vertex: bool, check_signatures: bool) -> web.Response | None:
    if not isinstance(body, dict):
        return _bad("Invalid JSON payload received. Unexpected token." if raw else "Empty request body.")
    if (unknown := _unknown(body, _TOP_FIELDS, "")) is not None:
        return unknown
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return _bad("* GenerateContentRequest.contents: contents is not specified\n")
    for i, content in enumerate(contents):
        if not isinstance(content, dict):
            return _bad(f"Invalid value at 'contents[{i}]': expected an object.")
        if (invalid := _validate_content(content, f"contents[{i}]", vertex)) is not None:
            return invalid
    system = _key(body, "systemInstruction")
    if system is not None:
        if not isinstance(system, dict):
            return _bad("Invalid value at 'system_instruction': expected a Content object.")
        if (invalid := _validate_content(system, "system_instruction", False)) is not None:
            return invalid
    if (invalid := _validate_tools(body)) is not None:
        return invalid
    config = _key(body, "generationConfig")
    if config is not None:
        if not isinstance(config, dict):
            return _bad("Invalid value at 'generation_config': expected an object.")
        if (unknown := _unknown(config, _CONFIG_FIELDS, "generation_config")) is not None:
            return unknown
        thinking = _key(config, "thinkingConfig")
        if thinking is not None and (
            unknown := _unknown(thinking, _THINKING_FIELDS, "generation_config.thinking_config")
        ):
            return unknown
        count = _key(config, "candidateCount")
        if count is not None and (not isinstance(count, int) or not 1 <= count <= 8):
            return _bad("* GenerateContentRequest.generation_config.candidate_count: must be 1 to 8.\n")
        if _key(config, "responseSchema") is not None and _key(config, "responseJsonSchema") is not None:
            return _bad("response_schema and response_json_schema cannot both be set.")
    if check_signatures:
        return _check_signatures(contents)
    return None


def _validate_content(content: JSON, where: str, vertex: bool) -> web.Response | None:
    if (unknown := _unknown(content, _CONTENT_FIELDS, where)) is not None:
        return unknown
    role = content.get("role")
    if (role is None and vertex) or role not in (None, "user", "model"):
        return _bad("Please use a valid role: user, model.")
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        return _bad(f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty.\n")
    for j, part in enumerate(parts):
        path = f"{where}.parts[{j}]"
        if not isinstance(part, dict):
            return _bad(f"Invalid value at '{path}': expected an object.")
        if (unknown := _unknown(part, _PART_FIELDS, path)) is not None:
            return unknown
        data = [name for name in part if name in _PART_DATA]
        if len(data) != 1:
            return _bad(
                f"* GenerateContentRequest.{path}.data: required oneof field 'data' must have one "
                "initialized field\n"
            )
        inline = _key(part, "inlineData")
        if inline is not None and (
            not isinstance(inline, dict) or not _key(inline, "mimeType") or not _is_base64(inline.get("data"))
        ):
            return _bad(f"Invalid value at '{path}.inline_data.data' (TYPE_BYTES), Base64 decoding failed")
        file_data = _key(part, "fileData")
        if file_data is not None and (not isinstance(file_data, dict) or not _key(file_data, "fileUri")):
            return _bad(f"* GenerateContentRequest.{path}.file_data.file_uri: file_uri is required\n")
        signature = _key(part, "thoughtSignature")
        if signature is not None and not _is_base64(signature):
            return _bad(f"Invalid value at '{path}.thought_signature' (TYPE_BYTES), Base64 decoding failed")
        call = _key(part, "functionCall")
        if call is not None:
            if role != "model":
                return _bad("Please ensure that function call turns come from the model (role 'model').")
            if not isinstance(call, dict) or not call.get("name"):
                return _bad(f"* GenerateContentRequest.{path}.function_call.name: Name cannot be empty.\n")
            if call.get("args") is not None and not isinstance(call["args"], dict):
                return _bad(f"Invalid value at '{path}.function_call.args': expected an object.")
        reply = _key(part, "functionResponse")
        if reply is not None:
            if role == "model":
                return _bad("Please ensure that function response turns come from the user (role 'user').")
            if not isinstance(reply, dict) or not reply.get("name"):
                return _bad(
                    f"* GenerateContentRequest.{path}.function_response.name: Name cannot be empty.\n"
                )
            if not isinstance(reply.get("response", {}), dict):
                return _bad(f"Invalid value at '{path}.function_response.response': expected an object.")
    return None


def _validate_tools(body: JSON) -> web.Response | None:
    tools = body.get("tools")
    if tools is None:
        return None
    if not isinstance(tools, list):
        return _bad("Invalid value at 'tools': expected an array.")
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            return _bad(f"Invalid value at 'tools[{i}]': expected an object.")
        if (unknown := _unknown(tool, _TOOL_FIELDS, f"tools[{i}]")) is not None:
            return unknown
        for k, decl in enumerate(_key(tool, "functionDeclarations") or []):
            where = f"tools[{i}].function_declarations[{k}]"
            if not isinstance(decl, dict) or not decl.get("name"):
                return _bad(f"* GenerateContentRequest.{where}.name: Name cannot be empty.\n")
            if (unknown := _unknown(decl, _DECLARATION_FIELDS, where)) is not None:
                return unknown
            if decl.get("parameters") is not None and _key(decl, "parametersJsonSchema") is not None:
                return _bad(f"{where}: parameters and parameters_json_schema cannot both be set.")
    config = _key(_key(body, "toolConfig") or {}, "functionCallingConfig")
    if isinstance(config, dict) and config.get("mode", "AUTO") not in _MODES:
        return _bad(
            "Invalid value at 'tool_config.function_calling_config.mode' "
            "(type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), "
            f'"{config["mode"]}"'
        )
    return None


def _check_signatures(contents: list[JSON]) -> web.Response | None:
    """Gemini 3: each model step of the current turn that calls functions must carry a signature on its
    first function call. The current turn starts at the last user content holding text."""
    start = 0
    for i, content in enumerate(contents):
        if content.get("role", "user") == "user" and any(
            isinstance(p, dict) and "text" in p for p in content.get("parts") or []
        ):
            start = i
    for i in range(start, len(contents)):
        content = contents[i]
        if content.get("role") != "model":
            continue
        calls = [p for p in content["parts"] if _key(p, "functionCall") is not None]
        if calls and not _key(calls[0], "thoughtSignature"):
            name = _key(calls[0], "functionCall").get("name")
            return _bad(
                f"Function call is missing a thought_signature in functionCall parts. Function call "
                f"`{name}` in content {i} has none. See "
                "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
            )
    return None


# -- content helpers ---------------------------------------------------------------------------


def _key(obj: Any, camel: str) -> Any:
    """``obj[camel]`` or its snake_case spelling (the API accepts both)."""
    if not isinstance(obj, dict):
        return None
    if camel in obj:
        return obj[camel]
    return obj.get(re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower())


def _generation_config(body: JSON) -> JSON:
    config = _key(body, "generationConfig")
    return config if isinstance(config, dict) else {}


def _thinking_config(body: JSON) -> JSON:
    thinking = _key(_generation_config(body), "thinkingConfig")
    return thinking if isinstance(thinking, dict) else {}


def _candidate_count(body: JSON) -> int:
    count = _key(_generation_config(body), "candidateCount")
    return count if isinstance(count, int) and count > 0 else 1


def _content_text(content: JSON) -> str:
    parts = content.get("parts") or []
    return " ".join(
        p["text"]
        for p in parts
        if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought")
    )


def _last_user_text(contents: list[JSON]) -> str:
    for content in reversed(contents):
        if content.get("role", "user") == "user":
            text = _content_text(content)
            if text:
                return text
    return ""


def _last_is_user_text(contents: list[JSON]) -> bool:
    last = contents[-1]
    return last.get("role", "user") == "user" and bool(_content_text(last))


def _default_text(body: JSON, user_text: str) -> str:
    echo = "Echo: " + user_text
    config = _generation_config(body)
    if _key(config, "responseMimeType") != "application/json":
        return echo
    schema = _key(config, "responseJsonSchema") or config.get("_responseJsonSchema")
    if schema is None and _key(config, "responseSchema") is not None:
        schema = _lower_types(_key(config, "responseSchema"))
    if isinstance(schema, dict):
        return json.dumps(placeholder(schema))
    return json.dumps({"reply": echo})


def _lower_types(schema: Any) -> Any:
    """Gemini's OpenAPI schema (``"type": "STRING"``) in the lower-case spelling placeholder() reads."""
    if isinstance(schema, list):
        return [_lower_types(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _lower_types(v) for k, v in schema.items() if k != "properties"}
    if isinstance(schema.get("type"), str):
        out["type"] = schema["type"].lower()
    if isinstance(schema.get("properties"), dict):
        out["properties"] = {k: _lower_types(v) for k, v in schema["properties"].items()}
    return out


def _function_calls(body: JSON, user_text: str, with_ids: bool) -> list[JSON]:
    declarations = [
        decl
        for tool in body.get("tools") or []
        for decl in _key(tool, "functionDeclarations") or []
        if isinstance(decl, dict)
    ]
    config = _key(_key(body, "toolConfig") or {}, "functionCallingConfig") or {}
    mode = config.get("mode", "AUTO")
    if not declarations or mode == "NONE" or not _last_is_user_text(body["contents"]):
        return []
    allowed = _key(config, "allowedFunctionNames")
    if mode == "ANY" and allowed:
        declarations = [d for d in declarations if d["name"] in allowed] or declarations[:1]
    if "call all tools" not in user_text.lower():
        declarations = declarations[:1]
    calls = []
    for decl in declarations:
        schema = _key(decl, "parametersJsonSchema")
        if schema is None:
            schema = _lower_types(decl.get("parameters") or {"type": "object"})
        call: JSON = {"name": decl["name"], "args": placeholder(schema) or {}}
        if with_ids:
            call["id"] = "fc_" + _random_id(16)
        calls.append({"functionCall": call})
    return calls


def signature_for(thought: str) -> str:
    """The simulator's thought signature: base64 of a digest of the thought (deterministic)."""
    return base64.b64encode(b"sim-signature:" + hashlib.sha256(thought.encode()).digest()[:24]).decode()


def _stream_chunks(head: JSON, candidates: list[_Candidate], usage: JSON) -> Iterator[JSON]:
    """The chunks of a streamed answer: thoughts, then the answer a word at a time (function calls
    whole), the candidate's last chunk with its finishReason, the very last with the full usage."""
    prompt_only = {
        "promptTokenCount": usage["promptTokenCount"],
        "totalTokenCount": usage["promptTokenCount"],
        "promptTokensDetails": usage["promptTokensDetails"],
    }
    planned: list[tuple[int, list[JSON], str | None]] = []
    for index, c in enumerate(candidates):
        groups: list[list[JSON]] = []
        calls: list[JSON] | None = None  # the group of function calls being filled
        for part in c.parts:
            if "functionCall" in part:
                if calls is None:
                    calls = []
                    groups.append(calls)
                calls.append(part)
                continue
            calls = None
            if part.get("thought"):
                groups.append([part])
                continue
            for k, piece in enumerate(word_pieces(part["text"]) or [""]):
                piece_part: JSON = {"text": piece}
                if k == 0 and "thoughtSignature" in part:
                    piece_part["thoughtSignature"] = part["thoughtSignature"]
                groups.append([piece_part])
        for k, group in enumerate(groups):
            planned.append((index, group, c.finish_reason if k == len(groups) - 1 else None))
    for n, (index, parts, finish) in enumerate(planned):
        candidate: JSON = {"content": {"parts": parts, "role": "model"}, "index": index}
        if finish is not None:
            candidate["finishReason"] = finish
        last = n == len(planned) - 1
        yield {"candidates": [candidate], "usageMetadata": usage if last else prompt_only, **head}


def _modality(count: int) -> JSON:
    return {"modality": "TEXT", "tokenCount": count}


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
