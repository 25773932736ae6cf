"""Stability AI image API simulator (see sim.py)."""

from tests.upstreams.stability.sim import Sim, StabilitySim, channel_base_url

__all__ = ["Sim", "StabilitySim", "channel_base_url"]
