"""The profiler's cost model on this GPU: a table measured once on it, then read from a cache.

Why: what a plan costs depends on the device, the kernels' versions and the precision (on an H200,
FP8 attention with its quantisation runs at 0.46-0.91x bf16 at density <= 0.25), so an analytic
price picks FP8 where it is slower. ``device_costs`` returns, on a CUDA GPU, the table for this
device name and these torch / triton / videoaccel versions: measured on first use (densities from
0.05 to 1.0, bf16 and FP8, head dims 64 and 128, blocks 64 and 128, and the per-call estimate, compensation and
CUDA graph copies: about 30 s, with a progress bar)
and written to ``$VIDEOACCEL_CACHE`` (default ``~/.cache/videoaccel``); on a CPU the analytic model.
A table given explicitly (``videoaccel profile --cost-table``) wins over both.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

import torch
import triton
from tqdm.auto import tqdm

from .. import __version__
from ..files import write_json
from ..kernels import BlockLayout, dense_attention, sparse_attention
from ..kernels.compensate import compensate_, kept_blocks
from ..kernels.sampled_mass import scratch_elements
from ..patterns import VideoGeometry, build_layout, fit_density, mask_density
from ..patterns.sampled import default_rows, sampled_scores, write_rows
from .costs import EXTRAS, CostModel

DENSITIES = (0.05, 0.1, 0.25, 0.5, 1.0)
GEOMETRY = "13x24x40"  # the testbed's grid (12480 tokens): long enough to fill the GPU, short enough to measure fast
HEADS = 8
SLEEP_CYCLES = 100_000_000  # ~50 ms at 2 GHz: longer than the host takes to queue any row's repeats
TABLE_FORMAT = 3  # in the cache file name: a table without the rows this version prices is measured again


def cache_path(device_name: str) -> Path:
    root = Path(os.environ.get("VIDEOACCEL_CACHE", "~/.cache/videoaccel")).expanduser()
    versions = f"torch{torch.__version__}-triton{triton.__version__}-v{__version__}-t{TABLE_FORMAT}"
    tag = re.sub(r"[^A-Za-z0-9.]+", "-", f"{device_name}-{versions}")
    return root / "costs" / f"{tag}.json"


def device_costs(device: torch.device | None, progress: bool = True,
                 measure: Callable[[bool], list[dict]] | None = None) -> CostModel:
    """The cost model for profiling on ``device`` (see the module docstring)."""
    if device is None or device.type != "cuda":
        return CostModel()
    name = torch.cuda.get_device_name(device)
    path = cache_path(name)
    if path.is_file():
        return CostModel.load(path)
    rows = (measure or measure_table)(progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json({"suite": "cost-table", "device": name, "results": rows}, path)
    return CostModel("measured", name, rows)


def _ms(fn: Callable[[], object], repeats: int = 10) -> float:
    """GPU time per call of ``fn``: its launches queue behind a sleeping kernel, so the host's launch work (tens of
    microseconds a launch, more than a short call's kernels at the testbed's length) is not what is timed; the
    router's calls in a generation are priced as torch.profiler counts them (benchmarks/generation_time.py)."""
    fn()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda._sleep(SLEEP_CYCLES)
    a.record()
    for _ in range(repeats):
        fn()
    b.record()
    b.synchronize()
    return a.elapsed_time(b) / repeats


def measure_table(progress: bool = True) -> list[dict]:
    """Cost rows (``impl`` "cost": ms over cuDNN dense ms on the same q/k/v) on the current GPU, random inputs.

    Each row times what the router launches: FP8 heads with the gather of their q/k/v and the scatter of their
    output (routing/executors.py's FP8 launch), and beside the kernels the per-call extras a plan can add (pattern
    ``estimate``: the sampled estimate of every head at its default rows, its top-k written into the LUT;
    ``compensate``: the compensation epilogue of every head; ``graph``: the copies of a call replayed as a CUDA
    graph), which cost several times their FLOP share at short lengths."""
    combos = [(hd, block, prec, d) for hd in (64, 128) for block in (64, 128) for prec in ("bf16", "fp8") for d in DENSITIES]
    combos += [(hd, block, extra, 0.25) for hd in (64, 128) for block in (64, 128) for extra in EXTRAS]
    rows, dense_ms = [], {}
    gen = torch.Generator(device="cuda").manual_seed(0)
    for hd, block, what, d in tqdm(combos, desc="measuring attention costs on this GPU (once)", disable=not progress):
        g = VideoGeometry.parse(GEOMETRY, block=block, order="tile")
        q, k, v = (torch.randn(1, g.seq_len, HEADS, hd, device="cuda", dtype=torch.bfloat16, generator=gen) for _ in range(3))
        if hd not in dense_ms:
            dense_ms[hd] = _ms(lambda: dense_attention(q, k, v))
        mask = fit_density("radial", g, d)[1] if d < 1 else torch.ones(g.num_blocks, g.num_blocks, dtype=torch.bool)
        lay = build_layout(g, mask[None].expand(HEADS, -1, -1), device="cuda")
        ms = _ms(_work(what, q, k, v, lay, g))
        rows.append({"case": f"{GEOMETRY}-h{HEADS}", "impl": "cost", "pattern": what if what in EXTRAS else "radial",
                     "precision": "fp8" if what == "fp8" else "bf16", "head_dim": hd, "block": block, "target_density": d,
                     "density": mask_density(mask, g), "ms": ms, "dense_ms": dense_ms[hd], "tokens": g.seq_len})
    return rows


def _work(what: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lay: BlockLayout,
          g: VideoGeometry) -> Callable[[], object]:
    """One call's work for a cost row (see measure_table)."""
    heads = torch.arange(q.shape[2], device=q.device)
    if what == "bf16":
        return lambda: sparse_attention(q, k, v, lay)
    if what == "fp8":
        out = torch.empty_like(q)
        return lambda: out.index_copy_(2, heads, sparse_attention(*(t.index_select(2, heads) for t in (q, k, v)), lay, fp8=True))
    if what == "estimate":
        kmax = min(lay.lut.shape[-1], max(1, g.num_blocks // 4))  # a quarter of the blocks, as the LUT holds
        keep = torch.full((len(heads),), kmax, device=q.device)
        rows = default_rows(g.block)
        scratch = torch.empty(scratch_elements(q.shape[0], len(heads), g.num_blocks, rows), device=q.device)
        h32 = heads.to(torch.int32)
        return lambda: write_rows(lay.lut, heads, keep, kmax, sampled_scores(q, k, g, rows, heads=h32, scratch=scratch))
    if what == "graph":  # a replayed call's copies: q/k/v into the graph's inputs, its output out
        static = [torch.empty_like(t) for t in (q, k, v)]
        return lambda: ([s.copy_(t) for s, t in zip(static, (q, k, v))], static[0].clone())
    out, lse = sparse_attention(q, k, v, lay, return_lse=True)
    kept = kept_blocks(lay, heads)
    return lambda: compensate_(q, k, v, out, lse, lay, heads, q.shape[-1] ** -0.5, kept=kept)
