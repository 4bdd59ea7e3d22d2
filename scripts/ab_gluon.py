"""A/B of two versions of the Gluon kernel module in one process (thin launcher): a saved copy (argument 1, e.g. the
previous commit's videoaccel/kernels/gluon_attention.py) against the current one, on Wan2.1-1.3B (D=128) and
CogVideoX-5B (D=64) 480p shapes, random 128-blocks, bf16 and FP8 (kernel alone), alternating ROUNDS times; the current
version's 192 sampled rows against float64 attention (output NaN-poisoned first). Writes $OUT/ab-gluon-<device>.json.

    git show HEAD~1:videoaccel/kernels/gluon_attention.py > /tmp/gluon_before.py
    python scripts/ab_gluon.py /tmp/gluon_before.py
"""
from __future__ import annotations

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
spec = importlib.util.spec_from_file_location("videoaccel.kernels.gluon_before", sys.argv[1])
before = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = before
spec.loader.exec_module(before)
rows = []
gen = torch.Generator().manual_seed(0)
for case in ("wan1.3b-480p81f", "cogvideox5b-480p49f"):
    S, H, D = CASES[case].seq_len, CASES[case].heads, CASES[case].head_dim
    q, k, v = (torch.randn(1, S, H, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    sample = torch.randperm(S, device="cuda")[:192].sort().values
    for density in (1.0, 0.25, 0.05):
        lay = BlockLayout.from_block_mask(make_mask("random", H, num_blocks(0, S, 128), density, gen).cuda(), S, S)
        for f8 in (None, quantize_fp8(q, k, v)):
            out = torch.full_like(q, math.nan)
            after.gluon_block_sparse_attention(q, k, v, lay, D ** -0.5, fp8=f8, out=out)
            torch.cuda.synchronize()
            err = sampled_error(out, q, k, v, lay, sample)
            ms = {"before": [], "after": []}
            for _ in range(ROUNDS):
                for name, mod in (("before", before), ("after", after)):
                    call = mod.gluon_block_sparse_attention
                    ms[name].append(bench_ms(lambda call=call: call(q, k, v, lay, D ** -0.5, fp8=f8, out=out)))
            med = {n: sorted(t)[ROUNDS // 2] for n, t in ms.items()}
            rows.append({"case": case, "head_dim": D, "density": round(lay.density, 4), "dtype": "fp8" if f8 else "bf16",
                         "ms_before": ms["before"], "ms_after": ms["after"], "speedup": med["before"] / med["after"],
                         "rel_l2": err[0], "unwritten": int(torch.isnan(out).sum())})
            r = rows[-1]
            print(f"{case:<22}{D:>4}{r['density']:>7.3f}{r['dtype']:>6}  before {med['before']:.3f}  after {med['after']:.3f}  "
                  f"x{r['speedup']:.3f}  relL2 {r['rel_l2']:.1e}  unwritten {r['unwritten']}", flush=True)
print("wrote " + write_record("ab-gluon", "python scripts/ab_gluon.py " + " ".join(sys.argv[1:]), rows, os.environ.get("OUT", ".")))
