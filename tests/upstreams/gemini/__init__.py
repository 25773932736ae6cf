"""Gemini API simulator: the gateway's Gemini test upstream (see sim.py here)."""

from tests.upstreams.gemini.sim import (
    DEFAULT_API_KEY,
    DEFAULT_MODELS,
    DEFAULT_SIGNATURE_MODELS,
    DEFAULT_THINKING_MODELS,
    DEFAULT_VERTEX_TOKEN,
    GeminiSim,
    SimConfig,
    google_error,
    run_sim_in_thread,
    signature_for,
    sim_in_thread,
)

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_MODELS",
    "DEFAULT_SIGNATURE_MODELS",
    "DEFAULT_THINKING_MODELS",
    "DEFAULT_VERTEX_TOKEN",
    "GeminiSim",
    "SimConfig",
    "google_error",
    "run_sim_in_thread",
    "signature_for",
    "sim_in_thread",
]
