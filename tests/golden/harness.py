"""What the golden files hold, computed: shared by ``test_golden.py`` (compares) and ``regenerate.py``
(writes). Pure: it reads fixtures and never writes.

Each pair (inbound dialect I, upstream dialect U) is run the way ``api/chat_engine.py`` runs a
translated call:

- request: ``registry.inbound(I).parse(body, model=...)`` then ``registry.upstream(U).to_body(...)``;
- answer: ``registry.upstream(U).from_body(json)`` then ``registry.inbound(I).render(...)``;
- stream: every upstream SSE event (split as ``iter_sse_events`` splits them) goes through
  ``registry.upstream(U).stream_parser().feed`` and the canonical events through
  ``registry.inbound(I).stream_renderer(...).event``; then ``close()`` when the parser saw the
  upstream's end of stream, else ``error(...)`` with the engine's message (the upstream broke off).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from omnirelay.core.chat import ChatRequest, ChatResponse, StreamEvent
from omnirelay.dialects import registry
from omnirelay.dialects.base import StreamParser

HERE = Path(__file__).parent
REQUESTS_DIR = HERE / "requests"
UPSTREAM_DIR = HERE / "upstream"
EXPECTED_DIR = HERE / "expected"
CANONICAL_DIR = HERE / "canonical"

JSON = dict[str, Any]

INBOUNDS = ("openai_chat", "anthropic", "gemini", "openai_responses")
UPSTREAMS = ("openai_chat", "anthropic", "gemini")
PAIRS = tuple((i, u) for i in INBOUNDS for u in UPSTREAMS)

# Which scenario has which golden: requests for the client fixtures, answers and streams for the
# recorded upstream fixtures (the image scenario is request-only, the error scenario stream-only).
REQUEST_SCENARIOS = ("text", "tools", "thinking", "image")
RESPONSE_SCENARIOS = ("text", "tools", "thinking", "usage")
STREAM_SCENARIOS = ("text", "tools", "thinking", "error", "usage")
# The client request an answer is rendered for (a Responses object echoes the request's settings).
ANSWERED_REQUEST = {
    "text": "text",
    "tools": "tools",
    "thinking": "thinking",
    "usage": "text",
    "error": "text",
}

CLIENT_MODEL = "relay-model"  # the model name the client asked the gateway for
RESPONSE_ID = "req_golden"  # the engine passes its request id
CREATED = 1_700_000_000  # the engine passes the call's start time
# What the engine sends when the upstream stream ends before its end-of-stream marker.
BREAK_MESSAGE = "The upstream ended the stream before it was complete."
BREAK_TYPE = "upstream_error"

# The upstream model of each upstream dialect, per scenario ("*" = every other scenario); the
# recordings were made with the same models (record.py).
UPSTREAM_MODELS: dict[str, dict[str, str]] = {
    "openai_chat": {"*": "gpt-4o-mini", "thinking": "sim-reasoner"},
    "anthropic": {"*": "claude-sonnet-4-5"},
    "gemini": {"*": "gemini-2.5-flash"},
}


def upstream_model(upstream: str, scenario: str) -> str:
    models = UPSTREAM_MODELS[upstream]
    return models.get(scenario, models["*"])


# -- fixtures -------------------------------------------------------------------------------------


@functools.cache
def _read(path: Path) -> bytes:
    return path.read_bytes()


def client_body(inbound: str, scenario: str) -> JSON:
    data = json.loads(_read(REQUESTS_DIR / inbound / f"{scenario}.json"))
    assert isinstance(data, dict)
    return data


def upstream_json(upstream: str, scenario: str) -> JSON:
    data = json.loads(_read(UPSTREAM_DIR / upstream / f"{scenario}.json"))
    assert isinstance(data, dict)
    return data


def upstream_sse(upstream: str, scenario: str) -> bytes:
    return _read(UPSTREAM_DIR / upstream / f"{scenario}.sse")


def split_sse(raw: bytes) -> list[bytes]:
    """SSE bytes -> events without their blank-line separator, as ``iter_sse_events`` yields them."""
    buffer = raw.replace(b"\r\n", b"\n")
    *events, rest = buffer.split(b"\n\n")
    out = [e for e in events if e]
    if rest.strip():
        out.append(rest.strip())
    return out


# -- the engine's steps ---------------------------------------------------------------------------


def parse_request(inbound: str, scenario: str) -> ChatRequest:
    return registry.inbound(inbound).parse(client_body(inbound, scenario), model=CLIENT_MODEL)


def upstream_body(inbound: str, upstream: str, scenario: str) -> JSON:
    return registry.upstream(upstream).to_body(
        parse_request(inbound, scenario), upstream_model=upstream_model(upstream, scenario)
    )


def _extras(inbound: str, scenario: str) -> dict[str, Any]:
    if inbound != "openai_responses":
        return {}
    return {"request": parse_request(inbound, ANSWERED_REQUEST[scenario])}


def canonical_response(upstream: str, scenario: str) -> ChatResponse:
    return registry.upstream(upstream).from_body(upstream_json(upstream, scenario))


def rendered_response(inbound: str, upstream: str, scenario: str) -> JSON:
    render: Callable[..., JSON] = registry.inbound(inbound).render
    return render(canonical_response(upstream, scenario), model=CLIENT_MODEL, **_extras(inbound, scenario))


@dataclass
class ParsedStream:
    events: list[StreamEvent]
    parser: StreamParser


def canonical_stream(upstream: str, scenario: str) -> ParsedStream:
    parser = registry.upstream(upstream).stream_parser()
    events: list[StreamEvent] = []
    for event in split_sse(upstream_sse(upstream, scenario)):
        events.extend(parser.feed(event))
    return ParsedStream(events, parser)


def rendered_stream(inbound: str, upstream: str, scenario: str) -> bytes:
    """The bytes the client gets: one ``renderer.event`` per canonical event, fed as they come."""
    parser = registry.upstream(upstream).stream_parser()
    make: Callable[..., Any] = registry.inbound(inbound).stream_renderer
    renderer = make(
        model=CLIENT_MODEL,
        response_id=RESPONSE_ID,
        created=CREATED,
        include_usage=True,
        **_extras(inbound, scenario),
    )
    out: list[bytes] = []
    for event in split_sse(upstream_sse(upstream, scenario)):
        out.extend(renderer.event(e) for e in parser.feed(event))
    if parser.done:
        if parser.usage is None:  # the engine would count tokens itself; every recording has usage
            raise AssertionError(f"upstream/{upstream}/{scenario}.sse reports no usage")
        out.append(renderer.close())
    else:
        out.append(renderer.error(BREAK_MESSAGE, BREAK_TYPE))
    return b"".join(out)


# -- encoding -------------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """Canonical dataclasses as JSON values, each object tagged with its class."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"class": type(value).__name__, **fields}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def encode_json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode()


def same_json(a: bytes, b: bytes) -> bool:
    """JSON equality that tells ``true`` from ``1`` and ``1`` from ``1.0`` (Python's == does not)."""

    def canon(raw: bytes) -> str:
        return json.dumps(json.loads(raw), sort_keys=True, ensure_ascii=False)

    return canon(a) == canon(b)


# -- the golden files -----------------------------------------------------------------------------

# Golden files that hold the CORRECT output while the code still writes a wrong one. They were
# computed with the fix described applied (and nothing else changed), regenerate.py never overwrites
# them, and their golden test fails until the fix lands; then delete the entry.
CORRECTED: dict[str, str] = {}

Kind = Literal["json", "sse"]


@dataclass(frozen=True)
class Golden:
    """One golden file: its path under tests/golden and how to compute its content."""

    path: str
    kind: Kind
    compute: Callable[[], bytes]

    @property
    def file(self) -> Path:
        return HERE / self.path


def _stream_record(upstream: str, scenario: str) -> JSON:
    parsed = canonical_stream(upstream, scenario)
    return {
        "events": plain(parsed.events),
        "done": parsed.parser.done,
        "usage": plain(parsed.parser.usage),
    }


def _canonical_request_file(inbound: str, scenario: str) -> bytes:
    return encode_json(plain(parse_request(inbound, scenario)))


def _canonical_response_file(upstream: str, scenario: str) -> bytes:
    return encode_json(plain(canonical_response(upstream, scenario)))


def _canonical_events_file(upstream: str, scenario: str) -> bytes:
    return encode_json(_stream_record(upstream, scenario))


def _request_file(inbound: str, upstream: str, scenario: str) -> bytes:
    return encode_json(upstream_body(inbound, upstream, scenario))


def _response_file(inbound: str, upstream: str, scenario: str) -> bytes:
    return encode_json(rendered_response(inbound, upstream, scenario))


def goldens() -> list[Golden]:
    """Every golden file, in a stable order."""
    out: list[Golden] = []
    for inbound in INBOUNDS:
        for scenario in REQUEST_SCENARIOS:
            path = f"canonical/inbound/{inbound}/{scenario}.request.json"
            out.append(Golden(path, "json", functools.partial(_canonical_request_file, inbound, scenario)))
    for upstream in UPSTREAMS:
        for scenario in RESPONSE_SCENARIOS:
            path = f"canonical/upstream/{upstream}/{scenario}.response.json"
            out.append(Golden(path, "json", functools.partial(_canonical_response_file, upstream, scenario)))
        for scenario in STREAM_SCENARIOS:
            path = f"canonical/upstream/{upstream}/{scenario}.events.json"
            out.append(Golden(path, "json", functools.partial(_canonical_events_file, upstream, scenario)))
    for inbound, upstream in PAIRS:
        where = f"expected/{inbound}__{upstream}"
        for scenario in REQUEST_SCENARIOS:
            compute = functools.partial(_request_file, inbound, upstream, scenario)
            out.append(Golden(f"{where}/{scenario}.request.json", "json", compute))
        for scenario in RESPONSE_SCENARIOS:
            compute = functools.partial(_response_file, inbound, upstream, scenario)
            out.append(Golden(f"{where}/{scenario}.response.json", "json", compute))
        for scenario in STREAM_SCENARIOS:
            compute = functools.partial(rendered_stream, inbound, upstream, scenario)
            out.append(Golden(f"{where}/{scenario}.stream.sse", "sse", compute))
    return out
