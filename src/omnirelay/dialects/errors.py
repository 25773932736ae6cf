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


def error_openai(exc: GatewayError) -> dict[str, Any]:
    """OpenAI's error object; gateway-side errors also carry the 302 fields, which OpenAI SDKs ignore."""
    if isinstance(exc, UpstreamClientError) and exc.body is not None:
        return exc.body
    body = error_302(exc)
    error = body["error"]
    error["param"] = exc.param
    error["code"] = exc.code
    return body
