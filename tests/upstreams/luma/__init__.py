"""Luma Dream Machine image API simulator (see sim.py)."""

from tests.upstreams.luma.sim import LumaSim, Sim, channel_base_url

__all__ = ["LumaSim", "Sim", "channel_base_url"]
