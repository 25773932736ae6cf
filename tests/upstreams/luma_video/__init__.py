"""Luma Dream Machine video API simulator; see sim.py."""

from tests.upstreams.luma_video.sim import LumaVideoSim, Sim, channel_base_url

__all__ = ["LumaVideoSim", "Sim", "channel_base_url"]
