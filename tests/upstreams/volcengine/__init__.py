"""Volcengine Doubao image APIs simulator (Ark and the signed visual API); see sim.py."""

from tests.upstreams.volcengine.sim import (
    ACCESS_KEY,
    SECRET_KEY,
    Sim,
    VolcengineSim,
    channel_api_key,
    channel_base_url,
    visual_base_url,
)

__all__ = [
    "ACCESS_KEY",
    "SECRET_KEY",
    "Sim",
    "VolcengineSim",
    "channel_api_key",
    "channel_base_url",
    "visual_base_url",
]
