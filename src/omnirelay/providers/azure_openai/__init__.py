"""Azure OpenAI: Chat Completions on per-deployment URLs with ``api-key`` auth (see adapter.py)."""
