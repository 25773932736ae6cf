"""Simulator of the Recraft image generation API."""
