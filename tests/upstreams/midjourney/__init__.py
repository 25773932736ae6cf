"""midjourney-proxy "plus" API simulator (see sim.py)."""

from tests.upstreams.midjourney.sim import MidjourneySim, MJSimConfig, Sim, channel_base_url

__all__ = ["MJSimConfig", "MidjourneySim", "Sim", "channel_base_url"]
