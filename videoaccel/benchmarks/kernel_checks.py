"""The kernels suite's steps (gpu_check.py): the Gluon smoke run in its own process, one watched Gluon call,
a layout's mask, the sampled-row error against float64, effective TF/s, the closing table."""
from __future__ import annotations

import faulthandler
import math
import subprocess
import sys

import torch

from ..kernels import quantize_fp8, sparse_attention
from ..kernels.gluon_attention import fp8_v_pad, gluon_block_sparse_attention, gluon_unsupported
from ..kernels.reference import masked_attention
from .timing import bench_ms as bench

GLUON_HANG_S = 120  # one Gluon call (compile included) taking longer is a hang: the watchdog ends the run
SMOKE_TIMEOUT_S = 300


def gluon_smoke(rec) -> bool:
    """Run the gluon_smoke suite in a subprocess; True when it passed."""
    try:
        p = subprocess.run([sys.executable, "-m", "videoaccel.benchmarks.gluon_smoke"], capture_output=True, text=True,
                           timeout=SMOKE_TIMEOUT_S)
        passed, tail = p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    except subprocess.TimeoutExpired as e:
        passed, tail = False, f"TIMEOUT after {SMOKE_TIMEOUT_S}s (hang?): {str(e.stdout or '')[-2000:]}"
    rec(case="gluon-smoke", impl="videoaccel-gluon", passed=passed, log=tail)
    print(tail, flush=True)
    return passed


def run_gluon(q, k, v, lay, rows, fp8=False):
    """One Gluon call into a NaN-poisoned output under a hang watchdog, then its error and times:
    (ms of the whole call, FP8: quantisation included; ms of the kernel alone; error; unwritten)."""
    why = gluon_unsupported(q, k, v, lay, fp8=fp8)
    if why:
        raise ValueError(f"unsupported: {why}")
    out = torch.full_like(q, math.nan)
    faulthandler.dump_traceback_later(GLUON_HANG_S, exit=True)
    sparse_attention(q, k, v, lay, fp8=fp8, out=out, backend="gluon")
    torch.cuda.synchronize()
    faulthandler.cancel_dump_traceback_later()
    unwritten = int(torch.isnan(out).sum())
    err = sampled_error(out, q, k, v, lay, rows)
    faulthandler.dump_traceback_later(GLUON_HANG_S, exit=True)
    ms = bench(lambda: sparse_attention(q, k, v, lay, fp8=fp8, out=out, backend="gluon"))
    f8 = quantize_fp8(q, k, v, v_pad=fp8_v_pad(lay)) if fp8 else None
    kernel_ms = bench(lambda: gluon_block_sparse_attention(q, k, v, lay, q.shape[-1] ** -0.5, fp8=f8, out=out))
    faulthandler.cancel_dump_traceback_later()
    return ms, kernel_ms, err, unwritten


def tflops(S, H, D, ms, density=1.0):
    return 4 * S * S * H * D * density / (ms * 1e-3) / 1e12


def make_mask(kind, H, nb, density, gen):
    if density >= 1.0:
        return torch.ones(H, nb, nb, dtype=torch.bool)
    if kind == "random":
        m = torch.rand(H, nb, nb, generator=gen) < density
    else:  # banded: a diagonal band per head, width set by the density
        w = max(0, round((density * nb - 1) / 2))
        i = torch.arange(nb)
        m = ((i[:, None] - i[None, :]).abs() <= w)[None].expand(H, -1, -1).clone()
    m[:, torch.arange(nb), torch.arange(nb)] = True
    return m


def sampled_error(out, q, k, v, layout, rows):
    """rel L2 and max abs error of out[:, rows] against float64 attention of the layout's mask."""
    mask = layout.key_mask(q.shape[0], rows)
    ref, _ = masked_attention(q[:, rows], k, v, mask)
    o = out[:, rows].double()
    return float((o - ref).norm() / ref.norm()), float((o - ref).abs().max())


def print_table(res):
    print(f"\n{'case':<24}{'layout':<8}{'dens':>6}{'impl':>18}{'ms':>9}{'effTF':>7}{'xCuDNN':>8}{'xFlex':>7}{'relL2':>9}")
    flex = {(r["case"], r["layout"], r.get("target_density")): r["ms"] for r in res if r.get("impl") == "flex"}
    for r in res:
        if "eff_tflops" not in r:
            continue
        f = flex.get((r["case"], r["layout"], r.get("target_density")))
        xf = f"{f / r['ms']:.2f}" if f and r["impl"].startswith("videoaccel") else ""
        sp = r.get("speedup_vs_cudnn")
        sp = f"{sp:.2f}" if sp else ""
        err = f"{r['rel_l2']:.1e}" if "rel_l2" in r else ""
        print(f"{r['case']:<24}{r['layout']:<8}{r['density']:>6.3f}{r['impl']:>18}{r['ms']:>9.3f}{r['eff_tflops']:>7.0f}"
              f"{sp:>8}{xf:>7}{err:>9}")
    for r in res:
        if "share_of_dense" in r:
            print(f"{r['case']:<24}{r['impl']:<28}{r['ms']:.3f} ms = {100 * r['share_of_dense']:.2f}% of cuDNN dense")
