"""`python -m videoaccel.benchmarks.tune_exp2`: the Gluon v3 kernel's exp2 offload on this GPU.

``GluonConfig.exp2_poly``: of every 4 softmax exponentials, how many run as an FMA polynomial instead of on MUFU
(FA4's trick; MUFU's 16 exponentials a clock per SM would bound an e4m3 tile at D=64 at twice its MMA time). Per
case (Wan2.1-1.3B D=128 and CogVideoX-5B D=64 at 480p, random 128-blocks), density, bf16 and FP8 (the kernel alone:
quantised outside the timing) and poly 0-2: ms, the ratio to poly 0 and to the bf16 kernel at poly 0, and the error of
192 sampled rows against float64 attention, outputs NaN-poisoned first. Writes $OUT/tune-exp2-<device>.json.

    python -m videoaccel.benchmarks.tune_exp2 [--densities 1.0 0.25 0.05] [--polys 0 1 2]
"""
from __future__ import annotations

import argparse
import faulthandler
import json
import math
import os
from dataclasses import replace

import torch

from ..kernels import BlockLayout, quantize_fp8
from ..kernels.gluon_attention import fp8_v_pad, gluon_block_sparse_attention, pick_gluon_config
from ..kernels.layout import num_blocks
from .cases import CASES
from .kernel_checks import GLUON_HANG_S, make_mask, sampled_error, tflops
from .record import run_suite, suite_command, write_record
from .timing import bench_ms

BLOCK = 128


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m videoaccel.benchmarks.tune_exp2", description="writes $OUT/tune-exp2-<device>.json")
    ap.add_argument("--cases", nargs="*", default=["wan1.3b-480p81f", "cogvideox5b-480p49f"])
    ap.add_argument("--densities", nargs="*", type=float, default=[1.0, 0.25, 0.05])
    ap.add_argument("--polys", nargs="*", type=int, default=[0, 1, 2])
    args = ap.parse_args(argv)
    res = []
    gen = torch.Generator().manual_seed(0)
    for case in args.cases:
        S, H, D = CASES[case].seq_len, CASES[case].heads, CASES[case].head_dim
        torch.manual_seed(1)
        q, k, v = (torch.randn(1, S, H, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        rows = torch.randperm(S, device="cuda")[:192].sort().values
        for d in args.densities:
            mask = make_mask("random", H, num_blocks(0, S, BLOCK), d, gen)
            lay = BlockLayout.from_block_mask(mask.cuda(), S, S, block_m=BLOCK, block_n=BLOCK)
            bf16_ms = None
            for dtype in (torch.bfloat16, torch.float8_e4m3fn):
                f8 = quantize_fp8(q, k, v, v_pad=fp8_v_pad(lay)) if dtype == torch.float8_e4m3fn else None
                base_ms = None
                for poly in args.polys:
                    cfg = replace(pick_gluon_config(D, BLOCK, BLOCK, dtype), exp2_poly=poly)
                    out = torch.full_like(q, math.nan)
                    call = lambda: gluon_block_sparse_attention(q, k, v, lay, D ** -0.5, fp8=f8, out=out, config=cfg)  # noqa: B023, E731
                    faulthandler.dump_traceback_later(GLUON_HANG_S, exit=True)
                    call()
                    torch.cuda.synchronize()
                    unwritten = int(torch.isnan(out).sum())
                    err = sampled_error(out, q, k, v, lay, rows)
                    ms = bench_ms(call)
                    faulthandler.cancel_dump_traceback_later()
                    base_ms = base_ms or ms
                    bf16_ms = bf16_ms or ms
                    row = {"case": case, "head_dim": D, "density": round(lay.density, 4), "dtype": cfg.dtype, "exp2_poly": poly,
                           "ms": round(ms, 4), "eff_tflops": round(tflops(S, H, D, ms, lay.density), 1),
                           "x_poly0": round(base_ms / ms, 4), "x_bf16_poly0": round(bf16_ms / ms, 4),
                           "rel_l2": err[0], "max_abs_err": err[1], "unwritten": unwritten}
                    res.append(row)
                    print(json.dumps(row), flush=True)
        del q, k, v
        torch.cuda.empty_cache()
    print("wrote " + write_record("tune-exp2", suite_command(__spec__.name, argv), res, os.environ.get("OUT", ".")))
    print(f"\n{'case':<22}{'D':>4}{'dens':>7}{'dtype':>6}{'poly':>5}{'ms':>9}{'TF/s':>7}{'x p0':>7}{'x bf16':>8}{'relL2':>9}")
    for r in res:
        print(f"{r['case']:<22}{r['head_dim']:>4}{r['density']:>7.3f}{r['dtype']:>6}{r['exp2_poly']:>5}{r['ms']:>9.3f}"
              f"{r['eff_tflops']:>7.0f}{r['x_poly0']:>7.3f}{r['x_bf16_poly0']:>8.3f}{r['rel_l2']:>9.1e}")


if __name__ == "__main__":
    run_suite(main)
