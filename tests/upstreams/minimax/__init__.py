"""MiniMax image generation simulator; see sim.py."""

from tests.upstreams.minimax.sim import MinimaxSim, Sim, channel_base_url

__all__ = ["MinimaxSim", "Sim", "channel_base_url"]
