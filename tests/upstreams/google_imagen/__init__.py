"""Imagen on the Gemini API simulator; see sim.py."""

from tests.upstreams.google_imagen.sim import GoogleImagenSim, Sim, channel_base_url

__all__ = ["GoogleImagenSim", "Sim", "channel_base_url"]
