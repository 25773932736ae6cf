"""Webhook delivery: signed, retried with backoff, recorded, never able to block the engine.

Signature (documented in docs/tasks.md): header ``X-Omnirelay-Signature: t=<unix seconds>,v1=<hex>``
where ``hex = HMAC-SHA256(account webhook secret, "<t>.<raw body>")``. Receivers recompute it and
reject stale timestamps. The URL obeys the guarded fetcher's address rules at every delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import aiohttp
import orjson

from omnirelay.core.fetch import FetchPolicy, pinned_target, vet_outbound_url
from omnirelay.errors import UnprocessableEntity

SIGNATURE_HEADER = "X-Omnirelay-Signature"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(
    secret: str, body: bytes, header: str, *, tolerance_s: int = 300, now: float | None = None
) -> bool:
    """What a receiver does: recompute and compare in constant time, refuse stale timestamps."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), header)


async def check_url(url: str, policy: FetchPolicy, *, param: str) -> None:
    """Refuse at submit time a webhook the engine would refuse to call (422 that says why)."""
    await vet_outbound_url(url, policy, param=param, what="webhook URL")


async def deliver(
    http: aiohttp.ClientSession,
    url: str,
    payload: dict[str, object],
    *,
    secret: str,
    task_id: str,
    event: str,
    policy: FetchPolicy,
    timeout_s: float,
) -> str | None:
    """POST once; None on a 2xx answer, else the reason (for the record and the retry)."""
    try:
        parsed, addresses = await vet_outbound_url(url, policy, param="webhook", what="webhook URL")
    except UnprocessableEntity as exc:
        return exc.message
    body = orjson.dumps(payload)
    headers = {
        "Content-Type": "application/json",
        "Host": str(parsed.raw_authority),
        "User-Agent": "omnirelay-webhook/1",
        SIGNATURE_HEADER: sign(secret, body, int(time.time())),
        "X-Omnirelay-Task-Id": task_id,
        "X-Omnirelay-Event": event,
    }
    sni = str(parsed.raw_host) if parsed.scheme == "https" else None
    try:
        async with http.post(
            pinned_target(parsed, addresses[0]),
            data=body,
            headers=headers,
            allow_redirects=False,
            server_hostname=sni,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as resp:
            if 200 <= resp.status < 300:
                return None
            return f"HTTP {resp.status}"
    except (TimeoutError, aiohttp.ClientError) as exc:
        return f"{type(exc).__name__}"
