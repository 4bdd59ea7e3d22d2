"""Executors: one plain function per head-group kind, looked up by name (``EXECUTORS``).

Each takes the group's q/k/v [B, S, h, D], the group and the call, and returns [B, S, h, D].
A router can run other executors (tests swap in float64 references) without a branch in it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..kernels import dense_attention, sparse_attention
from ..patterns import VideoGeometry
from ..patterns.pyramid import pyramid_attention
from .compiler import Group


@dataclass
class Call:
    """One attention call as the executors see it."""
    layer: int
    step: int
    scale: float | None
    attn_mask: torch.Tensor | None = None  # boolean key-padding mask as given by the model
    geometry: VideoGeometry | None = None
    text_lengths: tuple[int, ...] | None = None  # valid text tokens per sample, when some are padding


Executor = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, Group, Call], torch.Tensor]


def key_mask(call: Call, q: torch.Tensor) -> torch.Tensor | None:
    """bool [B, 1, 1, S] key mask: the model's (None: no padding)."""
    m = call.attn_mask
    if m is None:
        return None
    return m.reshape(q.shape[0], 1, 1, -1) if m.numel() == q.shape[0] * q.shape[1] else m  # self-attention: S_q == S_k


def dense(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, group: Group, call: Call) -> torch.Tensor:
    """cuDNN SDPA on CUDA (kernels.dense_attention); SDPA with the padding mask when there is one."""
    mask = key_mask(call, q)
    if mask is None:
        return dense_attention(q, k, v, call.scale)
    return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask,
                                          scale=call.scale).transpose(1, 2)


def sparse(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, group: Group, call: Call) -> torch.Tensor:
    return sparse_attention(q, k, v, group.layout, scale=call.scale, fp8=group.fp8)


def pyramid(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, group: Group, call: Call) -> torch.Tensor:
    """Pyramid levels, or a binary plan with the skipped mass compensated."""
    return pyramid_attention(q, k, v, call.geometry, group.levels, compensate=group.compensate,
                             text_lengths=list(call.text_lengths) if call.text_lengths else None, scale=call.scale, fp8=group.fp8)


def skip(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, group: Group, call: Call) -> torch.Tensor:
    return torch.zeros_like(q)


EXECUTORS: dict[str, Executor] = {"dense": dense, "sparse": sparse, "pyramid": pyramid, "skip": skip}
