"""Midjourney through a midjourney-proxy "plus" compatible upstream (submit, fetch, cancel)."""

from omnirelay.providers.midjourney.adapter import MidjourneyAdapter, MidjourneyError

__all__ = ["MidjourneyAdapter", "MidjourneyError"]
