"""MiniMax Hailuo video API simulator; see sim.py."""

from tests.upstreams.minimax_video.sim import MinimaxVideoSim, Sim, channel_base_url

__all__ = ["MinimaxVideoSim", "Sim", "channel_base_url"]
