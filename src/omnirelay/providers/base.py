"""What every upstream adapter implements, and the one error type adapters raise."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import aiohttp

from omnirelay.settings import ChannelConfig


class Capability(enum.Enum):
    CHAT = "chat"
    IMAGE = "image"


class FailureKind(enum.Enum):
    CONNECT = "connect"  # could not reach the upstream, or it dropped the connection
    TIMEOUT = "timeout"
    HTTP = "http"  # the upstream answered with an error status
    GENERATION = "generation"  # the upstream accepted the job, then reported it failed or moderated


class ProviderError(Exception):
    """An upstream failure, classified from the status code and structured error fields."""

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        *,
        status: int | None = None,
        body: dict[str, Any] | None = None,
        retryable: bool,
        client_fault: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.body = body
        self.retryable = retryable
        self.client_fault = client_fault
        self.headers = headers or {}


@dataclass(slots=True)
class UpstreamReply:
    status: int
    body: bytes
    content_type: str


class Adapter(Protocol):
    id: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]]

    def __init__(self, channel: ChannelConfig, http: aiohttp.ClientSession) -> None: ...
