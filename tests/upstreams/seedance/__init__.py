"""Volcengine Ark Seedance task simulator; see sim.py."""

from tests.upstreams.seedance.sim import SeedanceSim, Sim, channel_base_url

__all__ = ["SeedanceSim", "Sim", "channel_base_url"]
