"""HiDream-I1 text-to-image: an asynchronous submit-then-poll API.

The adapter lives in ``images.py`` (``HidreamImageAdapter``); see docs/providers/hidream.md, which
says which parts of the API shape are a documented assumption.
"""
