"""Luma Dream Machine video generations (Ray); see video.py."""

from omnirelay.providers.luma_video.video import LumaVideoAdapter

__all__ = ["LumaVideoAdapter"]
