"""Simulator of Baidu Qianfan's v2 image generation API (iRAG)."""
