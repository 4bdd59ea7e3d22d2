"""`python -m videoaccel.benchmarks.fp8_quant`: where FP8 quantisation's time goes, plane by plane (GPU).

Why: on an H100 the pass took 0.54 ms at Wan2.1-1.3B against a 0.195 ms byte floor, the transposed V store
alone ~0.22 ms (docs/kernel-notes.md), and that pass decides FP8's speed at low density. Per kernel case:
the whole ``quantize_fp8`` (V^T by TMA stores, and by pointer stores as an unaligned V start forces), its
statistics, each plane alone (Q, K, V^T, each with the statistics) at several tile sizes and warp counts,
and the floors: the same bytes cast by PyTorch (bf16 read, e4m3 written, no transpose) and PyTorch's own
cast-and-transpose; first, whether the outputs are bit-exact with the torch reference. Random inputs (never
zeros); CUDA events, median of 20 runs after a warm-up (timing.median_ms). Writes OUT/fp8-quant-<dev>.json.
"""
from __future__ import annotations

import argparse
from unittest import mock

import torch

from ..kernels.fp8 import fp8_stats, quantize_fp8
from ..kernels.reference import quantize_reference
from .cases import CASES
from .record import run_suite, suite_command, write_record
from .timing import median_ms

CASE_NAMES = ("wan1.3b-480p81f", "cogvideox5b-480p49f")
ROUNDS = 3  # the whole-pass variants alternate this many times: store paths compared within one round


def _pointer_stores(q, k, v):
    """quantize_fp8 with V^T by pointer stores at v_pad 0 (TMA switched off): the TMA store's alternative, same bytes."""
    with mock.patch("videoaccel.kernels.fp8.tma_supported", lambda device: False):
        return quantize_fp8(q, k, v)


def _bit_exact(out, ref, S) -> bool:
    return all(torch.equal(a.view(torch.uint8), b.view(torch.uint8)) for a, b in
               ((out.q, ref[0]), (out.k, ref[2]), (out.v_t[..., :S].transpose(-1, -2), ref[4])))


def run(case_names: tuple[str, ...] = CASE_NAMES) -> list[dict]:
    rows = []
    gen = torch.Generator(device="cuda").manual_seed(0)
    for name in case_names:
        c = CASES[name]
        S, H, D = c.seq_len, c.heads, c.head_dim
        q, k, v = (torch.randn(1, S, H, D, device="cuda", dtype=torch.bfloat16, generator=gen) * 3 for _ in range(3))
        plane_mb = S * H * D * 3 / 1e6  # bf16 read + e4m3 written, one plane
        f8 = torch.empty(1, S, H, D, dtype=torch.float8_e4m3fn, device="cuda")
        whole = {
            "quantize_fp8 (all)": lambda: quantize_fp8(q, k, v),
            "quantize_fp8 (all), V^T by pointer stores (v_pad 0, TMA off)": lambda: _pointer_stores(q, k, v),
            "quantize_fp8 (all), V^T by pointer stores (v_pad 8)": lambda: quantize_fp8(q, k, v, v_pad=8),
        }
        variants = {
            "stats (both passes)": lambda: fp8_stats(k, v),
            **{f"stats, {r} rows a program, tiles of {bl}, {w} warps": (lambda r=r, bl=bl, w=w: fp8_stats(k, v, r, bl, w))
               for r, bl, w in ((256, 32, 4), (512, 32, 4), (512, 64, 8), (2048, 32, 4), (1024, 64, 4), (1024, 16, 4))},
            "floor: torch cast, one plane": lambda: f8.copy_(v),
            "torch cast + transpose, V": lambda: v.to(torch.float8_e4m3fn).permute(0, 2, 3, 1).contiguous(),
        }
        for plane, label in enumerate("QKV"):  # each with the stats passes (0.12-0.14 ms on an H200)
            for block, warps in ((64, 4), (128, 4), (128, 8)):
                variants[f"stats + plane {label}, block {block}, {warps} warps"] = (
                    lambda p=plane, bl=block, w=warps: quantize_fp8(q, k, v, block=bl, planes=(p, p + 1), num_warps=w))
        variants["stats + plane V by pointer stores (v_pad 8), block 128, 4 warps"] = (
            lambda: quantize_fp8(q, k, v, planes=(2, 3), v_pad=8))
        ref = quantize_reference(q, k, v, stats=fp8_stats(k, v))
        exact = _bit_exact(quantize_fp8(q, k, v), ref, S) and _bit_exact(_pointer_stores(q, k, v), ref, S)
        print(f"{name}: quantize_fp8 (TMA and pointer V^T stores) bit-exact with the torch reference: {exact}", flush=True)
        timed = [(f"{label}, round {r}", fn) for r in range(ROUNDS) for label, fn in whole.items()] + list(variants.items())
        for label, fn in timed:
            ms = median_ms(fn)
            rows.append({"case": name, "impl": label, "ms": ms, "plane_gbps": plane_mb / ms / 1e3 if "plane" in label or "V" in label
                         else None, "seq": S, "heads": H, "head_dim": D, "bit_exact": exact})
            print(f"{name:<22} {label:<36} {ms:7.3f} ms", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m videoaccel.benchmarks.fp8_quant", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cases", default=",".join(CASE_NAMES))
    args = ap.parse_args(argv)
    write_record("fp8-quant", suite_command(__spec__.name, argv), run(tuple(args.cases.split(","))), args.out)


if __name__ == "__main__":
    run_suite(main)
