"""Oracle block masks (benchmarks only): the exact top-k key blocks of every query block.

Why: a fidelity number for a profile means little alone; the oracle is the upper bound any block
mask at that density can reach, so benchmarks report every plan's gap to it. Per head, the exact
softmax mass of each (query block, key block) is summed over the block's rows from the full
attention map (query rows in chunks, never S x S at once), and each query block keeps its
``round(density * NB)`` heaviest key blocks. It costs a dense attention per call: not for production.
A batch shares one layout, so the mass is summed over the batch (exact per sample at batch 1).
"""
from __future__ import annotations

import torch

from ..kernels.sampled_mass import sampled_mass_triton
from .geometry import VideoGeometry


def block_mass(q: torch.Tensor, k: torch.Tensor, geometry: VideoGeometry, scale: float | None = None,
               max_elements: int = 1 << 27, fused: bool | None = None) -> torch.Tensor:
    """float32 [H, NB, NB]: exact softmax mass from query block i to video key block j, summed over
    the rows of i and the batch. q/k [B, S, H, D], the full joint sequence (text keys share the softmax).
    ``fused`` (default: on a GPU, where the kernel takes the shape) runs the sampled-mass kernel over every row
    of every block: one pass over the keys with the attention's own input precision, no [rows, S] map in memory (a
    short last block's rows in float32 PyTorch: the kernel's row groups are a power of two). Otherwise float32
    PyTorch in chunks of query rows."""
    B, S, H, D = q.shape
    scale = D ** -0.5 if scale is None else scale
    lo, hi = geometry.video_range
    nb, bs = geometry.num_blocks, geometry.block
    if fused is None:
        fused = q.is_cuda and D in (64, 128) and bs % 16 == 0 and bs & (bs - 1) == 0
    if not fused:
        return _exact_mass(q, k, geometry, scale, lo, hi, max_elements)
    rows = (lo + torch.arange(nb * bs, device=q.device).clamp(max=hi - lo - 1)).view(nb, bs)
    out = sampled_mass_triton(q, k, rows, (lo, hi), bs, scale, rows_per_program=max(bs, 64), num_warps=4 if bs <= 64 else 8).sum(0)
    last = lo + (nb - 1) * bs
    if hi - last < bs:  # the clamped rows repeat the last one: this block's rows exact instead
        out[:, nb - 1] = _exact_mass(q, k, geometry, scale, last, hi, max_elements)[:, nb - 1]
    return out


def _exact_mass(q: torch.Tensor, k: torch.Tensor, geometry: VideoGeometry, scale: float, r_lo: int, r_hi: int,
                max_elements: int) -> torch.Tensor:
    """``block_mass`` in float32 PyTorch over the query rows [r_lo, r_hi) (whole blocks, or the last one's)."""
    B, S, H, D = q.shape
    lo, hi = geometry.video_range
    nb, bs = geometry.num_blocks, geometry.block
    kf = k.float().transpose(1, 2)  # [B, H, S, D]
    key_block = torch.full((S,), nb, dtype=torch.long, device=q.device)  # text keys go to a dropped bin
    key_block[lo:hi] = torch.arange(hi - lo, device=q.device) // bs
    out = torch.zeros(H, nb + 1, nb + 1, device=q.device)
    chunk = max(bs, max_elements // (B * H * S))  # rows per softmax chunk: bounded memory at any length
    for r0 in range(r_lo, r_hi, chunk):
        r1 = min(r0 + chunk, r_hi)
        p = torch.softmax(q[:, r0:r1].float().transpose(1, 2) @ kf.transpose(-1, -2) * scale, -1)  # [B, H, R, S]
        per_key = torch.zeros(B, H, r1 - r0, nb + 1, device=q.device).index_add_(3, key_block, p)
        rows = key_block[r0:r1]
        out.index_add_(1, rows, per_key.sum(0))
    return out[:, :nb, :nb]


def oracle_scores(q: torch.Tensor, k: torch.Tensor, geometry: VideoGeometry, scale: float | None = None,
                  heads: torch.Tensor | None = None) -> torch.Tensor:
    """The oracle's block scores for the router's top-k selection (registry ``impl``): the exact block mass
    of ``heads`` (default all)."""
    if heads is not None:
        q, k = q.index_select(2, heads.long()), k.index_select(2, heads.long())
    return block_mass(q, k, geometry, scale)


def oracle_masks(q: torch.Tensor, k: torch.Tensor, geometry: VideoGeometry, density: float,
                 scale: float | None = None) -> torch.Tensor:
    """bool [H, NB, NB]: per query block, the ``max(1, round(density * NB))`` heaviest key blocks."""
    if not 0.0 < density <= 1.0:
        raise ValueError(f"oracle density {density} must be in (0, 1]")
    return top_k_blocks(block_mass(q, k, geometry, scale), density)


def layer_oracle_masks(q: torch.Tensor, k: torch.Tensor, geometry: VideoGeometry, density: float, scale: float | None = None,
                       heads: torch.Tensor | None = None) -> torch.Tensor:
    """bool [H, NB, NB]: the exact top key blocks of a whole layer at once, across its heads (``heads``, default all):
    the ``density`` share of all (head, query block, key block) pairs that holds the most mass, plus each row's
    heaviest block (no row goes empty). A head with sharp attention gives blocks to a diffuse one, as a profile's
    per-head budgets may: the bound a profile's layer can be judged by (a per-head oracle keeps every head at one
    density). Masses are comparable across heads: every row of a query block holds that block's rows of mass."""
    if not 0.0 < density <= 1.0:
        raise ValueError(f"oracle density {density} must be in (0, 1]")
    if heads is not None:
        q, k = q.index_select(2, heads.long()), k.index_select(2, heads.long())
    return layer_top_blocks(block_mass(q, k, geometry, scale), density)


def layer_top_blocks(mass: torch.Tensor, density: float) -> torch.Tensor:
    """bool like ``mass`` [H, NB, NB]: each row's heaviest block (no row goes empty), then the heaviest of the rest
    over all heads at once until ``max(H * NB, round(density * mass.numel()))`` blocks are kept: one budget for
    the layer, spent where its mass is (the count is exact, so the call's density is known before the call)."""
    nb = mass.shape[-1]
    keep = min(mass.numel(), max(mass.shape[0] * mass.shape[1], round(density * mass.numel())))
    first = top_k_blocks(mass, 1.0 / nb)
    ranked = torch.where(first, torch.finfo(mass.dtype).max, mass)
    flat = torch.zeros(mass.numel(), dtype=torch.bool, device=mass.device)
    return flat.index_fill_(0, ranked.flatten().topk(keep).indices, True).view_as(mass)  # no host tensor: CUDA-graph safe


def top_k_density(geometry: VideoGeometry, density: float) -> float:
    """Computed density of a per-row top-k block mask (``top_k_blocks``) on this geometry, kept blocks counted
    full: ``round(density * NB)`` blocks a row can exceed ``density`` when blocks are coarse."""
    keep = min(geometry.num_blocks, max(1, round(density * geometry.num_blocks)))
    return min(1.0, keep * geometry.block / geometry.video_tokens)


def top_k_asked(geometry: VideoGeometry, density: float) -> float:
    """The density to ask for the top-k rows ``density`` gives on this geometry: the same count a row (``round``), as
    near what they run (``top_k_density``) as that count allows, so the router's miss check sees what it runs."""
    keep = min(geometry.num_blocks, max(1, round(density * geometry.num_blocks)))
    return round(min(top_k_density(geometry, density), (keep + 0.49) / geometry.num_blocks), 7)


def top_k_blocks(mass: torch.Tensor, density: float) -> torch.Tensor:
    """bool like ``mass`` [..., NB, NB]: each row's ``max(1, round(density * NB))`` heaviest entries."""
    nb = mass.shape[-1]
    keep = min(nb, max(1, round(density * nb)))
    top = mass.topk(keep, dim=-1).indices
    return torch.zeros_like(mass, dtype=torch.bool).scatter_(-1, top, True)
