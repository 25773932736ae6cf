"""Shared fixtures: the provider simulator, databases (SQLite and PostgreSQL) and the real gateway."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine.url import make_url

from tests.support.moto import moto_s3  # noqa: F401  (a shared fixture: the S3 server)
from tests.support.server import GatewayServer, make_settings
from tests.upstreams.openai import OpenAISim, sim_in_thread

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def _pg_admin_url() -> str:
    return os.environ.get("OMNIRELAY_TEST_POSTGRES_URL", DEFAULT_PG)


async def _pg_exec(sql: str) -> None:
    import asyncpg

    url = make_url(_pg_admin_url())
    conn = await asyncpg.connect(
        user=url.username, password=url.password, host=url.host, port=url.port, database=url.database
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    """PostgreSQL must be up: the suite never skips its PostgreSQL half silently.

    Set OMNIRELAY_SKIP_POSTGRES=1 to skip those tests deliberately on a machine without it.
    """
    if os.environ.get("OMNIRELAY_SKIP_POSTGRES") == "1":
        pytest.skip("OMNIRELAY_SKIP_POSTGRES=1")
    try:
        asyncio.run(_pg_exec("SELECT 1"))
    except Exception as exc:
        pytest.fail(f"PostgreSQL at {_pg_admin_url()} is not reachable ({exc}); run .ci/run to start it")
    return True


@pytest.fixture
def postgres_url(postgres_available: bool) -> Iterator[str]:
    """A fresh, empty database per test, dropped afterwards."""
    name = f"omnirelay_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_exec(f'CREATE DATABASE "{name}"'))
    url = make_url(_pg_admin_url()).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        asyncio.run(_pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Parametrises a test over both supported databases."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'omnirelay.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def sim() -> Iterator[OpenAISim]:
    with sim_in_thread() as running:
        yield running


GatewayFactory = Callable[..., GatewayServer]


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[GatewayFactory]:
    started: list[GatewayServer] = []

    def start(
        channels: list[dict[str, Any]], *, database_url: str | None = None, **extra: Any
    ) -> GatewayServer:
        settings = make_settings(str(tmp_path / f"data{len(started)}"), database_url, channels, **extra)
        server = GatewayServer(settings).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def sim_channel(sim: OpenAISim, name: str = "sim", **overrides: Any) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "name": name,
        "provider": "openai",
        "base_url": sim.base_url,
        "api_key": "sk-upstream-test",
        "models": ["gpt-4o-mini", "gpt-4o", "sim-reasoner"],
        "timeout_s": 10,
    }
    channel.update(overrides)
    return channel


TEST_MODELS = [{"id": "sim-reasoner", "price": {"input": "1", "output": "2"}}]
