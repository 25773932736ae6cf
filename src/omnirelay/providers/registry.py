"""Provider ids (== folder names == the channel's ``provider`` value) and where their adapters live."""

from __future__ import annotations

import importlib
from typing import Any

# id -> "module:Class". Modules are imported when a channel first uses them.
ADAPTERS: dict[str, str] = {
    "openai": "omnirelay.providers.openai_compat.adapter:OpenAICompatAdapter",
    "azure_openai": "omnirelay.providers.azure_openai.adapter:AzureOpenAIAdapter",
    "anthropic": "omnirelay.providers.anthropic.adapter:AnthropicAdapter",
    "vertex_anthropic": "omnirelay.providers.anthropic.vertex:VertexAnthropicAdapter",
    "gemini": "omnirelay.providers.gemini.adapter:GeminiAdapter",
    "vertex_gemini": "omnirelay.providers.gemini.vertex:VertexGeminiAdapter",
    "openai_images": "omnirelay.providers.openai_images.images:OpenAIImagesAdapter",
    "stability": "omnirelay.providers.stability.images:StabilityImageAdapter",
    "bfl": "omnirelay.providers.bfl.images:BFLImageAdapter",
    "replicate": "omnirelay.providers.replicate.images:ReplicateImageAdapter",
    "ideogram": "omnirelay.providers.ideogram.images:IdeogramImageAdapter",
    "recraft": "omnirelay.providers.recraft.images:RecraftImageAdapter",
    "luma": "omnirelay.providers.luma.images:LumaImageAdapter",
    "volcengine": "omnirelay.providers.volcengine.images:VolcengineImageAdapter",
    "google_imagen": "omnirelay.providers.google_imagen.images:GoogleImagenAdapter",
    "minimax": "omnirelay.providers.minimax.images:MinimaxImageAdapter",
    "zhipu": "omnirelay.providers.zhipu.images:ZhipuImageAdapter",
    "baidu_irag": "omnirelay.providers.baidu_irag.images:BaiduIragImageAdapter",
    "hidream": "omnirelay.providers.hidream.images:HidreamImageAdapter",
    # video adapters (the video_v2 task family, core/tasks/videos.py)
    "kling": "omnirelay.providers.kling.video:KlingVideoAdapter",
    "runway": "omnirelay.providers.runway.video:RunwayVideoAdapter",
    "luma_video": "omnirelay.providers.luma_video.video:LumaVideoAdapter",
    "minimax_video": "omnirelay.providers.minimax_video.video:MinimaxVideoAdapter",
    "vidu": "omnirelay.providers.vidu.video:ViduVideoAdapter",
    "wan": "omnirelay.providers.wan.video:WanVideoAdapter",
    "seedance": "omnirelay.providers.seedance.video:SeedanceVideoAdapter",
    "comfyui": "omnirelay.providers.comfyui.adapter:ComfyUIAdapter",
    "midjourney": "omnirelay.providers.midjourney.adapter:MidjourneyAdapter",
}
PROVIDER_IDS = frozenset(ADAPTERS)


def adapter_class(provider: str) -> Any:
    try:
        target = ADAPTERS[provider]
    except KeyError:
        raise ValueError(f"unknown provider {provider!r}; known: {', '.join(sorted(ADAPTERS))}") from None
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)
