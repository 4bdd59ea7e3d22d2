"""Row-sampled block mass (patterns/sampled.py) in one Triton kernel and one pass over the keys.

Each program takes the sampled rows of a few query blocks (``r`` rows each, contiguous in ROWS) of
one (batch, head); ``HEADS`` lists the heads to estimate, so a call's sampled heads are read in place
(no copy of q/k per head group). One pass over every key: keys outside the video region (joined
text) only feed each row's softmax statistics; each video key block's scores are folded into the
running max and sum and the block's own log-sum-exp is kept in a scratch row. After the pass the
row's final statistics turn those into softmax mass, summed over the r rows of each query block.

Cost: one QK^T over r/block of the queries (half of attention's FLOPs per score: no PV) plus one
exp2 per score, like attention's: ``patterns/sampled.estimate_cost``. The earlier two-pass kernel
recomputed every video score (H100: 11-12% of cuDNN dense at 8 rows of 128, 1.8x its share).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._triton_utils import INTERPRET

LOG2E = 1.4426950408889634


@triton.jit
def _scores(q, k_base, cols, stride_ks, end, offs_d, scale_log2, UPCAST: tl.constexpr):
    """Scores (base 2) of the program's rows against keys ``cols`` (those >= end: -inf)."""
    k = tl.load(k_base + cols[:, None].to(tl.int64) * stride_ks + offs_d[None, :], mask=cols[:, None] < end, other=0.0)
    if UPCAST:
        k = k.to(tl.float32)
    s = tl.dot(q, tl.trans(k)) * scale_log2
    return tl.where(cols[None, :] < end, s, -float("inf"))


@triton.jit
def _sampled_mass_kernel(Q, K, ROWS, HEADS, OUT, SCR, stride_qb, stride_qs, stride_qh, stride_kb, stride_ks, stride_kh,
                         HS, S, lo, hi, NB, scale_log2,
                         R: tl.constexpr, QB: tl.constexpr, BLOCK: tl.constexpr, BLOCK_N: tl.constexpr,
                         HEAD_DIM: tl.constexpr, UPCAST: tl.constexpr):
    pid = tl.program_id(0)
    bh = tl.program_id(1)  # (sample, estimated head) pair
    b = (bh // HS).to(tl.int64)
    h = tl.load(HEADS + bh % HS)
    BLOCK_R: tl.constexpr = QB * R
    slot = pid * BLOCK_R + tl.arange(0, BLOCK_R)  # index into ROWS: query block slot // R
    ok_r = slot < NB * R
    rows = tl.load(ROWS + slot, mask=ok_r, other=0)
    offs_d = tl.arange(0, HEAD_DIM)
    q = tl.load(Q + b * stride_qb + h * stride_qh + rows[:, None].to(tl.int64) * stride_qs + offs_d[None, :],
                mask=ok_r[:, None], other=0.0)
    if UPCAST:  # the interpreter multiplies bf16 tiles' raw bits: fp32 there only
        q = q.to(tl.float32)
    k_base = K + b * stride_kb + h * stride_kh
    offs_n = tl.arange(0, BLOCK_N)
    m = tl.full([BLOCK_R], -float("inf"), tl.float32)
    l = tl.zeros([BLOCK_R], tl.float32)
    for n0 in range(0, lo, BLOCK_N):  # keys before the video region (text in front): statistics only
        s = _scores(q, k_base, n0 + offs_n, stride_ks, lo, offs_d, scale_log2, UPCAST)
        m_new = tl.maximum(m, tl.max(s, 1))
        l = l * tl.exp2(m - m_new) + tl.sum(tl.exp2(s - m_new[:, None]), 1)
        m = m_new
    for n0 in range(hi, S, BLOCK_N):  # keys after it (text at the back)
        s = _scores(q, k_base, n0 + offs_n, stride_ks, S, offs_d, scale_log2, UPCAST)
        m_new = tl.maximum(m, tl.max(s, 1))
        l = l * tl.exp2(m - m_new) + tl.sum(tl.exp2(s - m_new[:, None]), 1)
        m = m_new
    scr = SCR + (bh * NB * R + slot.to(tl.int64)) * NB  # this program's rows of the scratch: [row, key block]
    for kb in range(0, NB):  # video key blocks: the running statistics and each block's own log-sum-exp
        acc = tl.zeros([BLOCK_R], tl.float32)
        for j in range(0, BLOCK, BLOCK_N):
            s = _scores(q, k_base, lo + kb * BLOCK + j + offs_n, stride_ks, hi, offs_d, scale_log2, UPCAST)
            m_new = tl.maximum(m, tl.max(s, 1))
            alpha = tl.exp2(m - m_new)
            p = tl.sum(tl.exp2(s - m_new[:, None]), 1)
            l = l * alpha + p
            acc = acc * alpha + p
            m = m_new
        tl.store(scr + kb, m + tl.log2(acc), mask=ok_r)
    tl.debug_barrier()  # the block log-sum-exps above, read back by the same program
    top = m + tl.log2(l)
    qb = pid * QB + tl.arange(0, QB)
    for kb in range(0, NB):
        part = tl.exp2(tl.load(scr + kb, mask=ok_r, other=-float("inf")) - top)
        mass = tl.sum(tl.reshape(part, (QB, R)), 1)
        tl.store(OUT + (bh * NB + qb) * NB + kb, mass, mask=qb < NB)


def sampled_mass_triton(q: torch.Tensor, k: torch.Tensor, rows: torch.Tensor, video_range: tuple[int, int], block: int,
                        scale: float, out: torch.Tensor | None = None, heads: torch.Tensor | None = None,
                        rows_per_program: int = 64, block_n: int = 128, num_warps: int = 4, num_stages: int = 3,
                        scratch: torch.Tensor | None = None) -> torch.Tensor:
    """float32 [B, HS, NB, NB]: for q/k [B, S, H, D], ``rows`` int64 [NB, r] (r a power of two) and ``heads``
    (int32 [HS] of the heads to estimate; default all), the softmax mass (over all S keys) of each query
    block's sampled rows in each video key block, summed over the rows. ``scratch``: a float32 buffer of at
    least B * HS * NB * r * NB elements to reuse (one is allocated otherwise)."""
    B, S, H, D = q.shape
    nb, r = rows.shape
    if r & (r - 1) or D not in (64, 128) or block % 16:
        raise ValueError(f"the sampled-mass kernel takes a power-of-two row count (got {r}), head dim 64 or 128 (got {D}) "
                         f"and a block that is a multiple of 16 (got {block})")
    if heads is None:
        heads = torch.arange(H, dtype=torch.int32, device=q.device)
    hs = heads.numel()
    lo, hi = video_range
    qb = max(1, rows_per_program // r)  # rows per program: at least 16 for tl.dot
    block_n = min(block, block_n)
    if out is None:
        out = torch.empty(B, hs, nb, nb, dtype=torch.float32, device=q.device)
    need = B * hs * nb * r * nb
    if scratch is None or scratch.numel() < need:
        scratch = torch.empty(need, dtype=torch.float32, device=q.device)
    grid = (triton.cdiv(nb, qb), B * hs)
    _sampled_mass_kernel[grid](q, k, rows.flatten().contiguous(), heads, out, scratch, q.stride(0), q.stride(1), q.stride(2),
                               k.stride(0), k.stride(1), k.stride(2), hs, S, lo, hi, nb, scale * LOG2E,
                               R=r, QB=qb, BLOCK=block, BLOCK_N=block_n, HEAD_DIM=D, UPCAST=INTERPRET and q.dtype == torch.bfloat16,
                               num_warps=num_warps, num_stages=num_stages)
    return out
