"""Rendering a GatewayError in each route family's own error body (spec §9)."""

from __future__ import annotations

from typing import Any

from omnirelay.errors import GatewayError, UpstreamClientError

# err_code -> (Chinese, Japanese) lead sentence; the English message is the error's own text.
_TRANSLATIONS: dict[int, tuple[str, str]] = {
    -10001: ("API Key 无效或缺失", "API キーが無効か、指定されていません"),
    -10003: ("网络错误，请稍后重试", "ネットワークエラーです。しばらくしてから再試行してください"),
    -10004: ("账户余额不足", "アカウント残高が不足しています"),
    -10005: ("API Key 已过期", "API キーの有効期限が切れています"),
    -10006: ("API Key 已达到总额度上限", "API キーの総利用上限に達しました"),
    -10007: ("API Key 已达到每日额度上限", "API キーの1日の利用上限に達しました"),
    -10008: ("没有可用的渠道", "利用可能なチャネルがありません"),
    -10009: ("不支持此 API 功能或无权限", "この API 機能はサポートされていないか、権限がありません"),
    -10010: ("资源不存在", "リソースが見つかりません"),
    -10011: ("请求参数错误", "リクエストが不正です"),
    -1024: ("AI 上游连接超时", "AI アップストリームへの接続がタイムアウトしました"),
}


def error_302(exc: GatewayError) -> dict[str, Any]:
    cn, jp = _TRANSLATIONS.get(exc.err_code, ("请求失败", "リクエストに失敗しました"))
    return {
        "error": {
            "err_code": exc.err_code,
            "message": exc.message,
            "message_cn": f"{cn}：{exc.message}",
            "message_en": exc.message,
            "message_jp": f"{jp}：{exc.message}",
            "type": exc.type,
        }
    }


_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "overloaded_error",
}
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    402: "RESOURCE_EXHAUSTED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    413: "INVALID_ARGUMENT",
    422: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _with_302_fields(error: dict[str, Any], exc: GatewayError) -> dict[str, Any]:
    fields = error_302(exc)["error"]
    for name in ("err_code", "message_cn", "message_en", "message_jp"):
        error[name] = fields[name]
    return error


def error_anthropic(exc: GatewayError) -> dict[str, Any]:
    """Anthropic's ``{"type": "error", "error": {"type", "message"}}`` (plus the 302 fields)."""
    if (
        isinstance(exc, UpstreamClientError)
        and isinstance(exc.body, dict)
        and exc.body.get("type") == "error"
    ):
        return exc.body
    kind = _ANTHROPIC_TYPES.get(exc.http_status, "api_error")
    return {"type": "error", "error": _with_302_fields({"type": kind, "message": exc.message}, exc)}


def error_google(exc: GatewayError) -> dict[str, Any]:
    """Google's ``{"error": {"code", "message", "status"}}`` (plus the 302 fields)."""
    if isinstance(exc, UpstreamClientError) and isinstance(exc.body, dict):
        inner = exc.body.get("error")
        if isinstance(inner, dict) and "status" in inner:
            return exc.body
    status = _GOOGLE_STATUS.get(exc.http_status, "INTERNAL")
    error = {"code": exc.http_status, "message": exc.message, "status": status}
    return {"error": _with_302_fields(error, exc)}


def error_openai(exc: GatewayError) -> dict[str, Any]:
    """OpenAI's error object; gateway-side errors also carry the 302 fields, which OpenAI SDKs ignore."""
    if isinstance(exc, UpstreamClientError) and exc.body is not None and "type" not in exc.body:
        return exc.body  # an OpenAI-shaped upstream error, passed on as it came
    body = error_302(exc)
    error = body["error"]
    error["param"] = exc.param
    error["code"] = exc.code
    return body
