"""DashScope Wan video synthesis simulator; see sim.py."""

from tests.upstreams.wan.sim import Sim, WanSim, channel_base_url

__all__ = ["Sim", "WanSim", "channel_base_url"]
