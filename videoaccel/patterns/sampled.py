"""Row-sampled block masks: the oracle's selection, estimated from a few exact rows per query block.

Why: every static family (radial, diagonal, stripes) misses where the content moves, and pooled
q/k (draft.py) blur the sharp per-token peaks a trained video DiT has, so neither follows the
per-call top-k mask that bounds fidelity (oracle.py). Here ``rows`` evenly spaced query rows of
each block get their exact attention row (all keys, text included, so the softmax is the real
one); their mass summed per key block ranks the key blocks, and each query block keeps its
``round(density * NB)`` heaviest. Rows of one block are neighbours in the router's token order,
so a few stand for the block, and a step's mask still fits the next ones (measured on the embedded
model, block 64, density 0.25: 4 rows keep 97.7% of the oracle's mass, 97.5% one step later, 97.2%
two steps later). Cost: one QK^T pass over ``rows / block`` of the queries (half of attention's
FLOPs per score: no PV), once every ``every`` steps (``estimate_cost``: 1/64 by default), counted in
the head's density.

On the router's path (``write_rows``) the chosen key blocks go straight into the call's LUT on the
device: top-k, sorted, written in place; a row keeps a fixed number of blocks, so the LUT's counts,
its work schedule and the head's density are known before the call and nothing is read back.
"""
from __future__ import annotations

from functools import lru_cache

import torch

from ..kernels.sampled_mass import sampled_mass_triton
from .geometry import VideoGeometry
from .oracle import top_k_blocks

ROWS_PER_BLOCK = 16  # default: one sampled row per 16 queries
EVERY = 2  # default: a mask serves two steps


def default_rows(block: int) -> int:
    return max(1, block // ROWS_PER_BLOCK)


def estimate_cost(rows: int, block: int, every: int = EVERY) -> float:
    """Share of a dense attention's FLOPs the estimate costs per call: one QK^T pass (half of attention's
    FLOPs per score) over rows/block of the queries, once every ``every`` steps."""
    return min(rows, block) / (2 * block * max(every, 1))


def estimate_share(params: dict, block: int) -> float:
    """What a sampled plan's estimate costs per call, as a share of a dense attention (registry ``estimate_cost``)."""
    return estimate_cost(params.get("rows", default_rows(block)), block, params.get("every", EVERY))


@lru_cache(maxsize=64)
def sample_rows(geometry: VideoGeometry, rows: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """int64 [NB, r]: absolute query rows, ``rows`` evenly spaced inside each video block (fewer in a short last block).
    Cached: made once per geometry, not on every call (nor inside a CUDA graph capture)."""
    lo, hi = geometry.video_range
    bs, nb = geometry.block, geometry.num_blocks
    r = min(rows, bs)
    offs = (torch.arange(r) * bs) // r + bs // (2 * r)
    start = torch.arange(nb)[:, None] * bs
    size = torch.clamp(hi - lo - start, max=bs)  # rows in each block
    return (lo + start + offs[None] % size).to(device)


def sampled_block_mass(q: torch.Tensor, k: torch.Tensor, geometry: VideoGeometry, rows: int,
                       scale: float | None = None, max_elements: int = 1 << 27, fused: bool | None = None,
                       heads: torch.Tensor | None = None, scratch: torch.Tensor | None = None) -> torch.Tensor:
    """float32 [H, NB, NB]: softmax mass from the sampled rows of query block i to video key block j,
    summed over those rows and the batch. q/k [B, S, H, D], the full joint sequence; ``heads`` (int32 on
    q's device) selects the heads to estimate (default all: then H is q's). ``fused`` (default: on a GPU,
    where the kernel takes the shape) runs one fused kernel (kernels/sampled_mass.py, tested under the
    interpreter); otherwise float32 PyTorch in chunks of heads (the GPU check's reference)."""
    if heads is not None and not (fused or (fused is None and q.is_cuda)):
        q, k = q.index_select(2, heads.long()), k.index_select(2, heads.long())
        heads = None
    B, S, H, D = q.shape
    scale = D ** -0.5 if scale is None else scale
    lo, hi = geometry.video_range
    nb, bs = geometry.num_blocks, geometry.block
    idx = sample_rows(geometry, rows, q.device)  # [NB, r]
    r = idx.shape[1]
    if fused is None:
        fused = q.is_cuda and r & (r - 1) == 0 and D in (64, 128) and bs % 16 == 0
    if fused:
        return sampled_mass_triton(q, k, idx, (lo, hi), bs, scale, heads=heads, scratch=scratch).sum(0)
    key_block = torch.full((S,), nb, dtype=torch.long, device=q.device)  # text keys: a dropped bin
    key_block[lo:hi] = torch.arange(hi - lo, device=q.device) // bs
    out = torch.empty(H, nb, nb, device=q.device)
    chunk = max(1, max_elements // (B * nb * r * S))  # heads per pass: bounded memory at any length
    for h0 in range(0, H, chunk):
        h1 = min(h0 + chunk, H)
        qs = q[:, idx.flatten(), h0:h1].float().transpose(1, 2)  # [B, h, NB*r, D]
        p = torch.softmax(qs @ k[:, :, h0:h1].float().transpose(1, 2).transpose(-1, -2) * scale, -1)  # [B, h, NB*r, S]
        per_key = torch.zeros(*p.shape[:-1], nb + 1, device=q.device).index_add_(3, key_block, p)
        out[h0:h1] = per_key[..., :nb].reshape(B, h1 - h0, nb, r, nb).sum((0, 3))
    return out


def sampled_scores(q: torch.Tensor, k: torch.Tensor, geometry: VideoGeometry, rows: int | None = None,
                   scale: float | None = None, heads: torch.Tensor | None = None, scratch: torch.Tensor | None = None) -> torch.Tensor:
    """The block scores the router's top-k selection reads (registry ``impl``): the sampled block mass."""
    rows = default_rows(geometry.block) if rows is None else rows
    if rows < 1:
        raise ValueError(f"sampled rows={rows} must be >= 1")
    return sampled_block_mass(q, k, geometry, int(rows), scale, heads=heads, scratch=scratch)


def sampled_masks(q: torch.Tensor, k: torch.Tensor, geometry: VideoGeometry, density: float, rows: int | None = None,
                  scale: float | None = None) -> torch.Tensor:
    """bool [H, NB, NB]: per query block, the ``max(1, round(density * NB))`` key blocks heaviest on its sampled rows
    (``rows`` per block, default block / 16)."""
    if not 0.0 < density <= 1.0:
        raise ValueError(f"sampled density {density} must be in (0, 1]")
    return top_k_blocks(sampled_scores(q, k, geometry, rows, scale), density)


def write_rows(lut: torch.Tensor, heads: torch.Tensor, keep: torch.Tensor, kmax: int, mass: torch.Tensor) -> None:
    """Write each estimated head's chosen key blocks into ``lut`` int32 [H, NQB, CAP] in place: for ``mass``
    [len(heads), NQB, NB], row i of head ``heads[j]`` gets its ``keep[j]`` heaviest key blocks in ascending
    order (the kernels' LUT order) from column 0 (``kmax`` = the largest keep, known on the host). Device
    work only: no value is read back."""
    top = mass.topk(kmax, dim=-1).indices  # heaviest first
    top = torch.where(torch.arange(kmax, device=top.device) < keep[:, None, None], top, mass.shape[-1])  # past a keep: last
    lut[heads.long(), :, :kmax] = top.sort(-1).values.to(torch.int32)
