"""`python -m videoaccel.benchmarks.gpu_check`: GPU check and benchmark of the attention kernels, in one run
(the kernels suite).

Correctness at real shapes (sampled query rows against a float64 reference of the same layout,
outputs NaN-poisoned first), then timings against cuDNN SDPA, SDPA flash and FlexAttention on
the same block layouts. Prints a table; writes bench-format JSON to $OUT (or --out).

    python -m videoaccel.benchmarks.gpu_check                      # all cases
    python -m videoaccel.benchmarks.gpu_check --cases wan1.3b-480p81f --densities 0.25
    python -m videoaccel.benchmarks.gpu_check --quick              # 2 shapes, random layouts, 3 densities (< 2 min)

The Gluon kernel (sm90) runs as impl ``videoaccel-gluon`` next to the classic one (v3 on 128-row
blocks, v2 on 64: its ``config`` field says which). It first passes the gluon_smoke suite in a
subprocess with a timeout (a barrier bug hangs rather than fails); if that fails or hangs, it is
recorded and left out. In the
main run every Gluon call has a watchdog that ends the process on a hang (rows so far are already
printed as JSON lines), and any error is recorded as a row and the run goes on (kernel_checks.py: the
steps it is made of).
"""
from __future__ import annotations

import argparse
import json
import math
import os

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..kernels import BlockLayout, block_scores, dense_attention, quantize_fp8, sparse_attention
from ..kernels.fp8 import fp8_stats
from ..kernels.gluon_attention import pick_gluon_config
from ..kernels.layout import num_blocks
from ..kernels.sampled_mass import sampled_mass_triton
from ..kernels.triton_attention import pick_config, triton_block_sparse_attention
from ..patterns import VideoGeometry
from ..patterns.sampled import default_rows, estimate_cost, sample_rows, sampled_block_mass
from .cases import CASES
from .kernel_checks import gluon_smoke, make_mask, print_table, run_gluon, sampled_error, tflops
from .record import run_suite, suite_command, write_record
from .timing import bench_ms as bench, compiled_flex, flex_block_mask

BLOCK = 128  # --block 64 checks the 64-token layouts (short sequences, finer per-head masks)
QUICK = dict(cases=["wan1.3b-480p81f", "cogvideox5b-480p49f"], densities=[1.0, 0.25, 0.05], layouts=["random"])


def sampled_check(q, k, case, rec, failures, dense_ms, common):
    """The sampled pattern's fused mass estimate (kernels/sampled_mass.py) against its float32 torch path, and its time."""
    g = VideoGeometry(*case.grid, block=BLOCK, order="tile")
    if g.seq_len != q.shape[1]:
        return
    idx = sample_rows(g, default_rows(BLOCK), "cuda")
    out = torch.full((1, q.shape[2], g.num_blocks, g.num_blocks), math.nan, device="cuda")
    sampled_mass_triton(q, k, idx, g.video_range, BLOCK, q.shape[-1] ** -0.5, out=out)
    ref = sampled_block_mass(q, k, g, default_rows(BLOCK), fused=False)
    err = float((out[0] - ref).norm() / ref.norm())
    ms = bench(lambda: sampled_mass_triton(q, k, idx, g.video_range, BLOCK, q.shape[-1] ** -0.5, out=out))
    rec(**common, impl="videoaccel-sampled-mass", layout="dense", density=1.0, ms=ms, share_of_dense=ms / dense_ms,
        counted_share=estimate_cost(default_rows(BLOCK), BLOCK, 1), rel_l2=err, unwritten=int(torch.isnan(out).sum()))
    if err > 0.02 or torch.isnan(out).any():
        failures.append(f"{common['case']} sampled mass: rel_l2={err:.3g}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m videoaccel.benchmarks.gpu_check")
    ap.add_argument("--cases", nargs="*", default=list(CASES))
    ap.add_argument("--densities", nargs="*", type=float, default=[1.0, 0.5, 0.25, 0.1, 0.05])
    ap.add_argument("--layouts", nargs="*", default=["random", "banded"])
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--no-flex", action="store_true")
    ap.add_argument("--block", type=int, default=BLOCK, choices=[64, 128])
    ap.add_argument("--quick", action="store_true", help="2 shapes, random layouts, densities 1/0.25/0.05")
    ap.add_argument("--no-gluon", action="store_true", help="skip the sm90 Gluon kernel")
    ap.add_argument("--no-fp8", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        for key, val in QUICK.items():
            setattr(args, key, val)
    globals()["BLOCK"] = args.block

    res, failures = [], []
    gen = torch.Generator().manual_seed(0)
    flex = None
    if not args.no_flex:
        flex = compiled_flex()

    def rec(**kw):
        res.append(kw)
        print(json.dumps(kw), flush=True)

    gluon_ok = not args.no_gluon and gluon_smoke(rec)
    if not args.no_gluon and not gluon_ok:
        failures.append("gluon: smoke failed (see the gluon-smoke row)")

    def gluon_rows(row, q, k, v, lay, rows, batch=1):
        if not gluon_ok:
            return
        for fp8 in (False,) if args.no_fp8 else (False, True):
            impl = "videoaccel-gluon-fp8" if fp8 else "videoaccel-gluon"
            if fp8 and lay.block_m != 128:
                continue  # FP8 is v3 only (128-row blocks)
            try:
                ms, kernel_ms, err, unwritten = run_gluon(q, k, v, lay, rows, fp8)
            except Exception as e:  # noqa: BLE001 - a compile, launch or support error is a row, not a stop
                rec(**row, impl=impl, error=f"{type(e).__name__}: {str(e)[:500]}")
                failures.append(f"{row['case']} {row['layout']} d={row.get('target_density')} {impl}: {type(e).__name__}")
                continue
            S, H, D = row["seq_len"], row["heads"], row["head_dim"]
            extra = dict(kernel_ms=kernel_ms, kernel_eff_tflops=batch * tflops(S, H, D, kernel_ms, row["density"])) if fp8 else {}
            rec(**row, impl=impl, ms=ms, eff_tflops=batch * tflops(S, H, D, ms, row["density"]),
                speedup_vs_cudnn=row.get("dense_ms", math.nan) / ms, rel_l2=err[0], max_abs_err=err[1], unwritten=unwritten,
                config=str(pick_gluon_config(D, lay.block_m, lay.block_n, torch.float8_e4m3fn if fp8 else q.dtype)), **extra)
            if unwritten or not err[0] <= (0.08 if fp8 else 0.012):
                failures.append(f"{row['case']} {row['layout']} d={row.get('target_density')} {impl}: rel_l2={err[0]:.3g} unwritten={unwritten}")

    for case in args.cases:
        S, H, D = CASES[case].seq_len, CASES[case].heads, CASES[case].head_dim
        torch.manual_seed(hash(case) % 2**31)
        q, k, v = (torch.randn(1, S, H, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        qh, kh, vh = (t.transpose(1, 2).contiguous() for t in (q, k, v))  # [B, H, S, D] for the baselines
        rows = torch.randperm(S, device="cuda")[:192].sort().values
        common = dict(case=case, head_dim=D, seq_len=S, heads=H)

        for impl, backend in (("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash2", SDPBackend.FLASH_ATTENTION)):
            with sdpa_kernel([backend]):
                ms = bench(lambda: F.scaled_dot_product_attention(qh, kh, vh))
            rec(**common, impl=impl, layout="dense", density=1.0, ms=ms, eff_tflops=tflops(S, H, D, ms))
            if impl == "cudnn":
                dense_ms = ms
        ms = bench(lambda: F.scaled_dot_product_attention(qh, kh, vh))
        rec(**common, impl="sdpa-default", layout="dense", density=1.0, ms=ms, eff_tflops=tflops(S, H, D, ms))
        out = dense_attention(q, k, v)
        ms = bench(lambda: dense_attention(q, k, v))
        rec(**common, impl="videoaccel-dense", layout="dense", density=1.0, ms=ms, eff_tflops=tflops(S, H, D, ms),
            rel_l2=sampled_error(out, q, k, v, BlockLayout.dense(H, S, S, device="cuda"), rows)[0])

        ms = bench(lambda: block_scores(q, k, BLOCK, BLOCK))
        rec(**common, impl="videoaccel-block-scores", layout="dense", density=1.0, ms=ms, share_of_dense=ms / dense_ms)
        ms = bench(lambda: quantize_fp8(q, k, v))
        rec(**common, impl="videoaccel-fp8-quantize", layout="dense", density=1.0, ms=ms, share_of_dense=ms / dense_ms,
            stats_ms=bench(lambda: fp8_stats(k, v)), bytes_floor_ms=(3 * 2 + 3 + 2 * 2) * q.numel() / 3.35e9)
        try:
            sampled_check(q, k, CASES[case], rec, failures, dense_ms, common)
        except Exception as e:  # recorded, the kernel rows still run
            rec(**common, impl="videoaccel-sampled-mass", error=repr(e)[:300])
            failures.append(f"{case} sampled mass: {e!r}"[:200])

        nb = num_blocks(0, S, BLOCK)
        for kind in args.layouts:
            for d in args.densities:
                if d >= 1.0 and kind != args.layouts[0]:
                    continue
                mask = make_mask(kind, H, nb, d, gen)
                lay = BlockLayout.from_block_mask(mask.cuda(), S, S, block_m=BLOCK, block_n=BLOCK)
                real = lay.density
                lname = "dense" if d >= 1.0 else kind
                row = dict(**common, layout=lname, density=round(real, 4), target_density=d)
                if flex is not None:
                    bm = flex_block_mask(mask, S, BLOCK)
                    fo = flex(qh, kh, vh, block_mask=bm).transpose(1, 2)
                    err = sampled_error(fo, q, k, v, lay, rows)
                    ms = bench(lambda: flex(qh, kh, vh, block_mask=bm))
                    rec(**row, impl="flex", ms=ms, eff_tflops=tflops(S, H, D, ms, real), speedup_vs_cudnn=dense_ms / ms,
                        rel_l2=err[0], max_abs_err=err[1])
                for fp8 in (False,) if args.no_fp8 else (False, True):
                    impl = "videoaccel-fp8" if fp8 else "videoaccel-bf16"
                    out = torch.full_like(q, math.nan)
                    sparse_attention(q, k, v, lay, fp8=fp8, out=out, backend="triton")
                    torch.cuda.synchronize()
                    unwritten = int(torch.isnan(out).sum())
                    err = sampled_error(out, q, k, v, lay, rows)
                    ms = bench(lambda: sparse_attention(q, k, v, lay, fp8=fp8, out=out, backend="triton"))
                    extra = {}
                    if fp8:
                        f8 = quantize_fp8(q, k, v)
                        extra["kernel_ms"] = bench(lambda: triton_block_sparse_attention(q, k, v, lay, D ** -0.5, fp8=f8, out=out))
                    rec(**row, impl=impl, ms=ms, eff_tflops=tflops(S, H, D, ms, real), speedup_vs_cudnn=dense_ms / ms,
                        rel_l2=err[0], max_abs_err=err[1], unwritten=unwritten, config=str(pick_config(D, fp8, BLOCK, BLOCK)), **extra)
                    limit = 0.08 if fp8 else 0.012
                    if unwritten or not err[0] <= limit:
                        failures.append(f"{case} {lname} d={d} {impl}: rel_l2={err[0]:.3g} unwritten={unwritten}")
                gluon_rows(dict(row, dense_ms=dense_ms), q, k, v, lay, rows)
        del q, k, v, qh, kh, vh
        torch.cuda.empty_cache()

    # joint text at real shapes: CogVideoX text in front, HunyuanVideo text at the back (per-sample valid length)
    for case, S, H, D, text, front, batch in (("cogvideox5b-text-front", 17776, 8, 64, 226, True, 1),
                                              ("hunyuan-text-back", 119056, 4, 128, 256, False, 2)):
        if not any(c.split("-")[0] in case for c in args.cases):
            continue
        q, k, v = (torch.randn(batch, S, H, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        vid = (text, S) if front else (0, S - text)
        always = [[[0, text]]] if front else [[[S - text, S - text + 77]], [[S - text, S]]][:batch]
        nbv = num_blocks(*vid, BLOCK)
        mask = make_mask("random", H, nbv, 0.25, gen)
        lay = BlockLayout.from_block_mask(mask.cuda(), S, S, block_m=BLOCK, block_n=BLOCK, q_range=vid, kv_range=vid,
                                          kv_always=torch.tensor(always, dtype=torch.int32, device="cuda"))
        rows = torch.cat([torch.arange(0, 64), torch.randperm(S)[:128], torch.arange(S - 64, S)]).unique().cuda()
        for fp8 in (False,) if args.no_fp8 else (False, True):
            out = torch.full_like(q, math.nan)
            sparse_attention(q, k, v, lay, fp8=fp8, out=out, backend="triton")
            unwritten = int(torch.isnan(out).sum())
            err = sampled_error(out, q, k, v, lay, rows)
            ms = bench(lambda: sparse_attention(q, k, v, lay, fp8=fp8, out=out, backend="triton"))
            impl = "videoaccel-fp8" if fp8 else "videoaccel-bf16"
            rec(case=case, impl=impl, layout="random+text", density=round(lay.density, 4), head_dim=D, seq_len=S, heads=H,
                batch=batch, ms=ms, eff_tflops=batch * tflops(S, H, D, ms, lay.density), rel_l2=err[0], max_abs_err=err[1],
                unwritten=unwritten)
            if unwritten or not err[0] <= (0.08 if fp8 else 0.012):
                failures.append(f"{case} {impl}: rel_l2={err[0]:.3g} unwritten={unwritten}")
        gluon_rows(dict(case=case, layout="random+text", density=round(lay.density, 4), head_dim=D, seq_len=S, heads=H,
                        batch=batch), q, k, v, lay, rows, batch)
        del q, k, v

    path = write_record("kernels", suite_command(__spec__.name, argv), res, args.out)
    print_table(res)
    print(f"wrote {path}")
    print("FAILURES:\n" + "\n".join(failures) if failures else "all correctness checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    run_suite(main)
