"""Anthropic Messages upstreams: the Anthropic API itself (adapter.py) and Claude on Vertex AI (vertex.py)."""
