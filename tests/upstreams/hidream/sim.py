"""Simulator of the HiDream-I1 asynchronous image API, as docs/providers/hidream.md assumes it.

- ``POST /api/v1/image/generate`` (Bearer key) -> ``{code: 0, message, result: {task_id}}``;
- ``GET /api/v1/image/result?task_id=`` -> ``{code: 0, message, result: {task_id, status, images,
  error}}``, status 0 pending, 1 running, 2 succeeded, 3 failed, 4 moderated.

Errors are an HTTP status with ``{code: <the status>, message}``. A task answers "pending" on its
first poll and "running" on the next ones until ``polls_before_ready`` polls have been made; then it
ends as ``job_outcome()`` decided at submission. Results are real PNGs of the asked size, as URLs.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from aiohttp import web

from tests.upstreams.imaging import JSON, ImageSim, ImageSimConfig, Job

MODELS = frozenset({"hidream-i1-full", "hidream-i1-dev", "hidream-i1-fast"})


def hidream_error(status: int, message: str) -> web.Response:
    return web.json_response({"code": status, "message": message, "result": None}, status=status)


class HidreamSim(ImageSim):
    def __init__(self, api_keys: set[str] | None = None, config: ImageSimConfig | None = None) -> None:
        super().__init__(api_keys, config)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v1/image/generate", self._generate),
            web.get("/api/v1/image/result", self._result),
        ]

    def error_body(self, status: int, message: str) -> JSON:
        return {"code": status, "message": message, "result": None}

    def _auth(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:].strip() not in self.api_keys:
            return hidream_error(401, "Invalid or missing API key.")
        return None

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        injected = self.take_injected_failure()
        if injected is not None:
            return injected
        refused = self._auth(request)
        if refused is not None:
            return refused
        problem = _validate(body)
        if problem is not None:
            return hidream_error(400, problem)
        job = Job(id=self.new_id("hd-"), request=body, outcome=self.job_outcome())
        self.jobs[job.id] = job
        return web.json_response({"code": 0, "message": "success", "result": {"task_id": job.id}})

    async def _result(self, request: web.Request) -> web.StreamResponse:
        injected = self.take_injected_failure()
        if injected is not None:
            return injected
        refused = self._auth(request)
        if refused is not None:
            return refused
        task_id = request.query.get("task_id", "")
        job = self.jobs.get(task_id)
        if job is None:
            return hidream_error(404, f"Task {task_id!r} not found.")
        job.polls += 1
        result: JSON = {"task_id": job.id, "status": 0, "images": [], "error": None}
        if job.polls <= self.config.polls_before_ready:
            result["status"] = 0 if job.polls == 1 else 1
        elif job.outcome == "failed":
            result.update(status=3, error="Generation failed: worker error.")
        elif job.outcome == "moderated":
            result.update(status=4, error="The prompt or the result was blocked by content moderation.")
        else:
            if not job.outputs:
                width, height = int(job.request["width"]), int(job.request["height"])
                job.outputs = [
                    self.host_image(width, height, "png") for _ in range(int(job.request.get("n", 1)))
                ]
            result.update(status=2, images=list(job.outputs))
        return web.json_response({"code": 0, "message": "success", "result": result})


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    if body.get("model") not in MODELS:
        return f"Unknown model {body.get('model')!r}."
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "prompt is required."
    for name in ("width", "height"):
        value = body.get(name)
        if not _is_int(value) or not 128 <= value <= 2048:
            return f"{name} must be an integer in [128, 2048]."
    n = body.get("n", 1)
    if not _is_int(n) or not 1 <= n <= 4:
        return "n must be in [1, 4]."
    if "seed" in body and not _is_int(body["seed"]):
        return "seed must be an integer."
    if not isinstance(body.get("negative_prompt", ""), str):
        return "negative_prompt must be a string."
    return None


def channel_base_url(sim: HidreamSim) -> str:
    return sim.base_url


Sim = HidreamSim
