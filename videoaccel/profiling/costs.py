"""What a plan costs, relative to dense attention: measured on the GPU, or the analytic fallback.

Why measured: FP8 is slower than bf16 at low density on some shapes, block 64 runs fewer FLOPs per
launch than 128, and patterns differ in load balance (bench/kernels-h100.json): the allocation
should spend time, not nominal density. ``videoaccel bench cost-table`` writes the table
(benchmarks/cost_table.py); without one the cost is the computed fraction of the score matrix.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..files import read_text
from ..patterns.registry import estimate_share
from ..plans import Plan

EXTRAS = ("estimate", "compensate", "graph")  # table rows of per-call work beside the kernel (device_costs.measure_table)
FP8_COST = 1.0  # analytic: FP8 is not cheaper than bf16 (H200: 0.46-0.91x bf16 speed at density <= 0.25, quantisation
# included): without a measured table the profiler never trades error for it


def computed_density(plan: Plan, block: int) -> float:
    """The fraction of the score matrix ``plan`` computes (dense 1, skip 0), its estimate and compensation's pooled keys
    included: the unit of a target density and of the analytic cost of a bf16 plan."""
    return plan.density if plan.pattern in ("dense", "skip") else plan.density + _extra(plan, block)


def _extra(plan: Plan, block: int) -> float:
    """Beyond the mask: one pooled key per block for mass compensation, and a per-call estimate's own share."""
    return (1.0 / block if plan.compensate else 0.0) + estimate_share(plan.pattern, plan.kwargs, block)


@dataclass
class CostModel:
    """``table`` rows: pattern, precision, head_dim, block, density, ms, dense_ms (cuDNN, same shape)."""
    source: str = "analytic"
    device: str | None = None
    table: list[dict] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | Path) -> CostModel:
        try:
            doc = json.loads(read_text(path, "cost table", "the JSON `videoaccel bench cost-table` wrote"))
            rows = [r for r in doc["results"] if r.get("impl") == "cost"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path} is not a cost table from `videoaccel bench cost-table` ({e})") from None
        if not rows:
            raise ValueError(f"{path} holds no cost rows: rerun `videoaccel bench cost-table` on the target GPU")
        return cls("measured", doc.get("device"), rows)

    def to_json(self) -> dict:
        return {"source": self.source, **({"device": self.device, "table": self.table} if self.source == "measured" else
                                          {"note": f"computed fraction of the score matrix, FP8 x {FP8_COST}"})}

    def fp8_pays(self) -> bool:
        """Whether FP8 attention measured faster than bf16 anywhere in this table (same head dim, block, density):
        else the profiler need not score FP8 candidates at all."""
        bf16 = {(r["head_dim"], r["block"], r["density"]): r["ms"] for r in self.table
                if r["precision"] == "bf16" and r["pattern"] not in EXTRAS}
        return any(r["ms"] < bf16.get((r["head_dim"], r["block"], r["density"]), 0.0)
                   for r in self.table if r["precision"] == "fp8")

    def cost(self, plan: Plan, head_dim: int, block: int, graph_tokens: int | None = None) -> float:
        """Time of ``plan`` over dense time (dense 1, skip 0 but its copies): its kernel, and its per-call estimate and
        compensation epilogue, measured where the table has them, else their share of the score matrix.
        ``graph_tokens``: the call's sequence length when the router replays it as a CUDA graph
        (routing/call_graphs.py), whose copies of q/k/v in and the output out the table measured at its own
        length (a share of dense that falls as 1/length: copies grow with it, attention with its square)."""
        graph = self._nearest("graph", head_dim, block) if graph_tokens else None
        copies = 0.0 if graph is None else graph["ms"] / graph["dense_ms"] * graph["tokens"] / graph_tokens
        if plan.pattern == "dense":  # a call of dense heads only runs cuDNN, not a graph
            return plan.density
        if plan.pattern == "skip":  # launches nothing, but its q/k/v are copied with the call's
            return plan.density + copies
        d = plan.density
        measured = self._lookup(plan.pattern, plan.precision, head_dim, block, d) if self.source == "measured" else None
        kernel = measured if measured is not None else d * (FP8_COST if plan.precision == "fp8" else 1.0)
        share = estimate_share(plan.pattern, plan.kwargs, block)
        est = self._extra_row("estimate", head_dim, block) if share and plan.pattern == "sampled" else None
        if est is not None:  # measured per call at the default rows: scaled by the plan's rows and period
            share = est * share / estimate_share("sampled", {"every": 1}, block)
        comp = (self._extra_row("compensate", head_dim, block) or 1.0 / block) if plan.compensate else 0.0
        return kernel + share + comp + copies

    def _extra_row(self, what: str, head_dim: int, block: int) -> float | None:
        """ms / dense_ms of a per-call extra (EXTRAS) at the nearest head dim and block timed, if any."""
        r = self._nearest(what, head_dim, block)
        return None if r is None else r["ms"] / r["dense_ms"]

    def _nearest(self, what: str, head_dim: int, block: int) -> dict | None:
        rows = [r for r in self.table if r["pattern"] == what] if self.source == "measured" else []
        return min(rows, key=lambda r: (abs(r["head_dim"] - head_dim), abs(r["block"] - block))) if rows else None

    def _lookup(self, pattern: str, precision: str, head_dim: int, block: int, density: float) -> float | None:
        """Interpolated kernel ms / dense_ms over density; the same pattern first, else any pattern; nearest
        head dim and block when the exact ones were not timed."""
        rows = [r for r in self.table if r["precision"] == precision and r["pattern"] not in EXTRAS]
        if not rows:
            return None
        hd = min({r["head_dim"] for r in rows}, key=lambda x: abs(x - head_dim))
        bl = min({r["block"] for r in rows}, key=lambda x: abs(x - block))
        rows = [r for r in rows if r["head_dim"] == hd and r["block"] == bl]
        same = [r for r in rows if r["pattern"] == pattern] or rows
        xs = np.array([r["density"] for r in same])
        ys = np.array([r["ms"] / r["dense_ms"] for r in same])
        order = np.argsort(xs)
        xs, ys = xs[order], ys[order]
        if len(xs) > 1 and density < xs[0]:  # below the timed range: scale the lowest point down linearly
            return float(ys[0] * density / xs[0])
        return float(np.interp(density, xs, ys))
