"""Simulator of the OpenAI Images API (generations, edits, variations)."""
