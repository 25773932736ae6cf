"""Kling's official video API (text2video / image2video), JWT auth from the channel's AK:SK; see video.py."""

from omnirelay.providers.kling.video import KlingVideoAdapter

__all__ = ["KlingVideoAdapter"]
