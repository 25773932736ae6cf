"""In-process simulator of Baidu Qianfan's ``POST /v2/images/generations`` (model irag-1.0).

As the public v2 reference describes it: ``Authorization: Bearer <API key>``, JSON body {model, prompt
(at most 220 characters for irag-1.0), n (1-4), size (512x512 .. 2048x2048), refer_image (URL),
user}, answer ``{id, created, data: [{url}]}``. Errors have Qianfan v2's shape
``{"error": {"code", "message", "type"}, "id"}``: invalid_iam_token (401), malformed_json /
invalid_model / invalid_argument / characters_too_long (400), rate_limit_exceeded (429),
internal_error (500). ``config.moderate_jobs_next`` refuses the next jobs with code
``sensitive_content`` (an assumption: the reference names no moderation code for images),
``config.fail_jobs_next`` answers 500, ``config.fail_next`` injects any status.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from tests.upstreams.imaging import JSON, ImageSim

MODELS = frozenset({"irag-1.0", "flux.1-schnell"})
PROMPT_LIMITS = {"irag-1.0": 220, "flux.1-schnell": 512}
STATUS_CODES = {
    400: "invalid_argument",
    401: "invalid_iam_token",
    403: "access_denied",
    429: "rate_limit_exceeded",
}
REQUEST_ERROR = "invalid_request_error"


def channel_base_url(sim: ImageSim) -> str:
    """What a channel of provider ``baidu_irag`` takes as base_url for this simulator."""
    return sim.base_url + "/v2"


def parse_size(size: Any) -> tuple[int, int] | None:
    if not isinstance(size, str):
        return None
    width, sep, height = size.partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        return None
    w, h = int(width), int(height)
    return (w, h) if 512 <= w <= 2048 and 512 <= h <= 2048 else None


class BaiduIragSim(ImageSim):
    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v2/images/generations", self._generations)]

    def error_body(self, status: int, message: str) -> JSON:
        code = STATUS_CODES.get(status, "internal_error" if status >= 500 else "invalid_argument")
        kind = "server_error" if status >= 500 else REQUEST_ERROR
        return {"error": {"code": code, "message": message, "type": kind}, "id": self.new_id("as-")}

    def _error(self, status: int, code: str, message: str, kind: str = REQUEST_ERROR) -> web.Response:
        body = {"error": {"code": code, "message": message, "type": kind}, "id": self.new_id("as-")}
        return web.json_response(body, status=status)

    def _denied(self, request: web.Request) -> web.Response | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip() in self.api_keys:
            return None
        return self._error(401, "invalid_iam_token", "IAM Certification failed")

    def _validate(self, body: Any) -> web.Response | None:
        if not isinstance(body, dict):
            return self._error(400, "malformed_json", "Invalid Argument")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return self._error(400, "invalid_model", "model is empty")
        if model not in MODELS:
            return self._error(400, "invalid_model", f"model {model} is not available")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return self._error(400, "invalid_argument", "prompt is empty")
        if len(prompt) > PROMPT_LIMITS[model]:
            return self._error(
                400, "characters_too_long", f"the max input characters is {PROMPT_LIMITS[model]}"
            )
        n = body.get("n", 1)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 4:
            return self._error(400, "invalid_argument", "n must be between 1 and 4")
        if "size" in body and parse_size(body["size"]) is None:
            return self._error(400, "invalid_argument", f"size {body['size']} is out of 512x512..2048x2048")
        refer = body.get("refer_image")
        if refer is not None:
            if model != "irag-1.0":
                return self._error(400, "invalid_argument", "refer_image is only supported by irag-1.0")
            if not isinstance(refer, str) or not refer.startswith(("http://", "https://")):
                return self._error(400, "invalid_argument", "refer_image must be an image URL")
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
            return self._error(400, "sensitive_content", "the prompt did not pass content review")
        if outcome == "failed":
            return self._error(500, "internal_error", "internal error", "server_error")
        width, height = parse_size(body.get("size", "1024x1024")) or (1024, 1024)
        data = [{"url": self.host_image(width, height, "png")} for _ in range(int(body.get("n", 1)))]
        return web.json_response({"id": self.new_id("as-"), "created": int(time.time()), "data": data})


Sim = BaiduIragSim
