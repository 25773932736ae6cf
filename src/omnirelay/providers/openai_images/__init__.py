"""OpenAI Images API (generations, edits, variations): see images.py and docs/providers/openai_images.md."""
