"""In-process simulator of Zhipu BigModel's ``POST /api/paas/v4/images/generations`` (CogView).

As the public API reference describes it: Bearer API key, JSON body {model, prompt, size, quality,
user_id, watermark_enabled}, sizes of 512..2048 per side in multiples of 16 and at most 2^21 pixels,
one image per call, answer ``{created, data: [{url}], content_filter: [{role, level}]}``. Errors are
``{"error": {"code": "<numeric string>", "message": ...}}`` with Zhipu's codes and statuses: 1001 /
1002 (401), 1211 unknown model, 1214 bad parameter and 1301 unsafe content (400), 1113 arrears and
1302 / 1303 / 1305 limits (429), 500. ``config.moderate_jobs_next`` answers 1301,
``config.fail_jobs_next`` a 500, ``config.fail_next`` injects any status.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from tests.upstreams.imaging import JSON, ImageSim

MODELS = frozenset({"cogview-4", "cogview-4-250304", "cogview-3-flash"})
QUALITY_MODELS = frozenset({"cogview-4-250304"})
STATUS_CODES = {400: "1214", 401: "1002", 429: "1302", 500: "500"}


def channel_base_url(sim: ImageSim) -> str:
    """What a channel of provider ``zhipu`` takes as base_url for this simulator."""
    return sim.base_url + "/api/paas/v4"


def zhipu_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def parse_size(size: Any) -> tuple[int, int] | None:
    """(width, height) of a valid CogView size, or None."""
    if not isinstance(size, str):
        return None
    width, sep, height = size.partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        return None
    w, h = int(width), int(height)
    if not (512 <= w <= 2048 and 512 <= h <= 2048) or w % 16 or h % 16 or w * h > 2**21:
        return None
    return w, h


class ZhipuSim(ImageSim):
    def routes(self) -> list[web.RouteDef]:
        return [web.post("/api/paas/v4/images/generations", self._generations)]

    def error_body(self, status: int, message: str) -> JSON:
        return {"error": {"code": STATUS_CODES.get(status, str(status)), "message": message}}

    def _denied(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if not header:
            return zhipu_error(401, "1001", "The Authorization header is missing.")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token.strip() not in self.api_keys:
            return zhipu_error(401, "1002", "The Authorization token is not valid.")
        return None

    def _validate(self, body: Any) -> web.Response | None:
        if not isinstance(body, dict):
            return zhipu_error(400, "1210", "The request body is not valid JSON.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return zhipu_error(400, "1214", "model: must not be empty")
        if model not in MODELS:
            return zhipu_error(400, "1211", f"The model {model} does not exist.")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return zhipu_error(400, "1214", "prompt: must not be empty")
        if "size" in body and parse_size(body["size"]) is None:
            return zhipu_error(400, "1214", f"size: {body['size']} is not a supported size")
        if model in QUALITY_MODELS and body.get("quality", "standard") not in ("standard", "hd"):
            return zhipu_error(400, "1214", "quality: must be standard or hd")
        user_id = body.get("user_id")
        if user_id is not None and (not isinstance(user_id, str) or not 6 <= len(user_id) <= 128):
            return zhipu_error(400, "1214", "user_id: must be 6 to 128 characters")
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
        outcome = self.job_outcome()
        if outcome == "moderated":
            return zhipu_error(
                400, "1301", "The input or generated content may contain unsafe or sensitive content."
            )
        if outcome == "failed":
            return zhipu_error(500, "500", "Internal error while generating the image.")
        width, height = parse_size(body.get("size", "1024x1024")) or (1024, 1024)
        return web.json_response(
            {
                "created": int(time.time()),
                "data": [{"url": self.host_image(width, height, "png")}],
                "content_filter": [{"role": "assistant", "level": 3}],
            }
        )


Sim = ZhipuSim
