"""Task rows as Python objects, what a family handler returns, and the handler protocol.

States (the ``status`` column), owned by the gateway whatever the vendor calls them:

    pending ──submit──▶ submitting ──upstream id stored──▶ processing ──▶ succeeded
       │                    │                                   │  ╰────▶ failed
       │                    ╰── crash: reconcile, never resubmit ╰── deadline ─▶ failed
       ╰── cancel ──▶ cancelled

``submitting`` is written before the upstream call and the upstream task id right after it; a task
found in ``submitting`` after a restart was possibly submitted, so it is reconciled (looked up by the
handler) and never sent again. A poll that times out is not a verdict: the task stays
``processing`` until the upstream says so or ``deadline_at`` passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from omnirelay.core.usage import Usage


@dataclass(slots=True)
class Task:
    id: str
    account_id: int
    key_id: int
    family: str
    kind: str
    model: str
    channel: str | None
    status: str
    request: dict[str, Any]
    upstream_task_id: str | None
    upstream_state: dict[str, Any]
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    progress: str | None
    polls: int
    hold: int
    cost: int
    settled: bool
    request_id: str
    webhook_url: str | None
    webhook_status: str | None
    webhook_attempts: int
    created_at: float
    updated_at: float
    completed_at: float | None
    deadline_at: float

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Task:
        def load(value: Any) -> Any:
            return orjson.loads(value) if value else None

        return cls(
            id=row["id"],
            account_id=row["account_id"],
            key_id=row["key_id"],
            family=row["family"],
            kind=row["kind"],
            model=row["model"],
            channel=row["channel"],
            status=row["status"],
            request=load(row["request"]) or {},
            upstream_task_id=row["upstream_task_id"],
            upstream_state=load(row["upstream_state"]) or {},
            result=load(row["result"]),
            error=load(row["error"]),
            progress=row["progress"],
            polls=row["polls"],
            hold=row["hold"],
            cost=row["cost"],
            settled=bool(row["settled"]),
            request_id=row["request_id"],
            webhook_url=row["webhook_url"],
            webhook_status=row["webhook_status"],
            webhook_attempts=row["webhook_attempts"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            completed_at=row["completed_at"],
            deadline_at=row["deadline_at"],
        )


@dataclass(slots=True)
class Submitted:
    """The upstream accepted the job: its id (and anything needed to poll it)."""

    upstream_task_id: str
    channel: str
    state: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Pending:
    progress: str | None = None
    state: dict[str, Any] | None = None  # updated poll state, if the vendor's changed


@dataclass(slots=True)
class Finished:
    """A verdict. ``usage`` is what to charge (None or ``failed``: nothing is owed)."""

    result: dict[str, Any] | None
    usage: Usage | None
    failed: bool = False
    error: dict[str, Any] | None = None
    channel: str | None = None
    upstream_task_id: str | None = None


class TaskHandler(Protocol):
    """One task family (image V2, video, ComfyUI, Midjourney, async chat)."""

    family: str

    async def submit(self, task: Task) -> Submitted | Finished:
        """Send the job upstream once. Synchronous vendors may return the final ``Finished``."""
        ...

    async def check(self, task: Task) -> Pending | Finished:
        """Ask the upstream how the job is doing. Raise ProviderError on a failed poll (not a verdict)."""
        ...

    async def reconcile(self, task: Task) -> Submitted | None:
        """After a crash during submit: find the upstream job if the vendor allows, else None."""
        ...

    def webhook_payload(self, task: Task) -> dict[str, Any]:
        """What the caller's webhook receives for a finished task."""
        ...
