"""A simulator of the Stability AI REST API's image generation routes, for the stability adapter.

Routes (as the platform.stability.ai API reference describes them):

- ``POST /v1/generation/{engine_id}/text-to-image``: JSON ``{text_prompts, width, height, samples,
  seed, cfg_scale, steps, ...}`` -> ``{"artifacts": [{"base64", "seed", "finishReason"}]}``.
  Errors are ``{"id", "name", "message"}``.
- ``POST /v2beta/stable-image/generate/{core,ultra,sd3}``: multipart/form-data only. With
  ``Accept: application/json`` -> ``{"image": base64, "finish_reason", "seed"}``; with ``image/*``
  (or no Accept) -> the image bytes, ``finish-reason`` and ``seed`` headers. Errors are
  ``{"id", "name", "errors": [...]}``; a moderated prompt is 403 ``content_moderation``.

Auth is ``Authorization: Bearer <key>`` with a key in ``api_keys``. Images are real files made
with Pillow, scaled down for speed: a v1 image has the asked width and height, a v2beta one the
asked aspect ratio with about ``config.default_size``'s area (image-to-image: the input's size).

Failure injection: ``config.fail_next`` (statuses or ``{"status", "body", "headers"}``), the next
calls' outcome from ``config.moderate_jobs_next`` / ``config.fail_jobs_next``. A moderated v2beta
call answers ``finish_reason: CONTENT_FILTERED`` (a blurred image) when ``moderation == "filter"``,
or 403 ``content_moderation`` when ``moderation == "reject"``; a moderated v1 call answers
``finishReason: CONTENT_FILTERED`` artifacts. A failed job is ``finishReason: ERROR`` on v1 and a
500 ``internal_error`` on v2beta.
"""

from __future__ import annotations

import base64
import io
import math
import secrets
from typing import Any, Literal

from aiohttp import web
from PIL import Image

from tests.upstreams.imaging import JSON, ImageSim, ImageSimConfig, make_image, media_type_of

SDXL_ENGINES = frozenset({"stable-diffusion-xl-1024-v1-0", "stable-diffusion-xl-1024-v0-9"})
OTHER_V1_ENGINES = frozenset({"stable-diffusion-v1-6", "stable-diffusion-512-v2-1"})
SDXL_SIZES = frozenset(
    {
        (1024, 1024),
        (1152, 896),
        (896, 1152),
        (1216, 832),
        (832, 1216),
        (1344, 768),
        (768, 1344),
        (1536, 640),
        (640, 1536),
    }
)
V2_RATIOS = ("16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")
V2_FORMATS = {"core": ("png", "jpeg", "webp"), "ultra": ("png", "jpeg", "webp"), "sd3": ("png", "jpeg")}
SD3_MODELS = frozenset(
    {"sd3-large", "sd3-large-turbo", "sd3-medium", "sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium"}
)
SEED_MAX = 4_294_967_294
FILTERED_COLOR = (128, 128, 128)

V1_NAMES = {
    400: "bad_request",
    401: "unauthorized",
    403: "permission_denied",
    404: "not_found",
    429: "rate_limit_exceeded",
}
V2_NAMES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    413: "payload_too_large",
    422: "invalid_request",
    429: "rate_limit_exceeded",
}


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400, name: str | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.name = message, status, name


def _id() -> str:
    return secrets.token_hex(16)


def v1_error(status: int, message: str, name: str | None = None) -> JSON:
    return {"id": _id(), "name": name or V1_NAMES.get(status, "server_error"), "message": message}


def v2_error(status: int, message: str, name: str | None = None) -> JSON:
    return {"id": _id(), "name": name or V2_NAMES.get(status, "internal_error"), "errors": [message]}


def _encode(data: bytes) -> str:
    return base64.b64encode(data).decode()


def ratio_size(ratio: str, area: int) -> tuple[int, int]:
    w, h = (int(x) for x in ratio.split(":"))
    width = max(1, round(math.sqrt(area * w / h)))
    return width, max(1, round(area / width))


def _int_field(value: Any, name: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{name}: must be an integer") from None
    if isinstance(value, bool) or not low <= number <= high:
        raise BadRequest(f"{name}: must be between {low} and {high}")
    return number


class StabilitySim(ImageSim):
    def __init__(
        self,
        api_keys: set[str] | None = None,
        config: ImageSimConfig | None = None,
        *,
        moderation: Literal["filter", "reject"] = "filter",
    ) -> None:
        super().__init__(api_keys, config)
        self.moderation = moderation

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/generation/{engine}/text-to-image", self._v1_text_to_image),
            web.post("/v2beta/stable-image/generate/{route}", self._v2_generate),
        ]

    def error_body(self, status: int, message: str) -> JSON:
        return v2_error(status, message)

    # --- shared ---------------------------------------------------------------------------------

    def _key_ok(self, request: web.Request) -> bool:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and key.strip() in self.api_keys

    def _injected(self, v1: bool) -> web.Response | None:
        if not self.config.fail_next:
            return None
        spec = self.config.fail_next.pop(0)
        status = int(spec["status"]) if isinstance(spec, dict) else int(spec)
        body = spec.get("body") if isinstance(spec, dict) else None
        headers = spec.get("headers") if isinstance(spec, dict) else None
        if body is None:
            message = f"injected failure {status}"
            body = v1_error(status, message) if v1 else v2_error(status, message)
        return web.json_response(body, status=status, headers=headers)

    # --- v1 -------------------------------------------------------------------------------------

    async def _v1_text_to_image(self, request: web.Request) -> web.StreamResponse:
        if not self._key_ok(request):
            return web.json_response(
                v1_error(401, "Incorrect API key provided or missing authorization header"), status=401
            )
        if (failure := self._injected(v1=True)) is not None:
            return failure
        engine = request.match_info["engine"]
        if engine not in SDXL_ENGINES | OTHER_V1_ENGINES:
            return web.json_response(v1_error(404, f"engine: {engine} does not exist"), status=404)
        body = await self.read_json(request)
        try:
            width, height, samples, seed = self._v1_validate(engine, body)
        except BadRequest as exc:
            return web.json_response(v1_error(exc.status, exc.message, exc.name), status=exc.status)
        outcome = self.job_outcome()
        reason = {"moderated": "CONTENT_FILTERED", "failed": "ERROR"}.get(outcome, "SUCCESS")
        color = FILTERED_COLOR if reason == "CONTENT_FILTERED" else (30, 120, 200)
        artifacts = [
            {
                "base64": _encode(make_image(width, height, "png", color)) if reason != "ERROR" else "",
                "seed": (seed or secrets.randbelow(SEED_MAX)) + i,
                "finishReason": reason,
            }
            for i in range(samples)
        ]
        accept = request.headers.get("Accept", "application/json")
        if accept.startswith("image/png"):
            if samples != 1:
                return web.json_response(
                    v1_error(400, "accept: image/png is only available when samples is 1"), status=400
                )
            if reason != "SUCCESS":
                return web.json_response(v1_error(500, "generation failed"), status=500)
            return web.Response(body=make_image(width, height, "png"), content_type="image/png")
        return web.json_response({"artifacts": artifacts})

    def _v1_validate(self, engine: str, body: Any) -> tuple[int, int, int, int]:
        if not isinstance(body, dict):
            raise BadRequest("body: must be a JSON object", name="invalid_body")
        prompts = body.get("text_prompts")
        if not isinstance(prompts, list) or not prompts:
            raise BadRequest("text_prompts: is required", name="invalid_prompts")
        for prompt in prompts:
            if not isinstance(prompt, dict) or not isinstance(prompt.get("text"), str) or not prompt["text"]:
                raise BadRequest("text_prompts[].text: cannot be empty", name="invalid_prompts")
            weight = prompt.get("weight", 1)
            if isinstance(weight, bool) or not isinstance(weight, int | float):
                raise BadRequest("text_prompts[].weight: must be a number", name="invalid_prompts")
        if not any(p.get("weight", 1) > 0 for p in prompts):
            raise BadRequest("text_prompts: one prompt needs a positive weight", name="invalid_prompts")
        width = _int_field(body.get("width", 512), "width", 128, 2048)
        height = _int_field(body.get("height", 512), "height", 128, 2048)
        if width % 64 or height % 64:
            raise BadRequest("width, height: must be multiples of 64", name="invalid_dimensions")
        if engine in SDXL_ENGINES and (width, height) not in SDXL_SIZES:
            allowed = ", ".join(f"{w}x{h}" for w, h in sorted(SDXL_SIZES))
            raise BadRequest(
                f"for the SDXL 1.0 engine the allowed dimensions are {allowed}",
                name="invalid_sdxl_v1_dimensions",
            )
        samples = _int_field(body.get("samples", 1), "samples", 1, 10)
        seed = _int_field(body.get("seed", 0), "seed", 0, 4_294_967_295)
        if "cfg_scale" in body:
            cfg = body["cfg_scale"]
            if isinstance(cfg, bool) or not isinstance(cfg, int | float) or not 0 <= cfg <= 35:
                raise BadRequest("cfg_scale: must be between 0 and 35")
        if "steps" in body:
            _int_field(body["steps"], "steps", 10, 50)
        return width, height, samples, seed

    # --- v2beta ---------------------------------------------------------------------------------

    async def _v2_generate(self, request: web.Request) -> web.StreamResponse:
        route = request.match_info["route"]
        if route not in V2_FORMATS:
            return web.json_response(v2_error(404, f"route {request.path} not found"), status=404)
        if not self._key_ok(request):
            return web.json_response(
                v2_error(401, "authorization: invalid or missing header value", "unauthorized"), status=401
            )
        if (failure := self._injected(v1=False)) is not None:
            return failure
        if not request.content_type.startswith("multipart/form-data"):
            return web.json_response(
                v2_error(400, "content-type: must be multipart/form-data", "bad_request"), status=400
            )
        form = await self.read_form(request)
        try:
            size, fmt, seed = self._v2_validate(route, form)
        except BadRequest as exc:
            return web.json_response(v2_error(exc.status, exc.message, exc.name), status=exc.status)
        outcome = self.job_outcome()
        if outcome == "failed":
            return web.json_response(
                v2_error(500, "an unexpected server error has occurred", "internal_error"), status=500
            )
        reason = "SUCCESS"
        color = (30, 120, 200)
        if outcome == "moderated":
            if self.moderation == "reject":
                message = (
                    "Your request was flagged by our content moderation system, "
                    "as a result your request was denied and you were not charged."
                )
                return web.json_response(v2_error(403, message, "content_moderation"), status=403)
            reason, color = "CONTENT_FILTERED", FILTERED_COLOR
        seed = seed or secrets.randbelow(SEED_MAX) + 1
        data = make_image(size[0], size[1], fmt, color)
        accept = request.headers.get("Accept", "image/*")
        if accept.startswith("application/json"):
            return web.json_response({"image": _encode(data), "finish_reason": reason, "seed": seed})
        if not accept.startswith("image/"):
            return web.json_response(
                v2_error(400, "accept: must be image/* or application/json", "bad_request"), status=400
            )
        return web.Response(
            body=data,
            content_type=media_type_of(fmt),
            headers={"finish-reason": reason, "seed": str(seed)},
        )

    def _v2_validate(self, route: str, form: dict[str, Any]) -> tuple[tuple[int, int], str, int]:
        prompt = form.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise BadRequest("prompt: cannot be empty")
        if len(prompt) > 10_000:
            raise BadRequest("prompt: must be at most 10000 characters")
        fmt = form.get("output_format", "png")
        if fmt not in V2_FORMATS[route]:
            raise BadRequest(f"output_format: must be one of {', '.join(V2_FORMATS[route])}")
        seed = _int_field(form.get("seed", "0"), "seed", 0, SEED_MAX)
        ratio = form.get("aspect_ratio", "1:1")
        area = self.config.default_size[0] * self.config.default_size[1]
        mode = "text-to-image"
        if route == "sd3":
            model = form.get("model", "sd3-large")
            if model not in SD3_MODELS:
                raise BadRequest(f"model: must be one of {', '.join(sorted(SD3_MODELS))}")
            mode = form.get("mode", "text-to-image")
            if mode not in ("text-to-image", "image-to-image"):
                raise BadRequest("mode: must be text-to-image or image-to-image")
        if mode == "image-to-image":
            image = form.get("image")
            if not isinstance(image, tuple):
                raise BadRequest("image: is required in image-to-image mode")
            try:
                with Image.open(io.BytesIO(image[1])) as opened:
                    size: tuple[int, int] = opened.size
            except Exception:
                raise BadRequest("image: is not a valid image") from None
            strength = form.get("strength")
            if strength is None:
                raise BadRequest("strength: is required in image-to-image mode")
            try:
                value = float(strength)
            except ValueError:
                raise BadRequest("strength: must be a number") from None
            if not 0 <= value <= 1:
                raise BadRequest("strength: must be between 0 and 1")
        else:
            if "image" in form and route == "sd3":
                raise BadRequest("image: is only allowed in image-to-image mode")
            if ratio not in V2_RATIOS:
                raise BadRequest(f"aspect_ratio: must be one of {', '.join(V2_RATIOS)}")
            size = ratio_size(ratio, area)
        return size, fmt, seed


def channel_base_url(sim: StabilitySim) -> str:
    """The ``base_url`` a stability channel uses to reach this simulator."""
    return sim.base_url


Sim = StabilitySim
