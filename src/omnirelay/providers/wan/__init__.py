"""Alibaba Wan video synthesis through DashScope's asynchronous task API; see video.py."""

from omnirelay.providers.wan.video import WanVideoAdapter

__all__ = ["WanVideoAdapter"]
