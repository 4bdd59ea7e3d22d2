"""Row-sampled block mass (patterns/sampled.py): one pass over the keys, split over key blocks, then one tiled
normalisation.

Each program of the pass takes the sampled rows of a few query blocks (``r`` rows each, contiguous in ROWS) of
one (batch, head) and one split of the video key blocks; ``HEADS`` lists the heads to estimate, so a call's
sampled heads are read in place (no copy of q/k per head group). Keys outside the video region (joined text)
only feed the rows' softmax statistics (split 0); each video key block's log-sum-exp is kept in a scratch row,
each split's own per row beside it. Why split: at the testbed's length (195 blocks of 64, 4 heads) the unsplit
pass launched ~100 programs that each walked all 195 key blocks in turn, and with its serial normalisation loop
cost 12% of dense attention (H200, torch.profiler) against a 1.6% FLOP share. The normalisation combines the
splits into each row's log-sum-exp and turns the block log-sum-exps into mass summed over the r rows, one
[rows, key blocks] tile per program.

Cost: one QK^T over r/block of the queries (half of attention's FLOPs per score: no PV) plus one
exp2 per score, like attention's: ``patterns/sampled.estimate_cost``. The earlier two-pass kernel
recomputed every video score (H100: 11-12% of cuDNN dense at 8 rows of 128, 1.8x its share).
"""
from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from ._triton_utils import INTERPRET

LOG2E = 1.4426950408889634
MIN_SPLIT_BLOCKS = 8  # key blocks a split of the pass walks at least


@triton.jit
def _scores(q, k_base, cols, stride_ks, end, offs_d, scale_log2, UPCAST: tl.constexpr):
    """Scores (base 2) of the program's rows against keys ``cols`` (those >= end: -inf)."""
    k = tl.load(k_base + cols[:, None].to(tl.int64) * stride_ks + offs_d[None, :], mask=cols[:, None] < end, other=0.0)
    if UPCAST:
        k = k.to(tl.float32)
    s = tl.dot(q, tl.trans(k)) * scale_log2
    return tl.where(cols[None, :] < end, s, -float("inf"))


@triton.jit
def _sampled_mass_kernel(Q, K, ROWS, HEADS, SCR, STAT, stride_qb, stride_qs, stride_qh, stride_kb, stride_ks, stride_kh,
                         HS, S, lo, hi, NB, NB_SPLIT, scale_log2,
                         R: tl.constexpr, QB: tl.constexpr, BLOCK: tl.constexpr, BLOCK_N: tl.constexpr,
                         HEAD_DIM: tl.constexpr, UPCAST: tl.constexpr):
    """The pass: rows of QB query blocks of one (sample, estimated head) against key blocks [split * NB_SPLIT, + NB_SPLIT)
    (split 0 also the text keys): each video key block's log-sum-exp into SCR [bh, row, key block], the split's own
    log-sum-exp per row into STAT [bh, split, row]."""
    pid = tl.program_id(0)
    bh = tl.program_id(1)  # (sample, estimated head) pair
    split = tl.program_id(2)
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
    m = tl.full([BLOCK_R], -1e30, tl.float32)  # finite: a split without keys keeps exp2(m - m) defined
    l = tl.zeros([BLOCK_R], tl.float32)
    if split == 0:
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
    kb_end = tl.minimum(NB, (split + 1) * NB_SPLIT)
    for kb in range(split * NB_SPLIT, kb_end):  # video key blocks: the running statistics and each block's log-sum-exp
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
    tl.store(STAT + (bh * tl.num_programs(2) + split) * NB * R + slot, m + tl.log2(l), mask=ok_r)


@triton.jit
def _normalise_kernel(SCR, STAT, OUT, NB, SPLITS, R: tl.constexpr, QB: tl.constexpr, KB: tl.constexpr,
                      SPLITS_P2: tl.constexpr):
    """Mass of QB query blocks (their R rows summed) in KB key blocks of one (sample, head): each row's block
    log-sum-exps against its log-sum-exp over all keys (the splits' combined). Tiles, no loop over key blocks."""
    pid = tl.program_id(0)
    bh = tl.program_id(1)
    BLOCK_R: tl.constexpr = QB * R
    slot = pid * BLOCK_R + tl.arange(0, BLOCK_R)
    ok_r = slot < NB * R
    sp = tl.arange(0, SPLITS_P2)
    stat = tl.load(STAT + (bh * SPLITS + sp[None, :]) * NB * R + slot[:, None], mask=ok_r[:, None] & (sp[None, :] < SPLITS),
                   other=-float("inf"))
    mx = tl.max(stat, 1)
    top = mx + tl.log2(tl.sum(tl.exp2(stat - mx[:, None]), 1))
    kb = tl.program_id(2) * KB + tl.arange(0, KB)
    ok = ok_r[:, None] & (kb[None, :] < NB)
    part = tl.exp2(tl.load(SCR + (bh * NB * R + slot[:, None].to(tl.int64)) * NB + kb[None, :], mask=ok,
                           other=-float("inf")) - top[:, None])
    mass = tl.sum(tl.reshape(part, (QB, R, KB)), 1)
    qb = pid * QB + tl.arange(0, QB)
    tl.store(OUT + (bh * NB + qb[:, None]) * NB + kb[None, :], mass, mask=(qb[:, None] < NB) & (kb[None, :] < NB))


@functools.lru_cache(maxsize=None)
def _sm_count(device: torch.device) -> int:
    """SMs of ``device`` (read once: ``key_splits`` runs on every estimate call)."""
    return torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 1


def _max_splits(nb: int) -> int:
    """The most key-block splits of ``nb`` blocks: each split walks at least MIN_SPLIT_BLOCKS of them."""
    return max(1, nb // MIN_SPLIT_BLOCKS)


def key_splits(nb: int, programs: int, device: torch.device) -> int:
    """Key-block splits of the pass so that it launches about two programs per SM (a short sequence gives few
    programs, each walking every key block in turn), each split at least MIN_SPLIT_BLOCKS key blocks."""
    want = -(-2 * _sm_count(device) // max(programs, 1))
    return max(1, min(want, _max_splits(nb)))


def scratch_elements(batch: int, heads: int, nb: int, r: int, splits: int | None = None) -> int:
    """Floats of scratch a call needs: a log-sum-exp per sampled row and key block, and per row and split
    (default: the most splits ``key_splits`` gives)."""
    splits = _max_splits(nb) if splits is None else splits
    return batch * heads * nb * r * (nb + splits)


def sampled_mass_triton(q: torch.Tensor, k: torch.Tensor, rows: torch.Tensor, video_range: tuple[int, int], block: int,
                        scale: float, out: torch.Tensor | None = None, heads: torch.Tensor | None = None,
                        rows_per_program: int = 64, block_n: int = 128, num_warps: int = 4, num_stages: int = 3,
                        scratch: torch.Tensor | None = None, splits: int | None = None) -> torch.Tensor:
    """float32 [B, HS, NB, NB]: for q/k [B, S, H, D], ``rows`` int64 [NB, r] (r a power of two) and ``heads``
    (int32 [HS] of the heads to estimate; default all), the softmax mass (over all S keys) of each query
    block's sampled rows in each video key block, summed over the rows. ``scratch``: a float32 buffer of at
    least ``scratch_elements`` to reuse (one is allocated otherwise). ``splits``: key-block splits of the pass
    (default ``key_splits``)."""
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
    programs = triton.cdiv(nb, qb) * B * hs
    splits = key_splits(nb, programs, q.device) if splits is None else splits
    need = scratch_elements(B, hs, nb, r, splits)
    if scratch is None or scratch.numel() < need:
        scratch = torch.empty(need, dtype=torch.float32, device=q.device)
    stat = scratch[B * hs * nb * r * nb:]
    _sampled_mass_kernel[(triton.cdiv(nb, qb), B * hs, splits)](
        q, k, rows.flatten().contiguous(), heads, scratch, stat, q.stride(0), q.stride(1), q.stride(2),
        k.stride(0), k.stride(1), k.stride(2), hs, S, lo, hi, nb, triton.cdiv(nb, splits), scale * LOG2E,
        R=r, QB=qb, BLOCK=block, BLOCK_N=block_n, HEAD_DIM=D, UPCAST=INTERPRET and q.dtype == torch.bfloat16,
        num_warps=num_warps, num_stages=num_stages)
    qb2 = max(1, 64 // r)  # 64 rows a program
    kbt = 32
    _normalise_kernel[(triton.cdiv(nb, qb2), B * hs, triton.cdiv(nb, kbt))](
        scratch, stat, out, nb, splits, R=r, QB=qb2, KB=kbt, SPLITS_P2=triton.next_power_of_2(splits))
    return out
