"""Luma Dream Machine image API (Photon): asynchronous, create a generation then poll it."""

from omnirelay.providers.luma.images import LumaImageAdapter

__all__ = ["LumaImageAdapter"]
