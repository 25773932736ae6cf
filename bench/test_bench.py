"""Tests of the benchmark harness itself: `.venv/bin/pytest bench -q` (not part of the main suite)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fake_upstream
import run

WRK_TEXT = """Running 3s test @ http://127.0.0.1:18001/v1/chat/completions
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.90ms  416.62us   6.05ms   86.81%
    Req/Sec    35.94k     5.91k   44.56k    61.67%
  Latency Distribution
     50%  802.00us
     75%    1.05ms
     90%    1.24ms
     99%    2.56s
  214282 requests in 3.00s, 73.16MB read
  Socket errors: connect 0, read 2, write 0, timeout 5
  Non-2xx or 3xx responses: 17
Requests/sec:  71328.69
Transfer/sec:     24.35MB
"""


def test_parse_wrk_text() -> None:
    result = run.parse_wrk_text(WRK_TEXT)
    assert result.requests == 214282
    assert result.duration_s == pytest.approx(3.0)
    assert result.rps == pytest.approx(71328.69)
    assert result.p50_ms == pytest.approx(0.802)
    assert result.p90_ms == pytest.approx(1.24)
    assert result.p99_ms == pytest.approx(2560.0)
    assert result.errors == {"status": 17, "connect": 0, "read": 2, "write": 0, "timeout": 5}
    assert result.error_count == 24


def test_parse_wrk_prefers_the_json_line() -> None:
    line = (
        'BENCH_JSON {"requests":100,"duration_us":2000000,"bytes":1,"p50_us":1500,"p90_us":2000,'
        '"p99_us":4000,"max_us":9000,"mean_us":1600.0,'
        '"errors":{"connect":0,"read":0,"write":0,"status":3,"timeout":0}}'
    )
    result = run.parse_wrk(WRK_TEXT + line + "\n")
    assert (result.requests, result.rps, result.p50_ms, result.p99_ms) == (100, 50.0, 1.5, 4.0)
    assert result.errors["status"] == 3


def test_parse_wrk_rejects_garbage() -> None:
    with pytest.raises(run.BenchError):
        run.parse_wrk("wrk: connection refused\n")


def test_parse_stat_handles_odd_process_names() -> None:
    raw = "42 (we (ird) name) S 7 42 42 0 -1 4194560 100 0 0 0 150 25 3 2 20 0 1 0 100 0 0\n"
    assert run.parse_stat(raw) == (7, 150 + 25 + 3 + 2)


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert run.percentile(values, 50) == 50.0
    assert run.percentile(values, 99) == 99.0
    assert run.percentile([5.0], 99) == 5.0


def test_render_template_rejects_leftovers() -> None:
    assert run.render_template("a {{x}} b", {"x": 1}) == "a 1 b"
    with pytest.raises(run.BenchError):
        run.render_template("{{x}} {{y}}", {"x": 1})


def test_nginx_template_renders() -> None:
    text = (run.BENCH_DIR / "nginx.conf.tmpl").read_text()
    values = {"prefix": "/tmp/p", "port": 1, "slow_port": 2, "upstream_port": 3, "slow_upstream_port": 4}
    rendered = run.render_template(text, values)
    assert "worker_processes 1;" in rendered
    assert "proxy_buffering off;" in rendered
    assert "listen 127.0.0.1:1 " in rendered


def test_omnirelay_config_has_both_channels() -> None:
    import yaml

    config = yaml.safe_load(run.omnirelay_config(run.Upstreams(1111, 2222)))
    assert [c["base_url"] for c in config["channels"]] == [
        "http://127.0.0.1:1111/v1",
        "http://127.0.0.1:2222/v1",
    ]
    assert [m["id"] for m in config["models"]] == [run.MODEL, run.SLOW_MODEL]
    assert config["models"][0]["price"] == {"input": "0.15", "output": "0.60"}


def test_unwrap_key_nested_or_flat() -> None:
    assert run._unwrap({"api_key": "a"}, "api_key") == "a"
    assert run._unwrap({"data": {"api_key": "b"}}, "api_key") == "b"
    assert run._unwrap(["x"], "api_key") is None


def test_fake_upstream_parses_pipelined_and_chunked_requests() -> None:
    body = b'{"model":"m","stream": true}'
    first = b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    second = (
        b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    buf = bytearray(first + second + b"GET /v1/mo")
    request, used = fake_upstream.parse_request(buf) or (None, 0)
    assert request is not None and request.body == body and request.method == b"POST"
    del buf[:used]
    request, used = fake_upstream.parse_request(buf) or (None, 0)
    assert request is not None and request.body == b"hello"
    del buf[:used]
    assert fake_upstream.parse_request(buf) is None


def test_sse_events_are_chunk_framed() -> None:
    events = fake_upstream._sse_events(3)
    assert len(events) == 3 + 2  # content chunks, usage chunk, [DONE]
    size, _, rest = events[-1].partition(b"\r\n")
    assert rest == b"data: [DONE]\n\n\r\n" and int(size, 16) == len(b"data: [DONE]\n\n")


@pytest.fixture
def upstream() -> object:
    port = run.free_port()
    script = run.BENCH_DIR / "fake_upstream.py"
    proc = subprocess.Popen([sys.executable, str(script), "--port", str(port), "--chunk-delay-ms", "5"])
    deadline = time.monotonic() + 10
    while not run.tcp_open(port):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    yield port, proc
    proc.terminate()
    proc.wait(5)


def test_stream_client_and_cpu_accounting(upstream: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, proc = upstream
    url = f"http://127.0.0.1:{port}/v1/chat/completions"

    async def go() -> list[run.StreamSample]:
        async with run.new_session() as session:
            return [await run.stream_once(session, url, "k", "m") for _ in range(3)]

    cpu_before = run.tree_cpu_seconds(proc.pid)
    samples = asyncio.run(go())
    status, reply = run.http_json("POST", url, "k", run.chat_body("m", stream=False))
    assert status == 200 and reply["usage"]["total_tokens"] == 19
    assert all(s.status == 200 and s.done and len(s.arrivals_s) == 12 for s in samples)
    spread = run.summarize_spread(run.Target("t", "", "", "m", proc.pid), samples, 5.0)
    assert spread.streamed and spread.median_gap_ms is not None and spread.median_gap_ms >= 4.0
    assert run.tree_cpu_seconds(proc.pid) >= cpu_before
    assert run.process_tree(os.getpid())[0] == os.getpid()
    assert run.tree_memory(proc.pid).rss_mb > 1


def test_median_points_over_rounds() -> None:
    def point(rps: float, p50: float, cpu: float) -> run.LoadPoint:
        errors = {"status": 1, "connect": 0}
        return run.LoadPoint("nginx", 16, 100, 1.0, rps, p50, None, p50 * 2, errors, cpu / 10, cpu)

    merged = run.median_points([point(10, 1, 0.1), point(30, 3, 0.3), point(20, 2, 0.2)])
    assert len(merged) == 1
    only = merged[0]
    assert (only.rps, only.p50_ms, only.p99_ms, only.cpu_ms_per_request) == (20, 2, 4, 0.2)
    assert (only.requests, only.rounds, only.errors["status"]) == (300, 3, 3)
