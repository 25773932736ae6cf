"""Shared machinery for the video vendors' simulators (on top of ``ImageSim``).

A video simulator gets ``ImageSim``'s loopback server, request recording, failure injection
(``fail_next``), outcome injection (``fail_jobs_next``, ``moderate_jobs_next``) and file hosting, plus
asynchronous video jobs: ``new_job`` records a job with its outcome drawn at creation, ``advance``
moves it one poll forward (``polls_before_ready`` polls in progress, then its outcome) and hosts a
tiny but real MP4 (an ISO BMFF ``ftyp`` box, a ``free`` box and an ``mdat`` box) when it succeeds.
"""

from __future__ import annotations

import dataclasses
import importlib
import struct
import time
from collections.abc import Awaitable
from typing import Any

import aiohttp

from omnirelay.core.images import ImageInput
from omnirelay.core.videos import VideoJob, VideoResult, default_catalog, infer_mode
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.registry import adapter_class
from omnirelay.settings import ChannelConfig
from tests.upstreams.imaging import DEFAULT_KEY, ImageSim, Job, make_image

IN_PROGRESS = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
MODERATED = "moderated"


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def fake_mp4(payload: bytes = b"omnirelay test video") -> bytes:
    """A few dozen bytes that start the way every MP4 does (``ftyp`` major brand ``isom``)."""
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2mp41")
    return ftyp + _box(b"free", b"") + _box(b"mdat", payload)


def is_mp4(data: bytes) -> bool:
    return len(data) >= 12 and data[4:8] == b"ftyp"


class VideoSim(ImageSim):
    """Base class of the video simulators; subclasses add their vendor's routes and wire shapes."""

    def host_video(self, payload: bytes = b"omnirelay test video") -> str:
        """Make a result video, keep it, and return the URL a client downloads it from."""
        name = f"{self.new_id('vid')}.mp4"
        self.files[name] = (fake_mp4(payload), "video/mp4")
        return f"{self.base_url}/_files/{name}"

    def new_job(self, request: Any, prefix: str = "", *, job_id: str | None = None) -> Job:
        job = Job(id=job_id or self.new_id(prefix), request=request, outcome=self.job_outcome())
        self.jobs[job.id] = job
        return job

    def advance(self, job: Job) -> str:
        """One poll: ``running`` for ``polls_before_ready`` polls, then the job's outcome."""
        job.polls += 1
        if job.polls <= self.config.polls_before_ready:
            return IN_PROGRESS
        if job.outcome == SUCCEEDED and not job.outputs:
            job.outputs.append(self.host_video(job.id.encode()))
        return job.outcome


# --- helpers for the adapter tests ------------------------------------------------------------------


def sample_image(width: int = 32, height: int = 32) -> ImageInput:
    return ImageInput(make_image(width, height), "image/png", width, height)


def video_job(model_id: str, **changes: Any) -> VideoJob:
    """A job for a catalog model: a prompt, the mode its inputs imply, everything else default."""
    spec = default_catalog().get(model_id)
    assert spec is not None, model_id
    job = VideoJob(spec=spec, prompt="a lighthouse at dawn, waves rolling in")
    job = dataclasses.replace(job, **changes)
    job.mode = changes.get("mode") or infer_mode(
        image=job.image is not None, end_image=job.end_image is not None, video=job.video_url is not None
    )
    return job


def make_adapter(
    provider: str, sim: ImageSim, http: aiohttp.ClientSession, key: str = DEFAULT_KEY, **channel: Any
) -> Any:
    module = importlib.import_module(f"tests.upstreams.{provider}.sim")
    config = ChannelConfig(
        name=provider, provider=provider, base_url=module.channel_base_url(sim), api_key=key, **channel
    )
    adapter = adapter_class(provider)(config, http, connect_timeout_s=5)
    adapter.poll_interval_s = 0.01
    return adapter


async def run_to_end(adapter: Any, job: VideoJob, key: str, max_polls: int = 20) -> tuple[VideoResult, int]:
    """Submit once, then poll until the adapter has a result; (result, polls)."""
    task_id = await adapter.submit(job, key, time.monotonic() + 10)
    assert isinstance(task_id, str) and task_id
    for polls in range(1, max_polls + 1):
        result = await adapter.check(task_id, key, time.monotonic() + 10)
        if result is not None:
            assert isinstance(result, VideoResult)
            return result, polls
    raise AssertionError(f"no result after {max_polls} polls")


async def download(http: aiohttp.ClientSession, url: str) -> bytes:
    async with http.get(url) as resp:
        assert resp.status == 200, url
        return await resp.read()


async def failure(call: Awaitable[Any]) -> ProviderError:
    try:
        await call
    except ProviderError as exc:
        return exc
    raise AssertionError("expected a ProviderError")


def shape(error: ProviderError) -> tuple[FailureKind, int | None, bool, bool]:
    return error.kind, error.status, error.retryable, error.client_fault
