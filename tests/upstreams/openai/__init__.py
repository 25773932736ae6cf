"""OpenAI Chat Completions simulator: the gateway's test upstream (see README.md here)."""

from tests.upstreams.openai.sim import (
    DEFAULT_API_KEY,
    DEFAULT_MODELS,
    DEFAULT_REASONING_MODELS,
    OpenAISim,
    RecordedRequest,
    SimConfig,
    error_response,
    mask_key,
    placeholder,
    run_sim_in_thread,
    sim_in_thread,
    word_pieces,
)

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_MODELS",
    "DEFAULT_REASONING_MODELS",
    "OpenAISim",
    "RecordedRequest",
    "SimConfig",
    "error_response",
    "mask_key",
    "placeholder",
    "run_sim_in_thread",
    "sim_in_thread",
    "word_pieces",
]
