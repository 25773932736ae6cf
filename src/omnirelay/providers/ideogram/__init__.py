"""Ideogram: the legacy ``/generate`` route (V_1 .. V_2A models) and Ideogram 3.0 (see images.py)."""

from omnirelay.providers.ideogram.images import IdeogramImageAdapter

__all__ = ["IdeogramImageAdapter"]
