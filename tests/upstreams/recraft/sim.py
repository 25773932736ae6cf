"""In-process simulator of the Recraft API's ``POST /v1/images/generations``.

As the public API reference describes it: Bearer token (a missing or wrong one is answered 401 with
the text body ``request unauthorized``), JSON body with prompt / model / style / substyle / style_id /
size / n / response_format / negative_prompt / controls, Recraft V2/V3 sizes (``WxH`` or ``w:h``),
``data[]`` items with ``image_id`` and ``url`` or ``b64_json``, WEBP raster results and SVG for the
vector styles. Other errors carry a JSON body ``{"code", "message"}``. ``config.fail_next`` injects
HTTP errors; ``config.fail_jobs_next`` makes the next generations fail with a 500. Recraft has no
documented moderation outcome, so ``moderate_jobs_next`` is not used.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

from aiohttp import web

from tests.upstreams.imaging import JSON, ImageSim, make_image

MODELS: dict[str, frozenset[str]] = {
    "recraftv3": frozenset({"any", "realistic_image", "digital_illustration", "vector_illustration"}),
    "recraft20b": frozenset({"realistic_image", "digital_illustration", "vector_illustration", "icon"}),
}
ASPECTS: dict[str, str] = {
    "1:1": "1024x1024",
    "2:1": "2048x1024",
    "1:2": "1024x2048",
    "3:2": "1536x1024",
    "2:3": "1024x1536",
    "4:3": "1365x1024",
    "3:4": "1024x1365",
    "5:4": "1280x1024",
    "4:5": "1024x1280",
    "6:10": "1024x1707",
    "14:10": "1434x1024",
    "10:14": "1024x1434",
    "16:9": "1820x1024",
    "9:16": "1024x1820",
}
SIZES = frozenset({*ASPECTS.values(), "1707x1024"})
VECTOR_STYLES = frozenset({"vector_illustration", "icon"})
FIELDS = frozenset(
    {
        "prompt",
        "model",
        "style",
        "substyle",
        "style_id",
        "size",
        "n",
        "response_format",
        "negative_prompt",
        "controls",
        "text_layout",
        "image_format",
    }
)


def channel_base_url(sim: ImageSim) -> str:
    """What a channel of provider ``recraft`` takes as base_url for this simulator."""
    return sim.base_url + "/v1"


def _bad(message: str, code: str = "invalid_request") -> web.Response:
    return web.json_response({"code": code, "message": message}, status=400)


def _svg(width: int, height: int) -> bytes:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
        f'<rect width="{width}" height="{height}" fill="#1e78c8"/></svg>'
    ).encode()


class RecraftSim(ImageSim):
    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/images/generations", self._generations)]

    def error_body(self, status: int, message: str) -> JSON:
        code = {400: "invalid_request", 401: "unauthorized", 429: "too_many_requests"}.get(status)
        return {"code": code or ("internal_error" if status >= 500 else "error"), "message": message}

    def _denied(self, request: web.Request) -> web.Response | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip() in self.api_keys:
            return None
        return web.Response(status=401, text="request unauthorized", content_type="text/plain")

    def _validate(self, body: Any) -> web.Response | None:
        if not isinstance(body, dict):
            return _bad("the request body must be a JSON object")
        unknown = sorted(set(body) - FIELDS)
        if unknown:
            return _bad(f"unknown field: {unknown[0]}")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return _bad("prompt is required")
        if len(prompt.encode()) > 1000:
            return _bad("prompt is longer than 1000 bytes", "prompt_too_long")
        model = body.get("model", "recraftv3")
        if model not in MODELS:
            return _bad(f"unknown model: {model}", "invalid_model")
        if "style" in body and "style_id" in body:
            return _bad("style and style_id cannot be used together")
        style = body.get("style", "any" if model == "recraftv3" else "realistic_image")
        if style not in MODELS[model]:
            return _bad(f"style {style} is not available for {model}", "invalid_style")
        n = body.get("n", 1)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 6:
            return _bad("n must be an integer from 1 to 6")
        size = body.get("size", "1024x1024")
        if size not in SIZES and size not in ASPECTS:
            return _bad(f"invalid size: {size}", "invalid_size")
        if body.get("response_format", "url") not in ("url", "b64_json"):
            return _bad("response_format must be url or b64_json")
        return None

    async def _generations(self, request: web.Request) -> web.StreamResponse:
        if (failure := self.take_injected_failure()) is not None:
            return failure
        if (denied := self._denied(request)) is not None:
            return denied
        body = await self.read_json(request)
        if (invalid := self._validate(body)) is not None:
            return invalid
        assert isinstance(body, dict)
        if self.config.fail_jobs_next > 0:
            self.config.fail_jobs_next -= 1
            return web.json_response({"code": "internal_error", "message": "generation failed"}, status=500)
        size = str(body.get("size", "1024x1024"))
        width, height = (int(v) for v in ASPECTS.get(size, size).split("x"))
        model = body.get("model", "recraftv3")
        vector = body.get("style", "any" if model == "recraftv3" else "realistic_image") in VECTOR_STYLES
        inline = body.get("response_format", "url") == "b64_json"
        data: list[JSON] = []
        for _ in range(int(body.get("n", 1))):
            item: JSON = {"image_id": str(uuid.uuid4())}
            content = _svg(width, height) if vector else make_image(width, height, "webp")
            if inline:
                item["b64_json"] = base64.b64encode(content).decode()
            elif vector:
                name = f"{self.new_id('vec')}.svg"
                self.files[name] = (content, "image/svg+xml")
                item["url"] = f"{self.base_url}/_files/{name}"
            else:
                item["url"] = self.host_image(width, height, "webp")
            data.append(item)
        return web.json_response({"created": int(time.time()), "credits": 40 * len(data), "data": data})


Sim = RecraftSim
