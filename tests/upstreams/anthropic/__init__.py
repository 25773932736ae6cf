"""Anthropic Messages simulator (direct API and Claude on Vertex AI): the gateway's test upstream."""

from tests.upstreams.anthropic.sim import (
    DEFAULT_API_KEY,
    DEFAULT_MODELS,
    DEFAULT_VERTEX_TOKEN,
    VERTEX_VERSION,
    AnthropicSim,
    RecordedRequest,
    SimConfig,
    error_body,
    error_response,
    run_sim_in_thread,
    sign_thinking,
    sim_in_thread,
)

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_MODELS",
    "DEFAULT_VERTEX_TOKEN",
    "VERTEX_VERSION",
    "AnthropicSim",
    "RecordedRequest",
    "SimConfig",
    "error_body",
    "error_response",
    "run_sim_in_thread",
    "sign_thinking",
    "sim_in_thread",
]
