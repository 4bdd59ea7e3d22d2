"""`python -m videoaccel.benchmarks.tune`: sweep the attention kernel's tile configs on the GPU; the winners go
into TUNED (kernels/triton_attention.py).

Compiles every candidate in parallel worker processes first (they share Triton's disk cache),
then times them one after another in this process on the real shapes.

    python -m videoaccel.benchmarks.tune            # writes $OUT/tune-<device>.json

(The sampled-mass kernel's tiles: tune_sampled_mass.py.)
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor

import torch

from ..kernels import BlockLayout, quantize_fp8
from ..kernels.layout import num_blocks
from ..kernels.triton_attention import TileConfig, triton_block_sparse_attention
from .cases import CASES as ALL_CASES
from .record import run_suite, suite_command, write_record
from .timing import bench_ms

CASES = {name: (ALL_CASES[name].seq_len, ALL_CASES[name].heads, ALL_CASES[name].head_dim)
         for name in ("wan1.3b-480p81f", "cogvideox5b-480p49f")}  # name: (S, heads, head_dim)
DENSITY = 0.25


def candidates():
    for tm, tn, w, s in itertools.product((64, 128), (64, 128), (4, 8), (2, 3, 4)):
        if tm * tn < 128 * 128 and w == 8:
            continue
        yield tm, tn, w, s, False
    for tn, w, s in itertools.product((64, 128), (4, 8), (2, 3)):  # Triton's automatic warp specialisation
        yield 128, tn, w, s, True


def setup(case):
    S, H, D = CASES[case]
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, S, H, D, generator=g).to("cuda", torch.bfloat16) for _ in range(3))
    nb = num_blocks(0, S, 128)
    mask = torch.rand(H, nb, nb, generator=g) < DENSITY
    lay = BlockLayout.from_block_mask(mask.cuda(), S, S)
    return q, k, v, lay, quantize_fp8(q, k, v)


def run_one(args):
    """Compile (and run once) one candidate; returns an error string or None."""
    case, fp8, tma, cfg = args
    q, k, v, lay, f8 = setup(case)
    try:
        triton_block_sparse_attention(q, k, v, lay, q.shape[-1] ** -0.5, fp8=f8 if fp8 else None, tma=tma,
                                      config=TileConfig(*cfg))
        torch.cuda.synchronize()
        return None
    except Exception as e:  # noqa: BLE001 - out of resources etc.: recorded, not fatal
        return repr(e)[:200]


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(prog="python -m videoaccel.benchmarks.tune", description="writes $OUT/tune-<device>.json").parse_args(argv)
    jobs = [(case, fp8, tma, cfg) for case in CASES for fp8 in (False, True) for tma in (True, False) for cfg in candidates()
            if tma or (cfg[:2] == (128, 128 if CASES[case][2] == 128 else 64) and not cfg[4])]
    t0 = time.time()
    ctx = torch.multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=12, mp_context=ctx) as ex:
        errors = list(ex.map(run_one, jobs))
    print(f"compiled {len(jobs)} candidates in {time.time() - t0:.0f} s", flush=True)
    res = []
    for case in CASES:
        q, k, v, lay, f8 = setup(case)
        S, H, D = CASES[case]
        for (c, fp8, tma, cfg), err in zip(jobs, errors):
            if c != case:
                continue
            row = dict(case=case, fp8=fp8, tma=tma, tile_m=cfg[0], tile_n=cfg[1], num_warps=cfg[2], num_stages=cfg[3], ws=cfg[4])
            if err:
                res.append(dict(row, error=err))
                continue
            fn = lambda: triton_block_sparse_attention(q, k, v, lay, D ** -0.5, fp8=f8 if fp8 else None, tma=tma,  # noqa: E731
                                                       config=TileConfig(*cfg))
            ms = bench_ms(fn, rep=100)
            res.append(dict(row, ms=ms, eff_tflops=4 * S * S * H * D * lay.density / ms / 1e9))
            print(json.dumps(res[-1]), flush=True)
    write_record("tune", suite_command(__spec__.name, argv), res, os.environ.get("OUT", "."))
    errs = [r for r in res if "error" in r]
    print(f"\n{len(errs)} candidates failed; first: {errs[0] if errs else None}")
    print("best per (case, fp8):")
    for case in CASES:
        for fp8 in (False, True):
            rows = sorted((r for r in res if r["case"] == case and r["fp8"] == fp8 and "ms" in r), key=lambda r: r["ms"])
            for r in rows[:5]:
                print(f"{case:<22} fp8={fp8!s:<5} tma={r['tma']!s:<5} ws={r['ws']!s:<5} {r['tile_m']}x{r['tile_n']} w{r['num_warps']} s{r['num_stages']}"
                      f"  {r['ms']:.3f} ms  {r['eff_tflops']:.0f} TF/s")


if __name__ == "__main__":
    run_suite(main)
