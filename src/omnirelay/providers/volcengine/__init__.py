"""Volcengine Doubao image models: Ark (Seedream 3.0) and the visual (CV) API (v2.x models).

The adapter lives in ``images.py`` (``VolcengineImageAdapter``); see docs/providers/volcengine.md.
"""
