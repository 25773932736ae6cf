"""Gemini chat upstreams: the Gemini API (``gemini``) and Gemini on Vertex AI (``vertex_gemini``)."""
