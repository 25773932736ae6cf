"""Simulator of Zhipu BigModel's CogView image generation API."""
