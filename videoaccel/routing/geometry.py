"""The call's geometry: the latent grid the step hook saw, the joint text around it, and its padding."""
from __future__ import annotations

import torch

from ..patterns import VideoGeometry


class Fallback(Exception):
    """A reason this call runs dense."""


SUPPORTED_HEAD_DIMS = (64, 128)


def check_head_dim(head_dim: int) -> None:
    if head_dim not in SUPPORTED_HEAD_DIMS:
        raise Fallback(f"head dim {head_dim} is not supported by the sparse kernels (64, 128)")


def call_geometry(grid: tuple[int, int, int] | None, seq_len: int, text_position: str, block: int, order: str) -> VideoGeometry:
    if grid is None:
        raise Fallback("no latent grid known for this call (the transformer hook did not run)")
    f, h, w = grid
    text = seq_len - f * h * w
    if text < 0 or (text > 0 and text_position == "none"):
        raise Fallback(f"sequence of {seq_len} tokens does not fit the {f}x{h}x{w} latent grid")
    return VideoGeometry(f, h, w, text=text, text_position=text_position if text > 0 else "none", block=block, order=order)


def text_lengths(attn_mask: torch.Tensor, g: VideoGeometry, batch: int) -> tuple[int, ...]:
    """Valid text tokens per sample of a boolean key-padding mask (reads the mask on the host)."""
    m = attn_mask
    if m.dtype != torch.bool or m.numel() != batch * g.seq_len:
        raise Fallback(f"attention mask {tuple(m.shape)} {m.dtype} is not a boolean key-padding mask")
    m = m.reshape(batch, g.seq_len)
    vlo, vhi = g.video_range
    tlo, _ = g.text_range
    lens = m[:, tlo:tlo + g.text].sum(-1).tolist()
    ok = bool(m[:, vlo:vhi].all()) and all(bool(m[b, tlo:tlo + n].all()) for b, n in enumerate(lens))
    if not ok:
        raise Fallback("attention mask is not a prefix text-padding mask")
    return tuple(int(n) for n in lens)
