"""Stability AI: the v1 SDXL generation route and the v2beta Stable Image routes (see images.py)."""

from omnirelay.providers.stability.images import StabilityImageAdapter

__all__ = ["StabilityImageAdapter"]
