"""Per-call block selections written into a table's LUT on the device, with no host round trip.

Why on the device: the mask of a content-following plan (sampled, the oracle, draft-guided) was
resolved on the host every call (top-k, layout build, densities copied back): several milliseconds
and a stream synchronisation per layer call. Here the estimate's scores go through ``topk`` and a
sort straight into the LUT rows of the table's layout; a top-k row keeps a fixed number of blocks, so
the counts, the work schedule and the reported density stay what the table was built with. A per-call
mask (draft) keeps any number: its counts, the schedule and a device-side density change in place.
"""
from __future__ import annotations

import torch

from ..kernels import BlockLayout
from ..kernels.sampled_mass import scratch_elements
from ..patterns import VideoGeometry
from ..patterns.registry import PATTERNS, behaviour, estimate_share
from ..patterns.sampled import default_rows, write_rows
from .compiler import CallTable, Selection
from .context import StepContext


def due(sel: Selection, ctx: StepContext) -> bool:
    """Whether this call estimates afresh: the forward's context says its period is due (the router decides it
    once per forward: CFG's second pass reuses the first's estimate), or this selection never estimated."""
    return sel.last is None or sel.every in ctx.refresh


def refresh(table: CallTable, ctx: StepContext, q: torch.Tensor, k: torch.Tensor, g: VideoGeometry,
            scale: float | None, scratch: dict) -> torch.Tensor | None:
    """Re-estimate the table's due selections into its layout; returns per-head densities [H] on the device
    for the heads whose density is decided per call (mask selections), else None. ``scratch``: buffers reused
    across calls (the sampled-mass kernel's)."""
    layout = table.layout
    changed = counts = False
    density = None
    for sel in table.selections:
        spec = PATTERNS[sel.pattern]
        if due(sel, ctx):
            sel.last, changed = ctx.step, True
            fn = behaviour(sel.pattern)
            if spec.selection == "top_k":
                extra = {"scratch": _scratch(scratch, q, sel, g)} if sel.pattern == "sampled" and q.is_cuda else {}
                scores = fn(q, k, g, scale=scale, heads=sel.heads, **sel.params, **extra)
                write_rows(layout.lut, sel.heads, sel.keep, sel.kmax, scores)
            else:
                mask = fn(q, k, g, scale=scale, heads=sel.heads, **sel.params)
                share = estimate_share(sel.pattern, {**sel.params, "every": sel.every}, g.block)
                sel.density.copy_(_write_mask(layout, sel.heads.long(), mask, g) + share)
                counts = True
        if sel.density is not None:  # every call reports its mask's density, the calls between estimates too
            density = torch.zeros(len(table.labels), device=q.device) if density is None else density
            density = density.index_copy(0, sel.heads.long(), sel.density)
    if counts:
        layout.reschedule()
    if changed and table.fp8_layout is not None:
        idx = table.fp8_index
        table.fp8_layout.lut.copy_(layout.lut.index_select(0, idx))
        table.fp8_layout.counts.copy_(layout.counts.index_select(0, idx))
        table.fp8_layout.reschedule()
    return density


def _write_mask(layout: BlockLayout, heads: torch.Tensor, mask: torch.Tensor, g: VideoGeometry) -> torch.Tensor:
    """Write a per-call mask's rows and counts into ``layout``; returns its heads' computed densities [len(heads)]."""
    cap = layout.lut.shape[-1]
    order = torch.argsort((~mask).to(torch.int8), dim=-1, stable=True)[..., :cap]  # kept blocks first, ascending
    layout.lut[heads] = order.to(torch.int32)
    layout.counts[heads] = mask.sum(-1).to(torch.int32)
    n = torch.full((g.num_blocks,), g.block, dtype=torch.float32, device=mask.device)
    n.narrow(0, g.num_blocks - 1, 1).fill_(g.video_tokens - (g.num_blocks - 1) * g.block)  # no host tensor: graph-safe
    return (mask.float() * n[:, None] * n[None, :]).sum((-1, -2)) / g.video_tokens ** 2


def _scratch(scratch: dict, q: torch.Tensor, sel: Selection, g: VideoGeometry) -> torch.Tensor:
    """The sampled-mass kernel's scratch (a float per sampled row and key block), one buffer per device
    shared by every layer's estimates, grown on demand."""
    rows = min(sel.params.get("rows", default_rows(g.block)), g.block)
    need = scratch_elements(q.shape[0], sel.heads.numel(), g.num_blocks, rows)
    buf = scratch.get(str(q.device))
    if buf is None or buf.numel() < need:
        buf = scratch[str(q.device)] = torch.empty(need, dtype=torch.float32, device=q.device)
    return buf
