"""Simulator of Volcengine's two Doubao image APIs, on one loopback server.

- Ark (Seedream 3.0): ``POST /api/v3/images/generations``, ``Authorization: Bearer <key>``,
  OpenAI-like body and ``{"error": {"code", "message", "param", "type"}}`` errors.
- Visual (CV): ``POST /?Action=CVProcess&Version=2022-08-31`` (also under ``/api/v3/``), signed
  with Volcengine's HMAC-SHA256 scheme; the signature is verified here, independently of the
  adapter's signer, with the secret of the access key. Business answers carry ``code`` (10000 =
  success); gateway errors (signature, unknown key) the ``ResponseMetadata.Error`` shape.

``channel_base_url(sim)`` (``.../api/v3``) serves both APIs; ``channel_api_key(sim)`` is the
``AK:SK`` pair a visual channel holds. For the convenience of one test channel serving every
Doubao row, the simulator also accepts that pair as an Ark bearer key (real Ark does not).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from tests.upstreams.imaging import JSON, RECORDED, ImageSim, ImageSimConfig, make_image

ACCESS_KEY = "AKLTc2ltdWxhdG9y"
SECRET_KEY = "c2ltLXNlY3JldC1hY2Nlc3Mta2V5"
ARK_MODELS = frozenset({"doubao-seedream-3-0-t2i-250415"})
VISUAL_REQ_KEYS = frozenset({"high_aes_general_v20", "high_aes_general_v20_L", "high_aes_general_v21_L"})
REGION = "cn-north-1"
SERVICE = "cv"
_AUTH = re.compile(
    r"HMAC-SHA256 Credential=(?P<ak>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/(?P<service>[^/,\s]+)"
    r"/request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)

# status -> (Ark error code, Ark error type) for injected failures
_ARK_ERRORS = {
    400: ("InvalidParameter", "BadRequest"),
    401: ("AuthenticationError", "Unauthorized"),
    403: ("AccessDenied", "Forbidden"),
    404: ("InvalidEndpointOrModel.NotFound", "NotFound"),
    429: ("RateLimitExceeded.EndpointRPMExceeded", "TooManyRequests"),
    500: ("InternalServiceError", "InternalServerError"),
    503: ("ServerOverloaded", "ServiceUnavailable"),
}
# status -> visual business code for injected failures
_VISUAL_CODES = {
    400: (50215, "Input invalid for this service."),
    429: (50429, "Request Has Reached API Limit"),
}


def ark_error(status: int, code: str, message: str, type_: str, param: str = "") -> web.Response:
    error = {"code": code, "message": message, "param": param, "type": type_}
    return web.json_response({"error": error}, status=status)


def visual_body(code: int, message: str, data: Any = None) -> JSON:
    return {
        "code": code,
        "data": data,
        "message": message,
        "request_id": f"{datetime.now(UTC):%Y%m%d%H%M%S}{hashlib.md5(message.encode()).hexdigest()[:18]}",
        "status": code,
        "time_elapsed": "12.345ms",
    }


def gateway_error(status: int, code: str, message: str, code_n: int) -> web.Response:
    meta = {
        "RequestId": f"{datetime.now(UTC):%Y%m%d%H%M%S}SIM",
        "Action": "CVProcess",
        "Version": "2022-08-31",
        "Service": SERVICE,
        "Region": REGION,
        "Error": {"CodeN": code_n, "Code": code, "Message": message},
    }
    return web.json_response({"ResponseMetadata": meta}, status=status)


class VolcengineSim(ImageSim):
    def __init__(
        self,
        api_keys: set[str] | None = None,
        config: ImageSimConfig | None = None,
        credentials: dict[str, str] | None = None,
    ) -> None:
        super().__init__(api_keys, config)
        self.credentials = dict(credentials or {ACCESS_KEY: SECRET_KEY})
        self.accept_pair_as_ark_key = True
        self.visual_inline = True  # send binary_data_base64 beside image_urls
        self.max_clock_skew_s = 900.0
        self._shape = "ark"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v3/images/generations", self._ark),
            web.post("/", self._visual),
            web.post("/api/v3/", self._visual),
        ]

    # --- error shapes ---------------------------------------------------------------------------

    def error_body(self, status: int, message: str) -> JSON:
        if self._shape == "ark":
            code, type_ = _ARK_ERRORS.get(status, ("InternalServiceError", "InternalServerError"))
            return {"error": {"code": code, "message": message, "param": "", "type": type_}}
        if status in (401, 403):
            name = "SignatureDoesNotMatch" if status == 401 else "AccessDenied"
            return {"ResponseMetadata": {"Error": {"CodeN": 100010, "Code": name, "Message": message}}}
        number, text = _VISUAL_CODES.get(status, (50500, "Internal Error"))
        return visual_body(number, f"{text} ({message})")

    def _injected(self, shape: str) -> web.Response | None:
        self._shape = shape
        return self.take_injected_failure()

    # --- Ark ------------------------------------------------------------------------------------

    def _ark_key_ok(self, key: str) -> bool:
        if key in self.api_keys:
            return True
        pairs = {f"{ak}:{sk}" for ak, sk in self.credentials.items()}
        return self.accept_pair_as_ark_key and key in pairs

    async def _ark(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        injected = self._injected("ark")
        if injected is not None:
            return injected
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not self._ark_key_ok(auth[7:].strip()):
            return ark_error(
                401,
                "AuthenticationError",
                "The API key in the request is missing or invalid.",
                "Unauthorized",
            )
        invalid = _validate_ark(body)
        if invalid is not None:
            return invalid
        model = body["model"]
        width, height = (int(v) for v in body["size"].lower().split("x"))
        outcome = self.job_outcome()
        if outcome == "moderated":
            return ark_error(
                400,
                "OutputImageSensitiveContentDetected",
                "The request failed because the output image may contain sensitive information.",
                "BadRequest",
            )
        if outcome == "failed":
            return ark_error(
                500,
                "InternalServiceError",
                "The service encountered an unexpected internal error.",
                "InternalServerError",
            )
        if body.get("response_format", "url") == "b64_json":
            item = {"b64_json": base64.b64encode(make_image(width, height, "jpeg")).decode()}
        else:
            item = {"url": self.host_image(width, height, "jpeg")}
        return web.json_response(
            {"model": model, "created": int(time.time()), "data": [item], "usage": {"generated_images": 1}}
        )

    # --- visual ---------------------------------------------------------------------------------

    async def _visual(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        await self.read_json(request)
        record = request[RECORDED]
        if request.query.get("Action") != "CVProcess" or request.query.get("Version") != "2022-08-31":
            return gateway_error(
                404,
                "InvalidActionOrVersion",
                f"Could not find operation {request.query.get('Action')} for version "
                f"{request.query.get('Version')}",
                100008,
            )
        refused = self._check_signature(request, raw)
        if refused is not None:
            return refused
        injected = self._injected("visual")
        if injected is not None:
            return injected
        body = record.json
        invalid = _validate_visual(body)
        if invalid is not None:
            return invalid
        width, height = int(body["width"]), int(body["height"])
        outcome = self.job_outcome()
        if outcome == "moderated":
            return web.json_response(visual_body(50511, "Post Img Risk Not Pass"), status=400)
        if outcome == "failed":
            return web.json_response(visual_body(50500, "Internal Error"), status=500)
        jpeg = make_image(width, height, "jpeg")
        data: JSON = {
            "algorithm_base_resp": {"status_code": 0, "status_message": "Success"},
            "binary_data_base64": [base64.b64encode(jpeg).decode()] if self.visual_inline else [],
            "image_urls": [self.host_image(width, height, "jpeg")] if body.get("return_url") else None,
            "rephraser_result": body["prompt"],
        }
        return web.json_response(visual_body(10000, "Success", data))

    def _check_signature(self, request: web.Request, raw: bytes) -> web.Response | None:
        match = _AUTH.fullmatch(request.headers.get("Authorization", "").strip())
        if match is None:
            return gateway_error(
                401, "MissingAuthenticationToken", "Missing or malformed Authorization", 100001
            )
        secret = self.credentials.get(match["ak"])
        if secret is None:
            return gateway_error(401, "InvalidAccessKey", "The specified access key is not valid.", 100009)
        x_date = request.headers.get("X-Date", "")
        try:
            stamp = datetime.strptime(x_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return gateway_error(401, "InvalidTimestamp", "X-Date is missing or malformed.", 100004)
        if abs(time.time() - stamp.timestamp()) > self.max_clock_skew_s or match["date"] != x_date[:8]:
            return gateway_error(401, "InvalidTimestamp", "The request time is too skewed.", 100004)
        payload_hash = hashlib.sha256(raw).hexdigest()
        claimed = request.headers.get("X-Content-Sha256")
        names = match["signed"].split(";")
        mismatch = gateway_error(
            401,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
            100010,
        )
        if (claimed is not None and claimed != payload_hash) or "host" not in names or "x-date" not in names:
            return mismatch
        if match["region"] != REGION or match["service"] != SERVICE:
            return mismatch
        canonical = "\n".join(
            [
                request.method,
                quote(request.path, safe="/-_.~"),
                "&".join(
                    f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                    for k, v in sorted(request.query.items())
                ),
                "".join(f"{name}:{request.headers.get(name, '').strip()}\n" for name in names),
                match["signed"],
                payload_hash,
            ]
        )
        scope = f"{match['date']}/{REGION}/{SERVICE}/request"
        to_sign = f"HMAC-SHA256\n{x_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        k_date = hmac.new(secret.encode(), match["date"].encode(), hashlib.sha256).digest()
        k_region = hmac.new(k_date, REGION.encode(), hashlib.sha256).digest()
        k_service = hmac.new(k_region, SERVICE.encode(), hashlib.sha256).digest()
        k_signing = hmac.new(k_service, b"request", hashlib.sha256).digest()
        expected = hmac.new(k_signing, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, match["signature"]):
            return mismatch
        return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_ark(body: Any) -> web.Response | None:
    def bad(param: str, message: str) -> web.Response:
        return ark_error(400, "InvalidParameter", message, "BadRequest", param)

    if not isinstance(body, dict):
        return bad("", "The request body is not a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return ark_error(
            400, "MissingParameter", "The request is missing the parameter model.", "BadRequest", "model"
        )
    if model not in ARK_MODELS:
        return ark_error(
            404,
            "InvalidEndpointOrModel.NotFound",
            f"The model or endpoint {model} does not exist or you do not have access to it.",
            "NotFound",
        )
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return ark_error(
            400, "MissingParameter", "The request is missing the parameter prompt.", "BadRequest", "prompt"
        )
    size = body.get("size", "1024x1024")
    parts = size.lower().split("x") if isinstance(size, str) else []
    if len(parts) != 2 or not all(p.isdigit() and 512 <= int(p) <= 2048 for p in parts):
        return bad("size", f"The parameter `size` specified in the request is not valid: {size}")
    if body.get("response_format", "url") not in ("url", "b64_json"):
        return bad(
            "response_format", "The parameter `response_format` specified in the request is not valid."
        )
    seed = body.get("seed", -1)
    if not _is_int(seed) or not -1 <= seed <= 2147483647:
        return bad("seed", "The parameter `seed` specified in the request is not valid.")
    scale = body.get("guidance_scale", 2.5)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not 1 <= scale <= 10:
        return bad("guidance_scale", "The parameter `guidance_scale` specified in the request is not valid.")
    if not isinstance(body.get("watermark", True), bool):
        return bad("watermark", "The parameter `watermark` specified in the request is not valid.")
    return None


def _validate_visual(body: Any) -> web.Response | None:
    def bad(message: str) -> web.Response:
        return web.json_response(visual_body(50215, f"Input invalid for this service. {message}"), status=400)

    if not isinstance(body, dict):
        return bad("body is not a JSON object")
    if body.get("req_key") not in VISUAL_REQ_KEYS:
        return bad(f"unknown req_key {body.get('req_key')!r}")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return bad("prompt is required")
    for name in ("width", "height"):
        value = body.get(name, 512)
        if not _is_int(value) or not 256 <= value <= 768:
            return bad(f"{name} must be an integer in [256, 768]")
    if not _is_int(body.get("seed", -1)):
        return bad("seed must be an integer")
    if not isinstance(body.get("return_url", False), bool):
        return bad("return_url must be a boolean")
    return None


def channel_base_url(sim: VolcengineSim) -> str:
    """The base URL a channel uses for both APIs (Ark's ``/api/v3`` root; visual served there too)."""
    return f"{sim.base_url}/api/v3"


def visual_base_url(sim: VolcengineSim) -> str:
    """The visual API's own root, as ``https://visual.volcengineapi.com`` is in production."""
    return sim.base_url


def channel_api_key(sim: VolcengineSim) -> str:
    """The ``ACCESS_KEY_ID:SECRET_ACCESS_KEY`` pair of the simulator's first credential."""
    access_key, secret_key = next(iter(sim.credentials.items()))
    return f"{access_key}:{secret_key}"


Sim = VolcengineSim
