"""Simulator of Imagen on the Gemini API: ``POST /v1beta/models/{model}:predict``.

Auth by ``x-goog-api-key`` (or ``?key=``): a missing key is 403 PERMISSION_DENIED, a wrong one 400
INVALID_ARGUMENT with an ``API_KEY_INVALID`` ErrorInfo, as Google answers. Results are real PNGs
of the size Imagen draws for the ratio, inline as base64. ``moderate_jobs_next`` answers ``{}``
(every image filtered); ``filter_next`` withholds that many images of the next answer (with a
``raiFilteredReason`` entry when ``includeRaiReason`` is set); ``fail_jobs_next`` answers 500.
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from tests.upstreams.imaging import JSON, ImageSim, ImageSimConfig, make_image

MODELS = frozenset({"imagen-3.0-generate-002", "imagen-3.0-fast-generate-001", "imagen-4.0-generate-001"})
SIZES = {
    "1:1": (1024, 1024),
    "3:4": (896, 1280),
    "4:3": (1280, 896),
    "9:16": (768, 1408),
    "16:9": (1408, 768),
}
PERSON_GENERATION = frozenset({"dont_allow", "allow_adult", "allow_all"})
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
FILTER_REASON = (
    "Your current safety filter threshold filtered out the generated image. "
    "You will not be charged for blocked images."
)


def google_error(status: int, message: str, details: list[JSON] | None = None) -> web.Response:
    error: JSON = {"code": status, "message": message, "status": STATUS_NAMES.get(status, "UNKNOWN")}
    if details:
        error["details"] = details
    return web.json_response({"error": error}, status=status)


class GoogleImagenSim(ImageSim):
    def __init__(self, api_keys: set[str] | None = None, config: ImageSimConfig | None = None) -> None:
        super().__init__(api_keys, config)
        self.filter_next = 0

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v1beta/models/{target}", self._predict)]

    def error_body(self, status: int, message: str) -> JSON:
        return {"error": {"code": status, "message": message, "status": STATUS_NAMES.get(status, "UNKNOWN")}}

    async def _predict(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        injected = self.take_injected_failure()
        if injected is not None:
            return injected
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            return google_error(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
            )
        if key not in self.api_keys:
            return google_error(
                400,
                "API key not valid. Please pass a valid API key.",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    }
                ],
            )
        model, _, action = request.match_info["target"].partition(":")
        if action != "predict" or model not in MODELS:
            return google_error(
                404,
                f"models/{model} is not found for API version v1beta, or is not supported for "
                f"{action or 'predict'}. Call ListModels to see the list of available models and their "
                "supported methods.",
            )
        invalid = _validate(body)
        if invalid is not None:
            return invalid
        parameters: JSON = body.get("parameters") or {}
        count = int(parameters.get("sampleCount", 4))
        width, height = SIZES[parameters.get("aspectRatio", "1:1")]
        outcome = self.job_outcome()
        if outcome == "moderated":
            return web.json_response({})
        if outcome == "failed":
            return google_error(500, "An internal error has occurred. Please retry or report in ...")
        withheld = min(self.filter_next, count)
        self.filter_next -= withheld
        png = base64.b64encode(make_image(width, height, "png")).decode()
        predictions: list[JSON] = [
            {"bytesBase64Encoded": png, "mimeType": "image/png"} for _ in range(count - withheld)
        ]
        if withheld and parameters.get("includeRaiReason"):
            predictions.append({"raiFilteredReason": FILTER_REASON})
        return web.json_response({"predictions": predictions} if predictions else {})


def _validate(body: Any) -> web.Response | None:
    def bad(message: str) -> web.Response:
        return google_error(400, message)

    if not isinstance(body, dict):
        return bad("Invalid JSON payload received.")
    instances = body.get("instances")
    if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
        return bad("Exactly one instance with a prompt is required.")
    prompt = instances[0].get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return bad("A prompt is required.")
    parameters = body.get("parameters", {})
    if not isinstance(parameters, dict):
        return bad("Invalid JSON payload received. parameters must be an object.")
    count = parameters.get("sampleCount", 4)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 4:
        return bad("Number of images must be between 1 and 4.")
    if parameters.get("aspectRatio", "1:1") not in SIZES:
        return bad("Unsupported aspect ratio. Use one of 1:1, 3:4, 4:3, 9:16, 16:9.")
    if parameters.get("personGeneration", "allow_adult") not in PERSON_GENERATION:
        return bad("Unsupported person generation value.")
    if not isinstance(parameters.get("negativePrompt", ""), str):
        return bad("negativePrompt must be a string.")
    return None


def channel_base_url(sim: GoogleImagenSim) -> str:
    return sim.base_url


Sim = GoogleImagenSim
