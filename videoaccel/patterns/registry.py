"""Every attention pattern by name, once: plans, presets, the profiler, the profile picture and the
command line derive their lists from ``PATTERNS``.

A ``PatternSpec`` says what a pattern is: static (a block mask from the geometry alone, built in
library.py) or dynamic (from each call's q/k: draft.py, pyramid.py, oracle.py), the parameters a
plan may give it, the one knob ``fit_density`` turns to trade density for fidelity, its preset and
its colour. No torch here: profile files and the CLI's parser read it before any model loads.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Precision = Literal["bf16", "fp8"]
Order = Literal["frame", "tile"]
PRECISIONS: tuple[Precision, ...] = ("bf16", "fp8")
ORDERS: tuple[Order, ...] = ("frame", "tile")
BLOCKS = (16, 32, 64, 128)  # attention block sizes the kernels take


@dataclass(frozen=True)
class Knob:
    """The parameter ``fit_density`` bisects over [lo, hi]; ``sets`` are the pattern parameters it sets
    (diagonal's ``scale`` sets t, h and w together), by default the knob's own name."""
    name: str
    lo: float
    hi: float
    sets: tuple[str, ...] = ()

    def params(self, x: float) -> dict[str, float]:
        return {p: x for p in self.sets or (self.name,)}


@dataclass(frozen=True)
class Preset:
    """``name[:value]``: the parameter the value sets and its default (no parameter: takes no value)."""
    param: str | None = None
    default: Any = None


@dataclass(frozen=True)
class PatternSpec:
    name: str
    dynamic: bool  # the mask depends on each call's q/k
    params: tuple[str, ...]  # what a plan may give it (docs/profile-schema.md)
    knob: Knob | None = None  # tunable to a density (profiler candidates, ``density`` parameters)
    preset: Preset | None = None  # usable as a preset name
    color: tuple[int, int, int] = (0, 0, 0)  # BGR in profile pictures
    benchmark_only: bool = False  # never shipped in a profile (the oracle)
    scored: bool = False  # dynamic with a density: the profiler scores it on each call's own mask


_FRACTION = (0.0, 1.0)
PATTERNS: dict[str, PatternSpec] = {s.name: s for s in [
    PatternSpec("dense", False, (), preset=Preset(), color=(60, 60, 60)),
    PatternSpec("skip", False, (), color=(235, 235, 235)),
    PatternSpec("radial", False, ("density", "decay", "sink_frames", "keep_every"), Knob("decay", 0.05, 8.0),
                Preset("density", 0.25), (40, 200, 255)),
    PatternSpec("diagonal", False, ("density", "t", "h", "w"), Knob("scale", *_FRACTION, sets=("t", "h", "w")),
                Preset("density", 0.25), (60, 160, 60)),
    PatternSpec("multi_diagonal", False, ("density", "h", "w"), Knob("scale", *_FRACTION, sets=("h", "w")),
                Preset("density", 0.25), (200, 120, 40)),
    PatternSpec("vertical_stripe", False, ("density", "sink_frames", "columns"), Knob("columns", *_FRACTION),
                Preset("density", 0.25), (150, 60, 150)),
    PatternSpec("draft", True, ("top_p", "top_k", "every"), preset=Preset("top_p", 0.9), color=(60, 60, 220)),
    PatternSpec("pyramid", True, ("thresholds",), color=(0, 140, 140)),
    PatternSpec("sampled", True, ("density", "rows", "every"), preset=Preset("density", 0.25), color=(220, 80, 160),
                scored=True),
    PatternSpec("oracle", True, ("density",), benchmark_only=True),  # exact top-k blocks (oracle.py)
]}

STATIC = tuple(n for n, s in PATTERNS.items() if not s.dynamic)
DYNAMIC = tuple(n for n, s in PATTERNS.items() if s.dynamic)
TUNABLE = tuple(n for n, s in PATTERNS.items() if s.knob)  # the profiler's candidates, the cost table's rows
SCORED = tuple(n for n, s in PATTERNS.items() if s.scored)  # the profiler's per-call candidates
PRESETS = tuple(n for n, s in PATTERNS.items() if s.preset)
USER_FACING = tuple(n for n, s in PATTERNS.items() if not s.benchmark_only)  # what `videoaccel inspect` draws
