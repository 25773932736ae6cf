"""How an Anthropic upstream's error answer is classified (data, not if-chains).

Anthropic's error body is ``{"type": "error", "error": {"type": ..., "message": ...}}``; Vertex AI
answers some failures (quota, auth) with Google's ``{"error": {"code", "message", "status"}}``. Each
rule is (retry on the next candidate, the client's fault).
"""

from __future__ import annotations

from typing import Any

from omnirelay.providers.base import ProviderError
from omnirelay.providers.openai_compat.errors import classified_error

Rule = tuple[bool, bool]

# status -> rule; any other 5xx: retryable, not the client's fault; any other 4xx: the client's fault.
STATUS_RULES: dict[int, Rule] = {
    400: (False, True),  # invalid_request_error: the body is wrong everywhere
    401: (True, False),  # authentication_error: the channel's key is wrong, try another channel
    402: (True, False),  # billing_error: the channel's account cannot pay
    403: (True, False),  # permission_error: the channel's key lacks access
    404: (False, True),  # not_found_error: unknown model or path for what the client asked
    408: (True, False),
    409: (True, False),
    413: (False, True),  # request_too_large
    422: (False, True),
    429: (True, False),  # rate_limit_error
    529: (True, False),  # overloaded_error
}
# error.type (Anthropic) or error.status (Google, on Vertex) -> rule; wins over the status rule.
TYPE_RULES: dict[str, Rule] = {
    "invalid_request_error": (False, True),
    "authentication_error": (True, False),
    "billing_error": (True, False),
    "permission_error": (True, False),
    "not_found_error": (False, True),
    "request_too_large": (False, True),
    "rate_limit_error": (True, False),
    "api_error": (True, False),
    "timeout_error": (True, False),
    "overloaded_error": (True, False),
    "RESOURCE_EXHAUSTED": (True, False),
    "UNAUTHENTICATED": (True, False),
    "PERMISSION_DENIED": (True, False),
    "UNAVAILABLE": (True, False),
    "INVALID_ARGUMENT": (False, True),
}
# Lower-cased message fragments -> rule; win over everything (Anthropic reports an empty prepaid
# balance as a 400 invalid_request_error, but it is the channel's problem, not the client's).
MESSAGE_RULES: tuple[tuple[str, Rule], ...] = (("credit balance is too low", (True, False)),)


def _error_object(body: dict[str, Any] | None) -> dict[str, Any] | None:
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def error_message(body: dict[str, Any] | None, fallback: str) -> str:
    error = _error_object(body)
    if error is not None and isinstance(error.get("message"), str) and error["message"]:
        return str(error["message"])
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return fallback


def classify_status(status: int, body: dict[str, Any] | None) -> Rule:
    error = _error_object(body)
    if error is not None:
        message = str(error.get("message") or "").lower()
        for fragment, rule in MESSAGE_RULES:
            if fragment in message:
                return rule
        for field in ("type", "status"):
            value = error.get(field)
            if isinstance(value, str) and value in TYPE_RULES:
                return TYPE_RULES[value]
    if status in STATUS_RULES:
        return STATUS_RULES[status]
    if status >= 500:
        return (True, False)
    return (False, True)


def http_error(status: int, body: dict[str, Any] | None, headers: dict[str, str]) -> ProviderError:
    return classified_error(status, body, headers, classify_status, error_message)
