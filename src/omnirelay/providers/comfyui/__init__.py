"""ComfyUI workflow service (RunningHub-style task openapi): the upstream of the 302.AI-ComfyUI routes."""

from omnirelay.providers.comfyui.adapter import ComfyUIAdapter, NodeInput, OutputFile, TaskState

__all__ = ["ComfyUIAdapter", "NodeInput", "OutputFile", "TaskState"]
