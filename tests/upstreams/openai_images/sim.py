"""In-process simulator of the OpenAI Images API, as the public API reference describes it.

Routes (under ``/v1``): ``POST /images/generations`` (JSON), ``POST /images/edits`` and
``POST /images/variations`` (multipart). Bearer auth, OpenAI's error body
``{"error": {message, type, param, code}}``, per-model validation of n / size / response_format and
of the parameters each model family accepts, moderation refusals (``content_policy_violation`` for
dall-e, ``moderation_blocked`` for gpt-image-1) and server failures via ``config.moderate_jobs_next`` /
``config.fail_jobs_next``, and ``config.fail_next`` for injected HTTP errors.
"""

from __future__ import annotations

import base64
import io
import time
from typing import Any

from aiohttp import web
from PIL import Image

from tests.upstreams.imaging import JSON, ImageSim, make_image
from tests.upstreams.openai.sim import error_response, mask_key

INVALID = "invalid_request_error"
MODELS = ("dall-e-2", "dall-e-3", "gpt-image-1")
SIZES: dict[str, tuple[str, ...]] = {
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
    "gpt-image-1": ("1024x1024", "1536x1024", "1024x1536", "auto"),
}
QUALITIES: dict[str, tuple[str, ...]] = {
    "dall-e-2": ("standard",),
    "dall-e-3": ("standard", "hd"),
    "gpt-image-1": ("low", "medium", "high", "auto"),
}
COMMON_FIELDS = frozenset({"model", "prompt", "n", "size", "quality", "user"})
DALLE_FIELDS = frozenset({"response_format"})
DALLE3_FIELDS = frozenset({"style"})
GPT_IMAGE_FIELDS = frozenset({"background", "output_format", "output_compression", "moderation"})
EDIT_GPT_IMAGE_FIELDS = frozenset({"background", "output_format", "output_compression", "input_fidelity"})
FILE_FIELDS = frozenset({"image", "image[]", "mask"})


def channel_base_url(sim: ImageSim) -> str:
    """What a channel of provider ``openai_images`` takes as base_url for this simulator."""
    return sim.base_url + "/v1"


def _bad(message: str, param: str | None = None, code: str | None = "invalid_value") -> web.Response:
    return error_response(400, message, INVALID, param, code)


def _int_field(value: Any, name: str, low: int, high: int) -> int | web.Response:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return _bad(f"Invalid type for '{name}': expected an integer.", name, "invalid_type")
    if isinstance(value, bool) or not low <= number <= high:
        return _bad(f"'{name}' must be between {low} and {high}, got {value}.", name)
    return number


class OpenAIImagesSim(ImageSim):
    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/images/generations", self._generations),
            web.post("/v1/images/edits", self._edits),
            web.post("/v1/images/variations", self._variations),
        ]

    def error_body(self, status: int, message: str) -> JSON:
        kind = {401: INVALID, 403: INVALID, 404: INVALID, 429: "requests"}.get(status)
        if kind is None:
            kind = "server_error" if status >= 500 else INVALID
        code = {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(status)
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}

    # --- checks -------------------------------------------------------------------------------

    def _denied(self, request: web.Request) -> web.Response | None:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return error_response(
                401, "No API key was given: send it as 'Authorization: Bearer <key>'.", INVALID
            )
        if key not in self.api_keys:
            return error_response(
                401, f"Incorrect API key provided: {mask_key(key)}.", INVALID, None, "invalid_api_key"
            )
        return None

    def _check_common(self, body: dict[str, Any], model: str, *, edit: bool = False) -> web.Response | None:
        if model not in MODELS:
            return _bad(f"Invalid value: '{model}'. Supported values are: {', '.join(MODELS)}.", "model")
        allowed = set(COMMON_FIELDS)
        if model.startswith("dall-e"):
            allowed |= DALLE_FIELDS
        if model == "dall-e-3":
            allowed |= DALLE3_FIELDS
        if model == "gpt-image-1":
            allowed |= EDIT_GPT_IMAGE_FIELDS if edit else GPT_IMAGE_FIELDS
        for name in body:
            if name not in allowed:
                return _bad(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
        n = _int_field(body.get("n", 1), "n", 1, 10)
        if isinstance(n, web.Response):
            return n
        if model == "dall-e-3" and n != 1:
            return _bad("dall-e-3 only supports n=1.", "n")
        size = body.get("size", "1024x1024")
        if size not in SIZES[model]:
            return _bad(f"Invalid value: '{size}'. Supported values are: {', '.join(SIZES[model])}.", "size")
        if "response_format" in body and body["response_format"] not in ("url", "b64_json"):
            return _bad(f"Invalid value: '{body['response_format']}'.", "response_format")
        if "quality" in body and body["quality"] not in QUALITIES[model]:
            return _bad(f"Invalid value: '{body['quality']}'.", "quality")
        if "style" in body and body["style"] not in ("vivid", "natural"):
            return _bad(f"Invalid value: '{body['style']}'.", "style")
        if "output_format" in body and body["output_format"] not in ("png", "jpeg", "webp"):
            return _bad(f"Invalid value: '{body['output_format']}'.", "output_format")
        if "background" in body and body["background"] not in ("transparent", "opaque", "auto"):
            return _bad(f"Invalid value: '{body['background']}'.", "background")
        return None

    def _refusal(self, model: str) -> web.Response | None:
        outcome = self.job_outcome()
        if outcome == "moderated":
            if model == "gpt-image-1":
                return error_response(
                    400,
                    "Your request was rejected by the safety system.",
                    "image_generation_user_error",
                    None,
                    "moderation_blocked",
                )
            return error_response(
                400,
                "Your request was rejected as a result of our safety system.",
                INVALID,
                None,
                "content_policy_violation",
            )
        if outcome == "failed":
            return error_response(
                500, "The server had an error while processing your request.", "server_error"
            )
        return None

    # --- answers ------------------------------------------------------------------------------

    def _answer(self, body: dict[str, Any], model: str, prompt: str) -> web.Response:
        n = int(body.get("n", 1))
        size = str(body.get("size", "1024x1024"))
        width, height = self.config.default_size if size == "auto" else tuple(int(v) for v in size.split("x"))
        data: list[JSON] = []
        answer: JSON = {"created": int(time.time()), "data": data}
        if model == "gpt-image-1":
            fmt = str(body.get("output_format", "png"))
            for _ in range(n):
                data.append({"b64_json": base64.b64encode(make_image(width, height, fmt)).decode()})
            answer.update(
                background=body.get("background", "opaque"),
                output_format=fmt,
                quality=body.get("quality", "medium"),
                size=f"{width}x{height}",
                usage={
                    "input_tokens": 20,
                    "input_tokens_details": {"image_tokens": 0, "text_tokens": 20},
                    "output_tokens": 1056 * n,
                    "total_tokens": 20 + 1056 * n,
                },
            )
            return web.json_response(answer)
        for _ in range(n):
            item: JSON
            if body.get("response_format", "url") == "b64_json":
                item = {"b64_json": base64.b64encode(make_image(width, height, "png")).decode()}
            else:
                item = {"url": self.host_image(width, height, "png")}
            if model == "dall-e-3":
                item["revised_prompt"] = f"A detailed rendering of: {prompt}"
            data.append(item)
        return web.json_response(answer)

    # --- routes -------------------------------------------------------------------------------

    async def _generations(self, request: web.Request) -> web.StreamResponse:
        if (failure := self.take_injected_failure()) is not None:
            return failure
        if (denied := self._denied(request)) is not None:
            return denied
        body = await self.read_json(request)
        if not isinstance(body, dict):
            return _bad("The request body must be a JSON object.", None, None)
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            return _bad("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
        model = str(body.get("model", "dall-e-2"))
        if (invalid := self._check_common(body, model)) is not None:
            return invalid
        if (refused := self._refusal(model)) is not None:
            return refused
        return self._answer(body, model, prompt)

    async def _edits(self, request: web.Request) -> web.StreamResponse:
        if (failure := self.take_injected_failure()) is not None:
            return failure
        if (denied := self._denied(request)) is not None:
            return denied
        if not request.content_type.startswith("multipart/"):
            return _bad("This endpoint takes multipart/form-data.", None, None)
        form = await self.read_form(request)
        files = _files(form.get("image")) + _files(form.get("image[]"))
        mask = _files(form.get("mask"))
        if not files:
            return _bad("Missing required parameter: 'image'.", "image", "missing_required_parameter")
        prompt = form.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            return _bad("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
        model = str(form.get("model", "dall-e-2"))
        if model == "dall-e-3":
            return _bad("Image edits are not supported for dall-e-3.", "model")
        fields = {k: v for k, v in form.items() if k not in FILE_FIELDS}
        if (invalid := self._check_common(fields, model, edit=True)) is not None:
            return invalid
        if model == "dall-e-2":
            if len(files) != 1:
                return _bad("dall-e-2 edits take exactly one image.", "image")
            if (bad := _check_square_png(files[0], "image")) is not None:
                return bad
        elif len(files) > 16:
            return _bad("At most 16 images can be edited together.", "image")
        for index, item in enumerate(files):
            if _open(item[1]) is None:
                return _bad(f"Image {index} could not be read as an image.", "image", "invalid_image_format")
        if mask:
            first = _open(files[0][1])
            second = _open(mask[0][1])
            if second is None or second.format != "PNG":
                return _bad("The mask must be a PNG image.", "mask", "invalid_image_format")
            if first is not None and first.size != second.size:
                return _bad("The mask and the image must have the same dimensions.", "mask")
        if (refused := self._refusal(model)) is not None:
            return refused
        return self._answer(fields, model, prompt)

    async def _variations(self, request: web.Request) -> web.StreamResponse:
        if (failure := self.take_injected_failure()) is not None:
            return failure
        if (denied := self._denied(request)) is not None:
            return denied
        if not request.content_type.startswith("multipart/"):
            return _bad("This endpoint takes multipart/form-data.", None, None)
        form = await self.read_form(request)
        files = _files(form.get("image"))
        if not files:
            return _bad("Missing required parameter: 'image'.", "image", "missing_required_parameter")
        model = str(form.get("model", "dall-e-2"))
        if model != "dall-e-2":
            return _bad("Image variations are only supported for dall-e-2.", "model")
        if (bad := _check_square_png(files[0], "image")) is not None:
            return bad
        fields = {k: v for k, v in form.items() if k not in FILE_FIELDS}
        if (invalid := self._check_common(fields, model)) is not None:
            return invalid
        if (refused := self._refusal(model)) is not None:
            return refused
        return self._answer(fields, model, "a variation")


def _files(value: Any) -> list[tuple[str, bytes, str]]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, tuple)]


def _open(data: bytes) -> Image.Image | None:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception:
        return None
    return image


def _check_square_png(item: tuple[str, bytes, str], param: str) -> web.Response | None:
    image = _open(item[1])
    if image is None or image.format != "PNG":
        return _bad("The image must be a PNG file.", param, "invalid_image_format")
    if image.width != image.height:
        return _bad("The image must be square.", param, "invalid_image_dimensions")
    if len(item[1]) > 4 * 1024 * 1024:
        return _bad("The image must be less than 4 MB.", param, "image_too_large")
    return None


Sim = OpenAIImagesSim
