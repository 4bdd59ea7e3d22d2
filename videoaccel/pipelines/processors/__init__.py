"""Replacement self-attention processors, by the name a ModelSpec gives (``ModelSpec.processor``).

Why replacements: these families' stock processors call ``F.scaled_dot_product_attention`` directly, or
call ``dispatch_attention_fn`` without their parallel config, or build a full 2-D mask out of a key
padding mask, so no dispatch hook can route them. Each replacement does what the stock processor of
diffusers 0.42 does, step for step, and hands the attention to the router (``videoaccel::attention``,
one call for the whole batch); tests/test_families.py checks it against the stock output.
"""
from .text_back import HunyuanVideo15RoutedProcessor, MochiRoutedProcessor
from .text_front import CogVideoXRoutedProcessor, EasyAnimateRoutedProcessor
from .video_only import CosmosRoutedProcessor

REPLACEMENTS = {"cogvideox": CogVideoXRoutedProcessor, "mochi": MochiRoutedProcessor, "easyanimate": EasyAnimateRoutedProcessor,
                "hunyuanvideo15": HunyuanVideo15RoutedProcessor, "cosmos": CosmosRoutedProcessor}

__all__ = ["REPLACEMENTS"]
