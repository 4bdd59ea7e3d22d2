"""FP8 (e4m3) inputs for the attention kernels (classic Triton and Gluon), SageAttention-style.

K is smoothed first (minus its mean over tokens, per head and channel: softmax is invariant to
that shift, and it removes the channel offsets that dominate K's range), then scaled per
channel. That channel scale is folded into Q (q.k = (q * ks) . (k / ks)), so the attention kernel
multiplies scores by one per-row scale only, exactly like bf16: no per-column work. Q (times ks) is
scaled per token, V per channel. The statistics are two Triton passes: per-chunk partials over
tokens (sum, min and max of K, max |V|), then one program per head that folds them into the mean
and the scales (deterministic: no atomics). The scaling and casting of Q, K and V is one Triton
kernel, which also writes V transposed ([B, H, D, S]), the K-major layout the FP8 P @ V product
wants on Hopper; where TMA is there and V starts aligned, V^T goes out by TMA stores instead.
Error versus float32 attention: see README (rel. L2 about 2-3% on random inputs).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from ._triton_utils import E4M3_MAX, E4M3_MAX_C, INTERPRET, to_fp8
from .checks import check_qkv, check_triton_device
from .triton_attention import TensorDescriptor, tma_supported


@dataclass(frozen=True)
class Fp8Inputs:
    q: torch.Tensor  # float8_e4m3fn [B, H, Sq, D]: Q * k_scale / q_scale
    q_scale: torch.Tensor  # float32 [B, H, Sq]
    k: torch.Tensor  # float8_e4m3fn [B, H, Skv, D]: (K - k_mean) / k_scale
    k_scale: torch.Tensor  # float32 [B, H, D]
    v_t: torch.Tensor  # float8_e4m3fn [B, H, D, v_pad + Skv rounded up to 16]: token j in column v_pad + j
    v_scale: torch.Tensor  # float32 [B, H, D]
    k_mean: torch.Tensor  # float32 [B, H, D]
    v_pad: int = 0  # zero columns before token 0 of v_t (TMA boxes must start 16-byte aligned)


@triton.jit
def _load_rows(X, b, h, rows, ok, stride_b, stride_s, stride_h, HEAD_DIM: tl.constexpr):
    offs_d = tl.arange(0, HEAD_DIM)
    x = tl.load(X + b * stride_b + h * stride_h + rows[:, None] * stride_s + offs_d[None, :], mask=ok[:, None], other=0.0)
    return x.to(tl.float32)


@triton.jit
def _quantize_fp8_kernel(Q, K, V, Q8, K8, V8T, V8T_DESC, QS, KS, VS, KMEAN,
                         stride_qb, stride_qs, stride_qh, stride_kb, stride_ks, stride_kh,
                         stride_vb, stride_vs, stride_vh, H, SEQ_Q, SEQ_KV, SEQ_KV_PAD, V_PAD, PLANE0,
                         BLOCK: tl.constexpr, HEAD_DIM: tl.constexpr, EMULATE: tl.constexpr, TMA_V: tl.constexpr):
    """One [BLOCK, D] tile of Q, K or V (grid axis 2, from plane PLANE0): one tile in registers per program keeps
    occupancy, and so memory parallelism, high. ``TMA_V``: V^T goes out by one TMA store of [D, BLOCK] through
    ``V8T_DESC`` (it clips the sequence's end; token 0 at column 0, as a TMA box starts 16-byte aligned). Alone, in a
    kernel of its own, it took 0.16 ms at Wan2.1-1.3B on an H200 against ~0.3 ms for the pointer store; the whole pass
    0.36 ms with it against 0.46-0.50 with pointer stores at the same alignment (benchmarks/fp8_quant.py, 3 rounds in
    one run; D=64: within 0.04 ms of each other; docs/kernel-notes.md)."""
    row0 = tl.program_id(0) * BLOCK
    bh = tl.program_id(1)
    which = tl.program_id(2) + PLANE0
    b = (bh // H).to(tl.int64)
    h = bh % H
    rows = row0 + tl.arange(0, BLOCK)
    offs_d = tl.arange(0, HEAD_DIM)
    if which == 0:  # Q * ks, then per token
        if row0 < SEQ_Q:
            ok = rows < SEQ_Q
            x = _load_rows(Q, b, h, rows, ok, stride_qb, stride_qs, stride_qh, HEAD_DIM) * tl.load(KS + bh * HEAD_DIM + offs_d)[None, :]
            scale = tl.maximum(tl.max(tl.abs(x), 1), 1e-12) / E4M3_MAX_C
            x8 = to_fp8(x * tl.math.div_rn(1.0, scale)[:, None], EMULATE)  # times the reciprocal: one division per row
            tl.store(Q8 + bh * SEQ_Q * HEAD_DIM + rows[:, None] * HEAD_DIM + offs_d[None, :], x8, mask=ok[:, None])
            tl.store(QS + bh * SEQ_Q + rows, scale, mask=ok)
    elif which == 1:  # (K - mean) / ks
        if row0 < SEQ_KV:
            ok = rows < SEQ_KV
            x = _load_rows(K, b, h, rows, ok, stride_kb, stride_ks, stride_kh, HEAD_DIM) - tl.load(KMEAN + bh * HEAD_DIM + offs_d)[None, :]
            x8 = to_fp8(x * tl.math.div_rn(1.0, tl.load(KS + bh * HEAD_DIM + offs_d))[None, :], EMULATE)
            tl.store(K8 + bh * SEQ_KV * HEAD_DIM + rows[:, None] * HEAD_DIM + offs_d[None, :], x8, mask=ok[:, None])
    else:  # V / vs, stored transposed
        if row0 < SEQ_KV:
            ok = rows < SEQ_KV
            v = _load_rows(V, b, h, rows, ok, stride_vb, stride_vs, stride_vh, HEAD_DIM)
            v8 = to_fp8(v * tl.math.div_rn(1.0, tl.load(VS + bh * HEAD_DIM + offs_d))[None, :], EMULATE)
            if TMA_V:
                V8T_DESC.store([bh * HEAD_DIM, row0], tl.trans(v8))
            else:  # transposed in registers first, so the store runs along tokens (coalesced), not along channels
                tl.store(V8T + bh * HEAD_DIM * SEQ_KV_PAD + offs_d[:, None] * SEQ_KV_PAD + V_PAD + rows[None, :], tl.trans(v8),
                         mask=ok[None, :])


@triton.jit
def _stats_partial_kernel(K, V, PART, stride_kb, stride_ks, stride_kh, stride_vb, stride_vs, stride_vh, H, SEQ_KV,
                          ROWS: tl.constexpr, BLOCK: tl.constexpr, HEAD_DIM: tl.constexpr):
    """Tokens [c*ROWS, (c+1)*ROWS) of one (sample, head) -> PART[bh, c] = (sum K, min K, max K, max |V|)
    per channel: K on grid axis 2 = 0, V on 1. Accumulated elementwise, reduced over rows once at the end."""
    c = tl.program_id(0)
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = bh % H
    offs_d = tl.arange(0, HEAD_DIM)
    out = PART + (bh * tl.num_programs(0) + c) * 4 * HEAD_DIM + offs_d
    hi = tl.minimum((c + 1) * ROWS, SEQ_KV)
    if tl.program_id(2) == 0:
        k_sum = tl.zeros([BLOCK, HEAD_DIM], tl.float32)
        k_min = tl.full([BLOCK, HEAD_DIM], float("inf"), tl.float32)
        k_max = tl.full([BLOCK, HEAD_DIM], float("-inf"), tl.float32)
        for r0 in range(c * ROWS, hi, BLOCK):
            rows = r0 + tl.arange(0, BLOCK)
            ok = (rows < hi)[:, None]
            k = _load_rows(K, b, h, rows, rows < hi, stride_kb, stride_ks, stride_kh, HEAD_DIM)
            k_sum += k
            k_min = tl.minimum(k_min, tl.where(ok, k, float("inf")))
            k_max = tl.maximum(k_max, tl.where(ok, k, float("-inf")))
        tl.store(out, tl.sum(k_sum, 0))
        tl.store(out + HEAD_DIM, tl.min(k_min, 0))
        tl.store(out + 2 * HEAD_DIM, tl.max(k_max, 0))
    else:
        v_max = tl.zeros([BLOCK, HEAD_DIM], tl.float32)
        for r0 in range(c * ROWS, hi, BLOCK):
            rows = r0 + tl.arange(0, BLOCK)
            v_max = tl.maximum(v_max, tl.abs(_load_rows(V, b, h, rows, rows < hi, stride_vb, stride_vs, stride_vh, HEAD_DIM)))
        tl.store(out + 3 * HEAD_DIM, tl.max(v_max, 0))


@triton.jit
def _stats_final_kernel(PART, KMEAN, KS, VS, NCHUNK, SEQ_KV, CHUNKS: tl.constexpr, HEAD_DIM: tl.constexpr):
    """One (sample, head): the partials (CHUNKS at a time) -> K's mean, max |K - mean| / 448, max |V| / 448."""
    bh = tl.program_id(0)
    offs_d = tl.arange(0, HEAD_DIM)
    k_sum = tl.zeros([HEAD_DIM], tl.float32)
    k_min = tl.full([HEAD_DIM], float("inf"), tl.float32)
    k_max = tl.full([HEAD_DIM], float("-inf"), tl.float32)
    v_max = tl.zeros([HEAD_DIM], tl.float32)
    for c0 in range(0, NCHUNK, CHUNKS):
        c = c0 + tl.arange(0, CHUNKS)
        ok = (c < NCHUNK)[:, None]
        part = PART + ((bh * NCHUNK + c) * 4 * HEAD_DIM)[:, None] + offs_d[None, :]
        k_sum += tl.sum(tl.load(part, mask=ok, other=0.0), 0)
        k_min = tl.minimum(k_min, tl.min(tl.load(part + HEAD_DIM, mask=ok, other=float("inf")), 0))
        k_max = tl.maximum(k_max, tl.max(tl.load(part + 2 * HEAD_DIM, mask=ok, other=float("-inf")), 0))
        v_max = tl.maximum(v_max, tl.max(tl.load(part + 3 * HEAD_DIM, mask=ok, other=0.0), 0))
    mean = k_sum / SEQ_KV
    tl.store(KMEAN + bh * HEAD_DIM + offs_d, mean)
    tl.store(KS + bh * HEAD_DIM + offs_d, tl.maximum(tl.maximum(k_max - mean, mean - k_min), 1e-12) / E4M3_MAX_C)
    tl.store(VS + bh * HEAD_DIM + offs_d, tl.maximum(v_max, 1e-12) / E4M3_MAX_C)


def fp8_stats(k: torch.Tensor, v: torch.Tensor, rows: int = 1024, block: int = 32,
              num_warps: int = 4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per (sample, head, channel) over tokens: K's mean, max |K - mean| / 448, max |V| / 448 -> [B, H, D] each.

    Two Triton passes (partials per ``rows`` tokens, then per head); max |K - mean| is taken from
    the extremes, which is exact because the kernel subtracts the same fp32 numbers.
    """
    B, S, H, D = k.shape
    nchunk = triton.cdiv(S, rows)
    part = torch.empty(B * H, nchunk, 4, D, dtype=torch.float32, device=k.device)
    _stats_partial_kernel[(nchunk, B * H, 2)](k, v, part, k.stride(0), k.stride(1), k.stride(2), v.stride(0), v.stride(1),
                                              v.stride(2), H, S, ROWS=rows, BLOCK=block, HEAD_DIM=D, num_warps=num_warps)
    k_mean, k_scale, v_scale = (torch.empty(B, H, D, dtype=torch.float32, device=k.device) for _ in range(3))
    _stats_final_kernel[(B * H,)](part, k_mean, k_scale, v_scale, nchunk, S, CHUNKS=16, HEAD_DIM=D)
    return k_mean, k_scale, v_scale


def quantize_fp8(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block: int = 128, v_pad: int = 0,
                 planes: tuple[int, int] = (0, 3), num_warps: int = 4) -> Fp8Inputs:
    """Quantise [B, S, H, D] q/k/v for the FP8 kernels: the stats passes, then one fused Triton pass.

    ``v_pad`` zero columns go before token 0 of the transposed V, so that a kernel reading V by TMA
    from token ``kv_lo`` starts on a 16-byte boundary (the Gluon kernel asks for (-kv_lo) % 16).
    ``planes`` [first, end) of (Q, K, V) to write (all by default; the others stay unwritten: for measuring one).
    """
    if not 0 <= v_pad < 16:
        raise ValueError(f"v_pad must be in [0, 16) (got {v_pad})")
    check_qkv(q, k, v)
    check_triton_device(q.device)
    B, Sq, H, D = q.shape
    Skv = k.shape[1]
    dev = q.device
    k_mean, k_scale, v_scale = fp8_stats(k, v)
    skv_pad = -(-(Skv + v_pad) // 16) * 16
    f8 = torch.float8_e4m3fn
    q8 = torch.empty(B, H, Sq, D, dtype=f8, device=dev)
    k8 = torch.empty(B, H, Skv, D, dtype=f8, device=dev)
    v8t = torch.empty(B, H, D, skv_pad, dtype=f8, device=dev)
    v8t[..., :v_pad].zero_()  # the columns around the tokens: kernels read them (as keys they mask), so finite
    v8t[..., v_pad + Skv:].zero_()
    qs = torch.empty(B, H, Sq, dtype=torch.float32, device=dev)
    tma_v = v_pad == 0 and tma_supported(dev)
    desc = TensorDescriptor.from_tensor(v8t.view(B * H * D, skv_pad), block_shape=[D, block]) if tma_v else None
    grid = (triton.cdiv(max(Sq, Skv), block), B * H, planes[1] - planes[0])
    _quantize_fp8_kernel[grid](q, k, v, q8, k8, v8t, desc, qs, k_scale, v_scale, k_mean,
                               q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
                               v.stride(0), v.stride(1), v.stride(2), H, Sq, Skv, skv_pad, v_pad, planes[0],
                               BLOCK=block, HEAD_DIM=D, EMULATE=INTERPRET, TMA_V=tma_v, num_warps=num_warps)
    return Fp8Inputs(q=q8, q_scale=qs, k=k8, k_scale=k_scale, v_t=v8t, v_scale=v_scale, k_mean=k_mean, v_pad=v_pad)
