"""Google Imagen over the Gemini API: ``POST {base_url}/v1beta/models/{model}:predict``.

The channel's ``base_url`` is ``https://generativelanguage.googleapis.com`` and its key goes in the
``x-goog-api-key`` header. One call returns up to four images (``sampleCount``) inline as base64;
images the safety filter removed are simply missing, and an answer with none left is a refusal.
Errors are Google's ``{"error": {"code", "message", "status", "details"}}`` and are classified by
their ``status`` name through ``STATUS_RULES``.
"""

from __future__ import annotations

import base64
import binascii
import math
import time
from typing import Any, ClassVar

from omnirelay.core.images import GeneratedImage, ImageJob, ImageResult
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.image_adapter import ImageAdapter, generation_failed
from omnirelay.providers.openai_compat.errors import classify_status

# The aspect ratios Imagen draws; another ratio is sent as the nearest of these.
IMAGEN_RATIOS: dict[str, float] = {"1:1": 1.0, "3:4": 3 / 4, "4:3": 4 / 3, "9:16": 9 / 16, "16:9": 16 / 9}
MAX_SAMPLES = 4
PERSON_GENERATION = frozenset({"dont_allow", "allow_adult", "allow_all"})

# Google's canonical error ``status`` -> (retry elsewhere, client's fault).
STATUS_RULES: dict[str, tuple[bool, bool]] = {
    "INVALID_ARGUMENT": (False, True),
    "FAILED_PRECONDITION": (False, True),
    "OUT_OF_RANGE": (False, True),
    "PERMISSION_DENIED": (True, False),
    "UNAUTHENTICATED": (True, False),
    "NOT_FOUND": (True, False),  # the channel's model name is unknown there: another may know it
    "RESOURCE_EXHAUSTED": (True, False),
    "ABORTED": (True, False),
    "UNAVAILABLE": (True, False),
    "INTERNAL": (True, False),
    "DEADLINE_EXCEEDED": (True, False),
    "UNKNOWN": (True, False),
}
# ``ErrorInfo.reason`` values that override the status: a bad key is answered INVALID_ARGUMENT.
REASON_RULES: dict[str, tuple[bool, bool]] = {
    "API_KEY_INVALID": (True, False),
    "API_KEY_EXPIRED": (True, False),
    "API_KEY_SERVICE_BLOCKED": (True, False),
    "SERVICE_DISABLED": (True, False),
    "CONSUMER_SUSPENDED": (True, False),
    "RATE_LIMIT_EXCEEDED": (True, False),
}


def error_reasons(body: Any) -> list[str]:
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    reasons: list[str] = []
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and isinstance(detail.get("reason"), str):
            reasons.append(detail["reason"])
    return reasons


def classify_google(status: int, body: Any) -> tuple[bool, bool]:
    for reason in error_reasons(body):
        if reason in REASON_RULES:
            return REASON_RULES[reason]
    error = body.get("error") if isinstance(body, dict) else None
    name = error.get("status") if isinstance(error, dict) else None
    if isinstance(name, str) and name in STATUS_RULES:
        return STATUS_RULES[name]
    return classify_status(status, body if isinstance(body, dict) else None)


def imagen_ratio(aspect_ratio: str | None, width: int, height: int) -> str:
    """An Imagen aspect ratio: the one asked when Imagen has it, else the nearest (log distance)."""
    if aspect_ratio in IMAGEN_RATIOS:
        return aspect_ratio
    wanted = width / height if width > 0 and height > 0 else 1.0
    if aspect_ratio:
        left, sep, right = aspect_ratio.partition(":")
        try:
            if sep and float(left) > 0 and float(right) > 0:
                wanted = float(left) / float(right)
        except ValueError:
            pass
    return min(IMAGEN_RATIOS, key=lambda name: abs(math.log(IMAGEN_RATIOS[name] / wanted)))


def imagen_request(job: ImageJob) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        "sampleCount": min(max(1, job.n), MAX_SAMPLES),
        "aspectRatio": imagen_ratio(job.aspect_ratio, job.width, job.height),
    }
    person = job.extra.get("person_generation", job.extra.get("personGeneration"))
    if isinstance(person, str) and person.lower() in PERSON_GENERATION:
        parameters["personGeneration"] = person.lower()
    if job.negative_prompt:
        parameters["negativePrompt"] = job.negative_prompt
    return {"instances": [{"prompt": job.prompt}], "parameters": parameters}


def imagen_images(body: Any) -> tuple[list[GeneratedImage], list[str]]:
    """The images of an answer, and the filter reasons given for the ones withheld."""
    predictions = body.get("predictions") if isinstance(body, dict) else None
    images: list[GeneratedImage] = []
    reasons: list[str] = []
    for item in predictions if isinstance(predictions, list) else []:
        if not isinstance(item, dict):
            continue
        encoded = item.get("bytesBase64Encoded")
        if isinstance(encoded, str) and encoded:
            try:
                data = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ProviderError(
                    FailureKind.HTTP, "Imagen sent an image that is not valid base64", retryable=True
                ) from exc
            mime = item.get("mimeType")
            images.append(GeneratedImage(data=data, media_type=mime if isinstance(mime, str) else None))
        elif isinstance(item.get("raiFilteredReason"), str):
            reasons.append(item["raiFilteredReason"])
    return images, reasons


def trim_predictions(body: Any) -> Any:
    if not isinstance(body, dict):
        return body
    predictions = body.get("predictions")
    if not isinstance(predictions, list):
        return dict(body)
    trimmed = []
    for item in predictions:
        if isinstance(item, dict) and isinstance(item.get("bytesBase64Encoded"), str):
            size = len(item["bytesBase64Encoded"])
            item = {**item, "bytesBase64Encoded": f"<{size} base64 characters omitted>"}
        trimmed.append(item)
    return {**body, "predictions": trimmed}


class GoogleImagenAdapter(ImageAdapter):
    id: ClassVar[str] = "google_imagen"

    def classify(self, status: int, body: Any) -> tuple[bool, bool]:
        return classify_google(status, body)

    async def generate_image(self, job: ImageJob, api_key: str, timeout_s: float) -> ImageResult:
        deadline = time.monotonic() + timeout_s
        url = f"{self.base_url}/v1beta/models/{job.spec.upstream_model}:predict"
        body = await self.call_json(
            "POST", url, deadline=deadline, headers={"x-goog-api-key": api_key}, json=imagen_request(job)
        )
        images, reasons = imagen_images(body)
        if not images:
            why = "; ".join(reasons) or "every image was removed by the safety filter"
            raise generation_failed(f"Imagen returned no image: {why}", moderated=True)
        return ImageResult(images=images, raw=trim_predictions(body))
