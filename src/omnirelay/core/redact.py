"""Keep upstream secrets out of anything a client or a log line sees."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

# Key-shaped tokens, including the masked echoes vendors put in error messages ("sk-abc*****xyz").
_KEY_SHAPES = re.compile(r"\b(?:sk|pk|rk|key|api)[-_][A-Za-z0-9*._-]{6,}", re.IGNORECASE)
_BEARER = re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=*-]+")
REDACTED = "[redacted]"


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        value = _BEARER.sub("Bearer " + REDACTED, value)
        return _KEY_SHAPES.sub(REDACTED, value)

    def json(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json(v) for v in value]
        return value
