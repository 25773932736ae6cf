"""omnirelay.errors and omnirelay.dialects.errors: statuses, 302 err_codes and rendered bodies."""

from __future__ import annotations

from typing import Any

import pytest

from omnirelay import errors as E
from omnirelay.dialects.errors import error_302, error_openai


@pytest.mark.parametrize(
    ("exc_type", "status", "err_code", "code", "type_"),
    [
        (E.GatewayError, 500, -10003, "internal_error", "server_error"),
        (E.InvalidRequest, 400, -10011, "invalid_request", "invalid_request_error"),
        (E.UnprocessableEntity, 422, -10011, "invalid_request", "invalid_request_error"),
        (E.Unauthenticated, 401, -10001, "invalid_api_key", "unauthorized"),
        (E.MissingKey, 401, -10001, "missing_api_key", "unauthorized"),
        (E.KeyExpired, 401, -10005, "api_key_expired", "unauthorized"),
        (E.PermissionDenied, 403, -10009, "permission_denied", "permission_error"),
        (E.InsufficientBalance, 402, -10004, "insufficient_balance", "insufficient_quota"),
        (E.KeyCostLimit, 402, -10006, "key_cost_limit_reached", "insufficient_quota"),
        (E.KeyDailyLimit, 402, -10007, "key_daily_limit_reached", "insufficient_quota"),
        (E.NotFound, 404, -10010, "not_found", "invalid_request_error"),
        (E.ModelNotFound, 404, -10010, "model_not_found", "invalid_request_error"),
        (E.MethodNotAllowed, 405, -10009, "method_not_allowed", "invalid_request_error"),
        (E.PayloadTooLarge, 413, -10011, "payload_too_large", "invalid_request_error"),
        (E.RateLimited, 429, -10003, "rate_limit_exceeded", "rate_limit_error"),
        (E.UpstreamError, 502, -10003, "upstream_error", "upstream_error"),
        (E.UpstreamTimeout, 504, -1024, "upstream_timeout", "upstream_error"),
        (E.Unavailable, 503, -10008, "no_available_channel", "service_unavailable"),
    ],
)
def test_error_table(
    exc_type: type[E.GatewayError], status: int, err_code: int, code: str, type_: str
) -> None:
    exc = exc_type("msg")
    assert exc.http_status == status
    assert exc.err_code == err_code
    assert exc.code == code
    assert exc.type == type_
    assert exc.message == "msg"
    assert str(exc) == "msg"
    assert exc.param is None


def test_spec_err_codes() -> None:
    assert E.MissingKey.err_code == -10001  # missing / invalid key
    assert E.InsufficientBalance.err_code == -10004
    assert E.KeyExpired.err_code == -10005
    assert E.KeyCostLimit.err_code == -10006  # the key's total limit
    assert E.KeyDailyLimit.err_code == -10007
    assert E.Unavailable.err_code == -10008  # no channel
    assert E.UpstreamTimeout.err_code == -1024


def test_retryable_flags() -> None:
    assert E.RateLimited("x").retryable is True
    assert E.UpstreamError("x").retryable is True
    assert E.UpstreamTimeout("x").retryable is True
    assert E.Unavailable("x").retryable is True
    assert E.InvalidRequest("x").retryable is False
    assert E.UpstreamClientError(400, None, "x").retryable is False


def test_status_override_and_param() -> None:
    exc = E.InvalidRequest("bad", param="messages[0]", status=413)
    assert exc.http_status == 413
    assert exc.status == 400
    assert exc.param == "messages[0]"


def test_subclasses_catchable_by_family() -> None:
    assert issubclass(E.KeyCostLimit, E.InsufficientBalance)
    assert issubclass(E.MissingKey, E.Unauthenticated)
    assert issubclass(E.UpstreamTimeout, E.UpstreamError)
    assert issubclass(E.UpstreamClientError, E.GatewayError)


# ---- error_302 ----------------------------------------------------------------------------------


def test_error_302_shape() -> None:
    assert error_302(E.KeyExpired("Your API key expired on 2025-01-01.")) == {
        "error": {
            "err_code": -10005,
            "message": "Your API key expired on 2025-01-01.",
            "message_cn": "API Key 已过期：Your API key expired on 2025-01-01.",
            "message_en": "Your API key expired on 2025-01-01.",
            "message_jp": "API キーの有効期限が切れています：Your API key expired on 2025-01-01.",
            "type": "unauthorized",
        }
    }


@pytest.mark.parametrize(
    ("exc", "cn", "jp"),
    [
        (E.MissingKey("m"), "API Key 无效或缺失", "API キーが無効か、指定されていません"),
        (E.InsufficientBalance("m"), "账户余额不足", "アカウント残高が不足しています"),
        (E.KeyCostLimit("m"), "API Key 已达到总额度上限", "API キーの総利用上限に達しました"),
        (E.KeyDailyLimit("m"), "API Key 已达到每日额度上限", "API キーの1日の利用上限に達しました"),
        (E.Unavailable("m"), "没有可用的渠道", "利用可能なチャネルがありません"),
        (E.UpstreamTimeout("m"), "AI 上游连接超时", "AI アップストリームへの接続がタイムアウトしました"),
        (
            E.UpstreamError("m"),
            "网络错误，请稍后重试",
            "ネットワークエラーです。しばらくしてから再試行してください",
        ),
        (E.InvalidRequest("m"), "请求参数错误", "リクエストが不正です"),
        (E.NotFound("m"), "资源不存在", "リソースが見つかりません"),
        (
            E.PermissionDenied("m"),
            "不支持此 API 功能或无权限",
            "この API 機能はサポートされていないか、権限がありません",
        ),
    ],
)
def test_error_302_translations(exc: E.GatewayError, cn: str, jp: str) -> None:
    error = error_302(exc)["error"]
    assert error["message_cn"] == f"{cn}：m"
    assert error["message_jp"] == f"{jp}：m"
    assert error["message_en"] == "m"
    assert error["err_code"] == exc.err_code


def test_error_302_unknown_err_code_falls_back() -> None:
    class Odd(E.GatewayError):
        err_code = -99999
        type = "odd"

    assert error_302(Odd("x")) == {
        "error": {
            "err_code": -99999,
            "message": "x",
            "message_cn": "请求失败：x",
            "message_en": "x",
            "message_jp": "リクエストに失敗しました：x",
            "type": "odd",
        }
    }


def test_error_302_has_no_openai_fields() -> None:
    assert set(error_302(E.InvalidRequest("x", param="model"))["error"]) == {
        "err_code",
        "message",
        "message_cn",
        "message_en",
        "message_jp",
        "type",
    }


# ---- error_openai -------------------------------------------------------------------------------


def test_error_openai_includes_param_code_and_302_fields() -> None:
    assert error_openai(E.InvalidRequest("'model' must be a non-empty string", param="model")) == {
        "error": {
            "err_code": -10011,
            "message": "'model' must be a non-empty string",
            "message_cn": "请求参数错误：'model' must be a non-empty string",
            "message_en": "'model' must be a non-empty string",
            "message_jp": "リクエストが不正です：'model' must be a non-empty string",
            "type": "invalid_request_error",
            "param": "model",
            "code": "invalid_request",
        }
    }


def test_error_openai_null_param() -> None:
    error = error_openai(E.Unavailable("none"))["error"]
    assert error["param"] is None
    assert error["code"] == "no_available_channel"
    assert error["err_code"] == -10008
    assert error["type"] == "service_unavailable"


def test_upstream_client_error_passes_body_through() -> None:
    body: dict[str, Any] = {
        "error": {
            "message": "This model's maximum context length is 8192 tokens.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    }
    exc = E.UpstreamClientError(400, body, "This model's maximum context length is 8192 tokens.")
    assert error_openai(exc) is body
    assert exc.http_status == 400
    assert exc.code == "context_length_exceeded"
    assert exc.err_code == -10011
    assert exc.type == "invalid_request_error"


def test_upstream_client_error_keeps_upstream_status() -> None:
    exc = E.UpstreamClientError(404, {"error": {"message": "no such model"}}, "no such model")
    assert exc.http_status == 404
    assert exc.code == "upstream_rejected_request"  # the body has no string code


@pytest.mark.parametrize("body", [None, {}, {"error": "text"}, {"error": {"code": 400}}])
def test_upstream_client_error_default_code(body: dict[str, Any] | None) -> None:
    assert E.UpstreamClientError(422, body, "m").code == "upstream_rejected_request"


def test_upstream_client_error_without_body_rendered_as_gateway_error() -> None:
    exc = E.UpstreamClientError(413, None, "too large")
    assert error_openai(exc) == {
        "error": {
            "err_code": -10011,
            "message": "too large",
            "message_cn": "请求参数错误：too large",
            "message_en": "too large",
            "message_jp": "リクエストが不正です：too large",
            "type": "invalid_request_error",
            "param": None,
            "code": "upstream_rejected_request",
        }
    }
    assert exc.http_status == 413


def test_error_302_of_upstream_client_error_ignores_its_body() -> None:
    exc = E.UpstreamClientError(400, {"error": {"message": "upstream words", "code": "x"}}, "ours")
    assert error_302(exc)["error"]["message"] == "ours"
