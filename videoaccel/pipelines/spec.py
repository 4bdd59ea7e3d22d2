"""What videoaccel needs to know about one diffusers transformer family: the ``ModelSpec``.

A spec says where the self-attention modules are, how joint text (or other conditioning tokens) sits
in their sequence, how to read the latent token grid off the transformer's forward arguments, which
processor routes its attention (``processors/``), and which configurations it refuses and why. The
families themselves are in ``families/``; docs/adding-a-model.md says how to add one.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

import torch

Grid = Callable[[torch.nn.Module, tuple, dict], tuple[int, int, int]]


@dataclass(frozen=True)
class ModelSpec:
    class_name: str
    self_attention: Callable[[torch.nn.Module], list[torch.nn.Module]]  # in the order a forward calls them
    cross_attention: Callable[[torch.nn.Module], list[torch.nn.Module]]
    text_position: str  # where joint text (or conditioning) tokens sit in self-attention: none, front or back
    grid: Grid  # latent (frames, height, width) tokens of this forward
    processor: str  # "dispatch" (stock processor, attention intercepted) or a replacement processor's name
    pipelines: tuple[str, ...] = ()  # the diffusers pipelines that run this transformer
    tile_order: bool = False  # videoaccel can reorder its tokens tile-major at model level
    blocks: Callable[[torch.nn.Module], list[torch.nn.Module]] = lambda m: list(m.transformer_blocks)  # compiled regions
    joint: Callable[[torch.nn.Module, tuple, dict], int] | None = None  # joint tokens when not encoder_hidden_states'
    refuse: Callable[[torch.nn.Module], str | None] = lambda m: None  # why this configuration cannot be routed

    def text(self, model: torch.nn.Module, args: tuple, kwargs: dict) -> int:
        """Joint text tokens in self-attention (to build layouts before the first call; the call's own
        sequence length decides)."""
        if self.text_position == "none":
            return 0
        if self.joint is not None:
            return self.joint(model, args, kwargs)
        t = named_arg(model, args, kwargs, "encoder_hidden_states")
        return 0 if t is None else t.shape[1]


def named_arg(module: torch.nn.Module, args: tuple, kwargs: dict, name: str) -> Any:
    """The forward argument called ``name``, wherever the caller put it (models order them differently)."""
    if name in kwargs:
        return kwargs[name]
    params = list(inspect.signature(type(module).forward).parameters)[1:]  # without self
    return args[params.index(name)] if name in params and params.index(name) < len(args) else None


def attention_heads(module: torch.nn.Module) -> int | None:
    """Heads of one attention module (Kandinsky 5 calls them ``num_heads``)."""
    return getattr(module, "heads", None) or getattr(module, "num_heads", None)


def _patch(cfg) -> tuple[int, int, int]:
    p = cfg.patch_size
    return tuple(p) if isinstance(p, (tuple, list)) else (getattr(cfg, "patch_size_t", None) or 1, p, p)


def grid_channels_first(model, args, kwargs) -> tuple[int, int, int]:
    """Latents [B, C, F, H, W] patchified by the config's patch size (Wan, HunyuanVideo, Mochi, ...)."""
    f, h, w = named_arg(model, args, kwargs, "hidden_states").shape[2:]
    pt, ph, pw = _patch(model.config)
    return -(-f // pt), h // ph, w // pw


def grid_frames_first(model, args, kwargs) -> tuple[int, int, int]:
    """Latents [B, F, C, H, W] (CogVideoX, ConsisID, AnyFlow)."""
    x = named_arg(model, args, kwargs, "hidden_states")
    pt, ph, pw = _patch(model.config)
    return -(-x.shape[1] // pt), x.shape[3] // ph, x.shape[4] // pw


def grid_channels_last(model, args, kwargs) -> tuple[int, int, int]:
    """Latents [B, F, H, W, C] (Kandinsky 5)."""
    f, h, w = named_arg(model, args, kwargs, "hidden_states").shape[1:4]
    pt, ph, pw = _patch(model.config)
    return f // pt, h // ph, w // pw


def grid_from_sizes(model, args, kwargs) -> tuple[int, int, int]:
    """Patchified latents [B, S, C] whose sizes come as num_frames, height and width (LTX-Video)."""
    f, h, w = (named_arg(model, args, kwargs, k) for k in ("num_frames", "height", "width"))
    if None in (f, h, w):
        raise ValueError(f"{type(model).__name__} must be called with num_frames, height and width (latent sizes)")
    pt, ph, pw = _patch(model.config)
    return f // pt, h // ph, w // pw
