"""Synthetic q/k with planted attention structure, for tests, mask pictures and benchmarks.

Tokens get smooth random Fourier features of their (t, h, w) position, so q . k falls off with
the distance between the two tokens ('local'), with spatial distance only ('temporal': the same
place in every frame), or every query is drawn to the first frame's keys ('stripe').
"""
from __future__ import annotations

import torch

from .geometry import VideoGeometry


def _features(x: torch.Tensor, dim: int, bandwidth: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    w = torch.randn(dim // 2, x.shape[1], generator=gen) / bandwidth
    phase = x @ w.T
    return torch.cat([phase.cos(), phase.sin()], -1) * (2.0 / dim) ** 0.5


def planted_qk(geometry: VideoGeometry, kind: str = "local", head_dim: int = 64, sharpness: float = 30.0,
               width: float = 0.08, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """q, k [S, D] (video tokens in the geometry's order, text tokens as noise) with planted structure.

    ``width`` is the structure's extent as a fraction of each axis; ``sharpness`` scales the logits."""
    gen = torch.Generator().manual_seed(seed)
    c = geometry.token_coords.double()
    dims = torch.tensor([geometry.frames, geometry.height, geometry.width], dtype=torch.float64)
    x = c / dims
    if kind == "local":
        f = _features(x, head_dim, torch.full((3,), width, dtype=torch.float64), gen)
        q, k = f, f.clone()
    elif kind == "temporal":
        f = _features(x[:, 1:], head_dim, torch.full((2,), width, dtype=torch.float64), gen)
        q, k = f, f.clone()
    elif kind == "stripe":
        d = torch.randn(head_dim, generator=gen, dtype=torch.float64)
        d /= d.norm()
        q = d[None].expand(len(x), -1) + 0.1 * torch.randn(len(x), head_dim, generator=gen, dtype=torch.float64) / head_dim ** 0.5
        k = torch.randn(len(x), head_dim, generator=gen, dtype=torch.float64) * 0.1 / head_dim ** 0.5
        k[c[:, 0] == 0] += d
    else:
        raise ValueError(f"kind {kind!r}: use 'local', 'temporal' or 'stripe'")
    scale = (sharpness * head_dim ** 0.5) ** 0.5  # q . k * D**-0.5 reaches `sharpness` for identical tokens
    q, k = q * scale, k * scale
    lo, hi = geometry.video_range
    full_q = torch.randn(geometry.seq_len, head_dim, generator=gen, dtype=torch.float64) * 0.1
    full_k = torch.randn(geometry.seq_len, head_dim, generator=gen, dtype=torch.float64) * 0.1
    full_q[lo:hi], full_k[lo:hi] = q, k
    return full_q.float(), full_k.float()
