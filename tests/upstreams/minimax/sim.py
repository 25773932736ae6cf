"""Simulator of MiniMax image generation: ``POST /v1/image_generation`` with a Bearer key.

As MiniMax does, it reports auth, validation and generation errors inside ``base_resp`` of an HTTP
200 answer (1004 not authorized, 2049 invalid api key, 2013 invalid params, 1000 unknown error...).
Results are real JPEGs of MiniMax's size for the ratio (or the explicit width/height), as URLs or
base64. ``moderate_jobs_next`` answers success_count 0 / failed_count n; ``filter_next`` withholds
that many images of the next answer; ``fail_jobs_next`` answers status_code 1000.
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from tests.upstreams.imaging import JSON, ImageSim, ImageSimConfig, make_image

MODELS = frozenset({"image-01", "image-01-live"})
SIZES = {
    "1:1": (1024, 1024),
    "16:9": (1280, 720),
    "4:3": (1152, 864),
    "3:2": (1248, 832),
    "2:3": (832, 1248),
    "3:4": (864, 1152),
    "9:16": (720, 1280),
    "21:9": (1344, 576),
}
# HTTP status of an injected failure -> the status_code its body carries
_INJECTED = {400: 2013, 401: 1004, 402: 1008, 429: 1002, 500: 1000, 503: 1013}


def minimax_body(trace: str, code: int, message: str, **fields: Any) -> JSON:
    return {"id": trace, **fields, "base_resp": {"status_code": code, "status_msg": message}}


class MinimaxSim(ImageSim):
    def __init__(self, api_keys: set[str] | None = None, config: ImageSimConfig | None = None) -> None:
        super().__init__(api_keys, config)
        self.filter_next = 0

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/image_generation", self._generate)]

    def error_body(self, status: int, message: str) -> JSON:
        return minimax_body(self.new_id("trace"), _INJECTED.get(status, 1000), message)

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        injected = self.take_injected_failure()
        if injected is not None:
            return injected
        trace = self.new_id("0412")
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return web.json_response(
                minimax_body(
                    trace,
                    1004,
                    "login fail: Please carry the API secret key in the 'Authorization' field of the "
                    "request header",
                )
            )
        if auth[7:].strip() not in self.api_keys:
            return web.json_response(minimax_body(trace, 2049, "invalid api key"))
        problem = _validate(body)
        if problem is not None:
            return web.json_response(minimax_body(trace, 2013, f"invalid params, {problem}"))
        count = int(body.get("n", 1))
        if "aspect_ratio" in body:
            width, height = SIZES[body["aspect_ratio"]]
        elif "width" in body:
            width, height = int(body["width"]), int(body["height"])
        else:
            width, height = SIZES["1:1"]
        outcome = self.job_outcome()
        if outcome == "failed":
            return web.json_response(minimax_body(trace, 1000, "unknown error"))
        if outcome == "moderated":
            withheld = count
        else:
            withheld = min(self.filter_next, count)
            self.filter_next -= withheld
        made = count - withheld
        data: JSON
        if body.get("response_format", "url") == "base64":
            data = {
                "image_base64": [
                    base64.b64encode(make_image(width, height, "jpeg")).decode() for _ in range(made)
                ]
            }
        else:
            data = {"image_urls": [self.host_image(width, height, "jpeg") for _ in range(made)]}
        metadata = {"failed_count": str(withheld), "success_count": str(made)}
        return web.json_response(minimax_body(trace, 0, "success", data=data, metadata=metadata))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate(body: Any) -> str | None:
    """What is wrong with the request, in MiniMax's words, or None."""
    if not isinstance(body, dict):
        return "request body is not a json object"
    if body.get("model") not in MODELS:
        return f"model {body.get('model')!r} is not supported"
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > 1500:
        return "prompt is required and at most 1500 characters"
    if "aspect_ratio" in body and body["aspect_ratio"] not in SIZES:
        return f"aspect_ratio {body['aspect_ratio']!r} is not supported"
    if ("width" in body) != ("height" in body):
        return "width and height must be set together"
    for name in ("width", "height"):
        if name in body:
            value = body[name]
            if not _is_int(value) or not 512 <= value <= 2048 or value % 8:
                return f"{name} must be a multiple of 8 in [512, 2048]"
    if body.get("response_format", "url") not in ("url", "base64"):
        return "response_format must be url or base64"
    n = body.get("n", 1)
    if not _is_int(n) or not 1 <= n <= 9:
        return "n must be in [1, 9]"
    if "seed" in body and not _is_int(body["seed"]):
        return "seed must be an integer"
    if "prompt_optimizer" in body and not isinstance(body["prompt_optimizer"], bool):
        return "prompt_optimizer must be a boolean"
    reference = body.get("subject_reference")
    if reference is not None:
        if not isinstance(reference, list) or not reference:
            return "subject_reference must be a non-empty list"
        for item in reference:
            image = item.get("image_file") if isinstance(item, dict) else None
            if not isinstance(item, dict) or item.get("type") != "character" or not isinstance(image, str):
                return "subject_reference items need type 'character' and an image_file"
            if not image.startswith(("http://", "https://", "data:image/")):
                return "subject_reference image_file must be a URL or a base64 data URL"
    elif body.get("model") == "image-01-live":
        return "image-01-live needs a subject_reference"
    return None


def channel_base_url(sim: MinimaxSim) -> str:
    return sim.base_url


Sim = MinimaxSim
