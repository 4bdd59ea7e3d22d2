"""Per denoising step: how many transformer passes ran, which layers' self-attention ran, and its density.

Why: a step cache (diffusers' FirstBlockCache, MagCache, TaylorSeer, FasterCache, PAB) serves some
blocks or whole steps from cache; the router only sees the attention calls that really ran. A layer
that ran in fewer calls than the step had passes was served from cache in the others. The step
index comes from the step hook (the pipeline's timestep), never from counting block calls.
Steps of repeated pipeline calls add up under the same index (as the per-layer statistics do).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .compiler import CallTable


@dataclass
class StepReport:
    step: int
    timestep: float | None  # of the last pipeline call that reached this step
    passes: int  # transformer forwards at this step (CFG as two passes: 2 per pipeline call)
    calls: list[int]  # per layer: self-attention calls that ran
    density: float | None  # mean achieved density of the calls that ran (None: none ran)

    @property
    def ran(self) -> list[int]:
        """Layers whose attention ran in every pass."""
        return [i for i, c in enumerate(self.calls) if c >= self.passes]

    @property
    def cached(self) -> list[int]:
        """Layers served from cache in every pass (block skipped, attention reused or predicted)."""
        return [i for i, c in enumerate(self.calls) if c == 0]

    @property
    def partial(self) -> list[int]:
        """Layers that ran in some passes and were served from cache in others (e.g. cond ran, uncond cached)."""
        return [i for i, c in enumerate(self.calls) if 0 < c < self.passes]


@dataclass
class _Step:
    timestep: float | None = None
    passes: int = 0
    calls: dict[int, int] = field(default_factory=dict)
    density_sum: float = 0.0
    device_sum: torch.Tensor | None = None  # densities decided per call (per-call masks), summed on the device


class StepLog:
    """Running per-step counts, updated on the host once per pass and once per attention call."""

    def __init__(self, num_layers: int):
        self.num_layers = num_layers
        self._steps: dict[int, _Step] = {}

    def begin(self, step: int, timestep: float | None) -> None:
        s = self._steps.setdefault(step, _Step())
        s.timestep, s.passes = timestep, s.passes + 1

    def record(self, step: int, layer: int, table: CallTable, density: torch.Tensor | None) -> None:
        s = self._steps.setdefault(step, _Step())
        s.calls[layer] = s.calls.get(layer, 0) + 1
        s.density_sum += table.mean_density
        if density is not None:
            d = density.mean()
            s.device_sum = d if s.device_sum is None else s.device_sum + d

    def report(self) -> list[StepReport]:
        out = []
        for i, s in sorted(self._steps.items()):
            n = sum(s.calls.values())
            total = s.density_sum + (0.0 if s.device_sum is None else float(s.device_sum))
            out.append(StepReport(i, s.timestep, s.passes, [s.calls.get(layer, 0) for layer in range(self.num_layers)],
                                  total / n if n else None))
        return out


def layer_ranges(layers: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5'; [] -> '-'."""
    if not layers:
        return "-"
    parts, start = [], layers[0]
    for a, b in zip(layers, layers[1:] + [None]):
        if b != a + 1:
            parts.append(f"{start}" if start == a else f"{start}-{a}")
            start = b
    return ",".join(parts)


def format_steps(steps: list[StepReport]) -> list[str]:
    """The per-step lines of the report table."""
    if not steps:
        return []
    lines = [f"{'step':>5} {'t':>7} {'passes':>6} {'calls':>6} {'density':>7}  layers ran / partly cached / cached"]
    for s in steps:
        t = "-" if s.timestep is None else f"{s.timestep:.1f}"
        d = "-" if s.density is None else f"{s.density:.3f}"
        lines.append(f"{s.step:>5} {t:>7} {s.passes:>6} {sum(s.calls):>6} {d:>7}  "
                     f"{layer_ranges(s.ran)} / {layer_ranges(s.partial)} / {layer_ranges(s.cached)}")
    return lines
