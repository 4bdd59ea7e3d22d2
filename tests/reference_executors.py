"""float64 reference kernels: a router running these computes each plan by the readable references."""
from __future__ import annotations

import torch

from videoaccel.kernels import BlockLayout
from videoaccel.kernels.compensate import kept_blocks
from videoaccel.kernels.reference import layout_attention, pyramid_reference
from videoaccel.patterns.pyramid import THRESHOLDS
from videoaccel.patterns.registry import behaviour
from videoaccel.routing import Kernels
from videoaccel.routing.executors import dense as stock_dense, key_mask


def dense(q, k, v, call):
    if key_mask(call, q) is not None:  # padding masks: SDPA with the mask is the reference
        return stock_dense(q, k, v, call)
    return layout_attention(q, k, v, BlockLayout.dense(q.shape[2], q.shape[1], k.shape[1], device=q.device), call.scale)[0].to(q.dtype)


def sparse(q, k, v, layout, scale, return_lse, fp8, out):
    o, lse = layout_attention(q, k, v, layout, scale)
    out = torch.empty_like(q) if out is None else out
    active = [h for h in range(q.shape[2]) if h not in layout.idle_heads]
    out[:, :, active] = o[:, :, active].to(q.dtype)
    return (out, lse.float()) if return_lse else out


def _text(layout, batch):
    """(text range, per-sample valid lengths) of a layout built by patterns.build_layout."""
    if layout.kv_always is None:
        return (0, 0), None
    a = layout.kv_always[:, 0].tolist()
    lens = [hi - lo for lo, hi in a] * (batch if len(a) == 1 else 1)
    return (a[0][0], a[0][0] + max(lens)), lens


def compensate(q, k, v, out, lse, layout, heads, scale, kept=None):
    levels = torch.where(kept_blocks(layout, heads).bool(), 0, -1)
    text_range, lens = _text(layout, q.shape[0])
    hs = heads.tolist()
    ref = pyramid_reference(q[:, :, hs], k[:, :, hs], v[:, :, hs], levels, layout.block_m, layout.q_range, text_range,
                            compensate=True, scale=scale, text_lengths=lens)
    out[:, :, hs] = ref.to(out.dtype)


def pyramid(q, k, v, call, plans, compensate_flags, fp8):
    g = call.geometry
    top = (g.block // 16).bit_length() - 1
    outs = []
    for i, (p, c) in enumerate(zip(plans, compensate_flags)):
        lv = behaviour("pyramid")(q[:, :, i:i + 1], k[:, :, i:i + 1], g, tuple(p.kwargs.get("thresholds", THRESHOLDS))).clamp(max=top)
        outs.append(pyramid_reference(q[:, :, i:i + 1], k[:, :, i:i + 1], v[:, :, i:i + 1], lv, g.block, g.video_range,
                                      g.text_range, compensate=c, scale=call.scale,
                                      text_lengths=list(call.text_lengths) if call.text_lengths else None).to(q.dtype))
    return torch.cat(outs, 2)


REFERENCE = Kernels(dense=dense, sparse=sparse, compensate=compensate, pyramid=pyramid)
