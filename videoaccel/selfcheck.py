"""`videoaccel bench --self-check`: run every kernel on small random shapes against the float64
reference on this machine and print a table. On a CPU-only machine the Triton kernels run in the
interpreter (slow, so shapes stay small); on CUDA they run compiled."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from .kernels import BlockLayout, block_scores, dense_attention, pool_blocks, sparse_attention
from .kernels.reference import layout_attention, masked_attention


@dataclass
class Row:
    check: str
    impl: str
    rel_l2: float
    limit: float
    ms: float

    @property
    def ok(self) -> bool:
        return self.rel_l2 <= self.limit


def _rel(a, b) -> float:
    if torch.isnan(a).any():
        return math.inf
    return float((a.double() - b.double()).norm() / b.double().norm())


def run_self_check(device: str) -> list[Row]:
    g = torch.Generator().manual_seed(0)
    rows: list[Row] = []
    cases = [("sparse d64 text-front", 1, 141, 2, 64, (20, 141), [[[0, 20]]]),
             ("sparse d128 odd", 1, 131, 2, 128, None, None)]
    backends = ["triton"] if device == "cuda" else ["torch", "triton"]
    for name, B, S, H, D, rng, always in cases:
        q, k, v = (torch.randn(B, S, H, D, generator=g).to(device=device, dtype=torch.bfloat16) for _ in range(3))
        lo, hi = rng or (0, S)
        nb = -(-(hi - lo) // 32)
        mask = torch.rand(H, nb, nb, generator=g) < 0.5
        lay = BlockLayout.from_block_mask(mask.to(device), S, S, block_m=32, block_n=32, q_range=rng, kv_range=rng,
                                          kv_always=None if always is None else torch.tensor(always, dtype=torch.int32, device=device))
        ref = layout_attention(q, k, v, lay)[0]
        for be in backends:
            t = time.perf_counter()
            out = sparse_attention(q, k, v, lay, backend=be, out=torch.full_like(q, math.nan))
            rows.append(Row(name, f"{be}-bf16", _rel(out, ref), 1.2e-2, 1e3 * (time.perf_counter() - t)))
        t = time.perf_counter()
        out = sparse_attention(q, k, v, lay, fp8=True, backend="triton")
        rows.append(Row(name, "triton-fp8", _rel(out, ref), 0.08, 1e3 * (time.perf_counter() - t)))
    q, k, v = (torch.randn(1, 96, 2, 64, generator=g).to(device=device, dtype=torch.bfloat16) for _ in range(3))
    ref = masked_attention(q, k, v, torch.ones(1, 2, 96, 96, dtype=torch.bool, device=device))[0]
    t = time.perf_counter()
    rows.append(Row("dense d64", "sdpa", _rel(dense_attention(q, k, v), ref), 1.2e-2, 1e3 * (time.perf_counter() - t)))
    t = time.perf_counter()
    pooled = pool_blocks(q, 32)
    rows.append(Row("block pooling", "triton" if device == "cuda" else "torch", _rel(pooled, q.float().reshape(1, 3, 32, 2, 64).mean(2).transpose(1, 2)),
                    1e-5, 1e3 * (time.perf_counter() - t)))
    p = block_scores(q, k, 32, 32)
    rows.append(Row("block scores", "rows sum to 1", float((p.sum(-1) - 1).abs().max()), 1e-5, 0.0))
    return rows


def format_table(rows: list[Row]) -> str:
    head = f"{'check':<24}{'impl':<16}{'rel_l2':>10}{'limit':>8}{'ms':>10}  status"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.check:<24}{r.impl:<16}{r.rel_l2:>10.2e}{r.limit:>8.0e}{r.ms:>10.1f}  {'ok' if r.ok else 'FAIL'}")
    return "\n".join(lines)
