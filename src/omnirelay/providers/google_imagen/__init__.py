"""Google Imagen through the Gemini API (``models/{model}:predict``).

The adapter lives in ``images.py`` (``GoogleImagenAdapter``); see docs/providers/google_imagen.md.
"""
