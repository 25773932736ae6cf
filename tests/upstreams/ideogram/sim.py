"""A simulator of the Ideogram API's generate routes, for the ideogram adapter.

Routes (as developer.ideogram.ai's API reference describes them):

- ``POST /generate`` (legacy models V_1 .. V_2A_TURBO): JSON ``{"image_request": {prompt, model,
  aspect_ratio: "ASPECT_16_9", num_images, seed, negative_prompt, magic_prompt_option, style_type}}``.
- ``POST /v1/ideogram-v3/generate``: multipart/form-data (prompt, aspect_ratio ``"16x9"``,
  rendering_speed, num_images, seed, negative_prompt, magic_prompt, style_type, ...).

Both answer ``{"created": ISO time, "data": [{"url", "prompt", "resolution", "is_image_safe",
"seed", "style_type"}]}``; the URLs point at files this simulator hosts (real PNGs of the asked
aspect ratio, about ``config.default_size``'s area). Auth is the ``Api-Key`` header; errors are
``{"detail": "..."}``: 401 for a missing or wrong key, 400 for invalid input, 422 for a prompt that
fails the safety check (inject it with ``fail_next``), 429, 5xx.

``config.moderate_jobs_next``: the next request's images come back ``is_image_safe: false`` with no
URL. ``config.fail_jobs_next``: the next request answers 500.
"""

from __future__ import annotations

import math
import secrets
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.upstreams.imaging import JSON, ImageSim

LEGACY_MODELS = frozenset({"V_1", "V_1_TURBO", "V_2", "V_2_TURBO", "V_2A", "V_2A_TURBO"})
LEGACY_RATIOS = frozenset(
    f"ASPECT_{r}" for r in ("1_1", "10_16", "16_10", "9_16", "16_9", "3_2", "2_3", "4_3", "3_4", "1_3", "3_1")
)
LEGACY_STYLES = frozenset({"AUTO", "GENERAL", "REALISTIC", "DESIGN", "RENDER_3D", "ANIME"})
V3_RATIOS = frozenset(
    {
        "1x3",
        "3x1",
        "1x2",
        "2x1",
        "9x16",
        "16x9",
        "10x16",
        "16x10",
        "2x3",
        "3x2",
        "3x4",
        "4x3",
        "4x5",
        "5x4",
        "1x1",
    }
)
V3_SPEEDS = frozenset({"FLASH", "TURBO", "DEFAULT", "QUALITY"})
V3_STYLES = frozenset({"AUTO", "GENERAL", "REALISTIC", "DESIGN", "FICTION"})
MAGIC = frozenset({"AUTO", "ON", "OFF"})
SEED_MAX = 2_147_483_647
MAX_IMAGES = 8


class Invalid(Exception):
    pass


def ratio_size(width_part: int, height_part: int, area: int) -> tuple[int, int]:
    width = max(1, round(math.sqrt(area * width_part / height_part)))
    return width, max(1, round(area / width))


def _int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise Invalid(f"{name} must be an integer")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise Invalid(f"{name} must be an integer") from None
    if not low <= number <= high:
        raise Invalid(f"{name} must be between {low} and {high}")
    return number


def _choice(value: Any, name: str, allowed: frozenset[str]) -> str:
    if value not in allowed:
        raise Invalid(f"{name} must be one of {', '.join(sorted(allowed))}")
    return str(value)


class IdeogramSim(ImageSim):
    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/generate", self._legacy),
            web.post("/v1/ideogram-v3/generate", self._v3),
        ]

    def error_body(self, status: int, message: str) -> JSON:
        return {"detail": message}

    def _denied(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("Api-Key", "")
        if key in self.api_keys:
            return None
        return web.json_response({"detail": "Unauthorized: missing or invalid Api-Key"}, status=401)

    def _bad(self, message: str) -> web.Response:
        return web.json_response(self.error_body(400, message), status=400)

    # --- legacy ---------------------------------------------------------------------------------

    async def _legacy(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._denied(request)) is not None:
            return denied
        if (failure := self.take_injected_failure()) is not None:
            return failure
        body = await self.read_json(request)
        spec = body.get("image_request") if isinstance(body, dict) else None
        if not isinstance(spec, dict):
            return self._bad("image_request is required")
        try:
            prompt = spec.get("prompt")
            if not isinstance(prompt, str) or not prompt.strip():
                raise Invalid("prompt is required")
            model = _choice(spec.get("model", "V_2"), "model", LEGACY_MODELS)
            ratio = _choice(spec.get("aspect_ratio", "ASPECT_1_1"), "aspect_ratio", LEGACY_RATIOS)
            count = _int(spec.get("num_images", 1), "num_images", 1, MAX_IMAGES)
            seed = _int(spec["seed"], "seed", 0, SEED_MAX) if "seed" in spec else None
            if "magic_prompt_option" in spec:
                _choice(spec["magic_prompt_option"], "magic_prompt_option", MAGIC)
            style = spec.get("style_type")
            if style is not None:
                _choice(style, "style_type", LEGACY_STYLES)
        except Invalid as exc:
            return self._bad(str(exc))
        _, w, h = ratio.split("_")
        default_style = "GENERAL" if model not in ("V_1", "V_1_TURBO") else None
        return self._answer(prompt, int(w), int(h), count, seed, style or default_style)

    # --- v3 -------------------------------------------------------------------------------------

    async def _v3(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._denied(request)) is not None:
            return denied
        if (failure := self.take_injected_failure()) is not None:
            return failure
        if not request.content_type.startswith("multipart/form-data"):
            return self._bad("the body must be multipart/form-data")
        form = await self.read_form(request)
        try:
            prompt = form.get("prompt")
            if not isinstance(prompt, str) or not prompt.strip():
                raise Invalid("prompt is required")
            ratio = _choice(form.get("aspect_ratio", "1x1"), "aspect_ratio", V3_RATIOS)
            _choice(form.get("rendering_speed", "DEFAULT"), "rendering_speed", V3_SPEEDS)
            count = _int(form.get("num_images", "1"), "num_images", 1, MAX_IMAGES)
            seed = _int(form["seed"], "seed", 0, SEED_MAX) if "seed" in form else None
            if "magic_prompt" in form:
                _choice(form["magic_prompt"], "magic_prompt", MAGIC)
            style = form.get("style_type", "GENERAL")
            _choice(style, "style_type", V3_STYLES)
        except Invalid as exc:
            return self._bad(str(exc))
        w, h = ratio.split("x")
        return self._answer(prompt, int(w), int(h), count, seed, str(style))

    # --- the answer -----------------------------------------------------------------------------

    def _answer(
        self, prompt: str, w: int, h: int, count: int, seed: int | None, style: str | None
    ) -> web.Response:
        outcome = self.job_outcome()
        if outcome == "failed":
            return web.json_response(self.error_body(500, "Internal server error"), status=500)
        area = self.config.default_size[0] * self.config.default_size[1]
        width, height = ratio_size(w, h, area)
        base_seed = seed if seed is not None else secrets.randbelow(SEED_MAX - MAX_IMAGES)
        data: list[JSON] = []
        for i in range(count):
            safe = outcome != "moderated"
            item: JSON = {
                "url": self.host_image(width, height, "png") if safe else None,
                "prompt": prompt,
                "resolution": f"{width}x{height}",
                "is_image_safe": safe,
                "seed": base_seed + i,
            }
            if style is not None:
                item["style_type"] = style
            data.append(item)
        created = datetime.now(UTC).isoformat(timespec="microseconds")
        return web.json_response({"created": created, "data": data})


def channel_base_url(sim: IdeogramSim) -> str:
    """The ``base_url`` an ideogram channel uses to reach this simulator."""
    return sim.base_url


Sim = IdeogramSim
