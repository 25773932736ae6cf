"""Replicate predictions API simulator (see sim.py)."""

from tests.upstreams.replicate.sim import ReplicateSim, Sim, channel_base_url

__all__ = ["ReplicateSim", "Sim", "channel_base_url"]
