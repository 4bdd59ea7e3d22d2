"""The routed attention as one registered custom op, opaque to torch.compile.

``videoaccel::attention`` takes q/k/v and a small CPU int64 tensor ``route = [router id, layer]``.
The route is a tensor on purpose: dynamo guards tensors on shape and dtype only, so every block
of a compiled model (``compile_repeated_blocks`` compiles the blocks' shared code once) runs the
same graph with its own layer, with no recompiles across layers or steps. The op reads the two
ints on the host (a CPU tensor: no device sync) and calls the router, whose plan choice, layouts
and kernels stay plain eager code. It is tagged cudagraph-unsafe: plans change between steps, so
a CUDA graph must not freeze it (inductor's graph partitioning captures the code around it).
"""
from __future__ import annotations

import itertools
import weakref

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .router import AttentionRouter

_ROUTERS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_ids = itertools.count()


def register(router: AttentionRouter) -> int:
    """A process-unique id for ``router`` (held weakly: a dropped router frees its id)."""
    rid = next(_ids)
    _ROUTERS[rid] = router
    return rid


def route_tensor(router_id: int, layer: int) -> torch.Tensor:
    """The ``route`` argument of one layer's calls: bind it to the layer's processor before compiling."""
    return torch.tensor([router_id, layer], dtype=torch.int64)


@torch.library.custom_op("videoaccel::attention", mutates_args=(), tags=(torch.Tag.cudagraph_unsafe,))
def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None, route: torch.Tensor,
              scale: float | None = None, head_offset: int = 0, total_heads: int = 0) -> torch.Tensor:
    """q/k/v [B, S, H, D] -> [B, S, H, D] (contiguous); ``total_heads`` 0: H (no head sharding)."""
    rid, layer = route.tolist()
    router = _ROUTERS.get(rid)
    if router is None:
        raise RuntimeError("videoaccel: this attention's router is gone (the model was restored while still compiled?): "
                           "call torch._dynamo.reset() after videoaccel.restore()")
    out = router.attend(layer, q, k, v, attn_mask=attn_mask, scale=scale, head_offset=head_offset,
                        total_heads=total_heads or None)
    return out.contiguous()


@attention.register_fake
def _(q, k, v, attn_mask, route, scale=None, head_offset=0, total_heads=0):
    return q.new_empty(q.shape)
