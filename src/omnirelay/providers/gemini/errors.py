"""How a Google error answer is classified (data, not if-chains).

Google's errors are ``{"error": {"code", "message", "status", "details"}}`` (streamed calls without
``alt=sse`` wrap it in a one-element array). The ``ErrorInfo.reason`` of ``details`` decides first
(Google answers a wrong API key with 400 INVALID_ARGUMENT and reason ``API_KEY_INVALID``), then the
``status`` name, then the shared HTTP status rules.
"""

from __future__ import annotations

import re
from typing import Any, Final

from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.openai_compat.errors import classify_status

# Google's canonical ``status`` -> (retry on the next candidate, the client's fault).
STATUS_RULES: Final[dict[str, tuple[bool, bool]]] = {
    "INVALID_ARGUMENT": (False, True),
    "FAILED_PRECONDITION": (False, True),
    "OUT_OF_RANGE": (False, True),
    "NOT_FOUND": (False, True),  # the model the client asked for does not exist
    "PERMISSION_DENIED": (True, False),  # the channel's key lacks access (or is missing)
    "UNAUTHENTICATED": (True, False),  # the channel's credential is wrong or expired
    "RESOURCE_EXHAUSTED": (True, False),  # the channel's quota or rate limit
    "ABORTED": (True, False),
    "UNAVAILABLE": (True, False),
    "INTERNAL": (True, False),
    "UNKNOWN": (True, False),
    "DEADLINE_EXCEEDED": (True, False),
}
# ``ErrorInfo.reason`` values that override the status.
REASON_RULES: Final[dict[str, tuple[bool, bool]]] = {
    "API_KEY_INVALID": (True, False),
    "API_KEY_EXPIRED": (True, False),
    "API_KEY_SERVICE_BLOCKED": (True, False),
    "SERVICE_DISABLED": (True, False),
    "CONSUMER_SUSPENDED": (True, False),
    "ACCESS_TOKEN_EXPIRED": (True, False),
    "RATE_LIMIT_EXCEEDED": (True, False),
}
_DELAY = re.compile(r"^(\d+(?:\.\d+)?)s$")


def _error(body: Any) -> dict[str, Any] | None:
    if isinstance(body, list) and body:
        body = body[0]
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def error_object(body: Any) -> dict[str, Any] | None:
    """The error body as a dict (the first element of an array answer)."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return body[0]
    return body if isinstance(body, dict) else None


def _details(body: Any) -> list[dict[str, Any]]:
    error = _error(body)
    details = error.get("details") if error is not None else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def error_reasons(body: Any) -> list[str]:
    return [d["reason"] for d in _details(body) if isinstance(d.get("reason"), str)]


def retry_after(body: Any) -> str | None:
    """Seconds to wait, from a ``google.rpc.RetryInfo`` detail (``"retryDelay": "30s"``), rounded up."""
    for detail in _details(body):
        delay = detail.get("retryDelay")
        match = _DELAY.match(delay) if isinstance(delay, str) else None
        if match:
            return str(max(1, -int(-float(match.group(1)) // 1)))
    return None


def classify_google(status: int, body: Any) -> tuple[bool, bool]:
    for reason in error_reasons(body):
        if reason in REASON_RULES:
            return REASON_RULES[reason]
    error = _error(body)
    name = error.get("status") if error is not None else None
    if isinstance(name, str) and name in STATUS_RULES:
        return STATUS_RULES[name]
    return classify_status(status, error_object(body))


def error_message(body: Any, fallback: str) -> str:
    error = _error(body)
    message = error.get("message") if error is not None else None
    return message if isinstance(message, str) and message else fallback


def http_error(status: int, body: Any, headers: dict[str, str]) -> ProviderError:
    retryable, client_fault = classify_google(status, body)
    forwarded = dict(headers)
    delay = retry_after(body)
    if delay is not None and "retry-after" not in forwarded:
        forwarded["retry-after"] = delay
    return ProviderError(
        FailureKind.HTTP,
        error_message(body, f"upstream answered HTTP {status}"),
        status=status,
        body=error_object(body),
        retryable=retryable,
        client_fault=client_fault,
        headers=forwarded,
    )
