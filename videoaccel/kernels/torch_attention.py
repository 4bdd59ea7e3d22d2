"""Block-sparse attention in plain PyTorch, for CPU tensors (no GPU, no Triton).

Same API and semantics as the Triton kernel: each query block gathers only its kept key
blocks (plus the always-visited ranges), so cost follows density. Computes in float32, one
head at a time to bound memory.
"""
from __future__ import annotations

import math

import torch

from .layout import BlockLayout


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


def _attend(q, k, v, ok, scale):
    """q [B, N, M, D]; k/v [B, N, L, D]; ok bool [B|1, N|1, 1|M, L] -> (out, lse)."""
    s = (q @ k.transpose(-1, -2)) * scale
    s = s.masked_fill(~ok, -math.inf)
    lse = torch.logsumexp(s, -1)
    p = torch.exp(s - torch.where(torch.isinf(lse), 0.0, lse)[..., None])
    return p @ v, lse


def torch_block_sparse_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: BlockLayout,
                                 scale: float, return_lse: bool = False, out: torch.Tensor | None = None):
    B, Sq, H, D = q.shape
    dev = q.device
    out = torch.empty_like(q) if out is None else out
    lse_all = torch.empty(B, H, Sq, dtype=torch.float32, device=dev)
    bm, bn = layout.block_m, layout.block_n
    (qlo, qhi), (klo, khi) = layout.q_range, layout.kv_range
    nqb = layout.num_q_blocks
    a_idx, a_ok = _always_tokens(layout, B, dev)
    region = torch.arange(klo, khi, device=dev)
    for h in range(H):
        qh, kh, vh = (t[:, :, h].float() for t in (q, k, v))
        ka, va = kh.gather(1, a_idx[..., None].expand(-1, -1, D)), vh.gather(1, a_idx[..., None].expand(-1, -1, D))
        if nqb:
            rows = qlo + torch.arange(nqb * bm, device=dev)
            qb = qh[:, rows.clamp(max=Sq - 1)].reshape(B, nqb, bm, D)
            lut, cnt = layout.lut[h].long(), layout.counts[h]
            slot = torch.arange(lut.shape[1], device=dev)
            tok = klo + (lut[..., None] * bn + torch.arange(bn, device=dev)).reshape(nqb, -1)  # [NQB, MAXK*BN]
            tok_ok = ((slot < cnt[:, None])[..., None] & (tok.reshape(nqb, -1, bn) < khi)).reshape(nqb, -1)
            tok = tok.clamp(max=layout.seq_kv - 1)
            kg = torch.cat([kh[:, tok], ka[:, None].expand(-1, nqb, -1, -1)], 2)
            vg = torch.cat([vh[:, tok], va[:, None].expand(-1, nqb, -1, -1)], 2)
            ok = torch.cat([tok_ok[None].expand(B, -1, -1), a_ok[:, None].expand(-1, nqb, -1)], 2)[:, :, None]
            o, lse = _attend(qb, kg, vg, ok, scale)
            n = qhi - qlo
            out[:, qlo:qhi, h] = o.reshape(B, -1, D)[:, :n].to(q.dtype)
            lse_all[:, h, qlo:qhi] = lse.reshape(B, -1)[:, :n]
        dense_rows = torch.cat([torch.arange(0, qlo, device=dev), torch.arange(qhi, Sq, device=dev)])
        if dense_rows.numel():
            kd = torch.cat([kh[:, region], ka], 1)[:, None]
            vd = torch.cat([vh[:, region], va], 1)[:, None]
            ok = torch.cat([torch.ones(B, region.numel(), dtype=torch.bool, device=dev), a_ok], 1)[:, None, None]
            o, lse = _attend(qh[:, dense_rows][:, None], kd, vd, ok, scale)
            out[:, dense_rows, h] = o[:, 0].to(q.dtype)
            lse_all[:, h, dense_rows] = lse[:, 0]
    return (out, lse_all) if return_lse else out
