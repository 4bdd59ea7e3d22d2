"""Row-sampled block mass (patterns/sampled.py) in one Triton kernel: no [rows, S] matrix in memory.

Each program takes the sampled rows of a few query blocks (``r`` rows each, contiguous in ROWS) of
one (batch, head). Pass 1 runs over every key (text included) for each row's softmax statistics
(running max and sum, base 2); pass 2 recomputes the scores over the video keys, normalises them and
sums them over each key block and over the r rows of each query block. Two QK^T passes over r/block
of the queries: r/block of a dense attention's FLOPs (patterns/sampled.estimate_cost). Measured on an
H100 (scripts/tune_sampled_mass.py, default tiles the fastest): 11-12% of cuDNN dense time at 8 rows
of 128 (FLOP share 6.25%; bench/kernels-h100.json): short 64-row dots, a second pass.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

LOG2E = 1.4426950408889634


@triton.jit
def _sampled_mass_kernel(Q, K, ROWS, OUT, stride_qb, stride_qs, stride_qh, stride_kb, stride_ks, stride_kh,
                         H, S, lo, hi, NB, scale_log2,
                         R: tl.constexpr, QB: tl.constexpr, BLOCK: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr):
    pid = tl.program_id(0)
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = bh % H
    BLOCK_R: tl.constexpr = QB * R
    slot = pid * BLOCK_R + tl.arange(0, BLOCK_R)  # index into ROWS: query block slot // R
    ok_r = slot < NB * R
    rows = tl.load(ROWS + slot, mask=ok_r, other=0)
    offs_d = tl.arange(0, HEAD_DIM)
    q = tl.load(Q + b * stride_qb + h * stride_qh + rows[:, None].to(tl.int64) * stride_qs + offs_d[None, :],
                mask=ok_r[:, None], other=0.0)
    k_base = K + b * stride_kb + h * stride_kh
    offs_n = tl.arange(0, BLOCK_N)
    m = tl.full([BLOCK_R], -float("inf"), tl.float32)
    l = tl.zeros([BLOCK_R], tl.float32)
    for n0 in range(0, S, BLOCK_N):  # pass 1: softmax statistics over all keys
        cols = n0 + offs_n
        k = tl.load(k_base + cols[:, None].to(tl.int64) * stride_ks + offs_d[None, :], mask=cols[:, None] < S, other=0.0)
        s = tl.dot(q, tl.trans(k)) * scale_log2
        s = tl.where(cols[None, :] < S, s, -float("inf"))
        m_new = tl.maximum(m, tl.max(s, 1))
        l = l * tl.exp2(m - m_new) + tl.sum(tl.exp2(s - m_new[:, None]), 1)
        m = m_new
    inv_l = 1.0 / l
    qb = pid * QB + tl.arange(0, QB)
    for kb in range(0, NB):  # pass 2: normalised mass per video key block, summed over each query block's rows
        acc = tl.zeros([BLOCK_R], tl.float32)
        for j in range(0, BLOCK, BLOCK_N):
            cols = lo + kb * BLOCK + j + offs_n
            k = tl.load(k_base + cols[:, None].to(tl.int64) * stride_ks + offs_d[None, :], mask=cols[:, None] < hi, other=0.0)
            s = tl.dot(q, tl.trans(k)) * scale_log2
            p = tl.where(cols[None, :] < hi, tl.exp2(s - m[:, None]), 0.0)
            acc += tl.sum(p, 1)
        mass = tl.sum(tl.reshape(acc * inv_l, (QB, R)), 1)
        tl.store(OUT + (bh * NB + qb) * NB + kb, mass, mask=qb < NB)


def sampled_mass_triton(q: torch.Tensor, k: torch.Tensor, rows: torch.Tensor, video_range: tuple[int, int], block: int,
                        scale: float, out: torch.Tensor | None = None, rows_per_program: int = 64, block_n: int = 128,
                        num_warps: int = 4, num_stages: int = 3) -> torch.Tensor:
    """float32 [B, H, NB, NB]: for q/k [B, S, H, D] and ``rows`` int64 [NB, r] (r a power of two), the softmax
    mass (over all S keys) of each query block's sampled rows in each video key block, summed over the rows."""
    B, S, H, D = q.shape
    nb, r = rows.shape
    if r & (r - 1) or D not in (64, 128) or block % 16:
        raise ValueError(f"the sampled-mass kernel takes a power-of-two row count (got {r}), head dim 64 or 128 (got {D}) "
                         f"and a block that is a multiple of 16 (got {block})")
    lo, hi = video_range
    qb = max(1, rows_per_program // r)  # rows per program: at least 16 for tl.dot
    block_n = min(block, block_n)
    if out is None:
        out = torch.empty(B, H, nb, nb, dtype=torch.float32, device=q.device)
    grid = (triton.cdiv(nb, qb), B * H)
    _sampled_mass_kernel[grid](q, k, rows.flatten().contiguous(), out, q.stride(0), q.stride(1), q.stride(2),
                               k.stride(0), k.stride(1), k.stride(2), H, S, lo, hi, nb, scale * LOG2E,
                               R=r, QB=qb, BLOCK=block, BLOCK_N=block_n, HEAD_DIM=D, num_warps=num_warps, num_stages=num_stages)
    return out
