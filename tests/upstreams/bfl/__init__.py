"""Black Forest Labs Flux API simulator (see sim.py)."""

from tests.upstreams.bfl.sim import BFLSim, Sim, channel_base_url

__all__ = ["BFLSim", "Sim", "channel_base_url"]
