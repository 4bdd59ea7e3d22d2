"""Block-sparse flash-attention forward in Triton: one kernel, bf16/fp16/fp32 or FP8.

One program computes one (query block, head, sample) work item taken from the layout's
schedule (head-major, heaviest first inside a head), so heads of different densities share one
launch, one head's K/V stays in L2 while its blocks run, and the long rows start first. It visits the LUT's key blocks, then the always-visited ranges, with an online
softmax in base 2. ``FP8`` switches the same loop to e4m3 operands with per-token Q/K scales
and per-channel V scales (see fp8.py); P is cast to e4m3 with a fixed scale of 448.

Tiles: the program's query tile (TILE_M) and key tile (TILE_N) may be smaller than the layout's
blocks (a layout block is then visited as several tiles), so layout granularity and kernel tiling
are tuned separately. On Hopper, K and V arrive through TMA tensor descriptors (``TMA``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch
import triton
import triton.language as tl

from ._triton_utils import INTERPRET, LOG2_E4M3_MAX, to_fp8
from .layout import BlockLayout

if TYPE_CHECKING:
    from .fp8 import Fp8Inputs

try:
    from triton.tools.tensor_descriptor import TensorDescriptor
except ImportError:  # triton < 3.4
    TensorDescriptor = None

LOG2E = 1.4426950408889634


@triton.jit
def _load_kv(K, V, k_ptrs, v_ptrs, b, h, start, end, stride_ks, stride_vs, offs_n,
             TMA: tl.constexpr, FP8: tl.constexpr, MASK: tl.constexpr, TILE_N: tl.constexpr, HEAD_DIM: tl.constexpr):
    """K^T [D, TILE_N] and V [TILE_N, D] for keys [start, start + TILE_N); past ``end``: zeros (MASK).

    Full tiles come through the TMA descriptors K, V; masked tiles (the region's tail, the
    always-visited ranges: few, at arbitrary offsets) through plain pointers.
    """
    if TMA and not MASK:
        if FP8:  # K [B*H, S, D]; V transposed [B*H, D, S]
            k = K.load([b, start, 0]).reshape(TILE_N, HEAD_DIM)
            v = V.load([b, 0, start]).reshape(HEAD_DIM, TILE_N).T
        else:  # K, V [B, S, H, D] as given
            k = K.load([b, start, h, 0]).reshape(TILE_N, HEAD_DIM)
            v = V.load([b, start, h, 0]).reshape(TILE_N, HEAD_DIM)
        k = k.T
    else:
        cols = start + offs_n
        if MASK:
            k = tl.load(k_ptrs + cols[None, :] * stride_ks, mask=cols[None, :] < end, other=0.0)
            v = tl.load(v_ptrs + cols[:, None] * stride_vs, mask=cols[:, None] < end, other=0.0)
        else:
            k = tl.load(k_ptrs + cols[None, :] * stride_ks)
            v = tl.load(v_ptrs + cols[:, None] * stride_vs)
    return k, v


@triton.jit
def _visit(acc, m_i, l_i, q, row_scale, K, V, k_ptrs, v_ptrs, b, h, offs_n, start, end,
           stride_ks, stride_vs, qk_scale,
           FP8: tl.constexpr, UPCAST: tl.constexpr, MASK: tl.constexpr, TMA: tl.constexpr,
           TILE_N: tl.constexpr, HEAD_DIM: tl.constexpr):
    """Fold keys [start, start + TILE_N) into the running softmax (``MASK``: only those < end).

    Scores stay raw until one FMA per element applies the scale and subtracts the running max
    (base 2). In FP8 the scale is Q's per-row scale (K's per-channel scale was folded into Q, see
    fp8.py, so no per-column work is left), and P comes out already multiplied by 448 (log2(448)
    is folded into the max) so it casts straight to e4m3; l carries the same factor and cancels.
    """
    k, v = _load_kv(K, V, k_ptrs, v_ptrs, b, h, start, end, stride_ks, stride_vs, offs_n, TMA, FP8, MASK, TILE_N, HEAD_DIM)
    if UPCAST:
        k = k.to(tl.float32)
        v = v.to(tl.float32)
    s = tl.dot(q, k)
    if MASK:
        s = tl.where((start + offs_n < end)[None, :], s, float("-inf"))
    if FP8:
        m_new = tl.maximum(m_i, tl.max(s, 1) * row_scale)
        p = tl.exp2(s * row_scale[:, None] - (m_new - LOG2_E4M3_MAX)[:, None])
    else:
        m_new = tl.maximum(m_i, tl.max(s, 1) * qk_scale)
        p = tl.exp2(s * qk_scale - m_new[:, None])
    alpha = tl.exp2(m_i - m_new)
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None]
    if FP8:
        acc = tl.dot(to_fp8(p, UPCAST), v, acc)
    else:
        acc = tl.dot(p.to(v.dtype), v, acc)
    return acc, m_new, l_i


@triton.jit
def _visit_block(acc, m_i, l_i, q, row_scale, K, V, k_ptrs, v_ptrs, b, h, offs_n, start, end,
                 stride_ks, stride_vs, qk_scale,
                 FP8: tl.constexpr, UPCAST: tl.constexpr, MASK: tl.constexpr, TMA: tl.constexpr,
                 BLOCK_N: tl.constexpr, TILE_N: tl.constexpr, HEAD_DIM: tl.constexpr):
    """One layout key block as BLOCK_N // TILE_N tiles; a masked (tail) block skips empty tiles."""
    for j in tl.static_range(BLOCK_N // TILE_N):
        t0 = start + j * TILE_N
        if MASK:
            if t0 < end:
                acc, m_i, l_i = _visit(acc, m_i, l_i, q, row_scale, K, V, k_ptrs, v_ptrs, b, h, offs_n, t0, end,
                                       stride_ks, stride_vs, qk_scale, FP8, UPCAST, True, TMA, TILE_N, HEAD_DIM)
        else:
            acc, m_i, l_i = _visit(acc, m_i, l_i, q, row_scale, K, V, k_ptrs, v_ptrs, b, h, offs_n, t0, end,
                                   stride_ks, stride_vs, qk_scale, FP8, UPCAST, False, TMA, TILE_N, HEAD_DIM)
    return acc, m_i, l_i


@dataclass(frozen=True)
class TileConfig:
    tile_m: int
    tile_n: int
    num_warps: int
    num_stages: int
    warp_specialize: bool = False  # Triton's automatic warp specialisation (device-side descriptors)


# Measured on H100 by the tune suite (benchmarks/tune.py; bench/tune-h100.json); keyed by (head_dim, fp8).
TUNED = {
    (128, False): TileConfig(128, 128, 8, 3),
    (128, True): TileConfig(128, 64, 4, 3),
    (64, False): TileConfig(128, 128, 4, 3),
    (64, True): TileConfig(128, 128, 4, 4),
}


def pick_config(head_dim: int, fp8: bool, block_m: int, block_n: int) -> TileConfig:
    if INTERPRET:  # small tiles keep the interpreter fast and exercise sub-tiling of layout blocks
        return TileConfig(min(32, block_m), min(32, block_n), 4, 1)
    c = TUNED[(head_dim, fp8)]
    return TileConfig(min(c.tile_m, block_m), min(c.tile_n, block_n), c.num_warps, c.num_stages)


@triton.jit
def _block_sparse_fwd(
    Q, K, V, KP, VP, O, LSE, LUT, CNT, SCHED, DROWS, ALWAYS, QS, KS, VS, KMEAN,  # K, V: descriptors when TMA
    stride_qb, stride_qs, stride_qh,
    stride_kb, stride_ks, stride_kh,
    stride_vb, stride_vs, stride_vh, stride_vd,
    stride_ob, stride_os, stride_oh,
    stride_qsb,  # FP8: QS [B, H, Sq]; KS, VS, KMEAN [B, H, D]
    stride_lut_h, stride_lut_q, stride_ab,
    B, H, SEQ_Q, SEQ_KV, NQB, NQT, NKB, q_lo, q_hi, kv_lo, kv_hi, n_always, qk_scale,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    FP8: tl.constexpr, RETURN_LSE: tl.constexpr, UPCAST: tl.constexpr, TMA: tl.constexpr,
    TILE_M: tl.constexpr, TILE_N: tl.constexpr, WS: tl.constexpr,
):
    SUB: tl.constexpr = BLOCK_M // TILE_M
    pid = tl.program_id(0)
    b = pid % B
    sub = (pid // B) % SUB
    item = tl.load(SCHED + pid // (B * SUB))
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
    row0 = row0 + sub * TILE_M

    offs_m = row0 + tl.arange(0, TILE_M)
    offs_n = tl.arange(0, TILE_N)
    offs_d = tl.arange(0, HEAD_DIM)
    row_ok = offs_m < row1
    b64 = b.to(tl.int64)
    bh = b64 * H + h  # row of the [B, H, ...] side tensors
    q = tl.load(Q + b64 * stride_qb + h * stride_qh + offs_m[:, None] * stride_qs + offs_d[None, :],
                mask=row_ok[:, None], other=0.0)
    k_ptrs = KP + b64 * stride_kb + h * stride_kh + offs_d[:, None]
    v_ptrs = VP + b64 * stride_vb + h * stride_vh + offs_d[None, :] * stride_vd
    kb_coord = b
    if FP8:
        kb_coord = b * H + h
    if WS:  # warp specialisation wants descriptors made on the device
        if FP8:
            K = tl.make_tensor_descriptor(KP, [B * H, SEQ_KV, HEAD_DIM], [stride_kh, stride_ks, 1], [1, TILE_N, HEAD_DIM])
            V = tl.make_tensor_descriptor(VP, [B * H, HEAD_DIM, SEQ_KV], [stride_vh, stride_vd, 1], [1, HEAD_DIM, TILE_N])
        else:
            K = tl.make_tensor_descriptor(KP, [B, SEQ_KV, H, HEAD_DIM], [stride_kb, stride_ks, stride_kh, 1], [1, TILE_N, 1, HEAD_DIM])
            V = tl.make_tensor_descriptor(VP, [B, SEQ_KV, H, HEAD_DIM], [stride_vb, stride_vs, stride_vh, 1], [1, TILE_N, 1, HEAD_DIM])
    row_scale = tl.zeros([TILE_M], dtype=tl.float32)
    if FP8:  # per-row dequantisation with the softmax scale (and log2 e) folded in
        row_scale = tl.load(QS + b64 * stride_qsb + h * (stride_qsb // H) + offs_m, mask=row_ok, other=1.0) * qk_scale
    if UPCAST:
        q = q.to(tl.float32)

    m_i = tl.full([TILE_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([TILE_M], dtype=tl.float32)
    acc = tl.zeros([TILE_M, HEAD_DIM], dtype=tl.float32)

    # Only the region's last key block can be partial: visit it last, masked; all others unmasked.
    lut_row = LUT + h * stride_lut_h + qb * stride_lut_q
    last = NKB - 1
    if use_lut & (n_vis > 0):
        last = tl.load(lut_row + n_vis - 1) & 0xFFFFFF
    has_tail = ((kv_hi - kv_lo) % BLOCK_N != 0) & (last == NKB - 1) & (n_vis > 0)
    n_full = n_vis - has_tail.to(tl.int32)
    if use_lut:
        for i in tl.range(0, n_full, warp_specialize=WS):
            kb = tl.load(lut_row + i) & 0xFFFFFF  # bits 24+ are reserved for a pooled level
            acc, m_i, l_i = _visit_block(acc, m_i, l_i, q, row_scale, K, V, k_ptrs, v_ptrs, kb_coord, h, offs_n,
                                         kv_lo + kb * BLOCK_N, kv_hi, stride_ks, stride_vs, qk_scale,
                                         FP8, UPCAST, False, TMA, BLOCK_N, TILE_N, HEAD_DIM)
    else:
        for kb in range(n_full):
            acc, m_i, l_i = _visit_block(acc, m_i, l_i, q, row_scale, K, V, k_ptrs, v_ptrs, kb_coord, h, offs_n,
                                         kv_lo + kb * BLOCK_N, kv_hi, stride_ks, stride_vs, qk_scale,
                                         FP8, UPCAST, False, TMA, BLOCK_N, TILE_N, HEAD_DIM)
    if has_tail:
        acc, m_i, l_i = _visit_block(acc, m_i, l_i, q, row_scale, K, V, k_ptrs, v_ptrs, kb_coord, h, offs_n,
                                     kv_lo + last * BLOCK_N, kv_hi, stride_ks, stride_vs, qk_scale,
                                     FP8, UPCAST, True, TMA, BLOCK_N, TILE_N, HEAD_DIM)
    for r in range(n_always):
        lo = tl.load(ALWAYS + b * stride_ab + 2 * r)
        hi = tl.load(ALWAYS + b * stride_ab + 2 * r + 1)
        for start in range(lo, hi, TILE_N):
            acc, m_i, l_i = _visit(acc, m_i, l_i, q, row_scale, K, V, k_ptrs, v_ptrs, kb_coord, h, offs_n,
                                   start, hi, stride_ks, stride_vs, qk_scale, FP8, UPCAST, True, TMA, TILE_N, HEAD_DIM)

    l_safe = tl.where(l_i == 0.0, 1.0, l_i)
    out = acc / l_safe[:, None]
    if FP8:  # V's per-channel scale (P's factor 448 cancels against l)
        out = out * tl.load(VS + bh * HEAD_DIM + offs_d)[None, :]
    tl.store(O + b64 * stride_ob + h * stride_oh + offs_m[:, None] * stride_os + offs_d[None, :],
             out.to(O.dtype.element_ty), mask=row_ok[:, None])
    if RETURN_LSE:
        lse = m_i + tl.log2(l_safe)
        if FP8:  # undo P's factor 448 and K smoothing (every score of a row was shifted by q . mean(K))
            k_mean = tl.load(KMEAN + bh * HEAD_DIM + offs_d) / tl.load(KS + bh * HEAD_DIM + offs_d)  # q8 holds Q * ks
            lse += tl.sum(q.to(tl.float32) * k_mean[None, :], 1) * row_scale - LOG2_E4M3_MAX
        lse = tl.where(l_i == 0.0, float("-inf"), lse * 0.6931471805599453)
        tl.store(LSE + bh * SEQ_Q + offs_m, lse, mask=row_ok)


def tma_supported(device: torch.device) -> bool:
    """TMA descriptors: Hopper or newer, a Triton that has them; the interpreter emulates them."""
    if TensorDescriptor is None:
        return False
    return INTERPRET or (device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 9)


def _descriptor_scratch(size: int, alignment: int, stream):
    return torch.empty(size, dtype=torch.int8, device="cuda")


def _descriptor(t: torch.Tensor):
    return TensorDescriptor(t, list(t.shape), list(t.stride()), [1] * t.dim())  # block shape set at launch


def triton_block_sparse_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: BlockLayout, scale: float,
                                  return_lse: bool = False, fp8: Fp8Inputs | None = None, out: torch.Tensor | None = None,
                                  tma: bool | None = None, config: TileConfig | None = None
                                  ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Launch the kernel. q/k/v [B, S, H, D] (last dim contiguous); ``fp8`` a Fp8Inputs or None."""
    B, Sq, H, D = q.shape
    out = torch.empty_like(q) if out is None else out
    lse = torch.empty(B, H, Sq, dtype=torch.float32, device=q.device) if return_lse else out
    tma = tma_supported(q.device) if tma is None else tma
    always = layout.kv_always
    n_always = 0 if always is None else always.shape[1]
    if always is None:
        always = layout.counts  # any int32 pointer; never read
    stride_ab = 0 if layout.kv_always is None or layout.kv_always.shape[0] == 1 else always.stride(0)
    sched = layout.schedule
    if fp8 is not None:
        qx, kx, vx = fp8.q, fp8.k, fp8.v_t[..., fp8.v_pad:]  # [B,H,S,D], [B,H,S,D], [B,H,D,S]
        q_strides = (qx.stride(0), qx.stride(2), qx.stride(1))
        k_strides = (kx.stride(0), kx.stride(2), kx.stride(1))
        v_strides = (vx.stride(0), vx.stride(3), vx.stride(1), vx.stride(2))
        side = (fp8.q_scale, fp8.k_scale, fp8.v_scale, fp8.k_mean)
        s_strides = (fp8.q_scale.stride(0),)
        # V^T tiles start at kv_lo + j * TILE_N: 16-byte aligned, from an aligned base (no pad columns)
        tma = tma and layout.kv_range[0] % 16 == 0 and fp8.v_pad == 0
        if tma:
            kd, vd = _descriptor(kx.flatten(0, 1)), _descriptor(vx[..., : k.shape[1]].flatten(0, 1))
    else:
        qx, kx, vx = q, k, v
        q_strides = (q.stride(0), q.stride(1), q.stride(2))
        k_strides = (k.stride(0), k.stride(1), k.stride(2))
        v_strides = (v.stride(0), v.stride(1), v.stride(2), v.stride(3))
        side = (sched, sched, sched, sched)  # unused
        s_strides = (0,)
        if tma:
            kd, vd = _descriptor(k), _descriptor(v)
    if not tma:
        kd, vd = kx, vx
    nqt = layout.num_q_blocks + layout.dense_row_blocks.shape[0]

    if config is not None and config.warp_specialize and not tma:
        raise ValueError("warp_specialize needs TMA descriptors (Hopper or newer, 16-byte aligned kv_range)")
    cfg = config or pick_config(D, fp8 is not None, layout.block_m, layout.block_n)
    if cfg.warp_specialize and not tma:  # the tuned choice needs TMA; the plain pipeline computes the same
        cfg = replace(cfg, warp_specialize=False)
    if cfg.warp_specialize:
        triton.set_allocator(_descriptor_scratch)
    if tma:  # descriptor block shapes follow the tiles
        kd.block_shape = [1, cfg.tile_n, D] if fp8 is not None else [1, cfg.tile_n, 1, D]
        vd.block_shape = [1, D, cfg.tile_n] if fp8 is not None else [1, cfg.tile_n, 1, D]
    grid = (sched.numel() * (layout.block_m // cfg.tile_m) * B,)
    _block_sparse_fwd[grid](
        qx, kd, vd, kx, vx, out, lse, layout.lut, layout.counts, sched, layout.dense_row_blocks, always, *side,
        *q_strides, *k_strides, *v_strides, out.stride(0), out.stride(1), out.stride(2),
        *s_strides, layout.lut.stride(0), layout.lut.stride(1), stride_ab,
        B, H, Sq, k.shape[1], layout.num_q_blocks, nqt, layout.num_kv_blocks,
        *layout.q_range, *layout.kv_range, n_always, scale * LOG2E,
        HEAD_DIM=D, BLOCK_M=layout.block_m, BLOCK_N=layout.block_n,
        FP8=fp8 is not None, RETURN_LSE=return_lse, UPCAST=INTERPRET, TMA=tma,
        TILE_M=cfg.tile_m, TILE_N=cfg.tile_n, WS=cfg.warp_specialize, num_warps=cfg.num_warps, num_stages=cfg.num_stages,
    )
    return (out, lse) if return_lse else out
