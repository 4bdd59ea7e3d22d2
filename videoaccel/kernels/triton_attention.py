"""Block-sparse flash-attention forward in Triton: one kernel, bf16/fp16/fp32 or FP8.

One program computes one (query block, head, sample) work item taken from the layout's
heaviest-first schedule, so heads of different densities share one launch and the long rows
start first. It visits the LUT's key blocks, then the always-visited ranges, with an online
softmax in base 2. ``FP8`` switches the same loop to e4m3 operands with per-token Q/K scales
and per-channel V scales (see fp8.py); P is cast to e4m3 with a fixed scale of 448.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._triton_utils import INTERPRET, to_fp8
from .layout import BlockLayout

LOG2E = 1.4426950408889634


@triton.jit
def _visit(acc, m_i, l_i, q, q_scale, k_ptrs, v_ptrs, ks_ptrs, offs_n, start, end,
           stride_ks, stride_vs, qk_scale,
           FP8: tl.constexpr, UPCAST: tl.constexpr, MASK: tl.constexpr):
    """Fold keys [start, start + BLOCK_N) into the running softmax (``MASK``: only those < end)."""
    cols = start + offs_n
    col_ok = cols < end
    if MASK:
        k = tl.load(k_ptrs + cols[None, :] * stride_ks, mask=col_ok[None, :], other=0.0)
        v = tl.load(v_ptrs + cols[:, None] * stride_vs, mask=col_ok[:, None], other=0.0)
    else:
        k = tl.load(k_ptrs + cols[None, :] * stride_ks)
        v = tl.load(v_ptrs + cols[:, None] * stride_vs)
    if UPCAST:
        k = k.to(tl.float32)
        v = v.to(tl.float32)
    s = tl.dot(q, k)
    if FP8:
        k_scale = tl.load(ks_ptrs + cols, mask=col_ok, other=0.0)
        s = s * q_scale[:, None] * k_scale[None, :]
    else:
        s = s * qk_scale
    if MASK:
        s = tl.where(col_ok[None, :], s, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(s, 1))
    alpha = tl.exp2(m_i - m_new)
    p = tl.exp2(s - m_new[:, None])
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None]
    if FP8:
        acc = tl.dot(to_fp8(p * 448.0, UPCAST), v, acc)
    else:
        acc = tl.dot(p.to(v.dtype), v, acc)
    return acc, m_new, l_i


def _configs():
    if INTERPRET:  # the interpreter cannot time candidates: one config
        return [triton.Config({}, num_warps=4, num_stages=1)]
    return [triton.Config({}, num_warps=w, num_stages=s) for w in (4, 8) for s in (2, 3, 4)]


@triton.autotune(configs=_configs(), key=["HEAD_DIM", "BLOCK_M", "BLOCK_N", "FP8", "RETURN_LSE"])
@triton.jit
def _block_sparse_fwd(
    Q, K, V, O, LSE, LUT, CNT, SCHED, DROWS, ALWAYS, QS, KS, VS, KMEAN,
    stride_qb, stride_qs, stride_qh,
    stride_kb, stride_ks, stride_kh,
    stride_vb, stride_vs, stride_vh, stride_vd,
    stride_ob, stride_os, stride_oh,
    stride_qsb, stride_ksb,  # FP8 scale tensors: QS [B, H, Sq], KS [B, H, Skv]
    stride_lut_h, stride_lut_q, stride_ab,
    B, H, SEQ_Q, NQB, NQT, NKB, q_lo, q_hi, kv_lo, kv_hi, n_always, qk_scale,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    FP8: tl.constexpr, RETURN_LSE: tl.constexpr, UPCAST: tl.constexpr,
):
    pid = tl.program_id(0)
    item = tl.load(SCHED + pid // B)
    b = pid % B
    h = item // NQT
    qb = item % NQT
    if qb < NQB:  # a sparse query block: follow its LUT row
        row0 = q_lo + qb * BLOCK_M
        row1 = tl.minimum(row0 + BLOCK_M, q_hi)
        n_vis = tl.load(CNT + h * NQB + qb)
        use_lut = True
    else:  # a dense row block: every key block of the region
        row0 = tl.load(DROWS + 2 * (qb - NQB))
        row1 = tl.load(DROWS + 2 * (qb - NQB) + 1)
        n_vis = NKB
        use_lut = False

    offs_m = row0 + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)
    row_ok = offs_m < row1
    b64 = b.to(tl.int64)
    bh = b64 * H + h  # row of the [B, H, ...] side tensors
    q = tl.load(Q + b64 * stride_qb + h * stride_qh + offs_m[:, None] * stride_qs + offs_d[None, :],
                mask=row_ok[:, None], other=0.0)
    k_ptrs = K + b64 * stride_kb + h * stride_kh + offs_d[:, None]
    v_ptrs = V + b64 * stride_vb + h * stride_vh + offs_d[None, :] * stride_vd
    ks_ptrs = KS + b64 * stride_ksb + h * (stride_ksb // H)
    q_scale = tl.zeros([BLOCK_M], dtype=tl.float32)
    if FP8:  # per-row dequantisation with the softmax scale (and log2 e) folded in
        q_scale = tl.load(QS + b64 * stride_qsb + h * (stride_qsb // H) + offs_m, mask=row_ok, other=0.0) * qk_scale
    if UPCAST:
        q = q.to(tl.float32)

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)

    # Only the region's last key block can be partial: visit it last, masked; all others unmasked.
    lut_row = LUT + h * stride_lut_h + qb * stride_lut_q
    last = NKB - 1
    if use_lut & (n_vis > 0):
        last = tl.load(lut_row + n_vis - 1) & 0xFFFFFF
    has_tail = ((kv_hi - kv_lo) % BLOCK_N != 0) & (last == NKB - 1) & (n_vis > 0)
    n_full = n_vis - has_tail.to(tl.int32)
    if use_lut:
        for i in range(n_full):
            kb = tl.load(lut_row + i) & 0xFFFFFF  # bits 24+ are reserved for a pooled level
            acc, m_i, l_i = _visit(acc, m_i, l_i, q, q_scale, k_ptrs, v_ptrs, ks_ptrs, offs_n, kv_lo + kb * BLOCK_N,
                                   kv_hi, stride_ks, stride_vs, qk_scale, FP8, UPCAST, False)
    else:
        for kb in range(n_full):
            acc, m_i, l_i = _visit(acc, m_i, l_i, q, q_scale, k_ptrs, v_ptrs, ks_ptrs, offs_n, kv_lo + kb * BLOCK_N,
                                   kv_hi, stride_ks, stride_vs, qk_scale, FP8, UPCAST, False)
    if has_tail:
        acc, m_i, l_i = _visit(acc, m_i, l_i, q, q_scale, k_ptrs, v_ptrs, ks_ptrs, offs_n, kv_lo + last * BLOCK_N,
                               kv_hi, stride_ks, stride_vs, qk_scale, FP8, UPCAST, True)
    for r in range(n_always):
        lo = tl.load(ALWAYS + b * stride_ab + 2 * r)
        hi = tl.load(ALWAYS + b * stride_ab + 2 * r + 1)
        for start in range(lo, hi, BLOCK_N):
            acc, m_i, l_i = _visit(acc, m_i, l_i, q, q_scale, k_ptrs, v_ptrs, ks_ptrs, offs_n,
                                   start, hi, stride_ks, stride_vs, qk_scale, FP8, UPCAST, True)

    l_safe = tl.where(l_i == 0.0, 1.0, l_i)
    out = acc / l_safe[:, None]
    if FP8:  # V's per-channel scale and P's fixed scale
        out = out * (tl.load(VS + bh * HEAD_DIM + offs_d) / 448.0)[None, :]
    tl.store(O + b64 * stride_ob + h * stride_oh + offs_m[:, None] * stride_os + offs_d[None, :],
             out.to(O.dtype.element_ty), mask=row_ok[:, None])
    if RETURN_LSE:
        lse = m_i + tl.log2(l_safe)
        if FP8:  # undo K smoothing: every score of a row was shifted by q . mean(K)
            k_mean = tl.load(KMEAN + bh * HEAD_DIM + offs_d)
            lse += tl.sum(q.to(tl.float32) * k_mean[None, :], 1) * q_scale
        lse = tl.where(l_i == 0.0, float("-inf"), lse * 0.6931471805599453)
        tl.store(LSE + bh * SEQ_Q + offs_m, lse, mask=row_ok)


def triton_block_sparse_attention(q, k, v, layout: BlockLayout, scale: float, return_lse: bool = False,
                                  fp8=None, out: torch.Tensor | None = None):
    """Launch the kernel. q/k/v [B, S, H, D] (last dim contiguous); ``fp8`` a Fp8Inputs or None."""
    B, Sq, H, D = q.shape
    out = torch.empty_like(q) if out is None else out
    lse = torch.empty(B, H, Sq, dtype=torch.float32, device=q.device) if return_lse else out
    always = layout.kv_always
    n_always = 0 if always is None else always.shape[1]
    if always is None:
        always = layout.counts  # any int32 pointer; never read
    stride_ab = 0 if layout.kv_always is None or layout.kv_always.shape[0] == 1 else always.stride(0)
    sched = layout.schedule
    if fp8 is not None:
        qx, kx, vx = fp8.q, fp8.k, fp8.v_t  # [B,H,S,D], [B,H,S,D], [B,H,D,S]
        q_strides = (qx.stride(0), qx.stride(2), qx.stride(1))
        k_strides = (kx.stride(0), kx.stride(2), kx.stride(1))
        v_strides = (vx.stride(0), vx.stride(3), vx.stride(1), vx.stride(2))
        side = (fp8.q_scale, fp8.k_scale, fp8.v_scale, fp8.k_mean)
        s_strides = (fp8.q_scale.stride(0), fp8.k_scale.stride(0))
    else:
        qx, kx, vx = q, k, v
        q_strides = (q.stride(0), q.stride(1), q.stride(2))
        k_strides = (k.stride(0), k.stride(1), k.stride(2))
        v_strides = (v.stride(0), v.stride(1), v.stride(2), v.stride(3))
        side = (sched, sched, sched, sched)  # unused
        s_strides = (0, 0)
    grid = (sched.numel() * B,)
    _block_sparse_fwd[grid](
        qx, kx, vx, out, lse, layout.lut, layout.counts, sched, layout.dense_row_blocks, always, *side,
        *q_strides, *k_strides, *v_strides, out.stride(0), out.stride(1), out.stride(2),
        *s_strides, layout.lut.stride(0), layout.lut.stride(1), stride_ab,
        B, H, Sq, layout.num_q_blocks, layout.num_q_blocks + layout.dense_row_blocks.shape[0], layout.num_kv_blocks,
        *layout.q_range, *layout.kv_range, n_always, scale * LOG2E,
        HEAD_DIM=D, BLOCK_M=layout.block_m, BLOCK_N=layout.block_n,
        FP8=fp8 is not None, RETURN_LSE=return_lse, UPCAST=INTERPRET,
    )
    return (out, lse) if return_lse else out

