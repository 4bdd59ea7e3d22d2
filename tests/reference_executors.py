"""float64 reference executors: a router running these computes each plan by the readable references."""
from __future__ import annotations

from videoaccel.kernels import BlockLayout
from videoaccel.kernels.reference import layout_attention, pyramid_reference
from videoaccel.routing import EXECUTORS
from videoaccel.routing.executors import key_mask


def dense(q, k, v, group, call):
    if key_mask(call, q) is not None:  # padding masks: SDPA with the mask is the reference
        return EXECUTORS["dense"](q, k, v, group, call)
    return layout_attention(q, k, v, BlockLayout.dense(q.shape[2], q.shape[1], k.shape[1], device=q.device), call.scale)[0].to(q.dtype)


def sparse(q, k, v, group, call):
    return layout_attention(q, k, v, group.layout, call.scale)[0].to(q.dtype)


def pyramid(q, k, v, group, call):
    g = call.geometry
    return pyramid_reference(q, k, v, group.levels, g.block, g.video_range, g.text_range, compensate=group.compensate,
                             scale=call.scale, text_lengths=list(call.text_lengths) if call.text_lengths else None).to(q.dtype)


REFERENCE = {**EXECUTORS, "dense": dense, "sparse": sparse, "pyramid": pyramid}
