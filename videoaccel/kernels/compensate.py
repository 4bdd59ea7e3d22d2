"""Mass compensation as one epilogue launch: skipped key blocks through one pooled key each, merged in place.

A binary block mask drops the skipped blocks' share of the softmax denominator, which over-weights the
kept keys. Each skipped block can stand in through its mean key and value with a logit bonus of ln(n)
(it represents n keys): attention over those pooled keys, merged with the sparse result by
log-sum-exp, puts the mass back (patterns.md: "Mass lost to skipped blocks").

Why a launch of its own: the sparse kernels (classic and Gluon) stay one loop over LUT tiles; this
runs after them over the compensated heads only (``heads``), reading q, the sparse output and its
lse, and the pooled keys (NB per head: about 1/block of a dense attention, in q's dtype on the tensor
cores), and rewrites the rows.
The kept blocks come from the layout's LUT on the device (``kept_blocks``), so a dynamic mask needs no
host round trip. CPU tensors run the same computation in float32 PyTorch (the reference of the kernel).
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._triton_utils import INTERPRET
from .block_scores import pool_blocks
from .layout import BlockLayout

LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453


@triton.jit
def _compensate_kernel(Q, O, LSE, KP, VP, KEPT, HEADS, LOGN,
                       stride_qb, stride_qs, stride_qh, stride_ob, stride_os, stride_oh,
                       H, HC, NQB, NB, q_lo, q_hi, SEQ_Q, qk_scale,
                       HEAD_DIM: tl.constexpr, BLOCK: tl.constexpr, TILE_M: tl.constexpr, TILE_N: tl.constexpr,
                       UPCAST: tl.constexpr):
    SUB: tl.constexpr = BLOCK // TILE_M
    pid = tl.program_id(0)
    qb = pid // SUB
    bh = tl.program_id(1)  # (sample, compensated head)
    b = (bh // HC).to(tl.int64)
    hc = bh % HC
    h = tl.load(HEADS + hc)
    rows = q_lo + qb * BLOCK + (pid % SUB) * TILE_M + tl.arange(0, TILE_M)
    ok = rows < tl.minimum(q_lo + (qb + 1) * BLOCK, q_hi)
    offs_d = tl.arange(0, HEAD_DIM)
    q = tl.load(Q + b * stride_qb + h * stride_qh + rows[:, None].to(tl.int64) * stride_qs + offs_d[None, :],
                mask=ok[:, None], other=0.0)
    if UPCAST:  # the interpreter multiplies bf16 tiles' raw bits: fp32 there only
        q = q.to(tl.float32)
    m = tl.full([TILE_M], -float("inf"), tl.float32)
    l = tl.zeros([TILE_M], tl.float32)
    acc = tl.zeros([TILE_M, HEAD_DIM], tl.float32)
    base = (b * HC + hc) * NB
    for j0 in range(0, NB, TILE_N):
        j = j0 + tl.arange(0, TILE_N)
        okj = j < NB
        kp = tl.load(KP + (base + j)[:, None] * HEAD_DIM + offs_d[None, :], mask=okj[:, None], other=0.0).to(q.dtype)
        vp = tl.load(VP + (base + j)[:, None] * HEAD_DIM + offs_d[None, :], mask=okj[:, None], other=0.0).to(q.dtype)
        skipped = tl.load(KEPT + (hc * NQB + qb) * NB + j, mask=okj, other=1) == 0
        s = tl.dot(q, tl.trans(kp)) * qk_scale + tl.load(LOGN + j, mask=okj, other=0.0)[None, :]
        s = tl.where(skipped[None, :], s, -float("inf"))
        m_new = tl.maximum(m, tl.max(s, 1))
        m_safe = tl.where(m_new == -float("inf"), 0.0, m_new)
        p = tl.exp2(s - m_safe[:, None])
        alpha = tl.exp2(m - m_safe)
        l = l * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(q.dtype), vp)
        m = m_new
    o_ptrs = O + b * stride_ob + h * stride_oh + rows[:, None].to(tl.int64) * stride_os + offs_d[None, :]
    lse_ptrs = LSE + (b * H + h) * SEQ_Q + rows
    o = tl.load(o_ptrs, mask=ok[:, None], other=0.0).to(tl.float32)
    lse_m = tl.load(lse_ptrs, mask=ok, other=-float("inf"))  # natural log
    lse_c = tl.where(l > 0.0, (m + tl.log2(tl.where(l > 0.0, l, 1.0))) * 0.6931471805599453, -float("inf"))
    top = tl.maximum(lse_m, lse_c)
    top = tl.where(top == -float("inf"), 0.0, top)
    wm = tl.exp(lse_m - top)
    wc = tl.exp(lse_c - top)
    total = tl.where(wm + wc > 0.0, wm + wc, 1.0)
    comp = acc / tl.where(l > 0.0, l, 1.0)[:, None]
    out = (o * wm[:, None] + comp * wc[:, None]) / total[:, None]
    tl.store(o_ptrs, out.to(O.dtype.element_ty), mask=ok[:, None])
    tl.store(lse_ptrs, top + tl.log(total), mask=ok)


def kept_blocks(layout: BlockLayout, heads: torch.Tensor) -> torch.Tensor:
    """uint8 [len(heads), NQB, NKB]: 1 where the LUT keeps the key block (from the device LUT, no host read)."""
    lut, cnt = layout.lut.index_select(0, heads), layout.counts.index_select(0, heads)
    nkb = layout.num_kv_blocks
    valid = torch.arange(lut.shape[-1], device=lut.device) < cnt[..., None]
    kept = torch.zeros(*lut.shape[:2], nkb + 1, dtype=torch.uint8, device=lut.device)
    kept.scatter_(2, torch.where(valid, lut, nkb).long(), 1)
    return kept[..., :nkb]


def _pooled(x: torch.Tensor, heads: torch.Tensor, layout: BlockLayout) -> torch.Tensor:
    """float32 [B, HC, NKB, D] block means of the compensated heads over the key region."""
    return pool_blocks(x.index_select(2, heads), layout.block_n, layout.kv_range).contiguous()


def _log_counts(layout: BlockLayout, device: torch.device) -> torch.Tensor:
    lo, hi = layout.kv_range
    n = torch.clamp(hi - lo - torch.arange(layout.num_kv_blocks, device=device) * layout.block_n, max=layout.block_n)
    return torch.log(n.float())


def compensate_(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor, lse: torch.Tensor, layout: BlockLayout,
                heads: torch.Tensor, scale: float, kept: torch.Tensor | None = None, backend: str = "auto") -> None:
    """Add the skipped blocks' mass of ``heads`` (int64 on q's device) to ``out`` [B, Sq, H, D] and ``lse``
    [B, H, Sq] (natural log, from the sparse launch with return_lse) in place, for the rows in the layout's
    q_range (dense rows skip nothing). ``kept``: kept_blocks(layout, heads), when the caller holds it.
    Needs block_m == block_n (self-attention over one block grid)."""
    if layout.block_m != layout.block_n:
        raise ValueError(f"compensation needs square blocks (got {layout.block_m}x{layout.block_n})")
    kept = kept_blocks(layout, heads) if kept is None else kept
    kp, vp = _pooled(k, heads, layout), _pooled(v, heads, layout)
    logn = _log_counts(layout, q.device)
    if backend == "torch" or (backend == "auto" and not q.is_cuda and not INTERPRET):
        _compensate_torch(q, out, lse, kp, vp, kept, heads, logn, layout, scale)
        return
    B, Sq, H, D = q.shape
    tile_m = min(32 if INTERPRET else 64, layout.block_m)
    nqb, nb = layout.num_q_blocks, layout.num_kv_blocks
    grid = (nqb * (layout.block_m // tile_m), B * heads.numel())
    if grid[0] == 0 or nb == 0:
        return
    _compensate_kernel[grid](q, out, lse, kp, vp, kept.contiguous(), heads.to(torch.int32), logn * LOG2E,
                             q.stride(0), q.stride(1), q.stride(2), out.stride(0), out.stride(1), out.stride(2),
                             H, heads.numel(), nqb, nb, *layout.q_range, Sq, scale * LOG2E,
                             HEAD_DIM=D, BLOCK=layout.block_m, TILE_M=tile_m, TILE_N=64 if nb >= 64 else 16,
                             UPCAST=INTERPRET and q.dtype == torch.bfloat16)


def _compensate_torch(q, out, lse, kp, vp, kept, heads, logn, layout: BlockLayout, scale: float) -> None:
    lo, hi = layout.q_range
    rows_block = torch.arange(hi - lo, device=q.device) // layout.block_m
    for j, h in enumerate(heads.tolist()):  # one head at a time bounds the [B, Sv, NB] scores
        s = (q[:, lo:hi, h].float() @ kp[:, j].transpose(-1, -2)) * scale + logn
        s = s.masked_fill(kept[j][rows_block][None].bool(), -math.inf)
        lse_c = torch.logsumexp(s, -1)
        p = torch.exp(s - torch.where(torch.isinf(lse_c), 0.0, lse_c)[..., None])
        comp = p @ vp[:, j]
        lse_m = lse[:, h, lo:hi]
        top = torch.maximum(lse_m, lse_c)
        top = torch.where(torch.isinf(top), 0.0, top)
        wm, wc = torch.exp(lse_m - top), torch.exp(lse_c - top)
        total = (wm + wc).clamp_min(1e-30)
        o = out[:, lo:hi, h].float()
        out[:, lo:hi, h] = ((o * wm[..., None] + comp * wc[..., None]) / total[..., None]).to(out.dtype)
        lse[:, h, lo:hi] = top + torch.log(total)
