"""What videoaccel needs to know about each supported diffusers transformer.

A ``ModelSpec`` says where the self-attention modules are, how joint text sits in their sequence,
how to read the latent token grid off the transformer's forward arguments, and which processor
routes its attention (``processors.py``). Adding a model is adding one entry here.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import torch

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline


@dataclass(frozen=True)
class ModelSpec:
    class_name: str
    self_attention: Callable[[torch.nn.Module], list[torch.nn.Module]]  # in layer order
    cross_attention: Callable[[torch.nn.Module], list[torch.nn.Module]]
    text_position: str  # where joint text sits in self-attention: none, front or back
    grid: Callable[[torch.nn.Module, tuple, dict], tuple[int, int, int]]  # latent (frames, height, width) tokens
    processor: str  # "dispatch" (stock processor, attention intercepted) or a replacement processor's name
    tile_order: bool = False  # videoaccel can reorder its tokens tile-major at model level
    blocks: Callable[[torch.nn.Module], list[torch.nn.Module]] = lambda m: list(m.transformer_blocks)  # compiled regions

    def text(self, model: torch.nn.Module, args: tuple, kwargs: dict) -> int:
        """Joint text tokens in self-attention (to build layouts before the first call; the call's own
        sequence length decides)."""
        if self.text_position == "none":
            return 0
        t = named_arg(model, args, kwargs, "encoder_hidden_states")
        return 0 if t is None else t.shape[1]


def named_arg(module: torch.nn.Module, args: tuple, kwargs: dict, name: str) -> Any:
    """The forward argument called ``name``, wherever the caller put it (models order them differently)."""
    if name in kwargs:
        return kwargs[name]
    params = list(inspect.signature(type(module).forward).parameters)[1:]  # without self
    return args[params.index(name)] if name in params and params.index(name) < len(args) else None


def _grid_5d(model, args, kwargs, channels_first: bool = True):
    x = named_arg(model, args, kwargs, "hidden_states")
    cfg = model.config
    if channels_first:  # [B, C, F, H, W]
        f, h, w = x.shape[2:]
    else:  # CogVideoX: [B, F, C, H, W]
        f, h, w = x.shape[1], x.shape[3], x.shape[4]
    p = cfg.patch_size
    pt, ph, pw = (p if isinstance(p, (tuple, list)) else (getattr(cfg, "patch_size_t", None) or 1, p, p))
    return -(-f // pt), h // ph, w // pw


def _grid_ltx(model, args, kwargs):
    cfg = model.config
    f, h, w = (kwargs.get(k) for k in ("num_frames", "height", "width"))
    if None in (f, h, w):
        raise ValueError("LTXVideoTransformer3DModel must be called with num_frames, height and width (latent sizes)")
    return f // cfg.patch_size_t, h // cfg.patch_size, w // cfg.patch_size


SPECS: dict[str, ModelSpec] = {s.class_name: s for s in [
    ModelSpec("WanTransformer3DModel", lambda m: [b.attn1 for b in m.blocks], lambda m: [b.attn2 for b in m.blocks],
              "none", _grid_5d, "dispatch", tile_order=True, blocks=lambda m: list(m.blocks)),
    ModelSpec("HunyuanVideoTransformer3DModel",
              lambda m: [b.attn for b in m.transformer_blocks] + [b.attn for b in m.single_transformer_blocks],
              lambda m: [], "back", _grid_5d, "dispatch",
              blocks=lambda m: list(m.transformer_blocks) + list(m.single_transformer_blocks)),
    ModelSpec("CogVideoXTransformer3DModel", lambda m: [b.attn1 for b in m.transformer_blocks], lambda m: [],
              "front", lambda m, a, k: _grid_5d(m, a, k, channels_first=False), "cogvideox"),
    ModelSpec("LTXVideoTransformer3DModel", lambda m: [b.attn1 for b in m.transformer_blocks],
              lambda m: [b.attn2 for b in m.transformer_blocks], "none", _grid_ltx, "dispatch"),
    ModelSpec("MochiTransformer3DModel", lambda m: [b.attn1 for b in m.transformer_blocks], lambda m: [],
              "back", _grid_5d, "mochi"),
]}

PIPELINES = ("WanPipeline", "WanImageToVideoPipeline", "HunyuanVideoPipeline", "CogVideoXPipeline", "LTXPipeline", "MochiPipeline")


def spec_for(model: torch.nn.Module) -> ModelSpec:
    name = type(model).__name__
    if name not in SPECS:
        raise ValueError(f"{name} is not supported; videoaccel supports {', '.join(SPECS)} "
                         f"(pipelines: {', '.join(PIPELINES)})")
    return SPECS[name]


def transformers_of(pipe: DiffusionPipeline | torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """The pipeline's transformers (Wan2.2 A14B has two: transformer and transformer_2)."""
    if isinstance(pipe, torch.nn.Module):
        return [("transformer", pipe)]
    found = [(n, getattr(pipe, n)) for n in ("transformer", "transformer_2") if getattr(pipe, n, None) is not None]
    if not found:
        raise ValueError(f"{type(pipe).__name__} has no transformer; videoaccel supports pipelines {', '.join(PIPELINES)}")
    return found


def wan_latent_grid(frames: int, height: int, width: int) -> tuple[int, int, int]:
    """Video tokens Wan's transformer sees: (frames - 1) / 4 + 1 latent frames, / 8 VAE, / 2 patch; ValueError
    naming the fix for a size its VAE cannot take."""
    if (frames - 1) % 4 or height % 16 or width % 16:
        raise ValueError(f"{frames} frames at {height}x{width}: use frames = 4k + 1 and sizes divisible by 16 "
                         f"(default 25 frames at 192x320)")
    return (frames - 1) // 4 + 1, height // 16, width // 16
