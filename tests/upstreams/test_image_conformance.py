"""The one conformance suite every image adapter runs against its own simulator.

Each vendor's folder has its own detailed tests; this suite checks the contract the gateway relies
on, the same way for all of them: a job comes back as decodable images, and failures are classified
(retry elsewhere or not, the client's fault or not) from the status the vendor answers.
"""

from __future__ import annotations

import importlib
import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from PIL import Image

from omnirelay.core.image_catalog import load_image_catalog, spec_from_row
from omnirelay.core.images import ImageInput, ImageJob
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.registry import adapter_class
from omnirelay.settings import ChannelConfig
from tests.upstreams.imaging import ImageSim, make_image

ROWS = load_image_catalog()
ADAPTERS = sorted({row["adapter"] for row in ROWS})


def first_row(adapter: str) -> dict[str, Any]:
    return next(r for r in ROWS if r["adapter"] == adapter and r.get("mode", "t2i") == "t2i")


@pytest.fixture(params=ADAPTERS)
async def rig(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[Any, ImageSim, str, aiohttp.ClientSession]]:
    adapter_id: str = request.param
    module = importlib.import_module(f"tests.upstreams.{adapter_id}.sim")
    sim: ImageSim = module.Sim()
    await sim.start()
    key = module.channel_api_key(sim) if hasattr(module, "channel_api_key") else "sk-upstream-test"
    channel = ChannelConfig(name="c", provider=adapter_id, base_url=module.channel_base_url(sim), api_key=key)
    async with aiohttp.ClientSession() as http:
        adapter = adapter_class(adapter_id)(channel, http, connect_timeout_s=5)
        adapter.poll_interval_s = 0.01
        adapter.poll_max_interval_s = 0.02
        yield adapter, sim, key, http
    await sim.stop()


def job_for(adapter_id: str) -> ImageJob:
    spec = spec_from_row(first_row(adapter_id))
    size = (spec.rules.get("size") or {}).get("default")
    ratio = (spec.rules.get("aspect_ratio") or {}).get("default")
    width, height = (512, 512) if "dimensions" in spec.rules else (1024, 1024)
    source = make_image(32, 32)
    return ImageJob(
        spec=spec,
        prompt="a lighthouse",
        width=width,
        height=height,
        size=size,
        aspect_ratio=ratio,
        images=[ImageInput(source, "image/png", 32, 32)] if spec.requires_image else [],
    )


async def test_a_job_returns_decodable_images(rig: tuple[Any, ImageSim, str, aiohttp.ClientSession]) -> None:
    adapter, sim, key, http = rig
    result = await adapter.generate_image(job_for(adapter.id), key, 20.0)
    assert result.images, "at least one image"
    for image in result.images:
        data = image.data
        if data is None:
            assert image.url
            async with http.get(image.url) as resp:
                assert resp.status == 200
                data = await resp.read()
        with Image.open(io.BytesIO(data)) as img:
            img.verify()
    assert result.raw is not None
    assert sim.requests, "the simulator saw the call"


@pytest.mark.parametrize(
    ("status", "retryable", "client_fault"),
    [(401, True, False), (429, True, False), (500, True, False), (503, True, False), (400, False, True)],
)
async def test_failures_are_classified_by_status(
    rig: tuple[Any, ImageSim, str, aiohttp.ClientSession], status: int, retryable: bool, client_fault: bool
) -> None:
    adapter, sim, key, _ = rig
    sim.config.fail_next = [status]
    with pytest.raises(ProviderError) as info:
        await adapter.generate_image(job_for(adapter.id), key, 20.0)
    error = info.value
    assert error.retryable is retryable
    assert error.client_fault is client_fault
    assert error.kind in (FailureKind.HTTP, FailureKind.GENERATION)


async def test_a_wrong_key_is_the_channels_problem(
    rig: tuple[Any, ImageSim, str, aiohttp.ClientSession],
) -> None:
    adapter, _sim, key, _ = rig
    wrong = "AKWRONG:wrong" if ":" in key else "sk-wrong-key"
    with pytest.raises(ProviderError) as info:
        await adapter.generate_image(job_for(adapter.id), wrong, 20.0)
    assert info.value.retryable and not info.value.client_fault
