"""Pyramid attention (PSA) and mass compensation: coarser keys instead of dropped ones.

Each (query block, key block) pair gets a level: 0 = full resolution, l = keys and values
mean-pooled over 2**l consecutive tokens, or skipped. A pooled key stands for 2**l keys, so its
logit gets + l * ln 2 and the softmax mass comes out right. Each level runs as one block-sparse
kernel call over that level's pooled sequence (block_n = block / 2**l) returning its log-sum-exp,
and the levels are merged exactly by log-sum-exp. Mass compensation is the coarsest case: every
skipped block contributes through a single pooled key (its mean key and value, + ln n), the same
epilogue the router runs (kernels/compensate.py).
"""
from __future__ import annotations

import math

import torch

from ..kernels import BlockLayout, pool_blocks, sparse_attention
from ..kernels.compensate import compensate_
from .draft import video_block_scores
from .geometry import VideoGeometry
from .library import build_layout
MAX_LEVEL = 3
THRESHOLDS = (0.6, 0.8, 0.9, 0.95)


def pyramid_levels(probs: torch.Tensor, thresholds: tuple[float, ...] = THRESHOLDS) -> torch.Tensor:
    """int8 levels (-1 = skip) from estimated block masses [.., NQB, NKB]: per row, blocks in order of
    mass go to level 0 until the heavier ones hold thresholds[0] of the mass, then level 1 until
    thresholds[1], ...; past the last threshold they are skipped. The diagonal is always level 0."""
    if not 1 <= len(thresholds) <= MAX_LEVEL + 1 or list(thresholds) != sorted(thresholds) or not 0 < thresholds[0] <= thresholds[-1] <= 1:
        raise ValueError(f"thresholds {thresholds} must be 1 to {MAX_LEVEL + 1} increasing mass fractions in (0, 1]")
    order = torch.argsort(probs, dim=-1, descending=True)
    sp = torch.gather(probs, -1, order)
    before = (torch.cumsum(sp, -1) - sp) / probs.sum(-1, keepdim=True)
    lvl = torch.searchsorted(torch.tensor(thresholds, dtype=before.dtype, device=before.device), before.contiguous(), right=True)
    lvl = torch.where(lvl >= len(thresholds), -1, lvl).to(torch.int8)
    levels = torch.empty_like(lvl).scatter_(-1, order, lvl)
    n = probs.shape[-1]
    levels[..., torch.arange(n), torch.arange(n)] = 0
    return levels


def estimate_levels(q: torch.Tensor, k: torch.Tensor, geometry: VideoGeometry,
                    thresholds: tuple[float, ...] = THRESHOLDS) -> torch.Tensor:
    """int8 levels [H, NB, NB] of q/k [B, S, H, D] from their pooled block scores (mean over the batch: a batch
    shares one layout)."""
    return pyramid_levels(video_block_scores(q, k, geometry).mean(0), thresholds)


def merge_lse(outs: list[torch.Tensor], lses: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact merge of attention over disjoint key sets: outs [B, S, H, D], lses [B, H, S] -> (out, lse)."""
    lse = torch.stack(lses)  # [L, B, H, S]
    top = lse.amax(0)
    top = torch.where(torch.isinf(top), 0.0, top)
    w = torch.exp(lse - top)  # [L, B, H, S]
    total = w.sum(0).clamp_min(1e-30)
    acc = sum(o.float() * (wi / total).transpose(1, 2)[..., None] for o, wi in zip(outs, w))
    return acc.to(outs[0].dtype), top + torch.log(total)


def _level_pass(qv, k, v, geometry: VideoGeometry, mask: torch.Tensor, level: int, **kw):
    """Attention of video queries over level-`level` pooled video keys of the pairs in mask [H, NB, NB]."""
    vr, f = geometry.video_range, 2 ** level
    kp = pool_blocks(k, f, vr).transpose(1, 2).to(k.dtype).contiguous()  # [B, Sv/f, H, D]
    vp = pool_blocks(v, f, vr).transpose(1, 2).to(v.dtype).contiguous()
    lay = BlockLayout.from_block_mask(mask, qv.shape[1], kp.shape[1], block_m=geometry.block, block_n=geometry.block // f)
    out, lse = sparse_attention(qv, kp, vp, lay, return_lse=True, **kw)
    return out, lse + level * math.log(2)


def pyramid_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, geometry: VideoGeometry, levels: torch.Tensor,
                      *, compensate: bool = False, text_lengths: list[int] | None = None, scale: float | None = None,
                      fp8: bool = False, backend: str = "auto") -> torch.Tensor:
    """Attention where each block pair of ``levels`` [H, NB, NB] (int8, -1 = skip) runs at its pooling
    level; with ``compensate`` the skipped pairs add their mass through one pooled key per block."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    max_level = int(levels.max()) if levels.numel() else 0
    if 2 ** max_level > geometry.block // 16:
        raise ValueError(f"level {max_level} pools {2 ** max_level} tokens: block {geometry.block} allows at most level "
                         f"{int(math.log2(geometry.block // 16))} (pooled blocks must keep >= 16 keys)")
    kw = dict(scale=scale, fp8=fp8, backend=backend)
    layout0 = build_layout(geometry, levels == 0, text_lengths, q.device)
    out0, lse0 = sparse_attention(q, k, v, layout0, return_lse=True, **kw)
    lo, hi = geometry.video_range
    qv = q[:, lo:hi]
    outs, lses = [out0[:, lo:hi]], [lse0[..., lo:hi]]
    for level in range(1, max_level + 1):
        if bool((levels == level).any()):
            o, s = _level_pass(qv, k, v, geometry, (levels == level).to(q.device), level, **kw)
            outs.append(o)
            lses.append(s)
    if len(outs) > 1:
        out0 = out0.clone()
        out0[:, lo:hi], lse0[..., lo:hi] = merge_lse(outs, lses)
    if compensate:  # the skipped blocks (no level) through one pooled key each: the router's epilogue
        heads = torch.arange(q.shape[2], device=q.device)
        compensate_(q, k, v, out0, lse0, layout0, heads, scale, kept=(levels >= 0).to(torch.uint8).to(q.device),
                    backend="torch" if backend == "torch" else "auto")
    return out0
