"""Azure OpenAI simulator (see sim.py)."""

from tests.upstreams.azure_openai.sim import (
    DEFAULT_AZURE_KEY,
    DEFAULT_DEPLOYMENTS,
    AzureOpenAISim,
    azure_error,
    channel_base_url,
)

__all__ = ["DEFAULT_AZURE_KEY", "DEFAULT_DEPLOYMENTS", "AzureOpenAISim", "azure_error", "channel_base_url"]
