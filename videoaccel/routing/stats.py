"""What the router did, per layer, and the typed report ``videoaccel.report(pipe)`` returns.

Densities are the ones achieved on the geometry that ran (a plan asking ``radial:0.1`` may reach
only 0.304 on a small grid), averaged over calls; asked-for densities a pattern cannot reach are
counted under ``density_misses``.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from ..plans import Profile
    from .compiler import CallTable

from .steps import StepReport, format_steps


@dataclass
class LayerStats:
    """Running counts of one layer, updated once per call on the host: which table ran how often (its
    densities are known on the host), plus a device-side sum for densities a call decides (per-call masks)."""
    calls: int = 0
    steps: list[int] = field(default_factory=list)
    plans: list[str] = field(default_factory=list)  # per head, last call
    tables: dict[int, list] = field(default_factory=dict)  # id(table) -> [table, calls]
    device_sum: torch.Tensor | None = None  # per head, on the device
    fp8_calls: int = 0
    fallbacks: Counter = field(default_factory=Counter)
    density_misses: Counter = field(default_factory=Counter)
    ms: float = 0.0

    def record(self, step: int, table: CallTable, density: torch.Tensor | None) -> None:
        self.calls += 1
        self.steps.append(step)
        self.plans = table.labels
        seen = self.tables.get(id(table))
        if seen is None:
            self.tables[id(table)] = [table, 1]
        else:
            seen[1] += 1
        if density is not None:
            self.device_sum = density if self.device_sum is None else self.device_sum + density
        self.fp8_calls += int(table.has_fp8)
        for miss in table.misses:
            self.density_misses[miss] += 1

    def head_density(self) -> list[float]:
        """Per head, the mean achieved density over the calls (reads the device sum once, if any)."""
        heads = len(self.plans)
        total = [0.0] * heads
        for table, n in self.tables.values():
            if len(table.known_density) == heads:
                total = [t + n * d for t, d in zip(total, table.known_density)]
        if self.device_sum is not None and self.device_sum.numel() == heads:
            total = [t + d for t, d in zip(total, self.device_sum.tolist())]
        return [t / max(self.calls, 1) for t in total]


@dataclass
class LayerReport:
    calls: int
    steps: list[int]  # distinct denoising steps seen
    plans: list[str]  # per head, last call
    head_density: list[float]  # per head, achieved, mean over calls
    fp8_calls: int
    fallbacks: dict[str, int]
    density_misses: dict[str, int]
    attention_ms: float | None

    @property
    def density(self) -> float:
        return sum(self.head_density) / max(len(self.head_density), 1)


@dataclass
class TransformerReport:
    profile: str
    calibrated: bool
    order: str
    layers: dict[int, LayerReport]
    steps: list[StepReport] = field(default_factory=list)  # per denoising step: passes, layers ran / cached
    cache: str | None = None  # diffusers step cache enabled on the transformer, e.g. fbc(threshold=0.05)

    @property
    def mean_density(self) -> float:
        calls = sum(r.calls for r in self.layers.values())
        return sum(r.density * r.calls for r in self.layers.values()) / max(calls, 1)

    @property
    def fallbacks(self) -> int:
        return sum(sum(r.fallbacks.values()) for r in self.layers.values())

    @property
    def density_misses(self) -> int:
        return sum(sum(r.density_misses.values()) for r in self.layers.values())

    @classmethod
    def build(cls, profile: Profile, order: str, stats: dict[int, LayerStats], timing: bool,
              steps: list[StepReport] | None = None, cache: str | None = None) -> TransformerReport:
        layers = {i: LayerReport(s.calls, sorted(set(s.steps)), list(s.plans), s.head_density(),
                                 s.fp8_calls, dict(s.fallbacks), dict(s.density_misses), s.ms if timing else None)
                  for i, s in sorted(stats.items()) if s.calls}
        return cls(profile.name, profile.calibrated, order, layers, steps or [], cache)


@dataclass
class Report:
    """``videoaccel.report(pipe)``: one TransformerReport per accelerated transformer."""
    transformers: dict[str, TransformerReport]

    @property
    def mean_density(self) -> float:
        return sum(t.mean_density for t in self.transformers.values()) / max(len(self.transformers), 1)

    @property
    def fallbacks(self) -> int:
        return sum(t.fallbacks for t in self.transformers.values())

    def to_dict(self) -> dict:
        out = {}
        for name, t in self.transformers.items():
            layers = {i: {**asdict(r), "density": r.density} for i, r in t.layers.items()}
            out[name] = {"profile": t.profile, "calibrated": t.calibrated, "order": t.order, "mean_density": t.mean_density,
                         "fallbacks": t.fallbacks, "density_misses": t.density_misses, "cache": t.cache, "layers": layers,
                         "steps": [{**asdict(s), "ran": s.ran, "partial": s.partial, "cached": s.cached} for s in t.steps]}
        return out

    def __str__(self) -> str:
        lines = []
        for name, t in self.transformers.items():
            lines.append(f"{name}: profile {t.profile}{'' if t.calibrated else ' (uncalibrated)'}, {t.order}-major, "
                         f"mean density {t.mean_density:.3f}, {t.fallbacks} fallbacks, {t.density_misses} density misses"
                         + (f", cache {t.cache}" if t.cache else ""))
            lines.append(f"{'layer':>5} {'calls':>5} {'density':>7} {'fp8':>4}  per-head density (plan)")
            for i, r in t.layers.items():
                heads = ", ".join(f"{d:.2f} {p}" for d, p in zip(r.head_density, r.plans))
                ms = "" if r.attention_ms is None else f"  {r.attention_ms:.1f} ms"
                lines.append(f"{i:>5} {r.calls:>5} {r.density:>7.3f} {r.fp8_calls:>4}  {heads}{ms}")
                for reason, n in {**r.fallbacks, **r.density_misses}.items():
                    lines.append(f"{'':>5} {n:>5}x {reason}")
            lines += format_steps(t.steps)
        return "\n".join(lines)
