"""`videoaccel bench cost-table`: time per pattern, density, precision, head dim and block on this GPU.

Why: the profiler's allocation spends a budget of attention time; the analytic model (cost = density,
FP8 x 0.7) is wrong where block 64 or FP8 kernels run below peak. Each row times the block-sparse
kernel on the same q/k/v as cuDNN dense (``dense_ms``), so ``ms / dense_ms`` is the cost the profiler
reads (profiling/costs.py). Writes ``cost-table-<device>.json`` in the bench format.
"""
from __future__ import annotations

import itertools

import torch

from ..kernels import dense_attention, sparse_attention
from ..patterns import TUNABLE, VideoGeometry, build_layout, fit_density, mask_density
from .record import write_record
from .timing import median_ms

DENSITIES = (0.05, 0.1, 0.15, 0.25, 0.4, 0.6)


def measure(geometry: str = "21x30x52", heads: int = 12, head_dims: tuple[int, ...] = (64, 128), blocks: tuple[int, ...] = (64, 128),
            precisions: tuple[str, ...] = ("bf16", "fp8"), patterns: tuple[str, ...] = TUNABLE,
            densities: tuple[float, ...] = DENSITIES, repeats: int = 20) -> list[dict]:
    """Cost rows (``impl`` "cost") for every combination; cuDNN dense timed once per head dim."""
    if not torch.cuda.is_available():
        raise ValueError("the cost table times kernels on a CUDA GPU; on CPU the profiler uses the analytic cost model")
    rows = []
    for hd in head_dims:
        g0 = VideoGeometry.parse(geometry)
        gen = torch.Generator(device="cuda").manual_seed(0)
        q, k, v = (torch.randn(1, g0.seq_len, heads, hd, device="cuda", dtype=torch.bfloat16, generator=gen) for _ in range(3))
        dense_ms = median_ms(lambda: dense_attention(q, k, v), repeats)
        for block, precision, pattern, d in itertools.product(blocks, precisions, patterns, densities):
            g = VideoGeometry.parse(geometry, block=block, order="tile")
            _, mask = fit_density(pattern, g, d)
            lay = build_layout(g, mask[None].expand(heads, -1, -1), device="cuda")
            ms = median_ms(lambda: sparse_attention(q, k, v, lay, fp8=precision == "fp8"), repeats)
            rows.append({"case": f"{geometry}-h{heads}", "impl": "cost", "pattern": pattern, "precision": precision,
                         "head_dim": hd, "block": block, "target_density": d, "density": mask_density(mask, g),
                         "ms": ms, "dense_ms": dense_ms})
            print(f"{pattern:>16} {precision} D={hd} block {block} density {rows[-1]['density']:.3f}: {ms:.3f} ms "
                  f"({ms / dense_ms:.3f} of cuDNN dense {dense_ms:.3f} ms)", flush=True)
    return rows


def run(out_dir: str, command: str, **kw) -> str:
    return write_record("cost-table", command, measure(**kw), out_dir)
