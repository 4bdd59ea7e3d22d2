"""Running a call's table: one launch for every head, at most one more for FP8 heads, one compensation epilogue.

The kernels a runner calls are one swappable set (``Kernels``: dense, layout launch, compensation,
pyramid), so a router can run float64 references instead (tests) without a branch in it. The default
set chooses a backend once per call shape (kernels/backends.py), and a choice that is not the one
wanted comes back as a reason the router counts in the report.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from ..kernels import BlockLayout, dense_attention
from ..kernels import backends
from ..kernels.compensate import compensate_, kept_blocks
from ..patterns import VideoGeometry
from ..patterns.pyramid import THRESHOLDS, pyramid_attention
from ..patterns.registry import behaviour
from .call_graphs import CallGraphs
from .compiler import CallTable
from .context import StepContext
from .estimate import refresh


@dataclass
class Call:
    """One attention call as the executors see it: its layer, the forward's step context, the softmax scale, the
    model's padding mask and (filled in by the router when a plan needs them) its geometry and text lengths;
    q/k/v travel beside it. Not ``router.AttentionCall``, the read-only view (tensors, step, timestep) an
    observer receives."""
    layer: int
    context: StepContext
    scale: float | None
    attn_mask: torch.Tensor | None = None  # boolean key-padding mask as given by the model
    geometry: VideoGeometry | None = None
    text_lengths: tuple[int, ...] | None = None  # valid text tokens per sample, when some are padding


def key_mask(call: Call, q: torch.Tensor) -> torch.Tensor | None:
    """bool [B, 1, 1, S] key mask: the model's (None: no padding)."""
    m = call.attn_mask
    if m is None:
        return None
    return m.reshape(q.shape[0], 1, 1, -1) if m.numel() == q.shape[0] * q.shape[1] else m  # self-attention: S_q == S_k


def dense(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, call: Call) -> torch.Tensor:
    """cuDNN SDPA on CUDA (kernels.dense_attention); SDPA with the padding mask when there is one."""
    mask = key_mask(call, q)
    if mask is None:
        return dense_attention(q, k, v, call.scale)
    return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask,
                                          scale=call.scale).transpose(1, 2)


def pyramid(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, call: Call, plans: list, compensate: list[bool], fp8: bool) -> torch.Tensor:
    """Pyramid heads (q/k/v of those heads only): their levels from this call's q/k, then the level passes."""
    g = call.geometry
    top = (g.block // 16).bit_length() - 1  # pooled blocks keep >= 16 keys
    estimate = behaviour("pyramid")
    levels = torch.stack([estimate(q[:, :, i:i + 1], k[:, :, i:i + 1], g, tuple(p.kwargs.get("thresholds", THRESHOLDS)))[0]
                          for i, p in enumerate(plans)]).clamp(max=top)
    outs = [pyramid_attention(q[:, :, i:i + 1], k[:, :, i:i + 1], v[:, :, i:i + 1], g, levels[i:i + 1], compensate=c,
                              text_lengths=list(call.text_lengths) if call.text_lengths else None, scale=call.scale, fp8=fp8)
            for i, c in enumerate(compensate)]
    return torch.cat(outs, 2)


@dataclass
class Kernels:
    """What a runner launches; tests swap in float64 references."""
    dense: Callable[..., torch.Tensor] = dense
    sparse: Callable[..., object] = None  # (q, k, v, layout, scale, return_lse, fp8, out) -> out or (out, lse); None: backends
    compensate: Callable[..., None] = compensate_
    pyramid: Callable[..., torch.Tensor] = pyramid


@dataclass
class Runner:
    kernels: Kernels = field(default_factory=Kernels)
    scratch: dict = field(default_factory=dict)  # the estimates' reusable buffers
    graphs: CallGraphs = field(default_factory=CallGraphs)  # short sequences: each call replayed as a CUDA graph
    _choices: dict = field(default_factory=dict)
    fallbacks: list[str] = field(default_factory=list)  # reasons of this call's kernel fallbacks, read by the router

    def run(self, table: CallTable, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, call: Call
            ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(output [B, S, H, D], per-head densities on the device where the call decided them, else None)."""
        self.fallbacks.clear()
        if table.layout is None:
            return self.kernels.dense(q, k, v, call), None
        if self.graphs.eligible(q, call.attn_mask):
            return self.graphs.run(self, table, q, k, v, call)
        return self.execute(table, q, k, v, call)

    def execute(self, table: CallTable, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, call: Call
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The launches of one call with a layout (the work a CUDA graph of the call holds)."""
        scale = q.shape[-1] ** -0.5 if call.scale is None else call.scale
        density = refresh(table, call.context, q, k, call.geometry, call.scale, self.scratch) if table.selections else None
        lse_needed = table.compensate is not None
        out = torch.empty_like(q)
        lse = None
        if len(table.layout.idle_heads) < q.shape[2]:
            res = self._launch(q, k, v, table.layout, scale, lse_needed, False, out)
            lse = res[1] if lse_needed else None
        if table.fp8:
            idx = table.fp8_index
            sub = [t.index_select(2, idx) for t in (q, k, v)]
            res = self._launch(*sub, table.fp8_layout, scale, lse_needed, True, None)
            out.index_copy_(2, idx, res[0] if lse_needed else res)
            if lse_needed:
                if lse is None:  # no bf16 launch ran: the FP8 heads' lse into a call-wide one
                    lse = torch.full((q.shape[0], q.shape[2], q.shape[1]), float("-inf"), device=q.device)
                lse.index_copy_(1, idx, res[1])
        if table.pyramid:
            idx = table.pyramid_index
            plans = [table.plans[h] for h in table.pyramid]
            sub = [t.index_select(2, idx) for t in (q, k, v)]
            out.index_copy_(2, idx, self.kernels.pyramid(*sub, call, plans, [p.compensate for p in plans],
                                                         any(p.precision == "fp8" for p in plans)))
        if lse_needed:
            kept = table.kept
            if kept is None:  # a static table keeps it; per-call rows change it (and a CUDA graph must not cache it)
                kept = kept_blocks(table.layout, table.compensate)
                if not table.selections:
                    table.kept = kept
            self.kernels.compensate(q, k, v, out, lse, table.layout, table.compensate, scale, kept=kept)
        if table.skip is not None:
            out.index_fill_(2, table.skip, 0.0)
        return out, density

    def _launch(self, q, k, v, layout: BlockLayout, scale: float, return_lse: bool, fp8: bool, out):
        if self.kernels.sparse is not None:
            return self.kernels.sparse(q, k, v, layout, scale, return_lse, fp8, out)
        key = (layout, q.shape, q.stride(), k.stride(), v.stride(), q.dtype, fp8)
        choice = self._choices.get(key)
        if choice is None:
            choice = self._choices[key] = backends.choose(q, k, v, layout, fp8)
        if choice[1]:
            self.fallbacks.append(f"{choice[1]}: ran the classic Triton kernel")
        return backends.run(choice[0], q, k, v, layout, scale, return_lse, fp8, out)
