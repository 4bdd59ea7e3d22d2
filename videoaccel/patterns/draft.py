"""Draft-guided selection (DraftAttention): a cheap low-resolution attention map picks the blocks.

Mean-pooled Q and K per block (the block score kernel) give each (query block, key block) pair an
estimated share of the attention mass; each query block keeps its heaviest key blocks until their
cumulative mass reaches ``top_p`` (or its ``top_k`` heaviest), plus its own diagonal block; text is
always kept by the layout. In tile-major order a block is a compact 3D region, so the pooled
"draft" is a real low-resolution video attention map. The selection depends on the input: the
router recomputes it every ``every`` steps (routing/compiler.py).
"""
from __future__ import annotations

import torch

from ..kernels.block_scores import block_scores
from .geometry import VideoGeometry


def top_p_mask(probs: torch.Tensor, top_p: float | None = 0.9, top_k: int | None = None, min_blocks: int = 1) -> torch.Tensor:
    """bool mask of the same shape: per row, the fewest heaviest entries reaching ``top_p`` of the
    row's mass (the one that crosses it included), or the ``top_k`` heaviest; at least ``min_blocks``."""
    if (top_p is None) == (top_k is None):
        raise ValueError("give exactly one of top_p (a mass fraction in (0, 1]) or top_k (a block count)")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p={top_p} must be in (0, 1]")
    order = torch.argsort(probs, dim=-1, descending=True)
    if top_p is not None:
        sorted_p = torch.gather(probs, -1, order)
        before = torch.cumsum(sorted_p, -1) - sorted_p  # mass of the heavier entries
        keep_sorted = before < top_p * probs.sum(-1, keepdim=True)
    else:
        if top_k < 1:
            raise ValueError(f"top_k={top_k} must be >= 1")
        keep_sorted = torch.arange(probs.shape[-1], device=probs.device) < top_k
        keep_sorted = keep_sorted.expand_as(probs)
    keep_sorted = keep_sorted | (torch.arange(probs.shape[-1], device=probs.device) < min_blocks)
    return torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)


def video_block_scores(q: torch.Tensor, k: torch.Tensor, geometry: VideoGeometry, scale: float | None = None) -> torch.Tensor:
    """[B, H, NB, NB] estimated attention mass between the geometry's video blocks (mean-pooled q/k [B, S, H, D])."""
    vr = geometry.video_range
    return block_scores(q, k, geometry.block, geometry.block, q_range=vr, kv_range=vr, scale=scale)


def draft_masks(q: torch.Tensor, k: torch.Tensor, geometry: VideoGeometry, top_p: float | None = 0.9,
                top_k: int | None = None, scale: float | None = None, heads: torch.Tensor | None = None) -> torch.Tensor:
    """bool [H, NB, NB] block masks over the video region for q/k [B, S, H, D] (union over the batch);
    ``heads``: only these heads of q/k (then H = len(heads))."""
    if heads is not None:
        q, k = q.index_select(2, heads.long()), k.index_select(2, heads.long())
    probs = video_block_scores(q, k, geometry, scale)
    mask = top_p_mask(probs, top_p=top_p, top_k=top_k).any(0)
    mask |= torch.eye(geometry.num_blocks, dtype=torch.bool, device=mask.device)
    return mask

