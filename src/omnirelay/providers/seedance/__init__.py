"""ByteDance Seedance through Volcengine Ark content generation tasks; see video.py."""

from omnirelay.providers.seedance.video import SeedanceVideoAdapter

__all__ = ["SeedanceVideoAdapter"]
