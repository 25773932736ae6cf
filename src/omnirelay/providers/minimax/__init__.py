"""MiniMax image generation (``image-01``) through ``POST /v1/image_generation``.

The adapter lives in ``images.py`` (``MinimaxImageAdapter``); see docs/providers/minimax.md.
"""
