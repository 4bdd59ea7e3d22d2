"""Block-sparse flash-attention forward for Hopper (sm90) in Gluon: TMA, mbarrier ring, wgmma.

The same ``BlockLayout`` semantics as triton_attention.py (LUT + counts, kv_always ranges, dense
row blocks, the layout's schedule, masked tails, zero rows with lse -inf for rows that see
no key), written at the level Triton does not expose: explicit shared-memory rings, barriers and
warpgroup MMAs.

Data path. q/k/v [B, S, H, D] are viewed as 2-D [B*S, H*D] (row stride q.stride(1)); a tile of
keys [start, start + BLOCK_N) of head h, sample b is the TMA box at (b*S + start, h*D). Rows past
a region's end (the next sample's rows, or TMA's zero fill past B*S) are masked in the scores,
never stored. Every key tile a work item visits (its LUT blocks, or every block for a dense row
block, then the always-visited ranges cut into tiles on the host) is one entry of a flat tile
stream, so one pipelined loop handles them all and the ring's phases stay a pure function of a
running tile counter.

Kernels (each warp-specialised: a 1-warp TMA producer feeding a STAGES-deep K/V ring through
ready/empty mbarrier pairs, running ahead across work items):
- ``_fwd_v3`` (128-row query blocks; the default): two consumer partitions of one warpgroup each,
  each owning 64 rows of the block. Per tile, QK^T of tile j and PV of tile j-1 are issued back to
  back and the softmax of tile j runs under the PV MMA (FA3's intra-warpgroup overlap); the two
  warpgroups release ring slots independently, so one's MMAs fill the tensor cores during the
  other's softmax without explicit ping-pong (measured: turn-taking barriers gained nothing).
  Work items come from a global atomic counter over the head-major schedule: no static
  imbalance, and the CTAs in flight share one head's K/V in L2.
  With e4m3 operands (``fp8=quantize_fp8(...)``): the same loop reads the quantised head-major
  copies (V transposed), scales scores per row and feeds P to the PV MMA as e4m3 (times 448).
- ``_fwd_v2`` (64-row blocks): one consumer partition of 4 warps; persistent round-robin.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch

from .fp8 import Fp8Inputs
from .layout import BlockLayout

try:  # Gluon: triton >= 3.5 with the nvidia hopper dialect
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language.nvidia.hopper import fence_async_shared, mbarrier, tma, warpgroup_mma, warpgroup_mma_wait
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor as GluonDescriptor
    GLUON_IMPORT_ERROR: str | None = None
except Exception as e:  # noqa: BLE001 - any failure means "no Gluon here", reported by gluon_unsupported
    GLUON_IMPORT_ERROR = f"{type(e).__name__}: {e}"

LOG2E = 1.4426950408889634
SMEM_LIMIT = 227 * 1024  # H100 dynamic shared memory per CTA


@dataclass(frozen=True)
class GluonConfig:
    """One compiled variant: tiles follow the layout's blocks; stages fit shared memory."""
    head_dim: int
    block_m: int
    block_n: int
    stages: int
    version: int = 3
    dtype: str = "bf16"

    @property
    def num_warps(self) -> int:
        """Launch warps: the default partition, one warpgroup (the worker partitions add the rest)."""
        return 4

    @property
    def smem_bytes(self) -> int:
        """Q tile + K/V ring (+ v2: the epilogue's layout-conversion scratch, the output tile)."""
        scratch = 0 if self.version == 3 else self.block_m * self.head_dim
        size = 1 if self.dtype == "fp8" else 2
        return size * (self.block_m * self.head_dim + scratch + 2 * self.stages * self.block_n * self.head_dim)


def pick_gluon_config(head_dim: int, block_m: int, block_n: int, dtype: torch.dtype = torch.bfloat16) -> GluonConfig:
    """v3 for 128-row blocks (v2 for 64), with the deepest ring (v3 <= 4, v2 <= 3) that fits shared
    memory next to Q (and v2's epilogue scratch). ``dtype`` float8_e4m3fn: the FP8 operands (v3 only)."""
    name = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float8_e4m3fn: "fp8"}[dtype]
    version = 3 if block_m == 128 else 2
    margin = 1024 if version == 3 else 8 * 1024
    for stages in ((4, 3, 2) if version == 3 else (3, 2)):
        cfg = GluonConfig(head_dim, block_m, block_n, stages, version, name)
        if cfg.smem_bytes <= SMEM_LIMIT - margin:
            return cfg
    return GluonConfig(head_dim, block_m, block_n, 2, version, name)


# Every variant the launcher can pick (compiled offline in tests/test_gluon_attention.py).
SHIPPED = [pick_gluon_config(d, bm, bn, dt) for dt in (torch.bfloat16, torch.float16) for d in (64, 128)
           for bm in (64, 128) for bn in (64, 128)]
SHIPPED += [pick_gluon_config(d, 128, bn, torch.float8_e4m3fn) for d in (64, 128) for bn in (64, 128)]


def gluon_unsupported(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: BlockLayout,
                      fp8: bool = False) -> str | None:
    """Why the Gluon kernel cannot run these inputs (None: it can). Never raises. ``fp8``: the call
    quantises first (the kernel then reads quantize_fp8's contiguous copies, not q/k/v)."""
    if GLUON_IMPORT_ERROR is not None:
        return f"Gluon unavailable ({GLUON_IMPORT_ERROR})"
    if not q.is_cuda:
        return "Gluon needs CUDA tensors"
    if torch.cuda.get_device_capability(q.device)[0] != 9:
        return f"Gluon kernel is sm90-only (device is sm{''.join(map(str, torch.cuda.get_device_capability(q.device)))})"
    if q.dtype not in (torch.bfloat16, torch.float16):
        return f"Gluon kernel takes bf16/fp16 (got {q.dtype})"
    if q.shape[-1] not in (64, 128):
        return f"Gluon kernel takes head dim 64 or 128 (got {q.shape[-1]})"
    if layout.block_m not in (64, 128) or layout.block_n not in (64, 128):
        return f"Gluon kernel takes 64/128 blocks (layout has {layout.block_m}x{layout.block_n})"
    if fp8:
        return None if layout.block_m == 128 else "the Gluon FP8 kernel (v3) takes 128-row blocks"
    for name, t in (("q", q), ("k", k), ("v", v)):
        if _as_rows(t) is None:
            return f"{name} is not viewable as 16-byte aligned [B*S, H*D] rows (strides {tuple(t.stride())})"
    return None


def gluon_preferred(head_dim: int, block_m: int) -> bool:
    """Whether the automatic choice takes Gluon where it can run. H100, bench/kernels-h100.json and
    bench/kernels-block64-h100.json: v3 (128-row blocks) 1.3-1.5x Flex and faster than the classic
    kernel everywhere; v2 (64-row blocks) 1.8x the classic kernel at head dim 128, 0.6x at 64."""
    return block_m == 128 or head_dim == 128


def fp8_v_pad(layout: BlockLayout) -> int:
    """The v_pad quantize_fp8 needs for the Gluon FP8 kernel: V's column of the region's first key
    (kv_lo + v_pad) on a 16-byte boundary, so every LUT tile's TMA box starts aligned."""
    return -layout.kv_range[0] % 16


def _as_rows(t: torch.Tensor) -> torch.Tensor | None:
    """[B, S, H, D] as the 2-D [B*S, H*D] view TMA reads (row stride t.stride(1)), or None."""
    B, S, H, D = t.shape
    sb, ss, sh, sd = t.stride()
    if sd != 1 or sh != D or (B > 1 and sb != S * ss) or (ss * t.element_size()) % 16 or t.data_ptr() % 16:
        return None
    return t.as_strided((B * S, H * D), (ss, 1))


# ---- host-side tables ---------------------------------------------------------------------
_ALWAYS_TILES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cut(lo: int, hi: int, tile: int, pad: int, align: int) -> list[tuple[int, int, int]]:
    """[lo, hi) as tiles (load start, first valid key, end): load starts with (start + pad) % align == 0."""
    out, s = [], lo
    while s < hi:
        g = s - (s + pad) % align
        out.append((g, s, hi))
        s = g + tile
    return out


def always_tiles(layout: BlockLayout, tile: int, pad: int = 0, align: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """kv_always ranges cut into key tiles, per sample: int32 [NB, T, 3] (load start, first valid
    key, end) and counts [NB].

    FP8 reads V transposed by TMA from column start + pad, which must be 16-byte aligned (align=16):
    a tile then loads from the aligned column at or before the range and masks the keys before it.
    Built once per layout (one host sync), so the kernel's tile stream needs no scan.
    """
    key = (tile, pad, align)
    per = _ALWAYS_TILES.setdefault(layout, {})
    if key not in per:
        dev = layout.device
        if layout.kv_always is None:
            per[key] = (torch.zeros(1, 1, 3, dtype=torch.int32, device=dev), torch.zeros(1, dtype=torch.int32, device=dev))
        else:
            rows = [[t for lo, hi in sample for t in _cut(lo, hi, tile, pad, align)] for sample in layout.kv_always.tolist()]
            width = max(1, max(len(r) for r in rows))
            t = torch.zeros(len(rows), width, 3, dtype=torch.int32)
            for i, r in enumerate(rows):
                if r:
                    t[i, : len(r)] = torch.tensor(r, dtype=torch.int32)
            per[key] = (t.to(dev), torch.tensor([len(r) for r in rows], dtype=torch.int32, device=dev))
    return per[key]


def work_order(layout: BlockLayout, batch: int) -> torch.Tensor:
    """int32 work list ``item * B + b``: one sample at a time, in the layout's head-major schedule.

    Built on the device (no host sync) per call: a per-call mask reschedules the layout in place.
    """
    if batch == 1:
        return layout.schedule
    samples = torch.arange(batch, device=layout.device, dtype=torch.int32)
    return (layout.schedule[None, :] * batch + samples[:, None]).flatten().contiguous()


# ---- device code --------------------------------------------------------------------------
if GLUON_IMPORT_ERROR is None:
    # the barrier over the current warps (a partition's, inside warp_specialize): triton 3.6 calls it
    # thread_barrier, later releases barrier
    _cta_barrier = gl.thread_barrier if hasattr(gl, "thread_barrier") else gl.barrier
    _tma_load = tma.async_load if hasattr(tma, "async_load") else tma.async_copy_global_to_shared  # 3.6: the latter

    @gluon.constexpr_function
    def _store_layout(head_dim, num_warps):
        """16-byte stores along D: 8 bf16 per thread, a row of D over D // 8 threads."""
        tpw_d = head_dim // 8
        return gl.BlockedLayout([1, 8], [32 // tpw_d, tpw_d], [num_warps, 1], [1, 0])

    @gluon.jit
    def _item(t, B, WORK, NQB, NQT, CNT, DROWS, NKB, q_lo, q_hi, LUT, ATILES, ACNT, stride_lut_h, stride_lut_q,
              stride_ab, stride_acnt, BLOCK_M: gl.constexpr):
        """Work item t -> (b, h, first row, row end, LUT/region tiles, all tiles (+ always-ranges), LUT used,
        its LUT row, its always-range row)."""
        w = gl.load(WORK + t)
        b = w % B
        item = w // B
        h = item // NQT
        qb = item % NQT
        use_lut = qb < NQB
        if use_lut:  # a sparse query block: follow its LUT row
            row0 = q_lo + qb * BLOCK_M
            row1 = gl.minimum(row0 + BLOCK_M, q_hi)
            n_lut = gl.load(CNT + h * NQB + qb)
        else:  # a dense row block: every key block of the region
            row0 = gl.load(DROWS + 2 * (qb - NQB))
            row1 = gl.load(DROWS + 2 * (qb - NQB) + 1)
            n_lut = NKB
        n_tiles = n_lut + gl.load(ACNT + b * stride_acnt)
        lut_row = LUT + h * stride_lut_h + qb * stride_lut_q
        a_row = ATILES + b * stride_ab
        return b, h, row0, row1, n_lut, n_tiles, use_lut, lut_row, a_row

    @gluon.jit
    def _tile(j, n_lut, n_tiles, use_lut, lut_row, a_row, kv_lo, kv_hi, BLOCK_N: gl.constexpr):
        """Key tile j of a work item's stream -> (start, lo, end): keys [start, start + BLOCK_N) are
        loaded, [lo, end) of them are valid. Past the stream: (0, 0, 0), reading nothing."""
        start = 0
        lo = 0
        end = 0
        if j < n_lut:
            kb = j
            if use_lut:
                kb = gl.load(lut_row + j) & 0xFFFFFF  # bits 24+ are reserved for a pooled level
            start = kv_lo + kb * BLOCK_N
            lo = start
            end = kv_hi
        elif j < n_tiles:
            start = gl.load(a_row + 3 * (j - n_lut))
            lo = gl.load(a_row + 3 * (j - n_lut) + 1)
            end = gl.load(a_row + 3 * (j - n_lut) + 2)
        return start, lo, end

    @gluon.jit
    def _online_softmax(s, m_i, l_i, start, lo, end, row_scale, P_LOG2: gl.constexpr, BLOCK_N: gl.constexpr,
                        s_layout: gl.constexpr):
        """Scores of one key tile -> (P, new max, new sum, alpha = the old accumulator's rescale), base 2.

        row_scale: per row, the softmax scale times log2(e) (FP8: times Q's dequantisation scale, > 0).
        P comes out times 2**P_LOG2 (FP8: 448, so small probabilities stay normal e4m3 numbers; the
        factor cancels against l).
        """
        if (end - start < BLOCK_N) | (lo > start):  # a tail or an always-range tile: mask keys outside [lo, end)
            cols = gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, s_layout))  # tile-relative: immediates
            s = gl.where(gl.expand_dims((cols < end - start) & (cols >= lo - start), 0), s, float("-inf"))
        m_new = gl.maximum(m_i, gl.max(s, axis=1) * row_scale)
        p = gl.exp2(s * gl.expand_dims(row_scale, 1) - gl.expand_dims(m_new - P_LOG2, 1))
        alpha = gl.exp2(m_i - m_new)
        l_i = l_i * alpha + gl.sum(p, axis=1)
        return p, m_new, l_i, alpha

    @gluon.jit
    def _p_operand(p, dtype: gl.constexpr, o_layout: gl.constexpr):
        """P as wgmma's register A operand (no shared-memory round trip): 32 bits of K per register."""
        return gl.convert_layout(p.to(dtype), gl.DotOperandLayout(operand_index=0, parent=o_layout,
                                                                  k_width=32 // dtype.primitive_bitwidth))

    @gluon.jit
    def _v_operand(v_buf, FP8: gl.constexpr):
        """V as PV's B operand [BLOCK_N, D]: FP8 keeps V transposed ([D, BLOCK_N]: e4m3 wgmma reads
        both operands K-major), so its view is permuted."""
        if FP8:
            return v_buf.permute((1, 0))
        else:
            return v_buf

    @gluon.jit
    def _rescale(acc, alpha, o_layout: gl.constexpr):
        return acc * gl.expand_dims(gl.convert_layout(alpha, gl.SliceLayout(1, o_layout)), 1)

    @gluon.jit
    def _attend_tile(q_smem, k_buf, v_buf, acc, m_i, l_i, start, lo, end, qk_scale, BLOCK_M: gl.constexpr,
                     BLOCK_N: gl.constexpr, s_layout: gl.constexpr, o_layout: gl.constexpr):
        """Fold one key tile into (acc, m, l): S = Q K^T, softmax, P @ V, each MMA waited (v2)."""
        s = gl.zeros([BLOCK_M, BLOCK_N], gl.float32, layout=s_layout)
        s = warpgroup_mma(q_smem, k_buf.permute((1, 0)), s, use_acc=False, is_async=True)
        s = warpgroup_mma_wait(num_outstanding=0, deps=(s,))
        row_scale = gl.full([BLOCK_M], qk_scale, gl.float32, layout=gl.SliceLayout(1, s_layout))
        p, m_new, l_i, alpha = _online_softmax(s, m_i, l_i, start, lo, end, row_scale, 0.0, BLOCK_N, s_layout)
        acc = _rescale(acc, alpha, o_layout)
        acc = warpgroup_mma(_p_operand(p, v_buf.dtype, o_layout), v_buf, acc, is_async=True)
        acc = warpgroup_mma_wait(num_outstanding=0, deps=(acc,))
        return acc, m_new, l_i

    @gluon.jit
    def _fresh_state(BLOCK_M: gl.constexpr, HEAD_DIM: gl.constexpr, s_layout: gl.constexpr, o_layout: gl.constexpr):
        """Running max (-inf), sum (0) and output accumulator (0) of one query block."""
        m_i = gl.full([BLOCK_M], float("-inf"), gl.float32, layout=gl.SliceLayout(1, s_layout))
        l_i = gl.full([BLOCK_M], 0.0, gl.float32, layout=gl.SliceLayout(1, s_layout))
        acc = gl.zeros([BLOCK_M, HEAD_DIM], gl.float32, layout=o_layout)
        return m_i, l_i, acc

    @gluon.jit
    def _load_kv(k_desc, v_desc, bar, k_buf, v_buf, k_row, k_col, v_row, v_col, nbytes: gl.constexpr, pred):
        """One key tile's K and V into a ring slot by TMA, completing on its barrier (skipped when not pred)."""
        mbarrier.expect(bar, nbytes, pred=pred)
        _tma_load(k_desc, [k_row, k_col], bar, k_buf, pred=pred)
        _tma_load(v_desc, [v_row, v_col], bar, v_buf, pred=pred)

    @gluon.jit
    def _epilogue(acc, m_i, l_i, O, LSE, b, h, row0, row1, H, SEQ_Q, stride_ob, stride_os, stride_oh,
                  RETURN_LSE: gl.constexpr, HEAD_DIM: gl.constexpr, BLOCK_M: gl.constexpr,
                  s_layout: gl.constexpr, o_layout: gl.constexpr, st: gl.constexpr):
        """out = acc / l for rows [row0, row1) (stored from layout st); rows that saw no key: 0 and lse -inf."""
        l_safe = gl.where(l_i == 0.0, 1.0, l_i)
        out = acc / gl.expand_dims(gl.convert_layout(l_safe, gl.SliceLayout(1, o_layout)), 1)
        out = gl.convert_layout(out.to(O.dtype.element_ty), st)
        rows = row0 + gl.arange(0, BLOCK_M, layout=gl.SliceLayout(1, st))
        offs_d = gl.arange(0, HEAD_DIM, layout=gl.SliceLayout(0, st))
        b64 = b.to(gl.int64)
        ptrs = O + b64 * stride_ob + h * stride_oh + gl.expand_dims(rows.to(gl.int64) * stride_os, 1) + gl.expand_dims(offs_d, 0)
        gl.store(ptrs, out, mask=gl.expand_dims(rows < row1, 1))
        if RETURN_LSE:
            lse = gl.where(l_i == 0.0, float("-inf"), (m_i + gl.log2(l_safe)) * 0.6931471805599453)
            lrows = row0 + gl.arange(0, BLOCK_M, layout=gl.SliceLayout(1, s_layout))
            gl.store(LSE + (b64 * H + h) * SEQ_Q + lrows, lse, mask=lrows < row1)

    # ---- v2 (64-row blocks): 1 producer warp, 1 consumer warpgroup, persistent round-robin ----
    @gluon.jit
    def _v2_producer(q_desc, k_desc, v_desc, q_smem, k_smem, v_smem, q_ready, q_empty, ready, empty,
                     LUT, CNT, WORK, DROWS, ATILES, ACNT, stride_lut_h, stride_lut_q, stride_ab, stride_acnt,
                     B, SEQ_Q, SEQ_KV, NQB, NQT, NKB, n_work, q_lo, q_hi, kv_lo, kv_hi,
                     HEAD_DIM: gl.constexpr, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, STAGES: gl.constexpr):
        """TMA issue only: Q once per item (after the consumers released the last one), then the item's
        key tiles into the ring, each slot once the consumers released it. Runs ahead across items."""
        dtype: gl.constexpr = q_desc.dtype
        kv_bytes: gl.constexpr = 2 * BLOCK_N * HEAD_DIM * dtype.primitive_bitwidth // 8
        q_bytes: gl.constexpr = BLOCK_M * HEAD_DIM * dtype.primitive_bitwidth // 8
        done = 0
        n_items = 0
        for t in range(gl.program_id(0), n_work, gl.num_programs(0)):
            b, h, row0, row1, n_lut, n_tiles, use_lut, lut_row, a_row = _item(
                t, B, WORK, NQB, NQT, CNT, DROWS, NKB, q_lo, q_hi, LUT, ATILES, ACNT, stride_lut_h, stride_lut_q,
                stride_ab, stride_acnt, BLOCK_M)
            mbarrier.wait(q_empty, (n_items & 1) ^ 1)  # a fresh barrier passes parity 1 at once
            mbarrier.expect(q_ready, q_bytes)
            _tma_load(q_desc, [b * SEQ_Q + row0, h * HEAD_DIM], q_ready, q_smem)
            for j in range(n_tiles):
                g = done + j
                slot = g % STAGES
                start, lo, end = _tile(j, n_lut, n_tiles, use_lut, lut_row, a_row, kv_lo, kv_hi, BLOCK_N)
                mbarrier.wait(empty.index(slot), ((g // STAGES) & 1) ^ 1)
                _load_kv(k_desc, v_desc, ready.index(slot), k_smem.index(slot), v_smem.index(slot), b * SEQ_KV + start,
                         h * HEAD_DIM, b * SEQ_KV + start, h * HEAD_DIM, kv_bytes, True)
            done += n_tiles
            n_items += 1

    @gluon.jit
    def _v2_consumer(q_smem, k_smem, v_smem, q_ready, q_empty, ready, empty, O, LSE,
                     LUT, CNT, WORK, DROWS, ATILES, ACNT, stride_ob, stride_os, stride_oh,
                     stride_lut_h, stride_lut_q, stride_ab, stride_acnt,
                     B, H, SEQ_Q, NQB, NQT, NKB, n_work, q_lo, q_hi, kv_lo, kv_hi, qk_scale,
                     HEAD_DIM: gl.constexpr, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, STAGES: gl.constexpr,
                     RETURN_LSE: gl.constexpr):
        """wgmma + online softmax over the ring; a slot (and, after the item's last tile, Q) is released
        by one arrive once every warp of the partition is past it (a partition barrier first)."""
        num_warps: gl.constexpr = gl.num_warps()
        s_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[num_warps, 1],
                                                          instr_shape=[16, BLOCK_N, 16])
        o_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[num_warps, 1],
                                                          instr_shape=[16, HEAD_DIM, 16])
        done = 0
        n_items = 0
        for t in range(gl.program_id(0), n_work, gl.num_programs(0)):
            b, h, row0, row1, n_lut, n_tiles, use_lut, lut_row, a_row = _item(
                t, B, WORK, NQB, NQT, CNT, DROWS, NKB, q_lo, q_hi, LUT, ATILES, ACNT, stride_lut_h, stride_lut_q,
                stride_ab, stride_acnt, BLOCK_M)
            m_i, l_i, acc = _fresh_state(BLOCK_M, HEAD_DIM, s_layout, o_layout)
            mbarrier.wait(q_ready, n_items & 1)
            for j in range(n_tiles):
                g = done + j
                slot = g % STAGES
                start, lo, end = _tile(j, n_lut, n_tiles, use_lut, lut_row, a_row, kv_lo, kv_hi, BLOCK_N)
                mbarrier.wait(ready.index(slot), (g // STAGES) & 1)
                acc, m_i, l_i = _attend_tile(q_smem, k_smem.index(slot), v_smem.index(slot), acc, m_i, l_i, start, lo, end,
                                             qk_scale, BLOCK_M, BLOCK_N, s_layout, o_layout)
                _cta_barrier()  # both warpgroups are past this slot (and Q, on the last tile)
                mbarrier.arrive(empty.index(slot))
            if n_tiles == 0:
                _cta_barrier()
            mbarrier.arrive(q_empty)
            done += n_tiles
            n_items += 1
            _epilogue(acc, m_i, l_i, O, LSE, b, h, row0, row1, H, SEQ_Q, stride_ob, stride_os, stride_oh,
                      RETURN_LSE, HEAD_DIM, BLOCK_M, s_layout, o_layout, _store_layout(HEAD_DIM, num_warps))

    @gluon.jit
    def _fwd_v2(q_desc, k_desc, v_desc, O, LSE, LUT, CNT, WORK, DROWS, ATILES, ACNT,
                stride_ob, stride_os, stride_oh, stride_lut_h, stride_lut_q, stride_ab, stride_acnt,
                B, H, SEQ_Q, SEQ_KV, NQB, NQT, NKB, n_work, q_lo, q_hi, kv_lo, kv_hi, qk_scale,
                HEAD_DIM: gl.constexpr, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, STAGES: gl.constexpr,
                RETURN_LSE: gl.constexpr):
        dtype: gl.constexpr = q_desc.dtype
        q_smem = gl.allocate_shared_memory(dtype, [BLOCK_M, HEAD_DIM], q_desc.layout)
        k_smem = gl.allocate_shared_memory(dtype, [STAGES, BLOCK_N, HEAD_DIM], k_desc.layout)
        v_smem = gl.allocate_shared_memory(dtype, [STAGES, BLOCK_N, HEAD_DIM], v_desc.layout)
        q_ready = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        q_empty = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
        empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
        mbarrier.init(q_ready, count=1)
        mbarrier.init(q_empty, count=1)
        for i in gl.static_range(STAGES):
            mbarrier.init(ready.index(i), count=1)
            mbarrier.init(empty.index(i), count=1)
        fence_async_shared()
        gl.warp_specialize([
            (_v2_consumer, (q_smem, k_smem, v_smem, q_ready, q_empty, ready, empty, O, LSE,
                            LUT, CNT, WORK, DROWS, ATILES, ACNT, stride_ob, stride_os, stride_oh,
                            stride_lut_h, stride_lut_q, stride_ab, stride_acnt,
                            B, H, SEQ_Q, NQB, NQT, NKB, n_work, q_lo, q_hi, kv_lo, kv_hi, qk_scale,
                            HEAD_DIM, BLOCK_M, BLOCK_N, STAGES, RETURN_LSE)),
            (_v2_producer, (q_desc, k_desc, v_desc, q_smem, k_smem, v_smem, q_ready, q_empty, ready, empty,
                            LUT, CNT, WORK, DROWS, ATILES, ACNT, stride_lut_h, stride_lut_q, stride_ab, stride_acnt,
                            B, SEQ_Q, SEQ_KV, NQB, NQT, NKB, n_work, q_lo, q_hi, kv_lo, kv_hi,
                            HEAD_DIM, BLOCK_M, BLOCK_N, STAGES)),
        ], [1], [40])  # the TMA warp needs few registers (setmaxnreg); the consumers get the rest
        mbarrier.invalidate(q_ready)
        mbarrier.invalidate(q_empty)
        for i in gl.static_range(STAGES):
            mbarrier.invalidate(ready.index(i))
            mbarrier.invalidate(empty.index(i))


    # ---- v3: one query half per consumer warpgroup, QK^T(j+1) issued before softmax(j) ---------
    @gluon.jit
    def _next_item(item_smem, q_ready, n_items):
        """The work index the producer published with this item's Q (>= n_work: no more work)."""
        mbarrier.wait(q_ready, n_items & 1)
        return gl.max(item_smem.load(gl.BlockedLayout([1], [32], [gl.num_warps()], [0])), axis=0)

    @gluon.jit
    def _fp8_item_scales(Q8, QS, KS, KMEAN, bh, rows, row_ok, SEQ_Q, qk_scale, RETURN_LSE: gl.constexpr,
                         HEAD_DIM: gl.constexpr, s_layout: gl.constexpr):
        """FP8, per item: each row's score scale (Q's dequantisation scale times the softmax scale) and
        the base-2 lse correction (K smoothing shifted every score of a row by q . mean(K); P carries 448)."""
        row_scale = gl.load(QS + bh * SEQ_Q + rows, mask=row_ok, other=0.0) * qk_scale
        lse_shift = gl.zeros_like(row_scale)
        if RETURN_LSE:  # q8 holds Q * k_scale / q_scale: q . mean(K) = sum(q8 * mean / k_scale) * q_scale
            st: gl.constexpr = _store_layout(HEAD_DIM, 4)
            offs_d = gl.arange(0, HEAD_DIM, layout=gl.SliceLayout(0, st))
            r = gl.convert_layout(rows, gl.SliceLayout(1, st))
            q8 = gl.load(Q8 + (bh.to(gl.int64) * SEQ_Q + gl.expand_dims(r, 1)) * HEAD_DIM + gl.expand_dims(offs_d, 0),
                         mask=gl.expand_dims(r < SEQ_Q, 1), other=0.0)
            km = gl.load(KMEAN + bh * HEAD_DIM + offs_d) / gl.load(KS + bh * HEAD_DIM + offs_d)
            dot = gl.sum(q8.to(gl.float32) * gl.expand_dims(km, 0), axis=1)
            lse_shift = gl.convert_layout(dot, gl.SliceLayout(1, s_layout)) * row_scale - 8.807354922057604  # log2(448)
        return row_scale, lse_shift

    @gluon.jit
    def _v3_consumer(WG: gl.constexpr, q_smem, k_smem, v_smem, item_smem, q_ready, q_empty, ready, empty, O, LSE,
                     LUT, CNT, WORK, DROWS, ATILES, ACNT, Q8, QS, KS, VS, KMEAN, stride_ob, stride_os, stride_oh,
                     stride_lut_h, stride_lut_q, stride_ab, stride_acnt,
                     B, H, SEQ_Q, NQB, NQT, NKB, n_work, q_lo, q_hi, kv_lo, kv_hi, qk_scale,
                     HEAD_DIM: gl.constexpr, BLOCK_N: gl.constexpr, STAGES: gl.constexpr,
                     RETURN_LSE: gl.constexpr):
        """Rows [64*WG, 64*WG + 64) of every 128-row work item, over the shared K/V ring.

        Per tile j: issue S(j) = Q K(j)^T and O += P(j-1) V(j-1) back to back, wait for S(j) only,
        softmax(j) while the PV MMA runs, then wait PV, release slot j-1 (one arrive of the two the
        slot needs) and rescale O. Q is released after the item's last QK^T, so the next item's Q
        loads under the last PV and the epilogue. No barrier with the other warpgroup.
        FP8 (e4m3 operands): the same loop with per-row score scales, P times 448 in e4m3, V
        transposed in the ring and V's per-channel scale applied in the epilogue.
        """
        HALF: gl.constexpr = 64
        dtype: gl.constexpr = q_smem.dtype
        FP8: gl.constexpr = dtype.primitive_bitwidth == 8
        K_INSTR: gl.constexpr = 256 // dtype.primitive_bitwidth  # wgmma's K: 32 bytes
        P_LOG2: gl.constexpr = 8.807354922057604 if FP8 else 0.0  # log2(448)
        s_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                          instr_shape=[16, BLOCK_N, K_INSTR])
        o_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                          instr_shape=[16, HEAD_DIM, K_INSTR])
        q_buf = q_smem.index(WG)
        done = 0
        n_items = 0
        t = _next_item(item_smem, q_ready, n_items)
        while t < n_work:
            b, h, row0, row1, n_lut, n_tiles, use_lut, lut_row, a_row = _item(
                t, B, WORK, NQB, NQT, CNT, DROWS, NKB, q_lo, q_hi, LUT, ATILES, ACNT, stride_lut_h, stride_lut_q,
                stride_ab, stride_acnt, 2 * HALF)
            half0 = row0 + WG * HALF
            half1 = gl.minimum(half0 + HALF, row1)
            if FP8:
                rows = half0 + gl.arange(0, HALF, layout=gl.SliceLayout(1, s_layout))
                row_scale, lse_shift = _fp8_item_scales(Q8, QS, KS, KMEAN, b * H + h, rows, rows < half1, SEQ_Q,
                                                        qk_scale, RETURN_LSE, HEAD_DIM, s_layout)
            else:
                row_scale = gl.full([HALF], qk_scale, gl.float32, layout=gl.SliceLayout(1, s_layout))
            m_i, l_i, acc = _fresh_state(HALF, HEAD_DIM, s_layout, o_layout)
            if n_tiles > 0:
                slot = done % STAGES
                mbarrier.wait(ready.index(slot), (done // STAGES) & 1)
                s = warpgroup_mma(q_buf, k_smem.index(slot).permute((1, 0)),
                                  gl.zeros([HALF, BLOCK_N], gl.float32, layout=s_layout), use_acc=False, is_async=True)
                s = warpgroup_mma_wait(num_outstanding=0, deps=(s,))
                mbarrier.arrive(q_empty, pred=n_tiles == 1)
                start, lo, end = _tile(0, n_lut, n_tiles, use_lut, lut_row, a_row, kv_lo, kv_hi, BLOCK_N)
                p, m_i, l_i, alpha = _online_softmax(s, m_i, l_i, start, lo, end, row_scale, P_LOG2, BLOCK_N, s_layout)
                for j in range(1, n_tiles):
                    g = done + j
                    pslot = slot
                    slot = g % STAGES
                    mbarrier.wait(ready.index(slot), (g // STAGES) & 1)
                    s = warpgroup_mma(q_buf, k_smem.index(slot).permute((1, 0)),
                                      gl.zeros([HALF, BLOCK_N], gl.float32, layout=s_layout), use_acc=False,
                                      is_async=True)
                    acc = warpgroup_mma(_p_operand(p, dtype, o_layout), _v_operand(v_smem.index(pslot), FP8), acc,
                                        is_async=True)
                    s = warpgroup_mma_wait(num_outstanding=1, deps=(s,))
                    mbarrier.arrive(q_empty, pred=j == n_tiles - 1)
                    start, lo, end = _tile(j, n_lut, n_tiles, use_lut, lut_row, a_row, kv_lo, kv_hi, BLOCK_N)
                    p, m_i, l_i, alpha = _online_softmax(s, m_i, l_i, start, lo, end, row_scale, P_LOG2, BLOCK_N, s_layout)
                    acc = warpgroup_mma_wait(num_outstanding=0, deps=(acc,))
                    mbarrier.arrive(empty.index(pslot))
                    acc = _rescale(acc, alpha, o_layout)
                acc = warpgroup_mma(_p_operand(p, dtype, o_layout), _v_operand(v_smem.index(slot), FP8), acc,
                                    is_async=True)
                acc = warpgroup_mma_wait(num_outstanding=0, deps=(acc,))
                mbarrier.arrive(empty.index(slot))
            else:
                mbarrier.arrive(q_empty)
            done += n_tiles
            n_items += 1
            if FP8:  # V's per-channel scale; the lse's shifts (m_i is not used past here)
                cols = gl.arange(0, HEAD_DIM, layout=gl.SliceLayout(0, o_layout))
                acc = acc * gl.expand_dims(gl.load(VS + (b * H + h) * HEAD_DIM + cols), 0)
                m_i = m_i + lse_shift
            _epilogue(acc, m_i, l_i, O, LSE, b, h, half0, half1, H, SEQ_Q,
                      stride_ob, stride_os, stride_oh, RETURN_LSE, HEAD_DIM, HALF, s_layout, o_layout, o_layout)
            t = _next_item(item_smem, q_ready, n_items)

    @gluon.jit
    def _v3_producer(q_desc, k_desc, v_desc, q_smem, k_smem, v_smem, item_smem, q_ready, q_empty, ready, empty,
                     LUT, CNT, WORK, DROWS, ATILES, ACNT, COUNTER, v_pad, stride_lut_h, stride_lut_q, stride_ab, stride_acnt,
                     B, H, SEQ_Q, SEQ_KV, NQB, NQT, NKB, n_work, q_lo, q_hi, kv_lo, kv_hi,
                     HEAD_DIM: gl.constexpr, BLOCK_N: gl.constexpr, STAGES: gl.constexpr):
        """Takes the next work index from a global atomic counter (a CTA that finishes early takes
        more: no static imbalance, and CTAs in flight stay on the same heads of the head-major
        schedule), publishes it to the consumers with its Q (two 64-row halves), then streams its key
        tiles into the ring. A final index >= n_work ends them.
        Coordinates: bf16/fp16 read the [B*S, H*D] row views of q/k/v; FP8 reads quantize_fp8's
        head-major copies, q8/k8 as [B*H*S, D] and V transposed as [B*H*D, S_pad] (token t in column
        v_pad + t: every tile's column is then 16-byte aligned, as TMA needs)."""
        dtype: gl.constexpr = q_desc.dtype
        FP8: gl.constexpr = dtype.primitive_bitwidth == 8
        kv_bytes: gl.constexpr = 2 * BLOCK_N * HEAD_DIM * dtype.primitive_bitwidth // 8
        q_bytes: gl.constexpr = 128 * HEAD_DIM * dtype.primitive_bitwidth // 8
        done = 0
        n_items = 0
        t = 0
        while t < n_work:
            mbarrier.wait(q_empty, (n_items & 1) ^ 1)  # both consumers are past the last Q (and its index)
            t = gl.atomic_add(COUNTER, 1)
            item_smem.store(gl.full([1], t, gl.int32, layout=gl.BlockedLayout([1], [32], [gl.num_warps()], [0])))
            if t < n_work:
                b, h, row0, row1, n_lut, n_tiles, use_lut, lut_row, a_row = _item(
                    t, B, WORK, NQB, NQT, CNT, DROWS, NKB, q_lo, q_hi, LUT, ATILES, ACNT, stride_lut_h, stride_lut_q,
                    stride_ab, stride_acnt, 128)
                if FP8:  # row = (sample, head, token), column = channel; V^T: row = (sample, head, channel)
                    q_row = (b * H + h) * SEQ_Q + row0
                    k_row0 = (b * H + h) * SEQ_KV
                    col = 0
                    v_row = (b * H + h) * HEAD_DIM
                else:  # row = (sample, token), column = (head, channel)
                    q_row = b * SEQ_Q + row0
                    k_row0 = b * SEQ_KV
                    col = h * HEAD_DIM
                mbarrier.expect(q_ready, q_bytes)
                _tma_load(q_desc, [q_row, col], q_ready, q_smem.index(0))
                _tma_load(q_desc, [q_row + 64, col], q_ready, q_smem.index(1))
                for j in range(n_tiles):
                    g = done + j
                    slot = g % STAGES
                    start, lo, end = _tile(j, n_lut, n_tiles, use_lut, lut_row, a_row, kv_lo, kv_hi, BLOCK_N)
                    mbarrier.wait(empty.index(slot), ((g // STAGES) & 1) ^ 1)
                    if FP8:  # V^T's column: v_pad + token
                        _load_kv(k_desc, v_desc, ready.index(slot), k_smem.index(slot), v_smem.index(slot),
                                 k_row0 + start, col, v_row, v_pad + start, kv_bytes, True)
                    else:
                        _load_kv(k_desc, v_desc, ready.index(slot), k_smem.index(slot), v_smem.index(slot),
                                 k_row0 + start, col, k_row0 + start, col, kv_bytes, True)
                done += n_tiles
            else:
                mbarrier.arrive(q_ready)
            n_items += 1

    @gluon.jit
    def _fwd_v3(q_desc, k_desc, v_desc, O, LSE, LUT, CNT, WORK, DROWS, ATILES, ACNT, COUNTER, Q8, QS, KS, VS, KMEAN, v_pad,
                stride_ob, stride_os, stride_oh, stride_lut_h, stride_lut_q, stride_ab, stride_acnt,
                B, H, SEQ_Q, SEQ_KV, NQB, NQT, NKB, n_work, q_lo, q_hi, kv_lo, kv_hi, qk_scale,
                HEAD_DIM: gl.constexpr, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, STAGES: gl.constexpr,
                RETURN_LSE: gl.constexpr):
        dtype: gl.constexpr = q_desc.dtype
        gl.static_assert(BLOCK_M == 128, "v3 splits 128-row query blocks over two warpgroups")
        q_smem = gl.allocate_shared_memory(dtype, [2, 64, HEAD_DIM], q_desc.layout)
        k_smem = gl.allocate_shared_memory(dtype, [STAGES, BLOCK_N, HEAD_DIM], k_desc.layout)
        if dtype.primitive_bitwidth == 8:  # V transposed (K-major for the e4m3 PV product)
            v_smem = gl.allocate_shared_memory(dtype, [STAGES, HEAD_DIM, BLOCK_N], v_desc.layout)
        else:
            v_smem = gl.allocate_shared_memory(dtype, [STAGES, BLOCK_N, HEAD_DIM], v_desc.layout)
        item_smem = gl.allocate_shared_memory(gl.int32, [1], gl.SwizzledSharedLayout(1, 1, 1, [0]))
        q_ready = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        q_empty = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
        empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
        mbarrier.init(q_ready, count=1)
        mbarrier.init(q_empty, count=2)  # both warpgroups release Q and every slot
        for i in gl.static_range(STAGES):
            mbarrier.init(ready.index(i), count=1)
            mbarrier.init(empty.index(i), count=2)
        fence_async_shared()
        gl.warp_specialize([
            (_v3_consumer, (0, q_smem, k_smem, v_smem, item_smem, q_ready, q_empty, ready, empty, O, LSE,
                            LUT, CNT, WORK, DROWS, ATILES, ACNT, Q8, QS, KS, VS, KMEAN, stride_ob, stride_os, stride_oh,
                            stride_lut_h, stride_lut_q, stride_ab, stride_acnt,
                            B, H, SEQ_Q, NQB, NQT, NKB, n_work, q_lo, q_hi, kv_lo, kv_hi, qk_scale,
                            HEAD_DIM, BLOCK_N, STAGES, RETURN_LSE)),
            (_v3_consumer, (1, q_smem, k_smem, v_smem, item_smem, q_ready, q_empty, ready, empty, O, LSE,
                            LUT, CNT, WORK, DROWS, ATILES, ACNT, Q8, QS, KS, VS, KMEAN, stride_ob, stride_os, stride_oh,
                            stride_lut_h, stride_lut_q, stride_ab, stride_acnt,
                            B, H, SEQ_Q, NQB, NQT, NKB, n_work, q_lo, q_hi, kv_lo, kv_hi, qk_scale,
                            HEAD_DIM, BLOCK_N, STAGES, RETURN_LSE)),
            (_v3_producer, (q_desc, k_desc, v_desc, q_smem, k_smem, v_smem, item_smem, q_ready, q_empty, ready, empty,
                            LUT, CNT, WORK, DROWS, ATILES, ACNT, COUNTER, v_pad, stride_lut_h, stride_lut_q, stride_ab,
                            stride_acnt, B, H, SEQ_Q, SEQ_KV, NQB, NQT, NKB, n_work, q_lo, q_hi, kv_lo, kv_hi,
                            HEAD_DIM, BLOCK_N, STAGES)),
        ], [4, 1], [240, 24])
        mbarrier.invalidate(q_ready)
        mbarrier.invalidate(q_empty)
        for i in gl.static_range(STAGES):
            mbarrier.invalidate(ready.index(i))
            mbarrier.invalidate(empty.index(i))

# ---- host side ----------------------------------------------------------------------------
_SCALARS = ("stride_ob", "stride_os", "stride_oh", "stride_lut_h", "stride_lut_q", "stride_ab", "stride_acnt",
            "B", "H", "SEQ_Q", "SEQ_KV", "NQB", "NQT", "NKB", "n_work", "q_lo", "q_hi", "kv_lo", "kv_hi")
_TORCH = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp8": torch.float8_e4m3fn}


def _descriptors(rows_q: torch.Tensor, rows_k: torch.Tensor, rows_v: torch.Tensor, cfg: GluonConfig) -> tuple:
    """TMA descriptors over 2-D views: Q boxes [BM, D] (v3: [64, D]), K boxes [BN, D], V boxes [BN, D]
    (FP8: V transposed, boxes [D, BN])."""
    dt = {"bf16": gl.bfloat16, "fp16": gl.float16, "fp8": gl.float8e4nv}[cfg.dtype]
    q_box = 64 if cfg.version == 3 else cfg.block_m  # v3: one 64-row half per consumer warpgroup
    v_box = [cfg.head_dim, cfg.block_n] if cfg.dtype == "fp8" else [cfg.block_n, cfg.head_dim]
    out = []
    for t, box in ((rows_q, [q_box, cfg.head_dim]), (rows_k, [cfg.block_n, cfg.head_dim]), (rows_v, v_box)):
        out.append(GluonDescriptor(t, list(t.shape), list(t.stride()), box, gl.NVMMASharedLayout.get_default_for(box, dt)))
    return tuple(out)


def _kernel(cfg: GluonConfig):
    kernels = {2: _fwd_v2, 3: _fwd_v3}
    if cfg.version not in kernels:
        raise ValueError(f"Gluon kernel version {cfg.version} is not built (have: {sorted(kernels)})")
    return kernels[cfg.version]


def _constexprs(cfg: GluonConfig, return_lse: bool) -> dict:
    out = {"HEAD_DIM": cfg.head_dim, "BLOCK_M": cfg.block_m, "BLOCK_N": cfg.block_n, "STAGES": cfg.stages,
           "RETURN_LSE": return_lse}
    return out


def _ctas_per_sm(cfg: GluonConfig) -> int:
    """Resident CTAs per SM for the persistent grid: v3 uses 240 registers per consumer thread (one
    CTA); v2 (4 warps) fits two when shared memory allows."""
    return 1 if cfg.version == 3 else max(1, min(2, SMEM_LIMIT // cfg.smem_bytes))


def gluon_block_sparse_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: BlockLayout, scale: float,
                                 return_lse: bool = False, fp8: Fp8Inputs | None = None, out: torch.Tensor | None = None,
                                 config: GluonConfig | None = None,
                                 ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Launch the sm90 Gluon kernel; same contract as triton_block_sparse_attention (q/k/v [B, S, H, D]).

    ``fp8``: quantize_fp8's output for these q/k/v (the kernel reads it instead of q/k/v; v3 only).
    ``config``: a GluonConfig (default: pick_gluon_config's). Raises ValueError when
    gluon_unsupported() names a reason (the dispatcher asks first and falls back to the classic
    kernel), so a wrong shape never runs silently.
    """
    why = gluon_unsupported(q, k, v, layout, fp8=fp8 is not None)
    if why:
        raise ValueError(why)
    B, Sq, H, D = q.shape
    Skv = k.shape[1]
    out = torch.empty_like(q) if out is None else out
    lse = torch.empty(B, H, Sq, dtype=torch.float32, device=q.device) if return_lse else out
    if fp8 is None:
        cfg = config or pick_gluon_config(D, layout.block_m, layout.block_n, q.dtype)
        qd, kd, vd = _descriptors(_as_rows(q), _as_rows(k), _as_rows(v), cfg)
        side = (out,) * 5 + (0,)  # Q8, QS, KS, VS, KMEAN, v_pad: read by FP8 variants only
        atiles, acnt = always_tiles(layout, cfg.block_n)
    else:
        cfg = config or pick_gluon_config(D, layout.block_m, layout.block_n, torch.float8_e4m3fn)
        qd, kd, vd = _descriptors(fp8.q.view(B * H * Sq, D), fp8.k.view(B * H * Skv, D),
                                  fp8.v_t.view(B * H * D, fp8.v_t.shape[-1]), cfg)
        if (layout.kv_range[0] + fp8.v_pad) % 16:
            raise ValueError(f"FP8 V's first region column is not 16-byte aligned: quantise with "
                             f"quantize_fp8(..., v_pad=fp8_v_pad(layout)) (= {fp8_v_pad(layout)}, got {fp8.v_pad})")
        side = (fp8.q, fp8.q_scale, fp8.k_scale, fp8.v_scale, fp8.k_mean, fp8.v_pad)
        atiles, acnt = always_tiles(layout, cfg.block_n, fp8.v_pad, 16)
    drows = layout.dense_row_blocks if layout.dense_row_blocks.numel() else layout.counts
    n_work = layout.schedule.numel() * B
    n_sm = torch.cuda.get_device_properties(q.device).multi_processor_count
    grid = max(1, min(n_work, n_sm * _ctas_per_sm(cfg)))
    work = work_order(layout, B)
    many = atiles.shape[0] > 1
    extra = (torch.zeros(1, dtype=torch.int32, device=q.device), *side) if cfg.version == 3 else ()  # the work counter
    _kernel(cfg)[(grid,)](
        qd, kd, vd, out, lse, layout.lut, layout.counts, work, drows, atiles, acnt, *extra,
        out.stride(0), out.stride(1), out.stride(2), layout.lut.stride(0), layout.lut.stride(1),
        atiles.stride(0) if many else 0, 1 if many else 0,
        B, H, Sq, Skv, layout.num_q_blocks, layout.num_q_blocks + layout.dense_row_blocks.shape[0], layout.num_kv_blocks,
        n_work, *layout.q_range, *layout.kv_range, scale * LOG2E, num_warps=cfg.num_warps, **_constexprs(cfg, return_lse),
    )
    return (out, lse) if return_lse else out


def compile_sm90(cfg: GluonConfig, return_lse: bool = True):
    """Compile one variant for sm90 without a GPU (CPU tensors stand in for the descriptors' bases).

    Returns triton's CompiledKernel (asm: ttgir, ptx, cubin; metadata: shared, num_warps). For tests
    and for reading the PTX/SASS offline.
    """
    import triton
    from triton._C.libtriton import native_specialize_impl
    from triton.backends.compiler import BaseBackend, GPUTarget

    dt = _TORCH[cfg.dtype]
    fake = torch.zeros(256, cfg.head_dim * 2, dtype=dt)
    descs = _descriptors(fake, fake, fake, cfg)
    sig = {n: native_specialize_impl(BaseBackend, d, False, True, True)[0] for n, d in zip(("q_desc", "k_desc", "v_desc"), descs)}
    sig.update({"O": "*" + ("bf16" if cfg.dtype == "fp8" else cfg.dtype), "LSE": "*fp32", "LUT": "*i32", "CNT": "*i32", "WORK": "*i32", "DROWS": "*i32",
                "ATILES": "*i32", "ACNT": "*i32"})
    if cfg.version == 3:
        sig.update({"COUNTER": "*i32", "Q8": "*fp8e4nv" if cfg.dtype == "fp8" else "*" + cfg.dtype,
                    "QS": "*fp32", "KS": "*fp32", "VS": "*fp32", "KMEAN": "*fp32", "v_pad": "i32"})
    sig.update({n: "i32" for n in _SCALARS})
    sig["qk_scale"] = "fp32"
    consts = _constexprs(cfg, return_lse)
    sig.update({n: "constexpr" for n in consts})
    src = gluon._runtime.GluonASTSource(_kernel(cfg), signature=sig, constexprs=consts)
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": cfg.num_warps})
