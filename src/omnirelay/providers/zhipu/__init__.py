"""Zhipu BigModel image generation (CogView): see images.py and docs/providers/zhipu.md."""
