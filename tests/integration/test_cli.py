"""The `omnirelay` command as an operator runs it: a real process, real signals."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from omnirelay.store import tables as t
from omnirelay.store.db import create_engine
from tests.conftest import sim_channel
from tests.upstreams.openai import OpenAISim

EXE = [sys.executable, "-m", "omnirelay"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Proc:
    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.popen = subprocess.Popen(
            [*EXE, "serve", "--port", str(self.port), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(self.popen.communicate()[1])
            try:
                if httpx.get(self.base + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("omnirelay serve did not come up")

    def stop(self) -> tuple[int, str]:
        """SIGTERM, then wait; a graceful stop ends with uvicorn re-raising the signal (-15)."""
        self.popen.send_signal(signal.SIGTERM)
        _, err = self.popen.communicate(timeout=30)
        assert "Application shutdown complete" in err, err
        return self.popen.returncode, err


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OMNIRELAY_")}
    yield clean


def test_help_explains_the_commands() -> None:
    out = subprocess.run([*EXE, "--help"], capture_output=True, text=True, check=True).stdout
    assert "serve" in out and "migrate" in out and "OMNIRELAY_ADMIN_KEY" in out
    out = subprocess.run([*EXE, "serve", "--help"], capture_output=True, text=True, check=True).stdout
    for flag in ("--config", "--host", "--port", "--data-dir", "--database-url"):
        assert flag in out


def test_bad_config_exits_2_with_a_message(tmp_path: Path, env: dict[str, str]) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("channels:\n  - name: x\n    base_url: ftp://nope\n")
    done = subprocess.run([*EXE, "serve", "--config", str(config)], capture_output=True, text=True, env=env)
    assert done.returncode == 2 and "base_url" in done.stderr
    done = subprocess.run(
        [*EXE, "migrate", "--database-url", "mysql://x/y"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 2 and "unsupported database URL" in done.stderr


def test_first_start_generates_the_operator_key_once(tmp_path: Path, env: dict[str, str]) -> None:
    proc = Proc(["--data-dir", str(tmp_path)], env)
    code, err = proc.stop()
    assert code in (0, -signal.SIGTERM)
    match = re.search(r"operator key .*: (sk-\S+)", err)
    assert match, err
    admin_key = match.group(1)
    again = Proc(["--data-dir", str(tmp_path)], env)
    try:
        resp = httpx.post(
            again.base + "/admin/accounts",
            json={"name": "a"},
            headers={"Authorization": f"Bearer {admin_key}"},
        )
        assert resp.status_code == 201
    finally:
        _, err2 = again.stop()
    assert admin_key not in err2 and "operator key" not in err2
    # Only the hash is stored.
    assert admin_key.encode() not in (tmp_path / "omnirelay.db").read_bytes()


def test_sigterm_flushes_pending_usage_rows(tmp_path: Path, env: dict[str, str], sim: OpenAISim) -> None:
    config = tmp_path / "omnirelay.yaml"
    config.write_text(
        yaml.safe_dump(
            {"channels": [sim_channel(sim)], "usage_log": {"flush_interval_s": 3600, "batch_size": 10000}}
        )
    )
    env["OMNIRELAY_ADMIN_KEY"] = "sk-op"
    proc = Proc(["--config", str(config), "--data-dir", str(tmp_path)], env)
    admin = {"Authorization": "Bearer sk-op"}
    account = httpx.post(
        proc.base + "/admin/accounts", json={"name": "a", "balance": "1"}, headers=admin
    ).json()
    key = httpx.post(
        f"{proc.base}/admin/accounts/{account['id']}/api_keys", json={"api_name": "k"}, headers=admin
    ).json()["api_key"]
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}
    for _ in range(3):
        assert (
            httpx.post(proc.base + "/v1/chat/completions", json=body, headers={"x-api-key": key}).status_code
            == 200
        )
    code, _ = proc.stop()
    assert code in (0, -signal.SIGTERM)

    async def count() -> tuple[int, int]:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'omnirelay.db'}")
        async with engine.connect() as conn:
            rows = (await conn.execute(select(func.count()).select_from(t.usage_logs))).scalar()
            balance = (await conn.execute(select(t.accounts.c.balance))).scalar()
        await engine.dispose()
        return int(rows or 0), int(balance or 0)

    rows, balance = asyncio.run(count())
    assert rows == 3
    assert 0 < balance < 1_000_000_000
