"""Recraft image generation API: see images.py and docs/providers/recraft.md."""
