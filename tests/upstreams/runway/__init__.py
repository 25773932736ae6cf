"""Runway API simulator (image/text/video to video tasks); see sim.py."""

from tests.upstreams.runway.sim import RunwaySim, Sim, channel_base_url

__all__ = ["RunwaySim", "Sim", "channel_base_url"]
