"""The ``omnirelay`` command: serve the gateway, or migrate its database."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from omnirelay import __version__
from omnirelay.settings import Settings, load_settings

DESCRIPTION = """\
omnirelay: a self-hostable AI API gateway speaking the 302.AI API (one key, every model).

Environment:
  OMNIRELAY_ADMIN_KEY     operator key for /admin/*; without it the first start generates one,
                          prints it once, and stores only its hash
  OMNIRELAY_DATABASE_URL  same as --database-url
  OMNIRELAY_DATA_DIR      same as --data-dir
"""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML config file (channels, models, settings)")
    parser.add_argument(
        "--data-dir", metavar="DIR", help="where the embedded SQLite database lives (default ./data)"
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="sqlite+aiosqlite:///path/to.db or postgresql+asyncpg://user@host/db "
        "(default: SQLite in the data dir)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omnirelay", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"omnirelay {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the gateway (migrates the database first)")
    _common(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8302)")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="default info")
    migrate = sub.add_parser("migrate", help="create or upgrade the database schema, then exit")
    _common(migrate)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        args.config,
        data_dir=args.data_dir,
        database_url=args.database_url,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        log_level=getattr(args, "log_level", None),
    )


def _serve(settings: Settings) -> int:
    import gc

    import uvicorn

    from omnirelay.app import create_app

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Each proxied call allocates a few hundred short-lived objects; the default generation-0 threshold
    # (700) runs a collection every couple of requests. A larger one cuts that work and its pauses.
    gc.set_threshold(20_000, 20, 50)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=30,
        server_header=False,
        # No client address rewriting: the gateway does not use the peer address, so skip the work.
        proxy_headers=False,
    )
    return 0


async def _migrate(settings: Settings) -> None:
    from omnirelay.store.db import create_engine, migrate

    engine = create_engine(settings.resolved_database_url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
    except (ValidationError, ValueError, OSError) as exc:
        print(f"omnirelay: invalid configuration: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(settings)
    asyncio.run(_migrate(settings))
    print(f"omnirelay: database at {settings.resolved_database_url.split('@')[-1]} is up to date")
    return 0
