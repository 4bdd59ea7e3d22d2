"""`python -m videoaccel.benchmarks.gluon_smoke`: first contact of the Gluon attention kernel with a GPU: small
shapes that hit every path.

Each check runs one Gluon call (outputs NaN-poisoned first) and compares it with the float64
reference of the same layout: odd lengths (masked tails, TMA rows past the end), kv_always ranges
per sample with dense text rows, query blocks with no key (zeros, lse -inf), 64-token blocks,
fp16, a strided (packed qkv) input, a persistent grid with more items than CTAs, and FP8 (e4m3, v3)
on the 128-row paths against the float64 attention of the dequantised inputs. One JSON line per
check; exit 1 on any failure. A watchdog ends the process if one call hangs (a barrier-phase bug
shows up as a hang, not an error), so run it in its own process; the kernels suite (gpu_check.py) does.

    python -m videoaccel.benchmarks.gluon_smoke
"""
from __future__ import annotations

import argparse
import faulthandler
import json
import math
import time

import torch

from ..kernels import BlockLayout, quantize_fp8
from ..kernels.gluon_attention import fp8_v_pad, gluon_block_sparse_attention, gluon_unsupported, pick_gluon_config
from ..kernels.layout import num_blocks
from ..kernels.reference import dequantize_fp8, layout_attention
from .record import run_suite

HANG_S = 60  # one small call taking longer than this is a hang


def _layout(H, S, block_m, block_n, density, gen, q_range=None, kv_range=None, always=None, empty_rows=False):
    qr, kr = q_range or (0, S), kv_range or (0, S)
    nq, nk = num_blocks(*qr, block_m), num_blocks(*kr, block_n)
    mask = torch.rand(H, nq, nk, generator=gen) < density
    if empty_rows:
        mask[:, ::3] = False  # every third query block sees no key
    kw = dict(block_m=block_m, block_n=block_n, q_range=qr, kv_range=kr)
    if always is not None:
        kw["kv_always"] = torch.tensor(always, dtype=torch.int32)
    return BlockLayout.from_block_mask(mask, S, S, **kw).to("cuda")


FP8_CHECKS = ("odd-S-d128", "odd-S-d64-fp16", "m128-n64-d64", "empty-rows", "text-front", "text-back-per-sample",
              "dense-layout", "packed-qkv", "many-items-d128")


def checks(gen):
    """(name, B, S, H, D, dtype, layout, packed) for every path the kernel has (FP8: FP8_CHECKS again)."""
    bf, f16 = torch.bfloat16, torch.float16
    yield "odd-S-d128", 2, 1000, 3, 128, bf, _layout(3, 1000, 128, 128, 0.5, gen), False
    yield "odd-S-d64-fp16", 1, 777, 2, 64, f16, _layout(2, 777, 128, 128, 0.6, gen), False
    yield "block64-d128", 1, 900, 2, 128, bf, _layout(2, 900, 64, 64, 0.4, gen), False
    yield "m128-n64-d64", 2, 640, 2, 64, bf, _layout(2, 640, 128, 64, 0.5, gen), False
    yield "m64-n128-d128", 1, 700, 2, 128, bf, _layout(2, 700, 64, 128, 0.5, gen), False
    yield "empty-rows", 1, 1024, 2, 128, bf, _layout(2, 1024, 128, 128, 0.5, gen, empty_rows=True), False
    yield "text-front", 1, 1226, 2, 64, bf, _layout(2, 1226, 128, 128, 0.4, gen, (226, 1226), (226, 1226), [[[0, 226]]]), False
    yield ("text-back-per-sample", 2, 1300, 2, 128, bf,
           _layout(2, 1300, 128, 128, 0.4, gen, (0, 1044), (0, 1044), [[[1044, 1121]], [[1044, 1300]]]), False)
    yield "dense-layout", 1, 2048, 4, 128, bf, _layout(4, 2048, 128, 128, 1.0, gen), False
    yield "packed-qkv", 2, 520, 2, 128, bf, _layout(2, 520, 128, 128, 0.7, gen), True
    yield "many-items", 2, 2048, 8, 64, bf, _layout(8, 2048, 128, 128, 0.3, gen), False
    yield "many-items-d128", 3, 3000, 6, 128, bf, _layout(6, 3000, 128, 128, 0.25, gen), False


def run_check(name, B, S, H, D, dtype, lay, packed, fp8=False):
    if packed:  # q, k, v as views of one [B, S, 3, H, D] tensor: row stride 3*H*D
        qkv = torch.randn(B, S, 3, H, D, device="cuda", dtype=dtype)
        q, k, v = qkv.unbind(2)
    else:
        q, k, v = (torch.randn(B, S, H, D, device="cuda", dtype=dtype) for _ in range(3))
    why = gluon_unsupported(q, k, v, lay, fp8=fp8)
    if why:
        return dict(check=name, ok=False, error=f"unsupported: {why}")
    out = torch.full((B, S, H, D), math.nan, device="cuda", dtype=dtype)
    f8 = quantize_fp8(q, k, v, v_pad=fp8_v_pad(lay)) if fp8 else None
    faulthandler.dump_traceback_later(HANG_S, exit=True)
    t = time.perf_counter()
    cfg = pick_gluon_config(D, lay.block_m, lay.block_n, torch.float8_e4m3fn if fp8 else dtype)
    o, lse = gluon_block_sparse_attention(q, k, v, lay, D ** -0.5, return_lse=True, fp8=f8, out=out, config=cfg)
    torch.cuda.synchronize()
    faulthandler.cancel_dump_traceback_later()
    ms = 1e3 * (time.perf_counter() - t)
    # FP8: exact attention of the dequantised inputs up to P's e4m3 rounding (tests/test_fp8.py's bound
    # gives rel. L2 < 0.035); the lse never sees that rounding: exact up to fp32
    ref, ref_lse = layout_attention(*(dequantize_fp8(f8, S) if fp8 else (q, k, v)), lay, D ** -0.5)
    unwritten = int(torch.isnan(o).sum())
    rel = float((o.double() - ref).norm() / ref.norm().clamp_min(1e-30))
    fin = torch.isfinite(ref_lse)
    lse_err = float((lse.double()[fin] - ref_lse[fin]).abs().max()) if fin.any() else 0.0
    lse_inf_ok = bool((lse[~fin] == -math.inf).all())
    zero_ok = bool((o.transpose(1, 2)[~fin] == 0).all())  # rows that see no key: exact zeros
    ok = unwritten == 0 and rel < (0.035 if fp8 else 0.012) and lse_err < (2e-3 if fp8 else 2e-2) and lse_inf_ok and zero_ok
    return dict(check=name + ("-fp8" if fp8 else ""), version=cfg.version, stages=cfg.stages, ok=ok, rel_l2=rel, lse_max_err=lse_err, unwritten=unwritten,
                empty_rows_ok=lse_inf_ok and zero_ok, first_call_ms=round(ms, 1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m videoaccel.benchmarks.gluon_smoke")
    ap.add_argument("--seed", type=int, default=0, help="layouts' seed (inputs are fresh every run)")
    args = ap.parse_args(argv)
    bad = 0
    cases = list(checks(torch.Generator().manual_seed(args.seed)))
    for c, fp8 in [(c, False) for c in cases] + [(c, True) for c in cases if c[0] in FP8_CHECKS]:
        try:
            r = run_check(*c, fp8=fp8)
        except Exception as e:  # noqa: BLE001 - a compile or launch error is a failed check, not a stop
            r = dict(check=c[0] + ("-fp8" if fp8 else ""), ok=False, error=f"{type(e).__name__}: {str(e)[:400]}")
        bad += not r["ok"]
        print(json.dumps(r), flush=True)
    print("SMOKE " + ("FAILED" if bad else "PASSED"), flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    run_suite(main)
