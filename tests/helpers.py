"""Shared builders for kernel tests: random layouts and inputs on small shapes."""
from __future__ import annotations

import torch

from videoaccel.kernels import BlockLayout
from videoaccel.kernels.layout import num_blocks


def random_layout(heads, seq_q, seq_kv, block_m=32, block_n=32, q_range=None, kv_range=None, kv_always=None,
                  densities=None, gen=None) -> BlockLayout:
    """Each head its own density (heads with different layouts share one launch)."""
    q_range = q_range or (0, seq_q)
    kv_range = kv_range or (0, seq_kv)
    nq, nk = num_blocks(*q_range, block_m), num_blocks(*kv_range, block_n)
    densities = densities or [0.2 + 0.6 * h / max(heads - 1, 1) for h in range(heads)]
    mask = torch.stack([torch.rand(nq, nk, generator=gen) < d for d in densities])
    always = None if kv_always is None else torch.tensor(kv_always, dtype=torch.int32)
    return BlockLayout.from_block_mask(mask, seq_q, seq_kv, block_m=block_m, block_n=block_n,
                                       q_range=q_range, kv_range=kv_range, kv_always=always)


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())
