"""Kling official video API simulator (JWT auth); see sim.py."""

from tests.upstreams.kling.sim import KlingSim, Sim, channel_base_url

__all__ = ["KlingSim", "Sim", "channel_base_url"]
