"""MiniMax Hailuo video generation (create, query, file retrieve); see video.py."""

from omnirelay.providers.minimax_video.video import MinimaxVideoAdapter

__all__ = ["MinimaxVideoAdapter"]
