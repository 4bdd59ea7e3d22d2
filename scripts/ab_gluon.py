"""A/B of two versions of the Gluon kernel module in one process (thin launcher): a saved copy (argument 1, e.g. the
previous commit's videoaccel/kernels/gluon_attention.py) against the current one, on Wan2.1-1.3B (D=128) and
CogVideoX-5B (D=64) 480p shapes, random 128-blocks, bf16 and FP8, alternating ROUNDS times. FP8 is timed twice: the
kernel alone on one full quantisation, and the whole call with each version's own quantisation (``--planes-before`` /
``--planes-after``: the planes of (Q, K, V) quantize_fp8 writes for it; 1 3 only for a kernel that quantises Q
itself, as branch q-in-kernel's did). The current version's 192 sampled rows
against float64 attention (output NaN-poisoned first). Writes $OUT/ab-gluon-<device>.json.

    git show HEAD~1:videoaccel/kernels/gluon_attention.py > /tmp/gluon_before.py
    python scripts/ab_gluon.py /tmp/gluon_before.py [--planes-before 0 3] [--planes-after 1 3]
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys

import torch

from videoaccel.benchmarks.cases import CASES
from videoaccel.benchmarks.kernel_checks import make_mask, sampled_error
from videoaccel.benchmarks.record import write_record
from videoaccel.benchmarks.timing import bench_ms
from videoaccel.kernels import BlockLayout, quantize_fp8
from videoaccel.kernels import gluon_attention as after
from videoaccel.kernels.layout import num_blocks

ROUNDS = 3
ap = argparse.ArgumentParser()
ap.add_argument("before")
ap.add_argument("--planes-before", nargs=2, type=int, default=[0, 3])
ap.add_argument("--planes-after", nargs=2, type=int, default=[0, 3])
args = ap.parse_args()
spec = importlib.util.spec_from_file_location("videoaccel.kernels.gluon_before", args.before)
before = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = before
spec.loader.exec_module(before)
versions = (("before", before, tuple(args.planes_before)), ("after", after, tuple(args.planes_after)))
rows = []
gen = torch.Generator().manual_seed(0)


def median(ts):
    return sorted(ts)[len(ts) // 2]


for case in ("wan1.3b-480p81f", "cogvideox5b-480p49f"):
    S, H, D = CASES[case].seq_len, CASES[case].heads, CASES[case].head_dim
    q, k, v = (torch.randn(1, S, H, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    sample = torch.randperm(S, device="cuda")[:192].sort().values
    for density in (1.0, 0.25, 0.05):
        lay = BlockLayout.from_block_mask(make_mask("random", H, num_blocks(0, S, 128), density, gen).cuda(), S, S)
        bf16_after = None
        for f8 in (None, quantize_fp8(q, k, v)):
            out = torch.full_like(q, math.nan)
            after.gluon_block_sparse_attention(q, k, v, lay, D ** -0.5, fp8=f8, out=out)
            torch.cuda.synchronize()
            err = sampled_error(out, q, k, v, lay, sample)
            ms = {f"{name}{part}": [] for name, _, _ in versions for part in ("", "_with_quant")}
            for _ in range(ROUNDS):
                for name, mod, planes in versions:
                    call = mod.gluon_block_sparse_attention
                    ms[name].append(bench_ms(lambda call=call: call(q, k, v, lay, D ** -0.5, fp8=f8, out=out)))
                    if f8 is not None:
                        ms[f"{name}_with_quant"].append(bench_ms(lambda call=call, planes=planes: call(
                            q, k, v, lay, D ** -0.5, fp8=quantize_fp8(q, k, v, planes=planes), out=out)))
            med = {n: median(t) for n, t in ms.items() if t}
            bf16_after = bf16_after or med["after"]
            row = {"case": case, "head_dim": D, "density": round(lay.density, 4), "dtype": "fp8" if f8 else "bf16",
                   **{f"ms_{n}": t for n, t in ms.items() if t}, "speedup": med["before"] / med["after"],
                   "rel_l2": err[0], "unwritten": int(torch.isnan(out).sum())}
            if f8 is not None:
                row.update(speedup_with_quant=med["before_with_quant"] / med["after_with_quant"],
                           x_bf16_before=bf16_after / med["before_with_quant"], x_bf16_after=bf16_after / med["after_with_quant"])
            rows.append(row)
            extra = (f"  with quant {med['before_with_quant']:.3f} -> {med['after_with_quant']:.3f}  x bf16 "
                     f"{row['x_bf16_before']:.3f} -> {row['x_bf16_after']:.3f}") if f8 is not None else ""
            print(f"{case:<22}{D:>4}{row['density']:>7.3f}{row['dtype']:>6}  kernel {med['before']:.3f} -> {med['after']:.3f}"
                  f"{extra}  relL2 {err[0]:.1e}  unwritten {row['unwritten']}", flush=True)
command = "python scripts/ab_gluon.py " + " ".join(sys.argv[1:])
print("wrote " + write_record("ab-gluon", command, rows, os.environ.get("OUT", ".")))
