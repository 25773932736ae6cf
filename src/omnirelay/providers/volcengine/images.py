"""Volcengine Doubao image generation over two vendor APIs, picked by the model's ``options.api``.

- ``ark``: Volcengine Ark (Seedream 3.0), ``POST {base_url}/images/generations`` with
  ``Authorization: Bearer <Ark API key>``; the channel's ``base_url`` is the Ark root, e.g.
  ``https://ark.cn-beijing.volces.com/api/v3``.
- ``visual``: the visual (CV) API for the v2.x models, ``POST {base_url}/?Action=CVProcess&
  Version=2022-08-31``; the channel's ``base_url`` is e.g. ``https://visual.volcengineapi.com`` and
  its key is ``ACCESS_KEY_ID:SECRET_ACCESS_KEY``: every request is signed with Volcengine's
  HMAC-SHA256 scheme (``sign_request``).

Both APIs make one image per call; for ``n`` > 1 the adapter makes ``n`` calls at once and returns
the images of those that succeeded. Errors are classified through the data tables below.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import orjson

from omnirelay.core.images import GeneratedImage, ImageJob, ImageResult
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.image_adapter import ImageAdapter, generation_failed
from omnirelay.providers.openai_compat.errors import classify_status, error_message

# --- the visual API's request signature -----------------------------------------------------------

SIGN_ALGORITHM = "HMAC-SHA256"
CV_REGION = "cn-north-1"
CV_SERVICE = "cv"
CV_QUERY = {"Action": "CVProcess", "Version": "2022-08-31"}
JSON_TYPE = "application/json"


def uri_encode(value: str, *, keep_slash: bool = False) -> str:
    """RFC 3986 percent-encoding: everything but unreserved characters (and ``/`` in paths)."""
    return quote(value, safe="-_.~/" if keep_slash else "-_.~")


def canonical_query(query: Mapping[str, str]) -> str:
    return "&".join(f"{uri_encode(k)}={uri_encode(v)}" for k, v in sorted(query.items()))


def signing_key(secret_key: str, short_date: str, region: str, service: str) -> bytes:
    key = secret_key.encode()
    for part in (short_date, region, service, "request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def sign_request(
    *,
    method: str,
    host: str,
    path: str,
    query: Mapping[str, str],
    body: bytes,
    access_key: str,
    secret_key: str,
    when: datetime,
    content_type: str = JSON_TYPE,
    region: str = CV_REGION,
    service: str = CV_SERVICE,
) -> dict[str, str]:
    """The headers that sign one request (Volcengine's V4-style HMAC-SHA256); pure.

    Signs ``content-type``, ``host``, ``x-content-sha256`` and ``x-date``; the returned headers must
    be sent exactly as given (``Host`` included).
    """
    x_date = when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    short_date = x_date[:8]
    payload_hash = hashlib.sha256(body).hexdigest()
    signed = {"content-type": content_type, "host": host, "x-content-sha256": payload_hash, "x-date": x_date}
    names = sorted(signed)
    signed_headers = ";".join(names)
    canonical_headers = "".join(f"{name}:{signed[name].strip()}\n" for name in names)
    canonical_request = "\n".join(
        [
            method.upper(),
            uri_encode(path or "/", keep_slash=True),
            canonical_query(query),
            canonical_headers,
            signed_headers,
            payload_hash,
        ]
    )
    scope = f"{short_date}/{region}/{service}/request"
    string_to_sign = "\n".join(
        [SIGN_ALGORITHM, x_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = signing_key(secret_key, short_date, region, service)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "Content-Type": content_type,
        "Host": host,
        "X-Content-Sha256": payload_hash,
        "X-Date": x_date,
        "Authorization": (
            f"{SIGN_ALGORITHM} Credential={access_key}/{scope}, "
            f"SignedHeaders={signed_headers}, Signature={signature}"
        ),
    }


def split_credentials(api_key: str) -> tuple[str, str]:
    """``ACCESS_KEY_ID:SECRET_ACCESS_KEY`` -> the pair; a key of another form is a channel mistake."""
    access_key, sep, secret_key = api_key.partition(":")
    if not sep or not access_key.strip() or not secret_key.strip():
        raise ProviderError(
            FailureKind.CONNECT,
            "the volcengine visual channel's key must be 'ACCESS_KEY_ID:SECRET_ACCESS_KEY'",
            retryable=True,
        )
    return access_key.strip(), secret_key.strip()


# --- error tables ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CodeRule:
    """What a vendor error code means: the HTTP status it amounts to, and how to route it."""

    status: int
    retryable: bool
    client_fault: bool
    moderated: bool = False


_MODERATED = CodeRule(422, False, True, moderated=True)
_CHANNEL = CodeRule(401, True, False)

# Visual API business codes (the ``code`` field; 10000 is success). They come with HTTP 200, or with
# the HTTP status the vendor lists for them (400 audit failures, 429 limits, 500 internal errors).
VISUAL_CODES: dict[int, CodeRule] = {
    50411: _MODERATED,  # Pre Img Risk Not Pass: the input image failed the audit
    50412: _MODERATED,  # Text Risk Not Pass: the prompt failed the audit
    50413: _MODERATED,  # Post Text Risk Not Pass: sensitive or copyrighted words in the prompt
    50511: _MODERATED,  # Post Img Risk Not Pass: the generated image failed the audit
    50512: _MODERATED,  # Post Text Risk Not Pass (output text)
    50518: _MODERATED,  # Pre Img Risk Not Pass: Copyright
    50519: _MODERATED,  # Post Img Risk Not Pass: Copyright
    50520: CodeRule(502, True, False),  # Risk Internal Error: the audit service failed
    50521: CodeRule(502, True, False),  # Antidirt Internal Error
    50522: CodeRule(502, True, False),  # Image Copyright Internal Error
    50429: CodeRule(429, True, False),  # Request Has Reached API Limit (QPS)
    50430: CodeRule(429, True, False),  # Request Has Reached API Concurrent Limit
    50500: CodeRule(500, True, False),  # Internal Error
    50501: CodeRule(500, True, False),  # Internal RPC Error
    50215: CodeRule(400, False, True),  # Input invalid for this service
}
VISUAL_SUCCESS = 10000
# An unknown non-success code in a 200 answer: the upstream failed, another channel may not.
_UNKNOWN_CODE = CodeRule(502, True, False)

# Errors of Volcengine's OpenAPI gateway (``ResponseMetadata.Error.Code``), before the CV service.
VISUAL_GATEWAY_CODES: dict[str, tuple[bool, bool]] = {
    "SignatureDoesNotMatch": (True, False),
    "InvalidAccessKey": (True, False),
    "MissingSignature": (True, False),
    "MissingAuthenticationToken": (True, False),
    "InvalidTimestamp": (True, False),
    "AccessDenied": (True, False),
    "InvalidActionOrVersion": (True, False),  # the channel points at the wrong service
    "FlowLimitExceeded": (True, False),
    "ServiceUnavailableTemp": (True, False),
    "InternalError": (True, False),
    "InternalServiceError": (True, False),
}

# Ark error codes (``error.code``); a dotted code also matches by its first part.
ARK_CODES: dict[str, tuple[bool, bool]] = {
    "AuthenticationError": (True, False),
    "AccessDenied": (True, False),
    "AccountOverdueError": (True, False),
    "OperationDenied": (True, False),  # e.g. OperationDenied.ServiceNotOpen
    "ModelNotOpen": (True, False),
    "InvalidEndpointOrModel": (True, False),  # the channel lacks the model: another may have it
    "InvalidEndpoint": (True, False),
    "RateLimitExceeded": (True, False),
    "QuotaExceeded": (True, False),
    "SetLimitExceeded": (True, False),
    "ServerOverloaded": (True, False),
    "InternalServiceError": (True, False),
    "InvalidParameter": (False, True),
    "MissingParameter": (False, True),
}
ARK_MODERATION = frozenset(
    {
        "SensitiveContentDetected",
        "InputTextSensitiveContentDetected",
        "InputImageSensitiveContentDetected",
        "OutputImageSensitiveContentDetected",
        "OutputTextSensitiveContentDetected",
    }
)


def _ark_code(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) and code else None


def _gateway_error(body: Any) -> dict[str, Any] | None:
    meta = body.get("ResponseMetadata") if isinstance(body, dict) else None
    error = meta.get("Error") if isinstance(meta, dict) else None
    return error if isinstance(error, dict) else None


def _visual_code(body: Any) -> int | None:
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def classify_volcengine(status: int, body: Any) -> tuple[bool, bool]:
    """(retry elsewhere, client's fault) for an error answer of either API, by its codes."""
    ark = _ark_code(body)
    if ark is not None:
        rule = ARK_CODES.get(ark) or ARK_CODES.get(ark.split(".")[0])
        if rule is not None:
            return rule
    gateway = _gateway_error(body)
    if gateway is not None:
        name = gateway.get("Code")
        if isinstance(name, str) and name in VISUAL_GATEWAY_CODES:
            return VISUAL_GATEWAY_CODES[name]
    code = _visual_code(body)
    if code is not None and code in VISUAL_CODES:
        rule_v = VISUAL_CODES[code]
        return rule_v.retryable, rule_v.client_fault
    return classify_status(status, body if isinstance(body, dict) else None)


def volcengine_message(body: Any, fallback: str) -> str:
    gateway = _gateway_error(body)
    if gateway is not None and isinstance(gateway.get("Message"), str):
        return str(gateway["Message"])
    return error_message(body if isinstance(body, dict) else None, fallback)


def moderation_message(body: Any) -> str | None:
    """The vendor's message when ``body`` reports a content-audit refusal, else None."""
    ark = _ark_code(body)
    if ark is not None and (ark in ARK_MODERATION or ark.split(".")[0] in ARK_MODERATION):
        return volcengine_message(body, ark)
    code = _visual_code(body)
    if code is not None and code in VISUAL_CODES and VISUAL_CODES[code].moderated:
        return volcengine_message(body, f"content audit failed ({code})")
    return None


def visual_code_error(body: dict[str, Any]) -> ProviderError:
    """The error for a visual answer whose ``code`` is not success (HTTP 200 or not)."""
    code = _visual_code(body)
    rule = VISUAL_CODES.get(code, _UNKNOWN_CODE) if code is not None else _UNKNOWN_CODE
    message = volcengine_message(body, f"the visual API answered code {code}")
    if rule.moderated:
        return generation_failed(message, moderated=True)
    return ProviderError(
        FailureKind.HTTP,
        message,
        status=rule.status,
        body=body,
        retryable=rule.retryable,
        client_fault=rule.client_fault,
    )


# --- request and response mapping -----------------------------------------------------------------

ARK_MIN_SIDE = 512
ARK_MAX_SIDE = 2048
# The model_version the v2.x req_keys go with; options.model_version overrides.
VISUAL_MODEL_VERSIONS = {
    "high_aes_general_v20": "general_v2.0",
    "high_aes_general_v20_L": "general_v2.0_L",
    "high_aes_general_v21_L": "general_v2.1_L",
}
# Client extras passed through to each API when present.
ARK_EXTRAS = ("guidance_scale", "watermark")
VISUAL_EXTRAS = (
    "scale",
    "ddim_steps",
    "use_sr",
    "use_pre_llm",
    "use_rephraser",
    "req_schedule_conf",
    "logo_info",
)
_BASE64_FIELDS = frozenset({"b64_json", "binary_data_base64"})


def ark_size(width: int, height: int) -> tuple[int, int]:
    """Seedream 3.0 takes sides in [512, 2048]: scale a smaller request up, keeping its ratio."""
    w, h = max(1, width), max(1, height)
    if min(w, h) < ARK_MIN_SIDE:
        factor = ARK_MIN_SIDE / min(w, h)
        w, h = round(w * factor), round(h * factor)
    return min(w, ARK_MAX_SIDE), min(h, ARK_MAX_SIDE)


def ark_request(job: ImageJob) -> dict[str, Any]:
    width, height = ark_size(job.width, job.height)
    body: dict[str, Any] = {
        "model": job.spec.upstream_model,
        "prompt": job.prompt,
        "size": f"{width}x{height}",
        "response_format": str(job.spec.options.get("response_format", "url")),
        "watermark": bool(job.spec.options.get("watermark", False)),
    }
    if job.seed is not None:
        body["seed"] = job.seed
    for name in ARK_EXTRAS:
        if name in job.extra and job.extra[name] is not None:
            body[name] = job.extra[name]
    return body


def visual_request(job: ImageJob) -> dict[str, Any]:
    body: dict[str, Any] = {
        "req_key": job.spec.upstream_model,
        "prompt": job.prompt,
        "width": job.width,
        "height": job.height,
        "seed": job.seed if job.seed is not None else -1,
        "return_url": True,
    }
    version = job.spec.options.get("model_version") or VISUAL_MODEL_VERSIONS.get(job.spec.upstream_model)
    if version:
        body["model_version"] = str(version)
    for name in VISUAL_EXTRAS:
        if name in job.extra and job.extra[name] is not None:
            body[name] = job.extra[name]
    return body


def _decode(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProviderError(
            FailureKind.HTTP, "the upstream sent an image that is not valid base64", retryable=True
        ) from exc


def ark_images(body: Any) -> list[GeneratedImage]:
    items = body.get("data") if isinstance(body, dict) else None
    images: list[GeneratedImage] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("b64_json"), str) and item["b64_json"]:
            images.append(GeneratedImage(data=_decode(item["b64_json"])))
        elif isinstance(item.get("url"), str) and item["url"]:
            images.append(GeneratedImage(url=item["url"]))
    return images


def visual_images(body: Any) -> list[GeneratedImage]:
    """The images of a code-10000 answer: inline bytes when sent, else the (24 h) URLs."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        return []
    inline = data.get("binary_data_base64")
    if isinstance(inline, list) and any(isinstance(v, str) and v for v in inline):
        return [GeneratedImage(data=_decode(v)) for v in inline if isinstance(v, str) and v]
    urls = data.get("image_urls")
    return [GeneratedImage(url=u) for u in urls if isinstance(u, str) and u] if isinstance(urls, list) else []


def trim_base64(value: Any) -> Any:
    """``value`` with inline image data replaced by a short note (for ``ImageResult.raw``)."""
    if isinstance(value, dict):
        return {k: _trimmed(v) if k in _BASE64_FIELDS else trim_base64(v) for k, v in value.items()}
    if isinstance(value, list):
        return [trim_base64(v) for v in value]
    return value


def _trimmed(value: Any) -> Any:
    if isinstance(value, str):
        return f"<{len(value)} base64 characters omitted>"
    if isinstance(value, list):
        return [_trimmed(v) for v in value]
    return value


async def fan_out(
    n: int, one: Callable[[], Awaitable[tuple[Any, list[GeneratedImage]]]]
) -> list[tuple[Any, list[GeneratedImage]]]:
    """``n`` calls at once; the answers of those that succeeded, or the first failure if none did."""
    if n <= 1:
        return [await one()]
    outcomes = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
    answers = [o for o in outcomes if not isinstance(o, BaseException)]
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, ProviderError):
            raise outcome
    if not answers:
        first = next(o for o in outcomes if isinstance(o, BaseException))
        raise first
    return answers


# --- the adapter ----------------------------------------------------------------------------------


class VolcengineImageAdapter(ImageAdapter):
    id: ClassVar[str] = "volcengine"

    def classify(self, status: int, body: Any) -> tuple[bool, bool]:
        return classify_volcengine(status, body)

    def message_of(self, body: Any, fallback: str) -> str:
        return volcengine_message(body, fallback)

    async def generate_image(self, job: ImageJob, api_key: str, timeout_s: float) -> ImageResult:
        deadline = time.monotonic() + timeout_s
        api = str(job.spec.options.get("api", "ark"))
        one: Callable[[], Awaitable[tuple[Any, list[GeneratedImage]]]]
        if api == "ark":

            def one() -> Awaitable[tuple[Any, list[GeneratedImage]]]:
                return self._ark_once(job, api_key, deadline)

        elif api == "visual":
            split_credentials(api_key)  # a misconfigured key fails before any call

            def one() -> Awaitable[tuple[Any, list[GeneratedImage]]]:
                return self._visual_once(job, api_key, deadline)

        else:
            raise ProviderError(
                FailureKind.CONNECT, f"unknown volcengine api {api!r} in the model's options", retryable=False
            )
        answers = await fan_out(max(1, job.n), one)
        images = [image for _, found in answers for image in found]
        raw = answers[0][0] if len(answers) == 1 else [answer for answer, _ in answers]
        return ImageResult(images=images, raw=raw)

    async def _call(self, url: str, *, deadline: float, headers: Mapping[str, str], data: bytes) -> Any:
        try:
            return await self.call_json("POST", url, deadline=deadline, headers=headers, data=data)
        except ProviderError as exc:
            # A content-audit refusal comes as HTTP 400 from both APIs: it is a verdict on the
            # request, not an HTTP failure. Every other error was classified by ``classify``.
            refused = moderation_message(exc.body)
            if refused is not None:
                raise generation_failed(refused, moderated=True) from None
            raise

    async def _ark_once(
        self, job: ImageJob, api_key: str, deadline: float
    ) -> tuple[Any, list[GeneratedImage]]:
        payload = orjson.dumps(ark_request(job))
        headers = {"Authorization": f"Bearer {api_key}", "Content-Type": JSON_TYPE}
        body = await self._call(
            f"{self.base_url}/images/generations", deadline=deadline, headers=headers, data=payload
        )
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            refused = moderation_message(body)
            if refused is not None:
                raise generation_failed(refused, moderated=True)
            retryable, client_fault = classify_volcengine(200, body)
            raise ProviderError(
                FailureKind.HTTP,
                volcengine_message(body, "the Ark API answered with an error"),
                status=502,
                body=body,
                retryable=retryable,
                client_fault=client_fault,
            )
        images = ark_images(body)
        if not images:
            raise generation_failed("the Ark API finished without an image")
        return trim_base64(body), images

    async def _visual_once(
        self, job: ImageJob, api_key: str, deadline: float
    ) -> tuple[Any, list[GeneratedImage]]:
        access_key, secret_key = split_credentials(api_key)
        payload = orjson.dumps(visual_request(job))
        parts = urlsplit(self.base_url)
        path = (parts.path.rstrip("/") or "") + "/"
        headers = sign_request(
            method="POST",
            host=parts.netloc,
            path=path,
            query=CV_QUERY,
            body=payload,
            access_key=access_key,
            secret_key=secret_key,
            when=datetime.now(UTC),
            region=str(job.spec.options.get("region", CV_REGION)),
            service=str(job.spec.options.get("service", CV_SERVICE)),
        )
        url = f"{parts.scheme}://{parts.netloc}{path}?{canonical_query(CV_QUERY)}"
        body = await self._call(url, deadline=deadline, headers=headers, data=payload)
        if not isinstance(body, dict) or _visual_code(body) != VISUAL_SUCCESS:
            if isinstance(body, dict):
                raise visual_code_error(body)
            raise ProviderError(
                FailureKind.HTTP, "the visual API answered without a code", status=502, retryable=True
            )
        images = visual_images(body)
        if not images:
            raise generation_failed("the visual API finished without an image")
        return trim_base64(body), images
