"""Replicate-style predictions API: the models 302.AI deploys itself (``302ai/*``), asynchronous."""

from omnirelay.providers.replicate.images import ReplicateImageAdapter

__all__ = ["ReplicateImageAdapter"]
