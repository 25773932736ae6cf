"""Benchmark harness: the fake upstream directly, one nginx hop, and omnirelay, measured in one run.

    .venv/bin/python bench/run.py [--quick] [--out bench/out]

Non-streaming chat completions are driven by wrk (bench/post.lua) at concurrency 1, 16 and 64; streaming
time-to-first-chunk by a sequential aiohttp client. omnirelay's CPU time per request comes from
/proc/<pid>/stat (its process tree), its memory from /proc/<pid>/status. Results: a Markdown table on
stdout and in OUT/results.md, the raw figures in OUT/results.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import math
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
HOST = "127.0.0.1"
CHAT_PATH = "/v1/chat/completions"
MODEL = "bench-model"
SLOW_MODEL = "bench-model-slow"
CONCURRENCIES = (1, 16, 64)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1
SEARCH_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")

# Goals from bench/README.md.
GOAL_CPU_MS_C64 = 0.5
GOAL_ADDED_P50_MS_C1 = 1.0
GOAL_RSS_MB = 150.0


class BenchError(RuntimeError):
    """A failure that stops one part of the benchmark; the message is shown to the user."""


# --------------------------------------------------------------------------------------------------
# Options


@dataclass(frozen=True)
class Options:
    out: Path
    quick: bool
    duration_s: int
    warmup_s: int
    stream_requests: int
    spread_requests: int
    rounds: int
    chunk_delay_ms: float
    settle_s: float
    pin: bool
    omnirelay: bool
    startup_timeout_s: float
    database_url: str | None
    omnirelay_cmd: tuple[str, ...] | None


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 s per load point, 50 streaming requests")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out", help="output folder (bench/out)")
    parser.add_argument("--duration", type=int, help="seconds per load point (10, --quick: 3)")
    parser.add_argument("--warmup", type=int, help="warm-up seconds per target (2, --quick: 1)")
    parser.add_argument(
        "--stream-requests", type=int, help="sequential streaming requests (200, --quick: 50)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat the load matrix, report medians")
    parser.add_argument(
        "--chunk-delay-ms", type=float, default=20.0, help="chunk spacing for the spread check"
    )
    parser.add_argument("--pin", action="store_true", help="load generator on CPU 0, servers on the others")
    parser.add_argument("--no-omnirelay", action="store_true", help="measure only the upstream and nginx")
    parser.add_argument("--startup-timeout", type=float, default=60.0, help="seconds to wait for omnirelay")
    parser.add_argument("--database-url", help="pass --database-url to omnirelay (default: SQLite)")
    parser.add_argument(
        "--omnirelay-cmd", help="command that starts omnirelay, before 'serve' (default: .venv/bin/omnirelay)"
    )
    args = parser.parse_args(argv)
    return Options(
        out=args.out.resolve(),
        quick=args.quick,
        duration_s=args.duration or (3 if args.quick else 10),
        warmup_s=args.warmup if args.warmup is not None else (1 if args.quick else 2),
        stream_requests=args.stream_requests or (50 if args.quick else 200),
        spread_requests=5 if args.quick else 10,
        rounds=max(1, args.rounds),
        chunk_delay_ms=args.chunk_delay_ms,
        settle_s=0.7,
        pin=args.pin,
        omnirelay=not args.no_omnirelay,
        startup_timeout_s=args.startup_timeout,
        database_url=args.database_url,
        omnirelay_cmd=tuple(shlex.split(args.omnirelay_cmd)) if args.omnirelay_cmd else None,
    )


# --------------------------------------------------------------------------------------------------
# Tools (nginx, wrk)


def find_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in SEARCH_PATH:
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def apt_install(packages: Sequence[str]) -> None:
    if os.geteuid() != 0 or find_tool("apt-get") is None:
        raise BenchError(f"missing {', '.join(packages)}: install them (apt-get install -y nginx wrk)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    print(f"installing {' '.join(packages)} with apt-get ...", file=sys.stderr, flush=True)
    if subprocess.run(install, env=env, stdout=subprocess.DEVNULL, check=False).returncode == 0:
        return
    subprocess.run(["apt-get", "update"], env=env, stdout=subprocess.DEVNULL, check=False)
    subprocess.run(install, env=env, stdout=subprocess.DEVNULL, check=True)


def ensure_tools() -> dict[str, str]:
    missing = [name for name in ("nginx", "wrk") if find_tool(name) is None]
    if missing:
        apt_install(missing)
    tools = {name: find_tool(name) for name in ("nginx", "wrk")}
    if None in tools.values():
        raise BenchError(f"still missing after apt-get: {tools}")
    return {name: path for name, path in tools.items() if path is not None}


def tool_version(cmd: Sequence[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except OSError as exc:
        return f"unknown ({exc})"
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0].strip() if text else "unknown"


# --------------------------------------------------------------------------------------------------
# Child processes


def _child_setup(cpus: frozenset[int] | None) -> None:
    """Runs in the child before exec: die with the harness, optionally pin."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    if cpus:
        os.sched_setaffinity(0, cpus)


class Children:
    """Server processes started by the harness; each leads its own process group."""

    def __init__(self, log_dir: Path, cpus: frozenset[int] | None) -> None:
        self.log_dir = log_dir
        self.cpus = cpus
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def spawn(
        self, name: str, cmd: Sequence[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log_path = self.log_path(name)
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                list(cmd),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO_DIR,
                env=env,
                start_new_session=True,
                preexec_fn=lambda: _child_setup(self.cpus),
            )
        self.procs.append((name, proc))
        return proc

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def log_tail(self, name: str, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path(name).read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop_all(self) -> None:
        while self.procs:
            _name, proc = self.procs.pop()
            stop_process_group(proc)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def stop_process_group(proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(timeout=grace_s)
    # Whatever the leader left behind in its group (workers) goes too.
    _signal_group(proc, signal.SIGKILL)


def _raise_exit(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def install_signal_handlers() -> None:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_exit)


# --------------------------------------------------------------------------------------------------
# Readiness, ports, small HTTP helpers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def tcp_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen[bytes], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with status {proc.returncode} while starting")
        if ready():
            return
        time.sleep(0.1)
    raise BenchError(f"{what} not ready after {timeout_s:.0f} s")


def http_json(
    method: str, url: str, key: str | None = None, body: object = None, timeout_s: float = 10.0
) -> tuple[int, Any]:
    """One request with urllib; returns (status, decoded JSON or text). Connection errors raise."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def health_ready(base_url: str, port: int) -> bool:
    """GET /health answers 200; a server without the route (404/405) counts once its port answers."""
    try:
        status, _ = http_json("GET", f"{base_url}/health", timeout_s=2.0)
    except (OSError, urllib.error.URLError):
        return False
    return status == 200 or (status in (404, 405) and tcp_open(port))


# --------------------------------------------------------------------------------------------------
# /proc accounting


def read_stat(pid: int) -> tuple[int, int]:
    """(ppid, utime+stime+cutime+cstime in clock ticks) from /proc/<pid>/stat."""
    return parse_stat(Path(f"/proc/{pid}/stat").read_text())


def parse_stat(raw: str) -> tuple[int, int]:
    """The comm field (in parentheses) may hold spaces and parentheses: split after the last ')'."""
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
    return int(fields[1]), sum(int(value) for value in fields[11:15])


def process_tree(root: int) -> list[int]:
    """``root`` and its live descendants."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                parents[int(entry)] = read_stat(int(entry))[0]
    tree, frontier = [root], [root]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree.extend(children)
        frontier = children
    return tree


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds (user+system) of ``root`` and its descendants, reaped children included."""
    ticks = 0
    for pid in process_tree(root):
        with contextlib.suppress(OSError, ValueError, IndexError):
            ticks += read_stat(pid)[1]
    return ticks / CLK_TCK


def read_status_kb(pid: int, keys: Sequence[str] = ("VmRSS", "VmHWM")) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in keys:
            values[name] = int(rest.split()[0])
    return values


@dataclass
class Memory:
    rss_mb: float
    hwm_mb: float
    tree_rss_mb: float
    processes: int


def tree_memory(root: int) -> Memory:
    root_kb = read_status_kb(root)
    tree = process_tree(root)
    tree_kb = 0
    for pid in tree:
        with contextlib.suppress(OSError):
            tree_kb += read_status_kb(pid).get("VmRSS", 0)
    return Memory(
        rss_mb=root_kb.get("VmRSS", 0) / 1024,
        hwm_mb=root_kb.get("VmHWM", 0) / 1024,
        tree_rss_mb=tree_kb / 1024,
        processes=len(tree),
    )


# --------------------------------------------------------------------------------------------------
# wrk


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float | None
    p99_ms: float
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_LATENCY_LINE = re.compile(r"^\s*(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_REQUESTS_LINE = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", re.MULTILINE)
_RPS_LINE = re.compile(r"^Requests/sec:\s*([\d.]+)", re.MULTILINE)
_NON2XX_LINE = re.compile(r"^\s*Non-2xx or 3xx responses:\s*(\d+)", re.MULTILINE)
_SOCKET_LINE = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", re.MULTILINE
)


def parse_wrk_json(text: str) -> WrkResult | None:
    """The ``BENCH_JSON`` line that bench/post.lua prints in done()."""
    for line in text.splitlines():
        if line.startswith("BENCH_JSON "):
            data = json.loads(line.removeprefix("BENCH_JSON "))
            duration_s = data["duration_us"] / 1e6
            return WrkResult(
                requests=data["requests"],
                duration_s=duration_s,
                rps=data["requests"] / duration_s if duration_s else 0.0,
                p50_ms=data["p50_us"] / 1000,
                p90_ms=data["p90_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
                errors={k: int(v) for k, v in data["errors"].items()},
            )
    return None


def parse_wrk_text(text: str) -> WrkResult:
    """wrk's human-readable output with --latency."""
    latencies = {m[0]: float(m[1]) * _UNIT_MS[m[2]] for m in _LATENCY_LINE.findall(text)}
    requests = _REQUESTS_LINE.search(text)
    rps = _RPS_LINE.search(text)
    if requests is None or rps is None or "50" not in latencies or "99" not in latencies:
        raise BenchError(f"cannot parse wrk output:\n{text}")
    errors = {"status": 0, "connect": 0, "read": 0, "write": 0, "timeout": 0}
    if non2xx := _NON2XX_LINE.search(text):
        errors["status"] = int(non2xx[1])
    if sockets := _SOCKET_LINE.search(text):
        errors.update(zip(("connect", "read", "write", "timeout"), map(int, sockets.groups()), strict=True))
    return WrkResult(
        requests=int(requests[1]),
        duration_s=float(requests[2]) * _UNIT_MS[requests[3]] / 1000,
        rps=float(rps[1]),
        p50_ms=latencies["50"],
        p90_ms=latencies.get("90"),
        p99_ms=latencies["99"],
        errors=errors,
    )


def parse_wrk(text: str) -> WrkResult:
    return parse_wrk_json(text) or parse_wrk_text(text)


def wrk_command(wrk: str, url: str, concurrency: int, duration_s: int) -> list[str]:
    threads = 1 if concurrency == 1 else 2
    return [
        wrk,
        f"-t{threads}",
        f"-c{concurrency}",
        f"-d{duration_s}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(BENCH_DIR / "post.lua"),
        url,
    ]


def run_wrk(wrk: str, url: str, concurrency: int, duration_s: int, api_key: str) -> WrkResult:
    env = {**os.environ, "BENCH_API_KEY": api_key, "BENCH_MODEL": MODEL}
    cmd = wrk_command(wrk, url, concurrency, duration_s)
    done = subprocess.run(
        cmd,
        env=env,
        capture_output=True,
        text=True,
        timeout=duration_s + 60,
        check=False,
        preexec_fn=lambda: _child_setup(None),
    )
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return parse_wrk(done.stdout)


# --------------------------------------------------------------------------------------------------
# Targets


@dataclass
class Target:
    name: str
    base_url: str  # in front of the fast fake upstream
    slow_base_url: str  # in front of the fake upstream with --chunk-delay-ms
    slow_model: str
    pid: int  # root of the process tree whose CPU time is charged to this target
    api_key: str = "sk-bench-unused"

    @property
    def chat_url(self) -> str:
        return self.base_url + CHAT_PATH


@dataclass
class Upstreams:
    fast_port: int
    slow_port: int


def start_fake_upstream(children: Children, name: str, port: int, delay_ms: float) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, str(BENCH_DIR / "fake_upstream.py"), "--port", str(port)]
    if delay_ms > 0:
        cmd += ["--chunk-delay-ms", str(delay_ms)]
    proc = children.spawn(name, cmd)
    wait_until(lambda: tcp_open(port), proc, name, 15)
    return proc


def start_upstreams(children: Children, opts: Options) -> tuple[Target, Upstreams]:
    ports = Upstreams(free_port(), free_port())
    fast = start_fake_upstream(children, "upstream", ports.fast_port, 0)
    start_fake_upstream(children, "upstream-slow", ports.slow_port, opts.chunk_delay_ms)
    target = Target(
        name="upstream",
        base_url=f"http://{HOST}:{ports.fast_port}",
        slow_base_url=f"http://{HOST}:{ports.slow_port}",
        slow_model=MODEL,
        pid=fast.pid,
    )
    return target, ports


def render_template(text: str, values: dict[str, object]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", str(value))
    if leftover := re.findall(r"\{\{\w+\}\}", text):
        raise BenchError(f"unrendered placeholders in nginx.conf.tmpl: {leftover}")
    return text


def start_nginx(children: Children, nginx: str, tmp: Path, upstreams: Upstreams) -> Target:
    prefix = tmp / "nginx"
    prefix.mkdir()
    port, slow_port = free_port(), free_port()
    conf = render_template(
        (BENCH_DIR / "nginx.conf.tmpl").read_text(),
        {
            "prefix": prefix,
            "port": port,
            "slow_port": slow_port,
            "upstream_port": upstreams.fast_port,
            "slow_upstream_port": upstreams.slow_port,
        },
    )
    conf_path = prefix / "nginx.conf"
    conf_path.write_text(conf)
    cmd = [
        nginx,
        "-p",
        str(prefix),
        "-e",
        str(prefix / "error.log"),
        "-c",
        str(conf_path),
        "-g",
        "daemon off;",
    ]
    proc = children.spawn("nginx", cmd)
    try:
        wait_until(lambda: tcp_open(port) and tcp_open(slow_port), proc, "nginx", 15)
    except BenchError as exc:
        error_log = (
            (prefix / "error.log").read_text(errors="replace") if (prefix / "error.log").exists() else ""
        )
        raise BenchError(f"{exc}\n{children.log_tail('nginx')}\n{error_log}") from exc
    return Target(
        name="nginx",
        base_url=f"http://{HOST}:{port}",
        slow_base_url=f"http://{HOST}:{slow_port}",
        slow_model=MODEL,
        pid=proc.pid,
    )


def omnirelay_config(upstreams: Upstreams) -> str:
    channel = """  - name: {name}
    provider: openai
    base_url: http://127.0.0.1:{port}/v1
    api_key: sk-fake-upstream
    models: [{model}]
    priority: 0
    weight: 1
    timeout_s: 30
"""
    model = """  - id: {model}
    price: {{input: "0.15", output: "0.60"}}
"""
    pairs = (("fake", upstreams.fast_port, MODEL), ("fake-slow", upstreams.slow_port, SLOW_MODEL))
    return (
        "channels:\n"
        + "".join(channel.format(name=n, port=p, model=m) for n, p, m in pairs)
        + "models:\n"
        + "".join(model.format(model=m) for _, _, m in pairs)
    )


def omnirelay_command(opts: Options) -> tuple[list[str], dict[str, str]]:
    """The command before ``serve`` and extra environment: the console script, else ``python -m``."""
    if opts.omnirelay_cmd:
        return list(opts.omnirelay_cmd), {}
    script = Path(sys.executable).parent / "omnirelay"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)], {}
    # Not installed: run it from the source tree.
    pythonpath = os.pathsep.join(filter(None, [str(REPO_DIR / "src"), os.environ.get("PYTHONPATH")]))
    return [sys.executable, "-m", "omnirelay"], {"PYTHONPATH": pythonpath}


def start_omnirelay(
    children: Children, opts: Options, tmp: Path, upstreams: Upstreams
) -> tuple[Target, str, str]:
    """Start omnirelay, wait for it, create an account and an API key.

    Returns (target, account id, operator key).
    """
    folder = tmp / "omnirelay"
    (folder / "data").mkdir(parents=True)
    config = folder / "config.yaml"
    config.write_text(omnirelay_config(upstreams))
    port = free_port()
    admin_key = "sk-admin-" + secrets.token_hex(16)
    prefix, extra_env = omnirelay_command(opts)
    cmd = [*prefix, "serve", "--config", str(config), "--host", HOST, "--port", str(port)]
    cmd += ["--data-dir", str(folder / "data")]
    if opts.database_url:
        cmd += ["--database-url", opts.database_url]
    env = {**os.environ, **extra_env, "OMNIRELAY_ADMIN_KEY": admin_key, "WEB_CONCURRENCY": "1"}
    env["PYTHONUNBUFFERED"] = "1"
    proc = children.spawn("omnirelay", cmd, env=env)
    base_url = f"http://{HOST}:{port}"
    try:
        wait_until(lambda: health_ready(base_url, port), proc, "omnirelay", opts.startup_timeout_s)
    except BenchError as exc:
        raise BenchError(f"{exc}; log tail:\n{children.log_tail('omnirelay')}") from exc
    account_id, api_key = provision_key(base_url, admin_key)
    target = Target("omnirelay", base_url, base_url, SLOW_MODEL, proc.pid, api_key)
    smoke_test(target)
    return target, account_id, admin_key


def _unwrap(payload: Any, key: str) -> Any:
    if isinstance(payload, dict):
        if key in payload:
            return payload[key]
        data = payload.get("data")
        if isinstance(data, dict) and key in data:
            return data[key]
    return None


def provision_key(base_url: str, admin_key: str) -> tuple[str, str]:
    status, account = http_json(
        "POST", f"{base_url}/admin/accounts", admin_key, {"name": "bench", "balance": "1000000"}
    )
    account_id = _unwrap(account, "id")
    if status >= 300 or account_id is None:
        raise BenchError(f"POST /admin/accounts -> {status}: {account}")
    body = {
        "api_name": "bench",
        "allow_manage_key": False,
        "allow_save_logs": True,
        "allow_custom_model": False,
        "limit_cost": 0,
        "limit_daily_cost": 0,
        "expired_on": 0,
    }
    status, key = http_json("POST", f"{base_url}/admin/accounts/{account_id}/api_keys", admin_key, body)
    api_key = _unwrap(key, "api_key")
    if status >= 300 or not isinstance(api_key, str):
        raise BenchError(f"POST /admin/accounts/{account_id}/api_keys -> {status}: {key}")
    return str(account_id), api_key


def chat_body(model: str, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hello"}]}
    if stream:
        body["stream"] = True
    return body


def smoke_test(target: Target) -> None:
    status, reply = http_json("POST", target.chat_url, target.api_key, chat_body(MODEL, stream=False))
    if status != 200 or not isinstance(reply, dict) or not reply.get("choices"):
        raise BenchError(f"{target.name}: POST {CHAT_PATH} -> {status}: {str(reply)[:500]}")


def account_balance(target: Target, admin_key: str | None, account_id: str | None) -> str | None:
    """Best effort: the account's balance after the run (shows that billing happened)."""
    if not admin_key or not account_id:
        return None
    with contextlib.suppress(OSError, urllib.error.URLError):
        status, account = http_json("GET", f"{target.base_url}/admin/accounts/{account_id}", admin_key)
        balance = _unwrap(account, "balance")
        if status == 200 and balance is not None:
            return str(balance)
    return None


# --------------------------------------------------------------------------------------------------
# Non-streaming load


@dataclass
class LoadPoint:
    target: str
    concurrency: int
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float | None
    p99_ms: float
    errors: dict[str, int]
    cpu_s: float
    cpu_ms_per_request: float | None
    rounds: int = 1


def measure_load(wrk: str, target: Target, concurrency: int, opts: Options) -> LoadPoint:
    cpu_before = tree_cpu_seconds(target.pid)
    result = run_wrk(wrk, target.chat_url, concurrency, opts.duration_s, target.api_key)
    time.sleep(opts.settle_s)  # deferred work (usage-log flushes) belongs to this phase too
    cpu = tree_cpu_seconds(target.pid) - cpu_before
    return LoadPoint(
        target=target.name,
        concurrency=concurrency,
        requests=result.requests,
        duration_s=result.duration_s,
        rps=result.rps,
        p50_ms=result.p50_ms,
        p90_ms=result.p90_ms,
        p99_ms=result.p99_ms,
        errors=result.errors,
        cpu_s=cpu,
        cpu_ms_per_request=cpu * 1000 / result.requests if result.requests else None,
    )


def warm_up(wrk: str, targets: Sequence[Target], opts: Options) -> None:
    for target in targets:
        log(f"warm-up {target.name} ({opts.warmup_s} s)")
        run_wrk(wrk, target.chat_url, 16, opts.warmup_s, target.api_key)


def run_load(
    wrk: str, targets: Sequence[Target], opts: Options, problems: list[str]
) -> tuple[list[LoadPoint], list[LoadPoint]]:
    """All rounds of the load matrix; returns (per-round points, their medians)."""
    raw: list[LoadPoint] = []
    for number in range(1, opts.rounds + 1):
        label = f" round {number}/{opts.rounds}" if opts.rounds > 1 else ""
        raw += run_load_round(wrk, targets, opts, problems, label)
    return raw, median_points(raw)


def median_points(points: Sequence[LoadPoint]) -> list[LoadPoint]:
    """One point per (target, concurrency): the median of each figure over the rounds."""
    keys = list(dict.fromkeys((p.target, p.concurrency) for p in points))
    merged = []
    for target, concurrency in keys:
        same = [p for p in points if (p.target, p.concurrency) == (target, concurrency)]
        merged.append(same[0] if len(same) == 1 else median_point(same))
    return merged


def median_point(same: Sequence[LoadPoint]) -> LoadPoint:
    p90s = [p.p90_ms for p in same if p.p90_ms is not None]
    cpus = [p.cpu_ms_per_request for p in same if p.cpu_ms_per_request is not None]
    return LoadPoint(
        target=same[0].target,
        concurrency=same[0].concurrency,
        requests=sum(p.requests for p in same),
        duration_s=sum(p.duration_s for p in same),
        rps=statistics.median(p.rps for p in same),
        p50_ms=statistics.median(p.p50_ms for p in same),
        p90_ms=statistics.median(p90s) if p90s else None,
        p99_ms=statistics.median(p.p99_ms for p in same),
        errors={k: sum(p.errors.get(k, 0) for p in same) for k in same[0].errors},
        cpu_s=sum(p.cpu_s for p in same),
        cpu_ms_per_request=statistics.median(cpus) if cpus else None,
        rounds=len(same),
    )


def run_load_round(
    wrk: str, targets: Sequence[Target], opts: Options, problems: list[str], label: str
) -> list[LoadPoint]:
    """Each concurrency level measures all targets back to back, so that they share the same noise."""
    points: list[LoadPoint] = []
    for concurrency in CONCURRENCIES:
        for target in targets:
            log(f"load {target.name} c={concurrency} ({opts.duration_s} s){label}")
            try:
                point = measure_load(wrk, target, concurrency, opts)
            except (BenchError, subprocess.TimeoutExpired) as exc:
                problems.append(f"{target.name} c={concurrency}: {exc}")
                continue
            if point.errors.get("status") or sum(point.errors.values()):
                problems.append(f"{target.name} c={concurrency}: wrk errors {point.errors}")
            points.append(point)
    return points


# --------------------------------------------------------------------------------------------------
# Streaming


@dataclass
class StreamSample:
    status: int
    ttfc_s: float | None
    total_s: float
    arrivals_s: list[float]
    done: bool


async def stream_once(session: aiohttp.ClientSession, url: str, key: str, model: str) -> StreamSample:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    body = json.dumps(chat_body(model, stream=True)).encode()
    arrivals: list[float] = []
    done = False
    start = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as response:
        if response.status != 200:
            await response.read()
            return StreamSample(response.status, None, time.perf_counter() - start, [], False)
        while line := await response.content.readline():
            if line.startswith(b"data:"):
                arrivals.append(time.perf_counter() - start)
                done = done or line.strip() == b"data: [DONE]"
    total = time.perf_counter() - start
    return StreamSample(200, arrivals[0] if arrivals else None, total, arrivals, done)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class TtfcResult:
    target: str
    requests: int
    ok: int
    ttfc_p50_ms: float | None
    ttfc_p99_ms: float | None
    total_p50_ms: float | None
    cpu_ms_per_request: float | None
    cpu_resolution_ms: float | None  # one clock tick spread over the requests


def summarize_ttfc(target: Target, samples: list[StreamSample], cpu_s: float | None) -> TtfcResult:
    ttfcs = [s.ttfc_s * 1000 for s in samples if s.ttfc_s is not None and s.done]
    totals = [s.total_s * 1000 for s in samples if s.ttfc_s is not None and s.done]
    return TtfcResult(
        target=target.name,
        requests=len(samples),
        ok=len(ttfcs),
        ttfc_p50_ms=percentile(ttfcs, 50) if ttfcs else None,
        ttfc_p99_ms=percentile(ttfcs, 99) if ttfcs else None,
        total_p50_ms=percentile(totals, 50) if totals else None,
        cpu_ms_per_request=cpu_s * 1000 / len(samples) if cpu_s is not None and samples else None,
        cpu_resolution_ms=1000 / CLK_TCK / len(samples) if samples else None,
    )


def new_session() -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=1, force_close=False)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60))


async def measure_ttfc(targets: Sequence[Target], opts: Options) -> list[TtfcResult]:
    """Sequential streaming requests, interleaved across targets so that they share the same noise."""
    samples: dict[str, list[StreamSample]] = {t.name: [] for t in targets}
    # The fake upstream serves every target, so its process tree is not charged here.
    own_tree = [t for t in targets if t.name != "upstream"]
    async with contextlib.AsyncExitStack() as stack:
        sessions = {t.name: await stack.enter_async_context(new_session()) for t in targets}
        for target in targets:  # open the keep-alive connections outside the measurement
            await stream_once(sessions[target.name], target.chat_url, target.api_key, MODEL)
        cpu_before = {t.name: tree_cpu_seconds(t.pid) for t in own_tree}
        for _ in range(opts.stream_requests):
            for target in targets:
                sample = await stream_once(sessions[target.name], target.chat_url, target.api_key, MODEL)
                samples[target.name].append(sample)
        await asyncio.sleep(opts.settle_s)
        cpu = {t.name: tree_cpu_seconds(t.pid) - cpu_before[t.name] for t in own_tree}
    return [summarize_ttfc(t, samples[t.name], cpu.get(t.name)) for t in targets]


@dataclass
class SpreadResult:
    target: str
    requests: int
    events: int
    first_ms: float | None
    total_ms: float | None
    median_gap_ms: float | None
    streamed: bool


def summarize_spread(target: Target, samples: list[StreamSample], delay_ms: float) -> SpreadResult:
    good = [s for s in samples if s.ttfc_s is not None and s.done]
    if not good:
        return SpreadResult(target.name, len(samples), 0, None, None, None, False)
    first = statistics.median(s.arrivals_s[0] * 1000 for s in good)
    total = statistics.median(s.total_s * 1000 for s in good)
    gaps = [(b - a) * 1000 for s in good for a, b in zip(s.arrivals_s, s.arrivals_s[1:], strict=False)]
    median_gap = statistics.median(gaps) if gaps else 0.0
    # Streamed: the first event arrives long before the end, and events come spaced, not in one burst.
    streamed = first < 0.25 * total and median_gap >= 0.5 * delay_ms
    events = round(statistics.median(len(s.arrivals_s) for s in good))
    return SpreadResult(target.name, len(samples), events, first, total, median_gap, streamed)


async def measure_spread(targets: Sequence[Target], opts: Options) -> list[SpreadResult]:
    results = []
    for target in targets:
        url = target.slow_base_url + CHAT_PATH
        async with new_session() as session:
            await stream_once(session, url, target.api_key, target.slow_model)
            samples = [
                await stream_once(session, url, target.api_key, target.slow_model)
                for _ in range(opts.spread_requests)
            ]
        results.append(summarize_spread(target, samples, opts.chunk_delay_ms))
    return results


async def run_streaming(
    targets: Sequence[Target], opts: Options, problems: list[str]
) -> tuple[list[TtfcResult], list[SpreadResult]]:
    log(f"streaming TTFC, {opts.stream_requests} sequential requests per target")
    ttfc: list[TtfcResult] = []
    spread: list[SpreadResult] = []
    try:
        ttfc = await measure_ttfc(targets, opts)
    except (aiohttp.ClientError, TimeoutError) as exc:
        problems.append(f"streaming TTFC: {exc!r}")
    log(f"chunk forwarding with --chunk-delay-ms {opts.chunk_delay_ms:g}")
    try:
        spread = await measure_spread(targets, opts)
    except (aiohttp.ClientError, TimeoutError) as exc:
        problems.append(f"chunk forwarding: {exc!r}")
    return ttfc, spread


def run_async(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


# --------------------------------------------------------------------------------------------------
# Report


@dataclass
class Report:
    meta: dict[str, Any]
    load: list[LoadPoint] = field(default_factory=list)
    load_rounds: list[LoadPoint] = field(default_factory=list)
    ttfc: list[TtfcResult] = field(default_factory=list)
    spread: list[SpreadResult] = field(default_factory=list)
    memory: dict[str, Memory] = field(default_factory=dict)
    comparison: list[dict[str, Any]] = field(default_factory=list)
    goals: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def fmt_cpu(value: float | None, resolution: float | None) -> str:
    """CPU per request, or "< resolution" when the phase used less than one clock tick."""
    if value is not None and resolution is not None and value < resolution:
        return f"< {resolution:.3f}"
    return fmt(value, 3)


def signed(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:+,.{digits}f}"


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def find_point(points: Sequence[LoadPoint], target: str, concurrency: int) -> LoadPoint | None:
    return next((p for p in points if p.target == target and p.concurrency == concurrency), None)


def find_named(items: Sequence[Any], target: str) -> Any:
    return next((item for item in items if item.target == target), None)


def diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def compare(points: Sequence[LoadPoint]) -> list[dict[str, Any]]:
    rows = []
    for concurrency in CONCURRENCIES:
        relay, nginx = find_point(points, "omnirelay", concurrency), find_point(points, "nginx", concurrency)
        if relay is None or nginx is None:
            continue
        rows.append(
            {
                "concurrency": concurrency,
                "rps_ratio": ratio(relay.rps, nginx.rps),
                "added_p50_ms": relay.p50_ms - nginx.p50_ms,
                "added_p99_ms": relay.p99_ms - nginx.p99_ms,
                "p50_ratio": ratio(relay.p50_ms, nginx.p50_ms),
                "cpu_ms_per_request": relay.cpu_ms_per_request,
                "nginx_cpu_ms_per_request": nginx.cpu_ms_per_request,
            }
        )
    return rows


def goal(name: str, measured: float | None, limit: float, unit: str) -> dict[str, Any]:
    verdict = "n/a" if measured is None else ("PASS" if measured <= limit else "FAIL")
    return {"goal": name, "measured": measured, "limit": limit, "unit": unit, "result": verdict}


def load_goals(report: Report) -> list[dict[str, Any]]:
    c64 = find_point(report.load, "omnirelay", 64)
    c1, c1_nginx = find_point(report.load, "omnirelay", 1), find_point(report.load, "nginx", 1)
    added_c1 = diff(c1.p50_ms, c1_nginx.p50_ms) if c1 and c1_nginx else None
    memory = report.memory.get("omnirelay")
    return [
        goal("CPU per request at c64", c64.cpu_ms_per_request if c64 else None, GOAL_CPU_MS_C64, "ms"),
        goal("added p50 latency vs nginx at c1", added_c1, GOAL_ADDED_P50_MS_C1, "ms"),
        goal("RSS after the run (process tree)", memory.tree_rss_mb if memory else None, GOAL_RSS_MB, "MB"),
    ]


def stream_goals(report: Report) -> list[dict[str, Any]]:
    """No added delay before the first streamed chunk.

    With spaced chunks, the first one must come through before the upstream sends the next (less than
    half the spacing later than direct); with back-to-back chunks, TTFC may exceed nginx's by no more
    than the c1 latency budget.
    """
    relay, nginx = find_named(report.ttfc, "omnirelay"), find_named(report.ttfc, "nginx")
    added_ttfc = diff(relay.ttfc_p50_ms, nginx.ttfc_p50_ms) if relay and nginx else None
    spread, direct = find_named(report.spread, "omnirelay"), find_named(report.spread, "upstream")
    first_delay = diff(spread.first_ms, direct.first_ms) if spread and direct else None
    spaced = goal(
        "first chunk delay vs direct (spaced chunks)", first_delay, 0.5 * report.meta["chunk_delay_ms"], "ms"
    )
    if spread is not None and not spread.streamed:
        spaced["result"] = "FAIL"
    return [goal("added TTFC p50 vs nginx", added_ttfc, GOAL_ADDED_P50_MS_C1, "ms"), spaced]


def evaluate_goals(report: Report) -> list[dict[str, Any]]:
    return load_goals(report) + stream_goals(report)


def render_load(report: Report) -> list[str]:
    rows = [
        [
            str(p.concurrency),
            p.target,
            fmt(p.rps, 0),
            fmt(p.p50_ms, 3),
            fmt(p.p99_ms, 3),
            fmt(p.cpu_ms_per_request, 3),
            str(sum(p.errors.values())),
        ]
        for p in report.load
    ]
    header = ["concurrency", "target", "req/s", "p50 ms", "p99 ms", "CPU ms/req", "errors"]
    return ["## Non-streaming chat completions (wrk)", "", *md_table(header, rows), ""]


def render_comparison(report: Report) -> list[str]:
    if not report.comparison:
        return []
    rows = [
        [
            str(r["concurrency"]),
            fmt(r["rps_ratio"], 3),
            signed(r["added_p50_ms"], 3),
            signed(r["added_p99_ms"], 3),
            fmt(r["p50_ratio"], 2),
            fmt(r["cpu_ms_per_request"], 3),
            fmt(r["nginx_cpu_ms_per_request"], 3),
        ]
        for r in report.comparison
    ]
    header = [
        "concurrency",
        "req/s omnirelay/nginx",
        "added p50 ms",
        "added p99 ms",
        "p50 ×nginx",
        "omnirelay CPU ms/req",
        "nginx CPU ms/req",
    ]
    return ["## omnirelay against the nginx hop (same run)", "", *md_table(header, rows), ""]


def render_ttfc(report: Report) -> list[str]:
    if not report.ttfc:
        return []
    nginx = find_named(report.ttfc, "nginx")
    rows = []
    for r in report.ttfc:
        added50 = diff(r.ttfc_p50_ms, nginx.ttfc_p50_ms) if nginx and r.target != "nginx" else None
        added99 = diff(r.ttfc_p99_ms, nginx.ttfc_p99_ms) if nginx and r.target != "nginx" else None
        rows.append(
            [
                r.target,
                f"{r.ok}/{r.requests}",
                fmt(r.ttfc_p50_ms, 3),
                fmt(r.ttfc_p99_ms, 3),
                fmt(r.total_p50_ms, 3),
                signed(added50, 3),
                signed(added99, 3),
                fmt_cpu(r.cpu_ms_per_request, r.cpu_resolution_ms),
            ]
        )
    header = [
        "target",
        "ok",
        "TTFC p50 ms",
        "TTFC p99 ms",
        "total p50 ms",
        "added p50 vs nginx",
        "added p99 vs nginx",
        "CPU ms/req",
    ]
    return ["## Streaming: time to first chunk (sequential)", "", *md_table(header, rows), ""]


def render_spread(report: Report) -> list[str]:
    if not report.spread:
        return []
    rows = [
        [
            r.target,
            str(r.events),
            fmt(r.first_ms, 1),
            fmt(r.total_ms, 1),
            fmt(ratio(r.first_ms, r.total_ms), 3),
            fmt(r.median_gap_ms, 1),
            "yes" if r.streamed else "NO",
        ]
        for r in report.spread
    ]
    header = ["target", "events", "first chunk ms", "total ms", "first/total", "median gap ms", "streamed"]
    title = f"## Chunk forwarding (fake upstream spaces chunks by {report.meta['chunk_delay_ms']:g} ms)"
    return [title, "", *md_table(header, rows), ""]


def render_memory(report: Report) -> list[str]:
    if not report.memory:
        return []
    rows = [
        [name, fmt(m.rss_mb, 1), fmt(m.hwm_mb, 1), fmt(m.tree_rss_mb, 1), str(m.processes)]
        for name, m in report.memory.items()
    ]
    header = ["process", "VmRSS MB", "VmHWM MB", "tree VmRSS MB", "processes"]
    return ["## Memory after the run", "", *md_table(header, rows), ""]


def render_goals(report: Report) -> list[str]:
    if not report.goals:
        return []
    rows = [
        [g["goal"], f"{fmt(g['measured'], 3)} {g['unit']}", f"≤ {g['limit']:g} {g['unit']}", g["result"]]
        for g in report.goals
    ]
    return ["## Goals", "", *md_table(["goal", "measured", "limit", "result"], rows), ""]


def render_meta(report: Report) -> list[str]:
    m = report.meta
    return [
        "# omnirelay benchmark",
        "",
        f"{m['started']} · {m['cpus']} CPUs ({m['cpu_model']})"
        f" · load {m['loadavg_start']} → {m['loadavg_end']} · {m['duration_s']} s per point × {m['rounds']}"
        f" · pinned: {m['pinned']} · {m['python']} · {m['nginx']} · {m['wrk']}",
        "",
    ]


def render(report: Report) -> str:
    lines = render_meta(report)
    for part in (render_load, render_comparison, render_ttfc, render_spread, render_memory, render_goals):
        lines += part(report)
    if report.meta.get("omnirelay_balance") is not None:
        lines += [f"omnirelay account balance after the run: {report.meta['omnirelay_balance']}", ""]
    if report.problems:
        lines += ["## Problems", "", *(f"- {p}" for p in report.problems), ""]
    return "\n".join(lines)


def write_outputs(report: Report, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    markdown = render(report)
    (out / "results.md").write_text(markdown + "\n")
    (out / "results.json").write_text(json.dumps(asdict(report), indent=2) + "\n")
    print(markdown)


# --------------------------------------------------------------------------------------------------
# Main


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def loadavg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "n/a"


def collect_meta(opts: Options, tools: dict[str, str]) -> dict[str, Any]:
    return {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "loadavg_start": loadavg(),
        "loadavg_end": None,
        "python": f"Python {platform.python_version()}",
        "nginx": tool_version([tools["nginx"], "-v"]),
        "wrk": tool_version([tools["wrk"], "-v"]).split(" Copyright")[0],
        "quick": opts.quick,
        "duration_s": opts.duration_s,
        "rounds": opts.rounds,
        "stream_requests": opts.stream_requests,
        "chunk_delay_ms": opts.chunk_delay_ms,
        "pinned": opts.pin,
    }


def pin_sets(opts: Options) -> tuple[frozenset[int] | None, frozenset[int] | None]:
    """(load generator CPUs, server CPUs) for --pin; (None, None) when not pinning."""
    cpus = sorted(os.sched_getaffinity(0))
    if not opts.pin or len(cpus) < 2:
        return None, None
    return frozenset(cpus[:1]), frozenset(cpus[1:])


@dataclass
class Setup:
    targets: list[Target]
    omnirelay_account: str | None = None
    admin_key: str | None = None


def start_targets(
    children: Children, opts: Options, tools: dict[str, str], tmp: Path, problems: list[str]
) -> Setup:
    log("starting the fake upstreams and nginx")
    upstream, ports = start_upstreams(children, opts)
    setup = Setup([upstream, start_nginx(children, tools["nginx"], tmp, ports)])
    if not opts.omnirelay:
        return setup
    log("starting omnirelay")
    try:
        relay, account, admin_key = start_omnirelay(children, opts, tmp, ports)
    except (BenchError, OSError, urllib.error.URLError) as exc:
        problems.append(f"omnirelay not measured: {exc}")
        log(f"omnirelay not measured: {exc}")
        return setup
    setup.targets.append(relay)
    setup.omnirelay_account = account
    setup.admin_key = admin_key
    return setup


def run_benchmark(opts: Options, children: Children, tools: dict[str, str], report: Report) -> None:
    with tempfile.TemporaryDirectory(prefix="omnirelay-bench-") as tmp:
        try:
            setup = start_targets(children, opts, tools, Path(tmp), report.problems)
            measure_all(opts, tools, setup, report)
        finally:
            children.stop_all()  # before the temp dir (nginx prefix, omnirelay data) goes


def measure_all(opts: Options, tools: dict[str, str], setup: Setup, report: Report) -> None:
    warm_up(tools["wrk"], setup.targets, opts)
    report.load_rounds, report.load = run_load(tools["wrk"], setup.targets, opts, report.problems)
    report.ttfc, report.spread = run_async(run_streaming(setup.targets, opts, report.problems))
    for target in reversed(setup.targets):
        report.memory[target.name] = tree_memory(target.pid)
    relay = next((t for t in setup.targets if t.name == "omnirelay"), None)
    if relay is not None:
        balance = account_balance(relay, setup.admin_key, setup.omnirelay_account)
        report.meta["omnirelay_balance"] = balance


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    install_signal_handlers()
    try:
        tools = ensure_tools()
    except (BenchError, subprocess.CalledProcessError) as exc:
        log(f"error: {exc}")
        return 2
    loadgen_cpus, server_cpus = pin_sets(opts)
    if loadgen_cpus:
        os.sched_setaffinity(0, loadgen_cpus)
    (opts.out / "logs").mkdir(parents=True, exist_ok=True)
    children = Children(opts.out / "logs", server_cpus)
    report = Report(meta=collect_meta(opts, tools))
    try:
        run_benchmark(opts, children, tools, report)
    except BenchError as exc:
        log(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        children.stop_all()
    report.meta["loadavg_end"] = loadavg()
    report.comparison = compare(report.load)
    report.goals = evaluate_goals(report) if any(p.target == "omnirelay" for p in report.load) else []
    write_outputs(report, opts.out)
    return 1 if report.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
