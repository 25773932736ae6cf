"""A midjourney-proxy "plus" upstream: submit, fetch and cancel Midjourney jobs.

Wire format (docs/midjourney.md): ``POST {base_url}{pool}/submit/{imagine|action|blend|describe|modal}``
answers ``{code, description, result, properties}`` (``result`` is the upstream task id);
``GET {base_url}{pool}/task/{id}/fetch`` answers the task object; ``POST {base_url}{pool}/task/{id}/cancel``
answers ``{code, description}``. Auth is the header ``mj-api-secret: <channel key>``. The pool is the
path prefix ``/mj`` (fast), ``/mj-relax`` or ``/mj-turbo``, chosen by the upstream model name the
channel maps the public pool id to (``POOLS``).

A submit answered HTTP 200 still carries a verdict in ``code``: ``RETURN_CODES`` says, as data, which
codes mean the job was accepted and how a refusal is classified (retry on another channel or not, the
client's fault or not). HTTP errors are classified like every image vendor's (``ImageAdapter``), except
that a 4xx body carrying a known return code follows the code's rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote

from omnirelay.providers.base import Capability, FailureKind, ProviderError
from omnirelay.providers.image_adapter import ImageAdapter

SECRET_HEADER = "mj-api-secret"
SUBMIT_ACTIONS = frozenset({"imagine", "action", "blend", "describe", "modal"})

# The upstream model name a channel maps a public pool id to -> the upstream path prefix. A name that
# starts with "/" is taken as the prefix itself (an upstream with another layout, e.g. "/mj-relax/mj").
POOLS: dict[str, str] = {
    "midjourney": "/mj",
    "midjourney-fast": "/mj",
    "fast": "/mj",
    "mj": "/mj",
    "midjourney-relax": "/mj-relax",
    "relax": "/mj-relax",
    "mj-relax": "/mj-relax",
    "midjourney-turbo": "/mj-turbo",
    "turbo": "/mj-turbo",
    "mj-turbo": "/mj-turbo",
}


@dataclass(frozen=True, slots=True)
class CodeRule:
    """What one midjourney-proxy return code means to the gateway."""

    meaning: str
    accepted: bool = False  # the job was taken: ``result`` is its upstream id
    retryable: bool = False  # another channel may take it
    client_fault: bool = False  # the request itself is wrong (or refused): never retried
    status: int | None = None  # the HTTP status a refusal is reported as (dispatch's error rules)
    moderation: bool = False  # a content refusal (the client's prompt)


# midjourney-proxy ``ReturnCode`` plus the "plus" API's codes (302.AI spec, section 4).
RETURN_CODES: dict[int, CodeRule] = {
    1: CodeRule("submitted", accepted=True),
    21: CodeRule("already exists, or waiting for a modal confirmation", accepted=True),
    22: CodeRule("queued", accepted=True),
    23: CodeRule("the upstream queue is full", retryable=True, status=429),
    24: CodeRule("the prompt contains banned words", client_fault=True, moderation=True),
    3: CodeRule("not found", client_fault=True, status=404),
    4: CodeRule("validation error", client_fault=True, status=400),
    9: CodeRule("system failure", retryable=True, status=502),
}
UNKNOWN_CODE = CodeRule("unknown return code", retryable=True, status=502)
# HTTP statuses that speak about the channel (its credential, its load), whatever code the body has.
_CHANNEL_STATUSES = frozenset({401, 402, 403, 408, 429})


def rule_of(code: int) -> CodeRule:
    return RETURN_CODES.get(code, UNKNOWN_CODE)


def pool_prefix(upstream_model: str) -> str:
    """The upstream path prefix of a pool; ProviderError (try another channel) when unknown."""
    if upstream_model.startswith("/"):
        return upstream_model.rstrip("/")
    prefix = POOLS.get(upstream_model.strip().lower())
    if prefix is None:
        raise ProviderError(
            FailureKind.CONNECT,
            f"the channel maps this model to {upstream_model!r}, which is not a Midjourney pool "
            f"(one of {', '.join(sorted(POOLS))}, or a path starting with '/')",
            retryable=True,
        )
    return prefix


class MidjourneyError(ProviderError):
    """A refusal the upstream gave as a return code (HTTP 200 or an error status with a body)."""

    def __init__(
        self, code: int, description: str, *, properties: dict[str, Any] | None = None, status: int | None
    ) -> None:
        rule = rule_of(code)
        super().__init__(
            FailureKind.GENERATION if rule.moderation else FailureKind.HTTP,
            description or rule.meaning,
            status=status if status is not None else rule.status,
            body={"code": code, "description": description, "properties": properties or {}},
            retryable=rule.retryable,
            client_fault=rule.client_fault,
        )
        self.code = code
        self.description = description or rule.meaning
        self.properties = dict(properties or {})


def return_code(exc: ProviderError) -> int | None:
    """The midjourney-proxy return code behind a failure, when the upstream gave one."""
    if isinstance(exc, MidjourneyError):
        return exc.code
    code = (exc.body or {}).get("code")
    return code if isinstance(code, int) and not isinstance(code, bool) else None


@dataclass(slots=True)
class SubmitReply:
    """An accepted submit (or cancel): the code (1, 21 or 22), its text and the upstream task id."""

    code: int
    description: str
    result: str | None
    properties: dict[str, Any] = field(default_factory=dict)


def parse_reply(body: Any, *, need_result: bool) -> SubmitReply:
    """A ``{code, description, result, properties}`` answer; raises for refusals and odd shapes."""
    if not isinstance(body, dict) or not isinstance(body.get("code"), int):
        raise ProviderError(
            FailureKind.HTTP, "the upstream answered without a return code", status=200, retryable=False
        )
    code = int(body["code"])
    description = str(body.get("description") or "")
    raw_properties = body.get("properties")
    properties: dict[str, Any] = raw_properties if isinstance(raw_properties, dict) else {}
    if not rule_of(code).accepted:
        raise MidjourneyError(code, description, properties=properties, status=None)
    result = body.get("result")
    if isinstance(result, int) and not isinstance(result, bool):
        result = str(result)
    if need_result and (not isinstance(result, str) or not result):
        # Accepted but nameless: the job may exist upstream, so it must not be sent anywhere else.
        raise ProviderError(
            FailureKind.HTTP,
            f"the upstream accepted the job (code {code}) without a task id",
            status=200,
            retryable=False,
        )
    return SubmitReply(code, description, result if isinstance(result, str) else None, dict(properties))


class MidjourneyAdapter(ImageAdapter):
    id: ClassVar[str] = "midjourney"
    family: ClassVar[str] = "midjourney"
    capabilities: ClassVar[frozenset[Capability]] = frozenset()  # not a generic image channel

    def classify(self, status: int, body: Any) -> tuple[bool, bool]:
        code = body.get("code") if isinstance(body, dict) else None
        if (
            status not in _CHANNEL_STATUSES
            and status < 500
            and isinstance(code, int)
            and code in RETURN_CODES
        ):
            rule = RETURN_CODES[code]
            if not rule.accepted:
                return rule.retryable, rule.client_fault
        return super().classify(status, body)

    def message_of(self, body: Any, fallback: str) -> str:
        if isinstance(body, dict):
            for name in ("description", "message", "error"):
                value = body.get(name)
                if isinstance(value, str) and value:
                    return value
        return super().message_of(body, fallback)

    def _url(self, pool: str, path: str) -> str:
        return f"{self.base_url.rstrip('/')}{pool}{path}"

    @staticmethod
    def _headers(api_key: str) -> dict[str, str]:
        return {SECRET_HEADER: api_key}

    async def submit_job(
        self, pool: str, action: str, body: dict[str, Any], api_key: str, deadline: float
    ) -> SubmitReply:
        """POST one submit; the accepted reply (code 1, 21 or 22), else ProviderError/MidjourneyError."""
        if action not in SUBMIT_ACTIONS:
            raise ValueError(f"unknown Midjourney submit action {action!r}")
        answer = await self.call_json(
            "POST",
            self._url(pool, f"/submit/{action}"),
            deadline=deadline,
            headers=self._headers(api_key),
            json=body,
        )
        return parse_reply(answer, need_result=True)

    async def fetch_task(self, pool: str, upstream_id: str, api_key: str, deadline: float) -> dict[str, Any]:
        """The upstream task object (``status``, ``progress``, ``imageUrl``, ``buttons``, ...)."""
        answer = await self.call_json(
            "GET",
            self._url(pool, f"/task/{quote(upstream_id, safe='')}/fetch"),
            deadline=deadline,
            headers=self._headers(api_key),
        )
        if not isinstance(answer, dict) or not isinstance(answer.get("status"), str):
            raise ProviderError(
                FailureKind.HTTP, "the upstream answered a fetch without a task", status=200, retryable=True
            )
        return answer

    async def cancel_task(self, pool: str, upstream_id: str, api_key: str, deadline: float) -> SubmitReply:
        """Ask the upstream to cancel; code 1 is done, a refusal raises MidjourneyError."""
        answer = await self.call_json(
            "POST",
            self._url(pool, f"/task/{quote(upstream_id, safe='')}/cancel"),
            deadline=deadline,
            headers=self._headers(api_key),
            json={},
        )
        return parse_reply(answer, need_result=False)
