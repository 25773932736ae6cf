"""omnirelay: a self-hostable AI API gateway that speaks the 302.AI API."""

__version__ = "0.1.0"
