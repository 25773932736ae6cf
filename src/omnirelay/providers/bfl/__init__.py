"""Black Forest Labs: the official Flux API (asynchronous: submit a task, then poll its result)."""

from omnirelay.providers.bfl.images import BFLImageAdapter

__all__ = ["BFLImageAdapter"]
