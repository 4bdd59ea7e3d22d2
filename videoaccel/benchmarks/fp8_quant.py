"""`python -m videoaccel.benchmarks.fp8_quant`: where FP8 quantisation's time goes, plane by plane (GPU).

Why: on an H100 the pass took 0.54 ms at Wan2.1-1.3B against a 0.195 ms byte floor, the transposed V store
alone ~0.22 ms (docs/kernel-notes.md), and that pass decides FP8's speed at low density. Per kernel case:
the whole ``quantize_fp8``, its statistics, each plane alone (Q, K, V^T) at several tile sizes and warp
counts, V^T stored through a TMA descriptor instead of pointer stores, and the floors: the same bytes cast
by PyTorch (bf16 read, e4m3 written, no transpose) and PyTorch's own cast-and-transpose. Random inputs
(never zeros); CUDA events, median of 20 runs after a warm-up. Writes OUT/fp8-quant-<dev>.json.
"""
from __future__ import annotations

import argparse

import torch
import triton
import triton.language as tl
from triton.tools.tensor_descriptor import TensorDescriptor

from ..kernels.fp8 import _load_rows, fp8_stats, quantize_fp8
from .cases import CASES
from .record import run_suite, suite_command, write_record

CASE_NAMES = ("wan1.3b-480p81f", "cogvideox5b-480p49f")


@triton.jit
def _v_tma_kernel(V, VS, desc, stride_vb, stride_vs, stride_vh, H, SEQ_KV, BLOCK: tl.constexpr, HEAD_DIM: tl.constexpr):
    """V / vs as e4m3, transposed in registers and written by one TMA store of [D, BLOCK] (no v_pad: 16-aligned)."""
    row0 = tl.program_id(0) * BLOCK
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = bh % H
    rows = row0 + tl.arange(0, BLOCK)
    ok = rows < SEQ_KV
    offs_d = tl.arange(0, HEAD_DIM)
    v = _load_rows(V, b, h, rows, ok, stride_vb, stride_vs, stride_vh, HEAD_DIM)
    v8 = (v * tl.math.div_rn(1.0, tl.load(VS + bh * HEAD_DIM + offs_d))[None, :]).to(tl.float8e4nv)
    desc.store([bh * HEAD_DIM, row0], tl.trans(v8))


def v_tma(v: torch.Tensor, v_scale: torch.Tensor, block: int = 128, num_warps: int = 4) -> torch.Tensor:
    B, S, H, D = v.shape
    out = torch.zeros(B * H * D, -(-S // 16) * 16, dtype=torch.float8_e4m3fn, device=v.device)
    desc = TensorDescriptor.from_tensor(out, block_shape=[D, block])
    _v_tma_kernel[(triton.cdiv(S, block), B * H)](v, v_scale, desc, v.stride(0), v.stride(1), v.stride(2), H, S,
                                                  BLOCK=block, HEAD_DIM=D, num_warps=num_warps)
    return out


def _ms(fn, repeats: int = 20) -> float:
    fn()
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[len(times) // 2]


def run(case_names: tuple[str, ...] = CASE_NAMES) -> list[dict]:
    rows = []
    gen = torch.Generator(device="cuda").manual_seed(0)
    for name in case_names:
        c = CASES[name]
        S, H, D = c.seq_len, c.heads, c.head_dim
        q, k, v = (torch.randn(1, S, H, D, device="cuda", dtype=torch.bfloat16, generator=gen) * 3 for _ in range(3))
        plane_mb = S * H * D * 3 / 1e6  # bf16 read + e4m3 written, one plane
        k_mean, k_scale, v_scale = fp8_stats(k, v)
        f8 = torch.empty(1, S, H, D, dtype=torch.float8_e4m3fn, device="cuda")
        variants = {
            "quantize_fp8 (all)": lambda: quantize_fp8(q, k, v),
            "stats (both passes)": lambda: fp8_stats(k, v),
            "floor: torch cast, one plane": lambda: f8.copy_(v),
            "torch cast + transpose, V": lambda: v.to(torch.float8_e4m3fn).permute(0, 2, 3, 1).contiguous(),
        }
        for plane, label in enumerate("QKV"):
            for block, warps in ((64, 4), (128, 4), (128, 8), (256, 8)):
                variants[f"plane {label}, block {block}, {warps} warps"] = (
                    lambda p=plane, bl=block, w=warps: quantize_fp8(q, k, v, block=bl, planes=(p, p + 1), num_warps=w))
        for block, warps in ((64, 4), (128, 4), (128, 8)):
            variants[f"V^T by TMA store, block {block}, {warps} warps"] = lambda bl=block, w=warps: v_tma(v, v_scale, bl, w)
        ref = quantize_fp8(q, k, v).v_t.view(H * D, -1)[:, :S].float()
        try:  # a variant that does not build on this Triton is recorded as such, not a lost run
            same = bool(torch.equal(ref, v_tma(v, v_scale)[:, :S].float()))
        except Exception as e:  # noqa: BLE001
            same = f"{type(e).__name__}: {e}"[:200]
        for label, fn in variants.items():
            if "TMA" in label and same is not True:
                rows.append({"case": name, "impl": label, "error": same if isinstance(same, str) else "differs from quantize_fp8"})
                continue
            ms = _ms(fn)
            rows.append({"case": name, "impl": label, "ms": ms, "plane_gbps": plane_mb / ms / 1e3 if "plane" in label or "V" in label
                         else None, "seq": S, "heads": H, "head_dim": D})
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
