"""Baidu Qianfan iRAG text-to-image (v2 API): see images.py and docs/providers/baidu_irag.md."""
