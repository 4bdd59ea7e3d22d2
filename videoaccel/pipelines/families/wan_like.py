"""Wan and the families built on its blocks: text through cross-attention (``attn2``), self-attention
(``attn1``) over the video tokens only, frame-major from a Conv3d patch embedding."""
from __future__ import annotations

import math

from ..spec import ModelSpec, grid_channels_first, grid_frames_first, named_arg


def _attn1(m):
    return [b.attn1 for b in m.blocks]


def _attn2(m):
    return [b.attn2 for b in m.blocks]


def _blocks(m):
    return list(m.blocks)


def _wan_family(name: str, pipelines: tuple[str, ...], *, self_attention=_attn1, cross_attention=_attn2, blocks=_blocks,
                grid=grid_channels_first, text_position: str = "none", **kw) -> ModelSpec:
    """A spec with Wan's defaults: blocks' attn1 / attn2, latents [B, C, F, H, W], the stock processor via dispatch."""
    return ModelSpec(name, self_attention, cross_attention, text_position, grid, "dispatch", pipelines, blocks=blocks, **kw)


def _vace_blocks(m):
    return list(m.vace_blocks) + list(m.blocks)


def _skyreels_refuse(m) -> str | None:
    n = m.config.num_frame_per_block
    return (f"num_frame_per_block={n} makes its attention block-causal through a 2-D mask, which the sparse kernels do "
            "not take") if n > 1 else None


def _helios_history(m, args, kwargs) -> int:
    """History tokens Helios puts in front of the video tokens: short (patch p), mid (2p) and long (4p) latents."""
    p = m.config.patch_size
    total = 0
    for name, k in (("short", 1), ("mid", 2), ("long", 4)):
        x, idx = (named_arg(m, args, kwargs, f"{a}_history_{name}") for a in ("latents", "indices_latents"))
        if x is not None and idx is not None:
            total += math.prod(-(-s // (k * q)) if k > 1 else s // q for s, q in zip(x.shape[2:], p))
    return total


SPECS = [
    _wan_family("WanTransformer3DModel", ("WanPipeline", "WanImageToVideoPipeline", "WanVideoToVideoPipeline"), tile_order=True),
    _wan_family("SkyReelsV2Transformer3DModel", ("SkyReelsV2Pipeline", "SkyReelsV2ImageToVideoPipeline"),
                refuse=_skyreels_refuse),  # its diffusion-forcing pipelines: families/refused.py
    _wan_family("WanVACETransformer3DModel", ("WanVACEPipeline",),  # the VACE blocks run first, over the same grid
                self_attention=lambda m: [b.attn1 for b in _vace_blocks(m)],
                cross_attention=lambda m: [b.attn2 for b in _vace_blocks(m)], blocks=_vace_blocks),
    _wan_family("ChronoEditTransformer3DModel", ("ChronoEditPipeline",)),
    _wan_family("WanAnimateTransformer3DModel", ("WanAnimatePipeline",)),
    _wan_family("AnyFlowTransformer3DModel", ("AnyFlowPipeline",), grid=grid_frames_first),
    _wan_family("HeliosTransformer3DModel", ("HeliosPipeline", "HeliosPyramidPipeline"), text_position="front",
                joint=_helios_history),  # history latents in front of the video tokens: attended densely
]
