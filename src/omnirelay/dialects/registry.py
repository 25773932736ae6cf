"""Dialect objects by name: inbound (what clients speak) and upstream (what adapters speak)."""

from __future__ import annotations

import functools
import importlib
from typing import Any

from omnirelay.dialects.base import InboundDialect, UpstreamDialect

_INBOUND = {
    "openai_chat": "omnirelay.dialects.openai_chat_convert:OpenAIChatInbound",
    "anthropic": "omnirelay.dialects.anthropic:AnthropicInbound",
    "gemini": "omnirelay.dialects.gemini:GeminiInbound",
    "openai_responses": "omnirelay.dialects.openai_responses:ResponsesInbound",
}
_UPSTREAM = {
    "openai_chat": "omnirelay.dialects.openai_chat_convert:OpenAIChatUpstream",
    "anthropic": "omnirelay.dialects.anthropic:AnthropicUpstream",
    "gemini": "omnirelay.dialects.gemini:GeminiUpstream",
}


def _load(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)()


@functools.cache
def inbound(name: str) -> InboundDialect:
    dialect: InboundDialect = _load(_INBOUND[name])
    return dialect


@functools.cache
def upstream(name: str) -> UpstreamDialect:
    dialect: UpstreamDialect = _load(_UPSTREAM[name])
    return dialect
