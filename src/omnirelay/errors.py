"""The gateway's error tree.

An error carries what every dialect needs to render it (HTTP status, a stable string code, the 302
``err_code`` and whether retrying elsewhere could help); rendering lives in ``dialects/errors.py``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class GatewayError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    err_code: ClassVar[int] = -10003
    type: ClassVar[str] = "server_error"
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, param: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status_override = status

    @property
    def http_status(self) -> int:
        return self.status_override or self.status


class InvalidRequest(GatewayError):
    status = 400
    code = "invalid_request"
    err_code = -10011
    type = "invalid_request_error"


class UnprocessableEntity(InvalidRequest):
    status = 422


class Unauthenticated(GatewayError):
    status = 401
    code = "invalid_api_key"
    err_code = -10001
    type = "unauthorized"


class MissingKey(Unauthenticated):
    code = "missing_api_key"


class KeyExpired(Unauthenticated):
    code = "api_key_expired"
    err_code = -10005


class PermissionDenied(GatewayError):
    status = 403
    code = "permission_denied"
    err_code = -10009
    type = "permission_error"


class InsufficientBalance(GatewayError):
    status = 402
    code = "insufficient_balance"
    err_code = -10004
    type = "insufficient_quota"


class KeyCostLimit(InsufficientBalance):
    code = "key_cost_limit_reached"
    err_code = -10006


class KeyDailyLimit(InsufficientBalance):
    code = "key_daily_limit_reached"
    err_code = -10007


class NotFound(GatewayError):
    status = 404
    code = "not_found"
    err_code = -10010
    type = "invalid_request_error"


class ModelNotFound(NotFound):
    code = "model_not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    code = "method_not_allowed"
    err_code = -10009
    type = "invalid_request_error"


class PayloadTooLarge(GatewayError):
    status = 413
    code = "payload_too_large"
    err_code = -10011
    type = "invalid_request_error"


class RateLimited(GatewayError):
    status = 429
    code = "rate_limit_exceeded"
    err_code = -10003
    type = "rate_limit_error"
    retryable = True


class UpstreamError(GatewayError):
    status = 502
    code = "upstream_error"
    err_code = -10003
    type = "upstream_error"
    retryable = True


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"
    err_code = -1024


class GenerationFailed(GatewayError):
    """The upstream took the job and produced nothing (the 302 table's "500 generation failed")."""

    status = 500
    code = "generation_failed"
    err_code = -10003
    type = "generation_failed"


class ContentRefused(GatewayError):
    """The upstream's moderation refused the prompt or the input or output image."""

    status = 422
    code = "content_policy_violation"
    err_code = -10011
    type = "invalid_request_error"


class Unavailable(GatewayError):
    status = 503
    code = "no_available_channel"
    err_code = -10008
    type = "service_unavailable"
    retryable = True


class UpstreamClientError(GatewayError):
    """A 4xx the upstream gave for something the client sent: passed on with its own body."""

    retryable = False
    type = "invalid_request_error"
    err_code = -10011

    def __init__(self, status: int, body: dict[str, Any] | None, message: str) -> None:
        super().__init__(message, status=status)
        self.body = body

    @property
    def code(self) -> str:  # type: ignore[override]
        error = (self.body or {}).get("error")
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            return str(error["code"])
        return "upstream_rejected_request"
