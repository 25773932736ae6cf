"""The route table: one row per operation, used both to build the router and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from omnirelay.api import (
    admin,
    async_chat,
    chat,
    comfyui,
    dashboard,
    gemini,
    images,
    messages,
    midjourney,
    models,
    responses,
    system,
    videos,
)


@dataclass(frozen=True, slots=True)
class Op:
    method: str
    path: str
    endpoint: Callable[[Request], Awaitable[Any]]
    tag: str
    summary: str
    auth: str  # "client", "manager" (client key with allow_manage_key), "operator", "none"
    hot: bool = False  # dispatched directly, before Starlette's router (see api/asgi.py)


OPS: tuple[Op, ...] = (
    Op(
        "POST",
        "/v1/chat/completions",
        chat.chat_completions,
        "Chat",
        "OpenAI Chat Completions (JSON or SSE stream)",
        "client",
        hot=True,
    ),
    Op("GET", "/v1/async_result", async_chat.async_result, "Chat", "Result of an async chat task", "client"),
    Op("POST", "/v1/messages", messages.messages, "Chat", "Anthropic Messages (JSON or SSE)", "client"),
    Op("POST", "/v1/messages/count_tokens", messages.count_tokens, "Chat", "Anthropic token count", "client"),
    Op(
        "POST", "/v1/responses", responses.create_response, "Chat", "OpenAI Responses (JSON or SSE)", "client"
    ),
    Op(
        "POST",
        "/v1beta/models/{target}",
        gemini.model_action,
        "Chat",
        "Gemini generate / stream / count",
        "client",
    ),
    # The google-genai SDK's default API version is v1: the same methods under /v1/models.
    Op("POST", "/v1/models/{target}", gemini.model_action, "Chat", "Gemini methods (v1 path)", "client"),
    Op("GET", "/v1beta/models", gemini.list_models, "Chat", "Gemini model list", "client"),
    Op("GET", "/v1beta/models/{target}", gemini.get_model, "Chat", "One Gemini model", "client"),
    Op(
        "GET",
        "/v1/models",
        models.list_models,
        "Chat",
        "Models the key can reach, with 302 fields; llm=1|0",
        "client",
    ),
    Op("GET", "/v1/status", models.model_status, "Chat", "Recent first-byte latency per model", "client"),
    Op("GET", "/status", models.model_status, "Chat", "Alias of /v1/status", "client"),
    Op("GET", "/dashboard/balance", dashboard.balance, "Dashboard", "Account balance (USD)", "manager"),
    Op(
        "GET",
        "/dashboard/webhook-secret",
        dashboard.webhook_secret,
        "Dashboard",
        "Webhook signing secret",
        "manager",
    ),
    Op(
        "GET",
        "/dashboard/prices",
        dashboard.prices,
        "Dashboard",
        "Prices; path= and lang= filters",
        "manager",
    ),
    Op("GET", "/dashboard/api_keys", dashboard.list_keys, "Dashboard", "The account's keys", "manager"),
    Op(
        "POST",
        "/dashboard/api_key",
        dashboard.create_key,
        "Dashboard",
        "Create a key (clear key shown once)",
        "manager",
    ),
    Op(
        "PUT",
        "/dashboard/api_key",
        dashboard.update_key,
        "Dashboard",
        "Update a key named in the body",
        "manager",
    ),
    Op("GET", "/dashboard/api_key/{api_name}", dashboard.get_key, "Dashboard", "One key", "manager"),
    Op("PUT", "/dashboard/api_key/{api_name}", dashboard.update_key, "Dashboard", "Update a key", "manager"),
    Op(
        "DELETE",
        "/dashboard/api_key/{api_name}",
        dashboard.delete_key,
        "Dashboard",
        "Delete a key",
        "manager",
    ),
    Op(
        "GET",
        "/dashboard/record/{request_id}",
        dashboard.record,
        "Dashboard",
        "Cost of one request",
        "manager",
    ),
    Op(
        "GET", "/dashboard/api-record", dashboard.api_record, "Dashboard", "Request log, paginated", "manager"
    ),
    Op("GET", "/admin/accounts", admin.list_accounts, "Operator", "List accounts", "operator"),
    Op(
        "POST",
        "/admin/accounts",
        admin.create_account,
        "Operator",
        "Create an account {name, balance}",
        "operator",
    ),
    Op("GET", "/admin/accounts/{account_id}", admin.get_account, "Operator", "One account", "operator"),
    Op("POST", "/admin/accounts/{account_id}/topup", admin.topup, "Operator", "Add {amount} USD", "operator"),
    Op(
        "GET",
        "/admin/accounts/{account_id}/api_keys",
        admin.list_keys,
        "Operator",
        "The account's keys",
        "operator",
    ),
    Op(
        "POST",
        "/admin/accounts/{account_id}/api_keys",
        admin.create_key,
        "Operator",
        "Create a key (302 key settings)",
        "operator",
    ),
    Op("GET", "/admin/channels", admin.list_channels, "Operator", "List channels", "operator"),
    Op("POST", "/admin/channels", admin.create_channel, "Operator", "Add a channel", "operator"),
    Op(
        "GET",
        "/admin/channels/{name}",
        admin.get_channel,
        "Operator",
        "One channel (keys never shown)",
        "operator",
    ),
    Op("PUT", "/admin/channels/{name}", admin.put_channel, "Operator", "Replace a channel", "operator"),
    Op("DELETE", "/admin/channels/{name}", admin.delete_channel, "Operator", "Delete a channel", "operator"),
    Op(
        "POST", "/302/image/generate", images.generate_v1, "Images", "Unified image generation (V1)", "client"
    ),
    Op(
        "POST",
        "/302/v2/image/generate",
        images.generate_v2,
        "Images",
        "Unified image generation V2 (sync)",
        "client",
    ),
    Op("GET", "/302/v2/image/fetch/{task_id}", images.fetch_v2, "Images", "A V2 image task", "client"),
    Op(
        "POST",
        "/v1/images/generations",
        images.openai_generations,
        "Images",
        "OpenAI image generations",
        "client",
    ),
    Op("POST", "/v1/images/edits", images.openai_edits, "Images", "OpenAI image edits (multipart)", "client"),
    Op(
        "POST",
        "/v1/images/variations",
        images.openai_variations,
        "Images",
        "OpenAI image variations",
        "client",
    ),
    Op(
        "POST",
        "/302/images/generations",
        images.openai_generations,
        "Images",
        "OpenAI-format, any model",
        "client",
    ),
    Op(
        "POST", "/302/images/edits", images.openai_edits, "Images", "OpenAI-format edits, any model", "client"
    ),
    *(Op(m, p, e, "Video", s, "client") for m, p, e, s in videos.OPS),
    *(Op(m, p, e, "ComfyUI", s, "client") for m, p, e, s in comfyui.OPS),
    *(Op(m, p, e, "Midjourney", s, "client") for m, p, e, s in midjourney.OPS),
    Op("GET", "/files/{day}/{name}", images.serve_file, "Files", "A generated file", "none"),
    Op("GET", "/health", system.health, "System", "Liveness and readiness", "none"),
    Op("GET", "/openapi.json", system.openapi, "System", "This API description", "none"),
    Op("GET", "/docs", system.docs, "System", "API reference page", "none"),
)
