"""The router: sends each self-attention call's heads to the executor their plan asks for.

Per call: the per-head plans of (layer, step, timestep) -> a compiled Route (cached; compiler.py)
-> each head group through its executor (executors.py) -> the stats of the report (stats.py).
Observers (the profiler, attention statistics) see every call's q/k/v. Anything the kernels cannot
take runs dense explicitly: logged once per reason and counted in the report.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from ..patterns import VideoGeometry
from ..patterns.token_order import sequence_index
from ..plans import Plan, Profile
from .compiler import PlanCompiler, Route
from .executors import EXECUTORS, Call
from .geometry import Fallback, call_geometry, check_head_dim, text_lengths as mask_text_lengths
from .op import register
from .stats import LayerStats, TransformerReport
from .steps import StepLog

log = logging.getLogger("videoaccel")


@dataclass(frozen=True)
class AttentionCall:
    """What an observer receives: one self-attention call (q/k/v [B, S, H, D], before routing)."""
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
        self.order = profile.order if tile_order else "frame"
        self.id = register(self)  # for the custom op's route tensors
        self.step, self.timestep, self.grid = -1, None, None
        self.tile_index: tuple[torch.Tensor, torch.Tensor] | None = None  # (to tile-major, back), set per geometry
        self.compiler = PlanCompiler(profile.block)
        self.executors = dict(EXECUTORS)
        self.observers: list[Observer] = []
        self.timing = False
        self.stats: dict[int, LayerStats] = defaultdict(LayerStats)
        self.cache: str | None = None  # the diffusers step cache seen at the last forward (pipelines/caches.py)
        self.steps = StepLog(num_layers)  # per step: passes, the layers whose attention ran (the rest: cached)
        self._warned: set[str] = set()
        self._prepared: tuple | None = None

    # ---- per forward / per pipeline call (the step hook, outside compiled code) ---------------
    def begin_forward(self, timestep: float | None, grid: tuple[int, int, int], text: int, device: torch.device) -> None:
        if self.step < 0 or timestep != self.timestep:
            self.step += 1  # CFG as two passes sees the same timestep twice: one step
        self.timestep, self.grid = timestep, grid
        self.steps.begin(self.step, timestep)
        if self._prepared != (grid, text, str(device)):
            self._prepared = (grid, text, str(device))
            self._prepare(grid, text, device)

    def _prepare(self, grid, text: int, device: torch.device) -> None:
        """Tile-order indices and every static route of this geometry, before the first call."""
        g = VideoGeometry(*grid, block=self.profile.block, order="tile")
        self.tile_index = (sequence_index(g, False, str(device)), sequence_index(g, True, str(device))) \
            if self.order == "tile" and text == 0 else None
        try:
            geometry = call_geometry(grid, grid[0] * grid[1] * grid[2] + text, self.text_position, self.profile.block,
                                     self.order)
        except Fallback:
            return
        steps = [(self.profile.dense_steps, t) for t in [None] + [e - 1e-6 for e in self.profile.bucket_edges]]
        for layer in range(self.num_layers):
            for step, t in steps:
                plans = tuple(self.profile.plans(layer, self.heads, step, t))
                self.compiler.route(plans, geometry if any(p.pattern != "dense" for p in plans) else None, None, device)

    def reset(self) -> None:
        self.step, self.timestep, self.grid = -1, None, None
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
        False entries are text padding at the back. Under Ulysses context parallelism q holds heads [head_offset, head_offset + H) of ``total_heads``."""
        st, t0, H = self.stats[layer], self._tick(q), q.shape[2]
        plans = tuple(self.profile.plans(layer, total_heads or H, self.step, self.timestep)[head_offset:head_offset + H])
        call = Call(layer, self.step, scale, attn_mask)
        sparse = any(p.pattern != "dense" for p in plans)
        try:
            if sparse or self.observers:
                if sparse:
                    check_head_dim(q.shape[-1])
                call.geometry = call_geometry(self.grid, q.shape[1], self.text_position, self.profile.block, self.order)
                call.text_lengths = mask_text_lengths(attn_mask, call.geometry, q.shape[0]) if attn_mask is not None else None
                for observe in self.observers:
                    observe(AttentionCall(layer, self.step, self.timestep, q, k, v, call.geometry, call.text_lengths))
            route = self.compiler.route(plans, call.geometry if sparse else None, call.text_lengths if sparse else None, q.device)
            out, density = self._execute(route, q, k, v, call)
        except Fallback as fb:
            self._fallback(layer, f"{fb}: ran dense")
            route = self.compiler.route((Plan(),) * H, None, None, q.device)
            out, density = self._execute(route, q, k, v, Call(layer, self.step, scale, attn_mask))
        for reason in route.fallbacks:
            self._fallback(layer, reason)
        st.density_misses.update(route.density_misses)
        st.record(self.step, list(route.labels), density, any(g.fp8 for g in route.groups))
        self.steps.record(self.step, layer, sum(density) / len(density))
        st.ms += self._tock(q, t0)
        return out

    def _execute(self, route: Route, q, k, v, call: Call) -> tuple[torch.Tensor, tuple[float, ...]]:
        groups = [self.compiler.resolve(g, call.layer, call.step, q, k, call.geometry, call.text_lengths) if g.dynamic else g
                  for g in route.groups]
        if len(groups) == 1 and groups[0].index is None:
            out = self.executors[groups[0].kind](q, k, v, groups[0], call)
        else:
            out = torch.zeros_like(q)
            for g in groups:
                sub = tuple(t.index_select(2, g.index) for t in (q, k, v))
                out.index_copy_(2, g.index, self.executors[g.kind](*sub, g, call))
        density = [0.0] * q.shape[2]
        for g in groups:
            for h, d in zip(g.heads, g.density):
                density[h] = d
        return out, tuple(density)

    # ---- bookkeeping ---------------------------------------------------------------------------
    def _fallback(self, layer: int, reason: str) -> None:
        self.stats[layer].fallbacks[reason] += 1
        if reason not in self._warned:
            self._warned.add(reason)
            log.warning("videoaccel: fallback (%s); counted in videoaccel.report()", reason)

    def _tick(self, q):
        if not self.timing:
            return None
        if q.is_cuda:
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            return e
        return time.perf_counter()

    def _tock(self, q, t0) -> float:
        if t0 is None:
            return 0.0
        if q.is_cuda:
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            e.synchronize()
            return t0.elapsed_time(e)
        return 1e3 * (time.perf_counter() - t0)

    def report(self) -> TransformerReport:
        return TransformerReport.build(self.profile, self.order, self.stats, self.timing, self.steps.report(), self.cache)
