"""How an OpenAI-compatible upstream's error status is classified (data, not if-chains)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omnirelay.providers.base import FailureKind, ProviderError

# status -> (retry on the next candidate, the client's fault)
_STATUS_RULES: dict[int, tuple[bool, bool]] = {
    400: (False, True),  # bad request: the client's body is wrong everywhere
    401: (True, False),  # the channel's credential is wrong: try another channel
    402: (True, False),  # the channel's upstream account is out of credit
    403: (True, False),  # the channel's credential lacks access
    404: (False, True),  # unknown model or path for what the client asked
    408: (True, False),
    409: (True, False),
    413: (False, True),
    415: (False, True),
    422: (False, True),
    425: (True, False),
    429: (True, False),
}
# Structured ``error.code`` / ``error.type`` values that override the status rule.
_CODE_RULES: dict[str, tuple[bool, bool]] = {
    "insufficient_quota": (True, False),  # sent with 429 by OpenAI: the channel's account is empty
    "context_length_exceeded": (False, True),
    "invalid_api_key": (True, False),
}


def classify_status(status: int, body: dict[str, Any] | None) -> tuple[bool, bool]:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        for field in ("code", "type"):
            value = error.get(field)
            if isinstance(value, str) and value in _CODE_RULES:
                return _CODE_RULES[value]
    if status in _STATUS_RULES:
        return _STATUS_RULES[status]
    if status >= 500:
        return (True, False)
    return (False, True)


def error_message(body: dict[str, Any] | None, fallback: str) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, str):
        return error
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return fallback


def classified_error(
    status: int,
    body: dict[str, Any] | None,
    headers: dict[str, str],
    classify: Callable[[int, dict[str, Any] | None], tuple[bool, bool]],
    message: Callable[[dict[str, Any] | None, str], str] | None = None,
) -> ProviderError:
    """An HTTP error answer as a ProviderError, classified (and its message read) the vendor's way."""
    retryable, client_fault = classify(status, body)
    return ProviderError(
        FailureKind.HTTP,
        (message or error_message)(body, f"upstream answered HTTP {status}"),
        status=status,
        body=body,
        retryable=retryable,
        client_fault=client_fault,
        headers=headers,
    )


def http_error(status: int, body: dict[str, Any] | None, headers: dict[str, str]) -> ProviderError:
    return classified_error(status, body, headers, classify_status)
