"""The one canonical usage record every route settles through.

The parts never overlap, so a cost is a plain sum: ``input_uncached`` excludes cache reads and
writes, ``output`` includes reasoning tokens (``reasoning`` is a breakdown of ``output``, not an extra
charge). Each provider's usage block is mapped here by a pure function in its dialect module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True, frozen=True)
class Usage:
    input_uncached: int = 0
    input_cache_read: int = 0
    input_cache_write: int = 0
    output: int = 0
    reasoning: int = 0
    requests: int = 1
    estimated: bool = False  # counted locally because the upstream reported none

    @property
    def input_total(self) -> int:
        return self.input_uncached + self.input_cache_read + self.input_cache_write


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def from_openai_usage(usage: dict[str, Any]) -> Usage:
    """OpenAI chat usage: ``prompt_tokens`` includes cached tokens; ``completion_tokens`` includes
    reasoning. Some OpenAI-compatible vendors report ``prompt_cache_hit_tokens`` (DeepSeek) instead of
    ``prompt_tokens_details.cached_tokens``."""
    prompt = _int(usage.get("prompt_tokens"))
    completion = _int(usage.get("completion_tokens"))
    details = usage.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    if not cached:
        cached = _int(usage.get("prompt_cache_hit_tokens"))
    cached = min(cached, prompt)
    out_details = usage.get("completion_tokens_details")
    reasoning = _int(out_details.get("reasoning_tokens")) if isinstance(out_details, dict) else 0
    return Usage(
        input_uncached=prompt - cached,
        input_cache_read=cached,
        output=completion,
        reasoning=min(reasoning, completion),
    )
