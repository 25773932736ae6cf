"""Measure the gateway's stack choices in one run: orjson vs json, aiohttp vs httpx, httptools+uvloop vs
h11+asyncio, and (for context) Starlette routing vs a raw ASGI app.

    .venv/bin/python bench/choices.py [--quick] [--duration 8] [--rounds 2] [--out bench/out]

1. JSON: loads and dumps of a chat request, a chat.completion and an SSE chunk, timeit, µs per op.
2-4. A minimal pass-through proxy (POST /v1/chat/completions -> bench/fake_upstream.py) in four variants,
   each its own process, loaded with wrk at concurrency 64 (bench/post.lua, no API key), back to back:

   | variant          | client  | app              | uvicorn           |
   | aiohttp          | aiohttp | raw ASGI         | uvloop, httptools |  <- the gateway's choices
   | httpx            | httpx   | raw ASGI         | uvloop, httptools |
   | aiohttp-h11      | aiohttp | raw ASGI         | asyncio, h11      |
   | aiohttp-starlette| aiohttp | Starlette, Route | uvloop, httptools |

   CPU per request: utime+stime of the proxy process from /proc/<pid>/stat, before and after each load
   phase, divided by the requests wrk completed.

A proxy alone: python bench/choices.py --serve-proxy aiohttp --port N --upstream-port M
[--loop asyncio --http h11] [--framework starlette].

Report: Markdown on stdout and in OUT/choices.md, the figures in OUT/choices.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench

BENCH_DIR = bench.BENCH_DIR
HOST = bench.HOST
CHAT_PATH = bench.CHAT_PATH
CONCURRENCY = 64
SETTLE_S = 0.3

# --------------------------------------------------------------------------------------------------
# Options


@dataclass(frozen=True)
class Options:
    out: Path
    duration_s: int
    warmup_s: int
    rounds: int
    json_repeat: int
    json_target_s: float


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 s per load phase, one round")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out", help="output folder (bench/out)")
    parser.add_argument("--duration", type=int, help="seconds per wrk phase (8, --quick: 3)")
    parser.add_argument("--warmup", type=int, help="wrk warm-up seconds per proxy (2, --quick: 1)")
    parser.add_argument("--rounds", type=int, help="rounds of the four proxies, report medians (2)")
    server = parser.add_argument_group("serve one proxy (used by the harness)")
    server.add_argument("--serve-proxy", choices=("aiohttp", "httpx"), help="run one proxy and exit")
    server.add_argument("--port", type=int)
    server.add_argument("--upstream-port", type=int)
    server.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    server.add_argument("--http", choices=("httptools", "h11"), default="httptools")
    server.add_argument("--framework", choices=("asgi", "starlette"), default="asgi")
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace) -> Options:
    return Options(
        out=args.out.resolve(),
        duration_s=args.duration or (3 if args.quick else 8),
        warmup_s=args.warmup if args.warmup is not None else (1 if args.quick else 2),
        rounds=max(1, args.rounds or (1 if args.quick else 2)),
        json_repeat=3 if args.quick else 5,
        json_target_s=0.05 if args.quick else 0.1,
    )


# --------------------------------------------------------------------------------------------------
# The proxy: one upstream client, served as a raw ASGI app or a Starlette app with one Route

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
NOT_FOUND = b'{"error":{"message":"not found"}}'
JSON_TYPE = "application/json"


class Forwarder(Protocol):
    async def start(self) -> None: ...

    async def post(self, body: bytes) -> tuple[int, str, bytes]:
        """POST ``body`` upstream; returns (status, content type, response body)."""
        ...

    async def close(self) -> None: ...


class AiohttpForwarder:
    """One shared aiohttp.ClientSession, configured as the gateway's (src/omnirelay/gateway.py)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session: Any = None

    async def start(self) -> None:
        import aiohttp

        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=0, limit_per_host=0, ttl_dns_cache=300, keepalive_timeout=60
            ),
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=30),
        )

    async def post(self, body: bytes) -> tuple[int, str, bytes]:
        async with self.session.post(self.url, data=body, headers={"Content-Type": JSON_TYPE}) as response:
            payload: bytes = await response.read()
            return response.status, response.headers.get("Content-Type", JSON_TYPE), payload

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


class HttpxForwarder:
    """One shared httpx.AsyncClient with connection limits above the load's concurrency."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client: Any = None

    async def start(self) -> None:
        import httpx

        limits = httpx.Limits(max_connections=256, max_keepalive_connections=256, keepalive_expiry=60)
        # trust_env=False: no proxy or netrc from the environment, like aiohttp's default.
        self.client = httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(30.0), trust_env=False)

    async def post(self, body: bytes) -> tuple[int, str, bytes]:
        response = await self.client.post(self.url, content=body, headers={"Content-Type": JSON_TYPE})
        return response.status_code, response.headers.get("content-type", JSON_TYPE), response.content

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()


def make_forwarder(kind: str, upstream_port: int) -> Forwarder:
    url = f"http://{HOST}:{upstream_port}{CHAT_PATH}"
    return AiohttpForwarder(url) if kind == "aiohttp" else HttpxForwarder(url)


def asgi_app(forwarder: Forwarder) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The proxy as a bare ASGI callable: no framework, no middleware."""

    async def respond(send: Send, status: int, content_type: str, payload: bytes) -> None:
        headers = [
            (b"content-type", content_type.encode("latin-1")),
            (b"content-length", b"%d" % len(payload)),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await forwarder.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await forwarder.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"] != CHAT_PATH or scope["method"] != "POST":
            await respond(send, 404, JSON_TYPE, NOT_FOUND)
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        status, content_type, payload = await forwarder.post(b"".join(chunks))
        await respond(send, status, content_type, payload)

    return app


def starlette_app(forwarder: Forwarder) -> Any:
    """The same proxy as a Starlette app with one Route (default middleware stack included)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def chat(request: Request) -> Response:
        status, content_type, payload = await forwarder.post(await request.body())
        return Response(payload, status_code=status, media_type=content_type)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await forwarder.start()
        yield
        await forwarder.close()

    return Starlette(routes=[Route(CHAT_PATH, chat, methods=["POST"])], lifespan=lifespan)


def serve_proxy(args: argparse.Namespace) -> int:
    import uvicorn

    if args.port is None or args.upstream_port is None:
        print("--serve-proxy needs --port and --upstream-port", file=sys.stderr)
        return 2
    forwarder = make_forwarder(args.serve_proxy, args.upstream_port)
    app = starlette_app(forwarder) if args.framework == "starlette" else asgi_app(forwarder)
    # As `omnirelay serve` does (src/omnirelay/cli.py): fewer generation-0 collections.
    gc.set_threshold(20_000, 20, 50)
    uvicorn.run(
        app,
        host=HOST,
        port=args.port,
        loop=args.loop,
        http=args.http,
        lifespan="on",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )
    return 0


# --------------------------------------------------------------------------------------------------
# 1. JSON


def chat_request() -> dict[str, Any]:
    """A typical chat request body (~1 KB): a system prompt, a short conversation, one tool."""
    return {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant. Answer briefly and cite sources."},
            {
                "role": "user",
                "content": "What's the weather like in Paris today, and should I take an umbrella?",
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_8f2a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris","unit":"celsius"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_8f2a", "content": '{"temp":14,"rain_probability":0.7}'},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather and precipitation forecast for a city.",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "city": {"type": "string", "description": "City name, e.g. Paris"},
                            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                        },
                        "required": ["city"],
                    },
                },
            }
        ],
        "tool_choice": "auto",
        "temperature": 0.7,
        "max_tokens": 512,
        "stream": False,
        "user": "user-1234",
    }


def chat_completion() -> dict[str, Any]:
    """A chat.completion response (~1 KB)."""
    content = (
        "It's 14 °C in Paris with a 70% chance of rain this afternoon, so yes, take an umbrella. "
        "Showers are most likely between 2 and 6 pm; the morning should stay mostly dry with light winds "
        "from the west. Tomorrow looks similar, slightly warmer at around 16 °C. If you're cycling, a light "
        "waterproof jacket would be a good idea too. Source: the get_weather tool, queried a moment ago."
    )
    return {
        "id": "chatcmpl-9XyZabc123def456ghi789",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_0ba0d124f1",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 182,
            "completion_tokens": 96,
            "total_tokens": 278,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
    }


def sse_chunk() -> dict[str, Any]:
    """One small chat.completion.chunk, the payload of one SSE event."""
    return {
        "id": "chatcmpl-9XyZabc123def456ghi789",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "delta": {"content": " umbrella"}, "finish_reason": None}],
    }


def std_dumps(obj: Any) -> bytes:
    """The standard library as a web app uses it: compact, UTF-8 bytes (as Starlette's JSONResponse)."""
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


JSON_LIBS: dict[str, tuple[Callable[[bytes], Any], Callable[[Any], bytes]]] = {
    "json": (json.loads, std_dumps),
    "orjson": (orjson.loads, orjson.dumps),
}


@dataclass
class JsonResult:
    payload: str
    size_bytes: int
    op: str  # loads, dumps, loads+dumps
    json_us: float
    orjson_us: float

    @property
    def ratio(self) -> float:
        return self.json_us / self.orjson_us


def round_trip(loads: Callable[[bytes], Any], dumps: Callable[[Any], bytes], raw: bytes) -> bytes:
    return dumps(loads(raw))


def time_op(func: Callable[[], object], opts: Options) -> float:
    """Best of ``json_repeat`` timeit repeats, each about ``json_target_s`` long; µs per call."""
    timer = timeit.Timer(func)
    number, elapsed = timer.autorange()
    number = max(1, int(number * opts.json_target_s / max(elapsed, 1e-9)))
    return min(timer.repeat(repeat=opts.json_repeat, number=number)) / number * 1e6


def measure_json(opts: Options) -> list[JsonResult]:
    payloads = {
        "chat request (messages + tools)": chat_request(),
        "chat.completion response": chat_completion(),
        "SSE chunk (chat.completion.chunk)": sse_chunk(),
    }
    results: list[JsonResult] = []
    for name, obj in payloads.items():
        raw = orjson.dumps(obj)
        if json.loads(std_dumps(orjson.loads(raw))) != obj:  # both libraries agree on the data
            raise bench.BenchError(f"JSON round trip differs for {name}")
        figures: dict[str, dict[str, float]] = {"loads": {}, "dumps": {}, "loads+dumps": {}}
        for lib, (loads, dumps) in JSON_LIBS.items():
            figures["loads"][lib] = time_op(functools.partial(loads, raw), opts)
            figures["dumps"][lib] = time_op(functools.partial(dumps, obj), opts)
            figures["loads+dumps"][lib] = time_op(functools.partial(round_trip, loads, dumps, raw), opts)
        for op, by_lib in figures.items():
            results.append(JsonResult(name, len(raw), op, by_lib["json"], by_lib["orjson"]))
    return results


# --------------------------------------------------------------------------------------------------
# 2-4. Proxies under wrk


@dataclass(frozen=True)
class Variant:
    name: str
    client: str
    loop: str
    http: str
    framework: str

    @property
    def label(self) -> str:
        app = "Starlette Route" if self.framework == "starlette" else "raw ASGI"
        return f"{self.client} · {app} · {self.loop}+{self.http}"


CHOSEN = Variant("aiohttp", "aiohttp", "uvloop", "httptools", "asgi")
VARIANTS = (
    CHOSEN,
    Variant("httpx", "httpx", "uvloop", "httptools", "asgi"),
    Variant("aiohttp-h11", "aiohttp", "asyncio", "h11", "asgi"),
    Variant("aiohttp-starlette", "aiohttp", "uvloop", "httptools", "starlette"),
)


@dataclass
class Proxy:
    variant: Variant
    pid: int
    url: str


@dataclass
class Point:
    variant: str
    round: int
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]
    cpu_s: float
    cpu_ms_per_request: float | None

    @property
    def cpu_cores(self) -> float:
        return self.cpu_s / self.duration_s if self.duration_s else 0.0


def process_cpu_s(pid: int) -> float:
    """utime+stime (and cutime+cstime, zero for a proxy without children) of ``pid``, in seconds."""
    return bench.read_stat(pid)[1] / bench.CLK_TCK


def wrk(wrk_path: str, url: str, duration_s: int) -> bench.WrkResult:
    """wrk -t2 -c64 --latency -s bench/post.lua, without BENCH_API_KEY."""
    env = {k: v for k, v in os.environ.items() if k != "BENCH_API_KEY"}
    env["BENCH_MODEL"] = bench.MODEL
    cmd = bench.wrk_command(wrk_path, url, CONCURRENCY, duration_s)
    done = subprocess.run(
        cmd,
        env=env,
        capture_output=True,
        text=True,
        timeout=duration_s + 60,
        check=False,
        preexec_fn=lambda: bench._child_setup(None),  # dies with the harness
    )
    if done.returncode != 0:
        raise bench.BenchError(
            f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
        )
    return bench.parse_wrk(done.stdout)


def measure_proxy(wrk_path: str, proxy: Proxy, duration_s: int, number: int) -> Point:
    cpu_before = process_cpu_s(proxy.pid)
    result = wrk(wrk_path, proxy.url, duration_s)
    time.sleep(SETTLE_S)
    cpu = process_cpu_s(proxy.pid) - cpu_before
    return Point(
        variant=proxy.variant.name,
        round=number,
        requests=result.requests,
        duration_s=result.duration_s,
        rps=result.rps,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        errors=result.errors,
        cpu_s=cpu,
        cpu_ms_per_request=cpu * 1000 / result.requests if result.requests else None,
    )


def start_proxy(children: bench.Children, variant: Variant, upstream_port: int) -> Proxy:
    port = bench.free_port()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-proxy", variant.client]
    cmd += ["--port", str(port), "--upstream-port", str(upstream_port)]
    cmd += ["--loop", variant.loop, "--http", variant.http, "--framework", variant.framework]
    name = f"choices-{variant.name}"
    proc = children.spawn(name, cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://{HOST}:{port}{CHAT_PATH}"
    try:
        bench.wait_until(lambda: bench.tcp_open(port), proc, name, 20)
    except bench.BenchError as exc:
        raise bench.BenchError(f"{exc}; log tail:\n{children.log_tail(name)}") from exc
    status, reply = bench.http_json("POST", url, body=bench.chat_body(bench.MODEL, stream=False))
    if status != 200 or not isinstance(reply, dict) or not reply.get("choices"):
        raise bench.BenchError(f"{name}: POST {CHAT_PATH} -> {status}: {str(reply)[:300]}")
    return Proxy(variant, proc.pid, url)


def run_proxies(opts: Options, wrk_path: str, children: bench.Children, problems: list[str]) -> list[Point]:
    upstream_port = bench.free_port()
    bench.start_fake_upstream(children, "choices-upstream", upstream_port, 0)
    proxies = [start_proxy(children, v, upstream_port) for v in VARIANTS]
    for proxy in proxies:
        log(f"warm-up {proxy.variant.name} ({opts.warmup_s} s)")
        wrk(wrk_path, proxy.url, opts.warmup_s)
    points: list[Point] = []
    for number in range(1, opts.rounds + 1):
        # Alternate the order between rounds so that a drift in background load does not favour one.
        order = proxies if number % 2 else list(reversed(proxies))
        for proxy in order:
            log(f"round {number}/{opts.rounds}: {proxy.variant.name}, c{CONCURRENCY}, {opts.duration_s} s")
            point = measure_proxy(wrk_path, proxy, opts.duration_s, number)
            if sum(point.errors.values()):
                problems.append(f"{proxy.variant.name} round {number}: wrk errors {point.errors}")
            points.append(point)
    return points


# --------------------------------------------------------------------------------------------------
# Summaries


@dataclass
class Summary:
    variant: str
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_request: float
    cpu_cores: float
    errors: int


def summarize(points: Sequence[Point]) -> dict[str, Summary]:
    """Median of each figure over the rounds, per variant."""
    out: dict[str, Summary] = {}
    for variant in VARIANTS:
        same = [p for p in points if p.variant == variant.name]
        if not same:
            continue
        out[variant.name] = Summary(
            variant=variant.name,
            rps=statistics.median(p.rps for p in same),
            p50_ms=statistics.median(p.p50_ms for p in same),
            p99_ms=statistics.median(p.p99_ms for p in same),
            cpu_ms_per_request=statistics.median(p.cpu_ms_per_request or 0.0 for p in same),
            cpu_cores=statistics.median(p.cpu_cores for p in same),
            errors=sum(sum(p.errors.values()) for p in same),
        )
    return out


METRICS: tuple[tuple[str, str, int], ...] = (
    ("req/s", "rps", 0),
    ("p50 ms", "p50_ms", 2),
    ("p99 ms", "p99_ms", 2),
    ("CPU ms/req", "cpu_ms_per_request", 3),
)


@dataclass
class Comparison:
    title: str
    chosen: str
    alternative: str
    rows: list[dict[str, Any]] = field(default_factory=list)


def per_round_ratios(points: Sequence[Point], a: str, b: str, attr: str) -> list[float]:
    ratios = []
    for number in sorted({p.round for p in points}):
        pa = next((p for p in points if p.variant == a and p.round == number), None)
        pb = next((p for p in points if p.variant == b and p.round == number), None)
        va, vb = (getattr(pa, attr), getattr(pb, attr)) if pa and pb else (None, None)
        if va is not None and vb:
            ratios.append(va / vb)
    return ratios


def compare(title: str, chosen: str, alternative: str, points: Sequence[Point]) -> Comparison:
    summaries = summarize(points)
    comparison = Comparison(title, chosen, alternative)
    a, b = summaries.get(chosen), summaries.get(alternative)
    if a is None or b is None:
        return comparison
    for label, attr, digits in METRICS:
        va, vb = getattr(a, attr), getattr(b, attr)
        comparison.rows.append(
            {
                "metric": label,
                "digits": digits,
                "chosen": va,
                "alternative": vb,
                "ratio": va / vb if vb else None,
                "round_ratios": per_round_ratios(points, chosen, alternative, attr),
            }
        )
    return comparison


def comparisons(points: Sequence[Point]) -> list[Comparison]:
    return [
        compare("HTTP client: aiohttp vs httpx", "aiohttp", "httpx", points),
        compare("Server: uvloop+httptools vs asyncio+h11", "aiohttp", "aiohttp-h11", points),
        compare(
            "Framework (context): raw ASGI vs Starlette with one Route",
            "aiohttp",
            "aiohttp-starlette",
            points,
        ),
    ]


# --------------------------------------------------------------------------------------------------
# Report


@dataclass
class Report:
    meta: dict[str, Any]
    json: list[JsonResult] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def fmt(value: float | None, digits: int = 2) -> str:
    return bench.fmt(value, digits)


def render_json(results: Sequence[JsonResult]) -> list[str]:
    if not results:
        return []
    rows = [
        [r.payload, str(r.size_bytes), r.op, fmt(r.json_us, 2), fmt(r.orjson_us, 2), f"{r.ratio:.1f}×"]
        for r in results
    ]
    header = ["payload", "bytes", "op", "json µs/op", "orjson µs/op", "json ÷ orjson"]
    note = (
        "timeit, best of the repeats; `json.dumps` compact with `ensure_ascii=False` and `.encode()` "
        "(bytes, as Starlette's JSONResponse), `json.loads` of bytes; orjson gives bytes directly."
    )
    return ["## 1. JSON: orjson vs json", "", note, "", *bench.md_table(header, rows), ""]


def render_proxies(report: Report) -> list[str]:
    summaries = summarize(report.points)
    if not summaries:
        return []
    by_name = {v.name: v for v in VARIANTS}
    rows = [
        [
            s.variant,
            by_name[s.variant].label,
            fmt(s.rps, 0),
            fmt(s.p50_ms, 2),
            fmt(s.p99_ms, 2),
            fmt(s.cpu_ms_per_request, 3),
            fmt(s.cpu_cores, 2),
            str(s.errors),
        ]
        for s in summaries.values()
    ]
    header = [
        "variant",
        "client · app · server",
        "req/s",
        "p50 ms",
        "p99 ms",
        "CPU ms/req",
        "CPU cores",
        "errors",
    ]
    rounds = report.meta["rounds"]
    duration = report.meta["duration_s"]
    title = f"## Pass-through proxies, wrk c{CONCURRENCY}, {duration} s × {rounds} rounds (medians)"
    note = (
        "CPU ms/req: utime+stime of the proxy process over the phase ÷ requests; CPU cores: the same ÷ the "
        "phase's wall time (1.0 = one core fully busy)."
    )
    return [title, "", note, "", *bench.md_table(header, rows), ""]


def render_comparison(c: Comparison) -> list[str]:
    if not c.rows:
        return [f"## {c.title}", "", "not measured", ""]
    rows = []
    for r in c.rows:
        rounds = r["round_ratios"]
        spread = f"{min(rounds):.2f}–{max(rounds):.2f}" if len(rounds) > 1 else "n/a"
        rows.append(
            [
                r["metric"],
                fmt(r["chosen"], r["digits"]),
                fmt(r["alternative"], r["digits"]),
                fmt(r["ratio"], 2),
                spread,
            ]
        )
    header = ["metric", c.chosen, c.alternative, f"{c.chosen} ÷ {c.alternative}", "per-round ratios"]
    lines = [f"## {c.title}", "", *bench.md_table(header, rows)]
    cpu = next(r for r in c.rows if r["metric"] == "CPU ms/req")
    extra_us = (cpu["alternative"] - cpu["chosen"]) * 1000
    lines += ["", f"{c.alternative} costs {extra_us:+.0f} µs of CPU per request against {c.chosen}.", ""]
    return lines


def render_rounds(points: Sequence[Point]) -> list[str]:
    rows = [
        [
            str(p.round),
            p.variant,
            fmt(p.rps, 0),
            fmt(p.p50_ms, 2),
            fmt(p.p99_ms, 2),
            fmt(p.cpu_ms_per_request, 3),
            fmt(p.cpu_cores, 2),
            str(sum(p.errors.values())),
        ]
        for p in points
    ]
    header = ["round", "variant", "req/s", "p50 ms", "p99 ms", "CPU ms/req", "CPU cores", "errors"]
    return ["## Every phase, in the order run", "", *bench.md_table(header, rows), ""]


def render(report: Report) -> str:
    m = report.meta
    lines = [
        "# omnirelay stack choices",
        "",
        f"{m['started']} · {m['cpus']} CPUs ({m['cpu_model']}) · load {m['loadavg_start']} → "
        f"{m['loadavg_end']} · {m['python']} · {m['wrk']} · {m['versions']}",
        "",
    ]
    lines += render_json(report.json)
    lines += render_proxies(report)
    for comparison in report.comparisons:
        lines += render_comparison(comparison)
    if report.points:
        lines += render_rounds(report.points)
    if report.problems:
        lines += ["## Problems", "", *(f"- {p}" for p in report.problems), ""]
    return "\n".join(lines)


def write_outputs(report: Report, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    markdown = render(report)
    (out / "choices.md").write_text(markdown + "\n")
    data = asdict(report)
    data["json"] = [{**asdict(r), "ratio": r.ratio} for r in report.json]
    (out / "choices.json").write_text(json.dumps(data, indent=2) + "\n")
    print(markdown)


# --------------------------------------------------------------------------------------------------
# Main


def log(message: str) -> None:
    print(f"[choices {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def versions() -> str:
    names = ("orjson", "aiohttp", "httpx", "uvicorn", "uvloop", "httptools", "h11", "starlette")
    found = []
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found.append(f"{name} {metadata.version(name)}")
    return ", ".join(found)


def collect_meta(opts: Options, wrk_path: str) -> dict[str, Any]:
    return {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "cpus": os.cpu_count(),
        "cpu_model": bench.cpu_model(),
        "loadavg_start": bench.loadavg(),
        "loadavg_end": None,
        "python": f"Python {platform.python_version()}",
        "wrk": bench.tool_version([wrk_path, "-v"]).split(" Copyright")[0],
        "versions": versions(),
        "duration_s": opts.duration_s,
        "rounds": opts.rounds,
        "concurrency": CONCURRENCY,
    }


def find_wrk() -> str:
    path = bench.find_tool("wrk")
    if path is None:
        bench.apt_install(["wrk"])
        path = bench.find_tool("wrk")
    if path is None:
        raise bench.BenchError("wrk not found")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_proxy:
        return serve_proxy(args)
    opts = options_from(args)
    bench.install_signal_handlers()
    try:
        wrk_path = find_wrk()
    except (bench.BenchError, subprocess.CalledProcessError) as exc:
        log(f"error: {exc}")
        return 2
    (opts.out / "logs").mkdir(parents=True, exist_ok=True)
    children = bench.Children(opts.out / "logs", None)
    report = Report(meta=collect_meta(opts, wrk_path))
    try:
        log("JSON: orjson vs json")
        report.json = measure_json(opts)  # first, while no server is running
        log("starting the fake upstream and the four proxies")
        report.points = run_proxies(opts, wrk_path, children, report.problems)
    except (bench.BenchError, subprocess.TimeoutExpired) as exc:
        log(f"error: {exc}")
        report.problems.append(str(exc))
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        children.stop_all()
    report.meta["loadavg_end"] = bench.loadavg()
    report.comparisons = comparisons(report.points)
    write_outputs(report, opts.out)
    return 1 if report.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
