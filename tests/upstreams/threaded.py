"""Run any simulator (an object with ``async start(host, port)`` and ``async stop()``) on its own
event loop in a daemon thread: for sync clients, and for a gateway under test in another thread or
process. Setting the simulator's ``config`` fields from the calling thread is fine."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Protocol


class Startable(Protocol):
    def start(self, host: str = ..., port: int = ...) -> Awaitable[None]: ...

    def stop(self) -> Awaitable[None]: ...


def start_in_thread(
    sim: Startable, *, name: str, host: str = "127.0.0.1", port: int = 0
) -> Callable[[], None]:
    """Start ``sim`` in its own thread; returns the function that stops it (safe to call twice)."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failure: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(sim.start(host, port))
        except BaseException as exc:
            failure.append(exc)
            started.set()
            loop.close()
            return
        started.set()
        try:
            loop.run_forever()
            loop.run_until_complete(sim.stop())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    thread = threading.Thread(target=serve, name=name, daemon=True)
    thread.start()
    if not started.wait(timeout=30):
        raise RuntimeError(f"the {name} simulator did not start within 30 s")
    if failure:
        raise failure[0]

    def stop() -> None:
        if thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)

    return stop
