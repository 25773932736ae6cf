"""Ideogram image API simulator (see sim.py)."""

from tests.upstreams.ideogram.sim import IdeogramSim, Sim, channel_base_url

__all__ = ["IdeogramSim", "Sim", "channel_base_url"]
