"""The profiler's cost model on this GPU: a table measured once on it, then read from a cache.

Why: what a plan costs depends on the device, the kernels' versions and the precision (on an H200,
FP8 attention with its quantisation runs at 0.46-0.91x bf16 at density <= 0.25), so an analytic
price picks FP8 where it is slower. ``device_costs`` returns, on a CUDA GPU, the table for this
device name and these torch / triton / videoaccel versions: measured on first use (densities from
0.05 to 1.0, bf16 and FP8, head dims 64 and 128, blocks 64 and 128: about 30 s, with a progress bar)
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
from ..kernels import dense_attention, sparse_attention
from ..patterns import VideoGeometry, build_layout, fit_density, mask_density
from .costs import CostModel

DENSITIES = (0.05, 0.1, 0.25, 0.5, 1.0)
GEOMETRY = "13x24x40"  # the testbed's grid (12480 tokens): long enough to fill the GPU, short enough to measure fast


def cache_path(device_name: str) -> Path:
    root = Path(os.environ.get("VIDEOACCEL_CACHE", "~/.cache/videoaccel")).expanduser()
    tag = re.sub(r"[^A-Za-z0-9.]+", "-", f"{device_name}-torch{torch.__version__}-triton{triton.__version__}-v{__version__}")
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
    fn()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(repeats):
        fn()
    b.record()
    b.synchronize()
    return a.elapsed_time(b) / repeats


def measure_table(progress: bool = True) -> list[dict]:
    """Cost rows (``impl`` "cost": ms over cuDNN dense ms on the same q/k/v) on the current GPU, random inputs."""
    combos = [(hd, block, prec, d) for hd in (64, 128) for block in (64, 128) for prec in ("bf16", "fp8") for d in DENSITIES]
    rows, dense_ms = [], {}
    gen = torch.Generator(device="cuda").manual_seed(0)
    for hd, block, prec, d in tqdm(combos, desc="measuring attention costs on this GPU (once)", disable=not progress):
        g = VideoGeometry.parse(GEOMETRY, block=block, order="tile")
        q, k, v = (torch.randn(1, g.seq_len, 8, hd, device="cuda", dtype=torch.bfloat16, generator=gen) for _ in range(3))
        if hd not in dense_ms:
            dense_ms[hd] = _ms(lambda: dense_attention(q, k, v))
        mask = fit_density("radial", g, d)[1] if d < 1 else torch.ones(g.num_blocks, g.num_blocks, dtype=torch.bool)
        lay = build_layout(g, mask[None].expand(8, -1, -1), device="cuda")
        ms = _ms(lambda: sparse_attention(q, k, v, lay, fp8=prec == "fp8"))
        rows.append({"case": f"{GEOMETRY}-h8", "impl": "cost", "pattern": "radial", "precision": prec, "head_dim": hd,
                     "block": block, "target_density": d, "density": mask_density(mask, g), "ms": ms, "dense_ms": dense_ms[hd]})
    return rows
