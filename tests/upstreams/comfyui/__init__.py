"""ComfyUI workflow service simulator (see sim.py and docs/comfyui.md)."""

from tests.upstreams.comfyui.sim import ComfyUISim, Sim, channel_base_url, make_video

__all__ = ["ComfyUISim", "Sim", "channel_base_url", "make_video"]
