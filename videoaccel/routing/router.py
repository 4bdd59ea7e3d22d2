"""The router: runs each self-attention call by the plans its profile gives (layer, step, timestep).

Per forward the step hook calls ``begin_forward``, which builds the ``StepContext`` every call of that
forward runs with. Per call: the heads' plans -> their ``CallTable`` (compiled once, compiler.py) ->
one run (executors.py) -> the report's statistics (host bookkeeping only: nothing on this path reads
the device). Observers (the profiler, attention statistics) see every call's q/k/v. Anything the
kernels cannot take runs dense explicitly: logged once per reason and counted in the report.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Callable, Iterator

import torch

from ..patterns import VideoGeometry
from ..patterns.token_order import sequence_index
from ..plans import Plan, Profile
from .compiler import CallTable, PlanCompiler
from .context import StepContext, estimate_periods
from .executors import Call, Runner
from .geometry import Fallback, call_geometry, check_head_dim, text_lengths as mask_text_lengths
from .notices import say_transfer, warm_up_for
from .op import register
from .stats import LayerStats, TransformerReport
from .steps import StepLog
from .timing import tick, tock

log = logging.getLogger("videoaccel")


@dataclass(frozen=True)
class AttentionCall:
    """What an observer receives: one self-attention call (q/k/v [B, S, H, D], before routing), read-only. Not
    ``executors.Call``, which carries what the kernels need (step context, scale, padding mask) and no tensors."""
    layer: int
    step: int
    timestep: float | None
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    geometry: VideoGeometry
    text_lengths: tuple[int, ...] | None  # valid text tokens per sample when the rest is padding


Observer = Callable[[AttentionCall], None]


class AttentionRouter:
    def __init__(self, profile: Profile, num_layers: int, heads: int, text_position: str = "none", tile_order: bool = False):
        self.profile, self.num_layers, self.heads, self.text_position = profile, num_layers, heads, text_position
        self.given = profile  # as accelerate() got it; ``profile`` may adapt its warm-up to the step count (schedule)
        self.order = profile.order if tile_order else "frame"
        self.id = register(self)  # for the custom op's route tensors
        self.context: StepContext | None = None  # of the forward in progress (begin_forward)
        self.tile_index: tuple[torch.Tensor, torch.Tensor] | None = None  # (to tile-major, back), set per geometry
        self.compiler = PlanCompiler(profile.block)
        self.runner = Runner()
        self.observers: list[Observer] = []
        self.timing = False
        self.stats: dict[int, LayerStats] = defaultdict(LayerStats)
        self.cache: str | None = None  # the diffusers step cache seen at the last forward (pipelines/caches.py)
        self.steps = StepLog(num_layers)  # per step: passes, the layers whose attention ran (the rest: cached)
        self.host_s = 0.0  # host seconds spent in attend() (kernels run asynchronously: this is the path's own cost)
        self._warned: set[str] = set()
        self._plans: dict[tuple, tuple[Plan, ...]] = {}
        self._lengths: tuple | None = None  # (forward, mask identity, its valid text lengths): one read per mask
        self._estimated: dict[int, tuple[int, tuple]] = {}  # every -> (step, phase) of its last estimates
        self._periods = estimate_periods(profile)
        self._recording: list | None = None  # a CUDA graph capture in progress: the calls' bookkeeping, to replay

    # ---- per forward (the step hook, outside compiled code) -----------------------------------
    def begin_forward(self, step: int, timestep: float | None, grid: tuple[int, int, int], text: int,
                      device: torch.device) -> StepContext:
        """The context of the next forward: ``step`` is the pipeline's denoising step (a step seen again is
        another pass of it, e.g. CFG's second)."""
        prev = self.context
        passes = prev.passes + 1 if prev is not None and prev.step == step and prev.timestep == timestep else 0
        if prev is None or (prev.grid, prev.text, prev.device) != (grid, text, device):
            self._prepare(grid, text, device)
        phase = (step < self.profile.dense_steps, self.profile.bucket(timestep))
        self.context = StepContext(step, timestep, passes, grid, text, device, phase, self._refresh(step, passes, phase))
        self.steps.begin(step, timestep)
        return self.context

    def _refresh(self, step: int, passes: int, phase: tuple) -> frozenset[int]:
        """The ``every`` values whose estimates run in this forward: every forward for 0; else the first pass of a
        step ``every`` steps after the last estimates, or of a new phase (its tables have not estimated yet).
        Decided here, once per forward, so a CUDA graph can be keyed by it."""
        due = set()
        for every in self._periods:
            last = self._estimated.get(every)
            if every == 0 or last is None or (passes == 0 and (last[1] != phase or step - last[0] >= every)):
                due.add(every)
                self._estimated[every] = (step, phase)
        return frozenset(due)

    def _prepare(self, grid, text: int, device: torch.device) -> None:
        """Tile-order indices and every static table of this geometry, before the first call."""
        say_transfer(self.profile, grid)
        g = VideoGeometry(*grid, block=self.profile.block, order="tile")
        self.tile_index = (sequence_index(g, False, str(device)), sequence_index(g, True, str(device))) \
            if self.order == "tile" and text == 0 else None
        try:
            geometry = call_geometry(grid, grid[0] * grid[1] * grid[2] + text, self.text_position, self.profile.block, self.order)
        except Fallback:
            return
        phases = [(self.profile.dense_steps, t) for t in [None] + [e - 1e-6 for e in self.profile.bucket_edges]]
        for layer in range(self.num_layers):
            for step, t in phases:
                plans = tuple(self.profile.plans(layer, self.heads, step, t))
                self.compiler.table(layer, plans, geometry if _needs_geometry(plans) else None, None, device)

    @contextmanager
    def using(self, profile: Profile) -> Iterator[None]:
        """Run another profile inside the block (same token order and block, so the step and order hooks
        agree): the probe's dense shadow forwards."""
        if (profile.block, profile.order) != (self.profile.block, self.profile.order):
            raise ValueError("a temporary profile must keep the router's block and token order")
        saved, self.profile, self._plans, self._periods = self.profile, profile, {}, estimate_periods(profile)
        try:
            yield
        finally:
            self.profile, self._plans, self._periods = saved, {}, estimate_periods(saved)

    def schedule(self, steps: int) -> None:
        """A new schedule of ``steps`` steps: a profile allocated for another count keeps its warm-up share."""
        warm = warm_up_for(self.given, steps)
        if warm != self.profile.dense_steps:
            self.profile, self._plans = replace(self.given, dense_steps=warm), {}

    def reset(self) -> None:
        """A new generation (the pipeline call ended, or the step hook saw a new schedule start)."""
        self.context = None
        self._estimated.clear()
        self.compiler.reset()

    @contextmanager
    def observing(self, observer: Observer) -> Iterator[Observer]:
        """Call ``observer`` on every self-attention call inside the block."""
        self.observers.append(observer)
        try:
            yield observer
        finally:
            self.observers.remove(observer)

    # ---- the call (inside the custom op) -------------------------------------------------------
    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None = None,
               scale: float | None = None, head_offset: int = 0, total_heads: int | None = None) -> torch.Tensor:
        """q/k/v [B, S, H, D] -> [B, S, H, D]. ``attn_mask``: a boolean key mask [B, N] / [B, 1, 1, N] whose
        False entries are text padding at the back. Under Ulysses context parallelism q holds heads
        [head_offset, head_offset + H) of ``total_heads``."""
        t_host = time.perf_counter()
        ctx = self.context
        if ctx is None:
            raise RuntimeError("videoaccel: an attention call outside a transformer forward (the step hook did not run)")
        st, t0, H = self.stats[layer], tick(q, self.timing), q.shape[2]
        plans = self._layer_plans(layer, ctx, total_heads or H)[head_offset:head_offset + H]
        call = Call(layer, ctx, scale, attn_mask)
        try:
            geo = _needs_geometry(plans)
            if geo or self.observers:
                if any(p.pattern != "dense" for p in plans):
                    check_head_dim(q.shape[-1])
                call.geometry = call_geometry(ctx.grid, q.shape[1], self.text_position, self.profile.block, self.order)
                call.text_lengths = self._text_lengths(attn_mask, call.geometry, q.shape[0]) if attn_mask is not None else None
                for observe in self.observers:
                    observe(AttentionCall(layer, ctx.step, ctx.timestep, q, k, v, call.geometry, call.text_lengths))
            table = self.compiler.table(layer, plans, call.geometry if geo else None, call.text_lengths if geo else None, q.device)
            out, density = self.runner.run(table, q, k, v, call)
        except Fallback as fb:
            self._fallback(layer, f"{fb}: ran dense")
            table = self.compiler.table(layer, (Plan(),) * H, None, None, q.device)
            out, density = self.runner.run(table, q, k, v, Call(layer, ctx, scale, attn_mask))
        reasons = table.fallbacks + tuple(self.runner.fallbacks)
        if self._recording is not None:
            self._recording.append((layer, table, density, reasons))
        else:
            self._record(layer, table, density, reasons)
        st.ms += tock(q, t0)
        self.host_s += time.perf_counter() - t_host
        return out

    def _layer_plans(self, layer: int, ctx: StepContext, heads: int) -> tuple[Plan, ...]:
        key = (layer, ctx.phase, heads)
        plans = self._plans.get(key)
        if plans is None:
            plans = self._plans[key] = tuple(self.profile.plans(layer, heads, ctx.step, ctx.timestep))
        return plans

    def _text_lengths(self, attn_mask: torch.Tensor, g: VideoGeometry, batch: int) -> tuple[int, ...]:
        """Valid text per sample, read from the mask once per mask (every layer of a forward passes the same one)."""
        key = (id(self.context), attn_mask.data_ptr(), attn_mask._version, tuple(attn_mask.shape), g)
        if self._lengths is None or self._lengths[0] != key:
            self._lengths = (key, mask_text_lengths(attn_mask, g, batch))
        return self._lengths[1]

    # ---- bookkeeping ---------------------------------------------------------------------------
    def _record(self, layer: int, table: CallTable, density: torch.Tensor | None, reasons: tuple[str, ...]) -> None:
        for reason in reasons:
            self._fallback(layer, reason)
        self.stats[layer].record(self.context.step, table, density)
        self.steps.record(self.context.step, layer, table, density)

    @contextmanager
    def recording(self) -> Iterator[list]:
        """Inside, calls keep their bookkeeping in the yielded list instead of the report (a CUDA graph capture:
        ``replay`` adds it each time the graph runs)."""
        self._recording = []
        try:
            yield self._recording
        finally:
            self._recording = None

    def replay(self, calls: list) -> None:
        """The report's bookkeeping of a replayed forward (its per-call densities are the graph's own tensors)."""
        for layer, table, density, reasons in calls:
            self._record(layer, table, density, reasons)

    def _fallback(self, layer: int, reason: str) -> None:
        self.stats[layer].fallbacks[reason] += 1
        if reason not in self._warned:
            self._warned.add(reason)
            log.warning("videoaccel: fallback (%s); counted in videoaccel.report()", reason)

    def report(self) -> TransformerReport:
        return TransformerReport.build(self.profile, self.order, self.stats, self.timing, self.steps.report(), self.cache)


def _needs_geometry(plans: tuple[Plan, ...]) -> bool:
    """Whether a call needs its layout: any head that is not plain bf16 dense."""
    return any(p.pattern != "dense" or p.precision != "bf16" for p in plans)


__all__ = ["AttentionCall", "AttentionRouter", "CallTable", "Observer"]
