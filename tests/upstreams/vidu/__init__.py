"""Vidu enterprise API simulator; see sim.py."""

from tests.upstreams.vidu.sim import Sim, ViduSim, channel_base_url

__all__ = ["Sim", "ViduSim", "channel_base_url"]
