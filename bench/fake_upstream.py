"""A fast OpenAI-compatible fake upstream for benchmarks.

A raw asyncio Protocol HTTP/1.1 server on uvloop: keep-alive, Content-Length (or chunked) request
bodies, precomputed responses. It must never be the bottleneck of a benchmark.

    POST /v1/chat/completions   -> a fixed chat.completion (with usage)
                                   or, for "stream": true, an SSE stream of content chunks,
                                   one usage chunk and ``data: [DONE]`` (chunked encoding)
    GET  /v1/models             -> a fixed model list

Usage: python bench/fake_upstream.py --port N [--chunk-delay-ms MS] [--chunks N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys
from dataclasses import dataclass
from typing import cast

import orjson

MODEL = "bench-model"
CREATED = 1_700_000_000
USAGE = {"prompt_tokens": 9, "completion_tokens": 10, "total_tokens": 19}
_STREAM_TRUE = re.compile(rb'"stream"\s*:\s*true')
_MAX_HEAD = 64 * 1024


def _response(status: str, content_type: bytes, body: bytes) -> bytes:
    head = (
        b"HTTP/1.1 " + status.encode() + b"\r\n"
        b"Content-Type: " + content_type + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    return head + body


def _completion_body() -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": CREATED,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello! This is a benchmark reply."},
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
        }
    )


def _chunk(delta: dict[str, str], finish: str | None) -> dict[str, object]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _sse_events(n_chunks: int) -> list[bytes]:
    """The SSE events of one streamed reply, each already framed as an HTTP chunk."""
    events: list[dict[str, object]] = []
    for i in range(n_chunks):
        delta = {"role": "assistant", "content": "tok0 "} if i == 0 else {"content": f"tok{i} "}
        events.append(_chunk(delta, "stop" if i == n_chunks - 1 else None))
    usage_event: dict[str, object] = {**_chunk({}, None), "choices": [], "usage": USAGE}
    events.append(usage_event)
    payloads = [b"data: " + orjson.dumps(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]
    return [b"%x\r\n%s\r\n" % (len(p), p) for p in payloads]


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
CHUNKED_END = b"0\r\n\r\n"
COMPLETION = _response("200 OK", b"application/json", _completion_body())
MODELS = _response(
    "200 OK",
    b"application/json",
    orjson.dumps({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "bench"}]}),
)
NOT_FOUND = _response("404 Not Found", b"application/json", b'{"error":{"message":"not found"}}')
BAD_REQUEST = _response("400 Bad Request", b"application/json", b'{"error":{"message":"bad request"}}')


@dataclass(frozen=True)
class Options:
    chunk_delay_s: float
    events: tuple[bytes, ...]


@dataclass(frozen=True)
class Request:
    method: bytes
    path: bytes
    body: bytes
    close: bool


def _header_value(head: bytes, name: bytes) -> bytes | None:
    """``head`` is the lower-cased header block; returns the stripped value of ``name`` or None."""
    pos = head.find(b"\r\n" + name + b":")
    if pos < 0:
        return None
    start = pos + len(name) + 3
    end = head.find(b"\r\n", start)
    return head[start : end if end >= 0 else len(head)].strip()


def _dechunk(buf: bytearray, start: int) -> tuple[bytes, int] | None:
    """Decode a chunked body starting at ``start``; returns (body, end offset) or None if incomplete."""
    body = bytearray()
    pos = start
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        if size == 0:
            trailer_end = buf.find(b"\r\n\r\n", eol)
            return (bytes(body), trailer_end + 4) if trailer_end >= 0 else None
        if len(buf) < eol + 2 + size + 2:
            return None
        body += buf[eol + 2 : eol + 2 + size]
        pos = eol + 2 + size + 2


def parse_request(buf: bytearray) -> tuple[Request, int] | None:
    """Parse one request at the start of ``buf``; returns (request, bytes consumed) or None."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        if len(buf) > _MAX_HEAD:
            raise ValueError("request head too large")
        return None
    head = bytes(buf[:head_end]).lower()
    method, path, *_ = head.split(b"\r\n", 1)[0].split(b" ")
    close = _header_value(head, b"connection") == b"close"
    if _header_value(head, b"transfer-encoding") == b"chunked":
        decoded = _dechunk(buf, head_end + 4)
        if decoded is None:
            return None
        body, end = decoded
        return Request(method.upper(), path, body, close), end
    length = int(_header_value(head, b"content-length") or b"0")
    end = head_end + 4 + length
    if len(buf) < end:
        return None
    return Request(method.upper(), path, bytes(buf[head_end + 4 : end]), close), end


class UpstreamProtocol(asyncio.Protocol):
    def __init__(self, options: Options) -> None:
        self.options = options
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.streaming: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        if self.streaming is not None:
            self.streaming.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.streaming is None:
            self.process()

    def process(self) -> None:
        while self.transport is not None and self.streaming is None:
            try:
                parsed = parse_request(self.buf)
            except ValueError:
                self.transport.write(BAD_REQUEST)
                self.transport.close()
                return
            if parsed is None:
                return
            request, consumed = parsed
            del self.buf[:consumed]
            self.respond(request)

    def respond(self, request: Request) -> None:
        assert self.transport is not None
        if request.path.startswith(b"/v1/chat/completions") and request.method == b"POST":
            if _STREAM_TRUE.search(request.body):
                self.stream(request.close)
                return
            self.transport.write(COMPLETION)
        elif request.path.startswith(b"/v1/models") and request.method == b"GET":
            self.transport.write(MODELS)
        else:
            self.transport.write(NOT_FOUND)
        if request.close:
            self.transport.close()

    def stream(self, close: bool) -> None:
        assert self.transport is not None
        events = self.options.events
        if self.options.chunk_delay_s <= 0:
            self.transport.write(b"".join((STREAM_HEAD, *events, CHUNKED_END)))
            if close:
                self.transport.close()
            return
        self.streaming = asyncio.get_running_loop().create_task(self.stream_slowly(close))

    async def stream_slowly(self, close: bool) -> None:
        events = self.options.events
        try:
            self._write(STREAM_HEAD + events[0])
            for event in events[1:]:
                await asyncio.sleep(self.options.chunk_delay_s)
                self._write(event)
            self._write(CHUNKED_END)
        finally:
            self.streaming = None
        if close and self.transport is not None:
            self.transport.close()
        elif self.buf:
            self.process()

    def _write(self, data: bytes) -> None:
        if self.transport is None:
            raise asyncio.CancelledError
        self.transport.write(data)


async def serve(host: str, port: int, options: Options) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: UpstreamProtocol(options), host, port, backlog=4096)
    print(f"fake upstream listening on http://{host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="delay between streamed chunks")
    parser.add_argument("--chunks", type=int, default=10, help="content chunks per streamed reply")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = Options(args.chunk_delay_ms / 1000.0, tuple(_sse_events(max(1, args.chunks))))
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency of uvicorn[standard]
        print("uvloop not available, using the default asyncio loop", file=sys.stderr)
        runner = asyncio.run
    else:
        runner = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(serve(args.host, args.port, options))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
