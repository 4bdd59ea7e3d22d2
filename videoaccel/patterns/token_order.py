"""Tile-major token order: make each attention block a compact 3D region of the video.

Patchified video tokens come frame-major (t, then h, then w): a 128-token block is a strip of a
few rows of one frame (Wan 480p: 1 x 5 x 52 tokens), a poor unit for 3D locality. Tile-major order
lists tokens by recursive bisection of the (t, h, w) grid: split the longest axis (time counted
4x, so tiles come out temporally thin and spatially square, like 2 x 8 x 8), at a cut that leaves
a multiple of ``block`` tokens on each side where one exists, down to single tokens. Consecutive
``block`` tokens then form a compact region (Wan 480p: about 2.5 x 12 x 12). It is a pure
permutation, with no padding: padding the 21 x 30 x 52 grid to whole 2 x 8 x 8 tiles would add
20% tokens to every layer. Exact, and no masking needed.

Every op of a DiT block but attention and RoPE is per token, so the permutation is applied once
after patch embedding (with RoPE permuted the same way) and undone once before unpatchify.
"""
from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # a geometry's coordinates use this order: the geometry imports this module, not the reverse
    from .geometry import VideoGeometry

TIME_WEIGHT = 4  # a frame step counts as 4 tokens of spatial extent when choosing the axis to cut


@lru_cache(maxsize=64)
def _perm(frames: int, height: int, width: int, block: int) -> torch.Tensor:
    out: list[torch.Tensor] = []
    grid = torch.arange(frames * height * width).reshape(frames, height, width)

    def split(lo: list[int], hi: list[int]) -> None:
        ext = [hi[i] - lo[i] for i in range(3)]
        n = ext[0] * ext[1] * ext[2]
        if n <= 8 or max(ext) == 1:
            out.append(grid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]].flatten())
            return
        score = [ext[0] * TIME_WEIGHT, ext[1], ext[2]]
        ax = max((i for i in range(3) if ext[i] > 1), key=lambda i: score[i])
        other = n // ext[ax]
        cut = ext[ax] // 2
        if n > block:  # prefer a cut that keeps whole blocks on each side
            aligned = [j for j in range(1, ext[ax]) if (j * other) % block == 0]
            if aligned:
                cut = min(aligned, key=lambda j: abs(j - ext[ax] / 2))
        mid_hi, mid_lo = list(hi), list(lo)
        mid_hi[ax] = mid_lo[ax] = lo[ax] + cut
        split(lo, mid_hi)
        split(mid_lo, hi)

    split([0, 0, 0], [frames, height, width])
    return torch.cat(out)


def tile_major_permutation(geometry: VideoGeometry) -> torch.Tensor:
    """int64 [S_video]: perm[p] = frame-major index of the token at tile-major position p."""
    return _perm(geometry.frames, geometry.height, geometry.width, geometry.block)


def inverse_permutation(perm: torch.Tensor) -> torch.Tensor:
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel(), device=perm.device)
    return inv


@lru_cache(maxsize=64)
def sequence_index(geometry: VideoGeometry, inverse: bool, device: str) -> torch.Tensor:
    """Index over the whole sequence (text untouched) that reorders the video part; cached per device."""
    perm = tile_major_permutation(geometry)
    perm = inverse_permutation(perm) if inverse else perm
    lo, hi = geometry.video_range
    idx = torch.arange(geometry.seq_len)
    idx[lo:hi] = lo + perm
    return idx.to(device)


def to_tile_major(x: torch.Tensor, geometry: VideoGeometry, dim: int = 1) -> torch.Tensor:
    """Reorder the video tokens of x along ``dim`` from frame-major to tile-major."""
    return x.index_select(dim, sequence_index(geometry, False, str(x.device)))


def to_frame_major(x: torch.Tensor, geometry: VideoGeometry, dim: int = 1) -> torch.Tensor:
    """Undo to_tile_major."""
    return x.index_select(dim, sequence_index(geometry, True, str(x.device)))
