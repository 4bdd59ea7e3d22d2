"""Block-sparse attention in plain PyTorch, for CPU tensors (no GPU, no Triton).

Same API and semantics as the Triton kernel, head roles included (dense heads as dense rows, idle
heads untouched). Keys are cut into blocks once per call (the
always-visited ranges become extra blocks); query blocks of every head that keep the same number
of key blocks form one batch whose kept blocks are gathered as whole rows (``index_select``) and
go through PyTorch's fused CPU attention in a single call. Cost follows density, and a layer
takes a handful of calls. The fused op is private (``aten._scaled_dot_product_flash_attention_for_cpu``)
because it is the one CPU kernel that also returns the log-sum-exp the pyramid merge needs.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .layout import BlockLayout

_FUSED = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu


def _always_tokens(layout: BlockLayout, batch: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Token indices [B, T] of the always-visited ranges and their validity mask."""
    if layout.kv_always is None:
        return torch.zeros(batch, 0, dtype=torch.long, device=device), torch.zeros(batch, 0, dtype=torch.bool, device=device)
    a = layout.kv_always.expand(batch, -1, -1).long()
    lens = (a[..., 1] - a[..., 0]).clamp_min(0)
    tmax = int(lens.max()) if lens.numel() else 0
    j = torch.arange(tmax, device=device)
    idx = (a[..., :1] + j).reshape(batch, -1)  # [B, R*tmax]
    ok = (j < lens[..., None]).reshape(batch, -1)
    return idx.clamp(max=layout.seq_kv - 1), ok


def _blocked(parts: list[torch.Tensor], block: int) -> torch.Tensor:
    """[B, H, N, block, D] from token runs [B, S_i, H, D], each zero-padded to whole blocks: one copy."""
    B, _, H, D = parts[0].shape
    sizes = [-(-p.shape[1] // block) * block for p in parts]
    buf = parts[0].new_empty(B, H, sum(sizes), D)
    at = 0
    for p, size in zip(parts, sizes):
        buf[:, :, at:at + p.shape[1]] = p.transpose(1, 2)
        buf[:, :, at + p.shape[1]:at + size] = 0
        at += size
    return buf.view(B, H, -1, block, D)


def _buckets(counts: torch.Tensor) -> list[int]:
    """Upper counts of at most three buckets of query blocks that minimise the padded work
    (sum of blocks x bucket maximum): few fused calls keep a shared, loaded CPU busy (each call is
    a parallel region whose threads must all meet) at little padding."""
    vals, num = counts.unique(return_counts=True)
    vals, num = vals.tolist(), num.tolist()
    best, cut = None, []
    for a in range(len(vals)):
        for b in range(a, len(vals)):
            tops = sorted({vals[a], vals[b], vals[-1]})
            work = sum(n * next(t for t in tops if t >= v) for v, n in zip(vals, num))
            if best is None or work < best:
                best, cut = work, tops
    return cut


def _attend(q, k, v, ok, scale):
    """q [B, G, M, D]; k/v [B, G, L, D]; ok bool [B|1, G, 1, L] or None (all valid) -> (out, lse [B, G, M]).
    Rows without a valid key give zeros and lse -inf, as in the Triton kernel."""
    if k.shape[2] == 0:
        return q.new_zeros(q.shape), q.new_full(q.shape[:3], -math.inf, dtype=torch.float32)
    bias = None if ok is None else torch.zeros(ok.shape, dtype=q.dtype, device=q.device).masked_fill_(~ok, -math.inf)
    out, lse = _FUSED(q, k, v, attn_mask=bias, scale=scale)
    if ok is not None:
        lse = lse.masked_fill(~ok.any(-1), -math.inf)
    return out, lse


def torch_block_sparse_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: BlockLayout,
                                 scale: float, return_lse: bool = False,
                                 out: torch.Tensor | None = None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    B, Sq, H, D = q.shape
    dev = q.device
    out = torch.empty_like(q) if out is None else out
    lse_all = torch.empty(B, H, Sq, dtype=torch.float32, device=dev)
    bm, bn = layout.block_m, layout.block_n
    (qlo, qhi), (klo, khi) = layout.q_range, layout.kv_range
    nqb, nkb = layout.num_q_blocks, layout.num_kv_blocks
    a_idx, a_ok = _always_tokens(layout, B, dev)
    bidx = torch.arange(B, device=dev)[:, None]
    kb, vb = (_blocked([t[:, klo:khi], t[bidx, a_idx]], bn) for t in (k, v))  # always-visited tokens: the last blocks
    nall = kb.shape[2]  # key blocks per head, always-visited ones last
    tok = torch.arange(nkb * bn, device=dev)
    tok_ok = torch.cat([(klo + tok < khi)[None].expand(B, -1), F.pad(a_ok, (0, -a_ok.shape[1] % bn))], 1)  # [B, nall*bn]
    blk_ok = tok_ok.reshape(B, nall, bn)
    extra = torch.arange(nkb, nall, device=dev)
    kflat, vflat = (t.reshape(B, H * nall, bn * D) for t in (kb, vb))
    n = qhi - qlo
    qflat = _blocked([q[:, qlo:qhi]], bm).view(B, H * nqb, bm * D)
    obuf = q.new_empty(B, H * nqb, bm * D)
    lbuf = torch.empty(B, H * nqb, bm, dtype=torch.float32, device=dev)
    counts = layout.counts.long()
    lut_head = torch.ones(H, dtype=torch.bool, device=dev)
    lut_head[list(layout.dense_heads + layout.idle_heads)] = False
    lo = -1
    for hi in _buckets(counts[lut_head]):  # query blocks keeping lo < count <= hi key blocks: one fused call, padded to hi
        h, qb = ((counts > lo) & (counts <= hi) & lut_head[:, None]).nonzero(as_tuple=True)
        g, lo = len(h), hi
        slot_ok = torch.arange(hi, device=dev) < counts[h, qb, None]  # [G, hi]
        ids = torch.cat([torch.where(slot_ok, layout.lut[h, qb, :hi].long(), 0), extra.expand(g, -1)], 1)  # [G, hi + NA]
        sel = (h[:, None] * nall + ids).flatten()
        kg, vg = (t.index_select(1, sel).view(B, g, -1, D) for t in (kflat, vflat))
        ok = blk_ok[:, ids] & F.pad(slot_ok, (0, len(extra)), value=True)[None, :, :, None]  # [B, G, hi + NA, bn]
        ok = None if bool(ok.all()) else ok.reshape(B, g, 1, -1)  # the unmasked fused path is faster
        qsel = h * nqb + qb
        o, lse = _attend(qflat.index_select(1, qsel).view(B, g, bm, D), kg, vg, ok, scale)
        obuf.index_copy_(1, qsel, o.reshape(B, g, bm * D).to(q.dtype))
        lbuf.index_copy_(1, qsel, lse)
    sparse_heads = lut_head.nonzero().flatten()
    if sparse_heads.numel():
        rows = obuf.view(B, H, nqb * bm, D)[:, sparse_heads, :n].transpose(1, 2)
        out[:, qlo:qhi].index_copy_(2, sparse_heads, rows)
        lse_all[:, sparse_heads, qlo:qhi] = lbuf.view(B, H, nqb * bm)[:, sparse_heads, :n]
    active = [h for h in range(H) if h not in layout.idle_heads]
    text_rows = torch.cat([torch.arange(0, qlo, device=dev), torch.arange(qhi, Sq, device=dev)])
    kd, vd = (t.reshape(B, H, nall * bn, D) for t in (kb, vb))
    ok = None if bool(tok_ok.all()) else tok_ok[:, None, None]
    # dense rows see the whole kv_range and the always-ranges: text rows of every active head, all rows of dense heads
    for heads, rows in ((active, text_rows), (list(layout.dense_heads), torch.arange(qlo, qhi, device=dev))):
        if heads and rows.numel():
            hs = torch.tensor(heads, device=dev)
            o, lse = _attend(q[:, rows][:, :, hs].transpose(1, 2), kd[:, hs], vd[:, hs], ok, scale)
            out[:, rows[:, None], hs] = o.transpose(1, 2).to(q.dtype)
            lse_all[:, hs[:, None], rows] = lse
    return (out, lse_all) if return_lse else out
