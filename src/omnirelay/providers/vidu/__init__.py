"""Vidu's enterprise video API (text2video / img2video / start-end2video); see video.py."""

from omnirelay.providers.vidu.video import ViduVideoAdapter

__all__ = ["ViduVideoAdapter"]
