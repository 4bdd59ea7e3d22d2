"""CUDA graphs of single attention calls on short sequences: a call's launches replayed from the host in one.

Why: a call runs a handful of launches (estimate, top-k into the LUT, attention, compensation), each
costing tens of microseconds of Python and driver time. On long sequences that hides behind the GPU
work; on short ones (the 12k-token testbed, a 480p CogVideoX layer) it is the call's whole cost, so
a sparse plan loses to dense even at a quarter of the FLOPs (H200, testbed: 0.6-0.8x dense eager). The
work of a call is fixed by its table and which of its estimates are due, so one graph per (table, due
estimates, input shapes, strides and dtype, scale) serves every call with that key: the first call runs
as usual (compiles, tunes, builds), the second is captured on static copies of q/k/v, and later calls
copy their q/k/v in (three copies: why only short sequences, ``MAX_BYTES``), replay and clone the
output. A replay marks its estimates done, as the run it replays did.

Skipped where a graph cannot hold the call: CPU tensors, a padding mask (its lengths are read per
call), inside another capture (whole-forward graphs: pipelines/graphs.py), sequences over the cap.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import torch

from .compiler import CallTable
from .estimate import due

if TYPE_CHECKING:
    from .executors import Call, Runner

MAX_BYTES = 32 << 20  # q's size up to which a call is graphed (testbed: 6.4 MB; Wan2.1-1.3B 480p: 100 MB)


@dataclass
class _CallGraph:
    graph: Any
    out: torch.Tensor
    density: torch.Tensor | None
    fallbacks: list[str]


@dataclass
class CallGraphs:
    graph_factory: Callable[[], Any] = field(default=lambda: torch.cuda.CUDAGraph())
    capture: Callable[..., Any] = field(default=lambda g, pool: torch.cuda.graph(g, pool=pool))
    enabled: bool = True
    graphs: dict[tuple, _CallGraph] = field(default_factory=dict)
    _seen: set = field(default_factory=set)
    _static: dict[tuple, tuple[torch.Tensor, ...]] = field(default_factory=dict)  # per input signature: q, k, v
    _pool: Any = None

    def eligible(self, q: torch.Tensor, attn_mask: torch.Tensor | None) -> bool:
        return (self.enabled and q.is_cuda and attn_mask is None and q.numel() * q.element_size() <= MAX_BYTES
                and not torch.cuda.is_current_stream_capturing())

    def run(self, runner: Runner, table: CallTable, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, call: Call
            ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``runner.execute(table, q, k, v, call)``, as a graph replay when this key was seen before (see the module
        docstring); a replay puts the captured run's fallback reasons in ``runner.fallbacks``."""
        ctx = call.context
        dues = tuple(due(s, ctx) for s in table.selections)
        sig = tuple((t.shape, t.stride(), t.dtype) for t in (q, k, v))
        key = (id(table), dues, sig, call.scale)
        entry = self.graphs.get(key)
        if entry is None and key not in self._seen:
            self._seen.add(key)
            return runner.execute(table, q, k, v, call)
        static = self._static.get(sig)
        if static is None:
            static = self._static[sig] = tuple(torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=t.device)
                                               for t in (q, k, v))
        for s, t in zip(static, (q, k, v)):
            s.copy_(t)
        if entry is None:
            entry = self.graphs[key] = self._capture(runner, table, static, call)
        entry.graph.replay()
        for sel, d in zip(table.selections, dues):
            if d:
                sel.last = ctx.step
        runner.fallbacks += entry.fallbacks
        return entry.out.clone(), None if entry.density is None else entry.density.clone()

    def _capture(self, runner: Runner, table: CallTable, static: tuple, call: Call) -> _CallGraph:
        torch.cuda.synchronize()
        graph = self.graph_factory()
        with self.capture(graph, self._pool):
            out, density = runner.execute(table, *static, call)
        self._pool = graph.pool()  # the graphs of one router share memory: calls never overlap, outputs are cloned
        return _CallGraph(graph, out, density, list(runner.fallbacks))
