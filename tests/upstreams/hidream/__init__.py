"""HiDream-I1 asynchronous image API simulator (documented-assumption shape); see sim.py."""

from tests.upstreams.hidream.sim import HidreamSim, Sim, channel_base_url

__all__ = ["HidreamSim", "Sim", "channel_base_url"]
