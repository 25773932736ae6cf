"""Runway's video API (image_to_video / text_to_video / video_to_video tasks); see video.py."""

from omnirelay.providers.runway.video import RunwayVideoAdapter

__all__ = ["RunwayVideoAdapter"]
