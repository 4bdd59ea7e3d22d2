"""Every attention pattern by name, once: plans, presets, the profiler, the router, the profile picture
and the command line derive what they do from ``PATTERNS``.

A ``PatternSpec`` says what a pattern is and how it behaves: how its blocks are chosen
(``selection``: fixed, a static mask of the geometry, the top-k of per-call block scores, a per-call
mask, or per-call pyramid levels), the function that does it (``impl``, ``module:function`` inside
this package, imported on first use by ``behaviour``), how many steps one per-call estimate serves,
what the estimate costs, the parameters a plan may give it, the one knob ``fit_density`` turns to
trade density for fidelity, its preset and its colour. No torch here: profile files and the CLI's
parser read it before any model loads.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Literal

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


Selection = Literal["fixed", "static", "top_k", "mask", "levels"]


@dataclass(frozen=True)
class PatternSpec:
    name: str
    selection: Selection  # fixed (dense, skip); static: impl(geometry, **params) -> bool [NB, NB];
    # top_k: impl(q, k, geometry, **params) -> block scores [H, NB, NB], each row keeps its round(density * NB) best;
    # mask: impl(q, k, geometry, **params) -> bool [H, NB, NB]; levels: impl(q, k, geometry, thresholds) -> int8 levels
    params: tuple[str, ...]  # what a plan may give it (docs/profile-schema.md)
    impl: str | None = None  # "module:function" in videoaccel.patterns
    every: int = 1  # per-call selections: steps one estimate serves unless the plan says ``every``
    estimate_cost: str | None = None  # "module:function"(params, block) -> share of a dense attention per call
    knob: Knob | None = None  # tunable to a density (profiler candidates, ``density`` parameters)
    preset: Preset | None = None  # usable as a preset name
    color: tuple[int, int, int] = (0, 0, 0)  # BGR in profile pictures
    benchmark_only: bool = False  # never shipped in a profile (the oracle)
    scored: bool = False  # per-call with a density: the profiler scores it on each call's own mask

    @property
    def dynamic(self) -> bool:
        """The blocks depend on each call's q/k."""
        return self.selection in ("top_k", "mask", "levels")


def behaviour(name: str, what: str = "impl") -> Callable[..., Any] | None:
    """The function behind a pattern's ``impl`` or ``estimate_cost`` (imported on first use: torch-free here)."""
    path = getattr(PATTERNS[name], what)
    if path is None:
        return None
    module, _, fn = path.partition(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), fn)


_FRACTION = (0.0, 1.0)
PATTERNS: dict[str, PatternSpec] = {s.name: s for s in [
    PatternSpec("dense", "fixed", (), preset=Preset(), color=(60, 60, 60)),
    PatternSpec("skip", "fixed", (), color=(235, 235, 235)),
    PatternSpec("radial", "static", ("density", "decay", "sink_frames", "keep_every"), "library:radial",
                knob=Knob("decay", 0.05, 8.0), preset=Preset("density", 0.25), color=(40, 200, 255)),
    PatternSpec("diagonal", "static", ("density", "t", "h", "w"), "library:diagonal",
                knob=Knob("scale", *_FRACTION, sets=("t", "h", "w")), preset=Preset("density", 0.25), color=(60, 160, 60)),
    PatternSpec("multi_diagonal", "static", ("density", "h", "w"), "library:multi_diagonal",
                knob=Knob("scale", *_FRACTION, sets=("h", "w")), preset=Preset("density", 0.25), color=(200, 120, 40)),
    PatternSpec("vertical_stripe", "static", ("density", "sink_frames", "columns"), "library:vertical_stripe",
                knob=Knob("columns", *_FRACTION), preset=Preset("density", 0.25), color=(150, 60, 150)),
    PatternSpec("draft", "mask", ("top_p", "top_k", "every"), "draft:draft_masks", preset=Preset("top_p", 0.9),
                color=(60, 60, 220)),
    PatternSpec("pyramid", "levels", ("thresholds",), "pyramid:estimate_levels", color=(0, 140, 140)),
    PatternSpec("sampled", "top_k", ("density", "rows", "every"), "sampled:sampled_scores", every=2,
                estimate_cost="sampled:estimate_share", preset=Preset("density", 0.25), color=(220, 80, 160), scored=True),
    PatternSpec("oracle", "top_k", ("density",), "oracle:oracle_scores", every=0, benchmark_only=True),  # exact, every call
    PatternSpec("oracle_layer", "mask", ("density",), "oracle:layer_oracle_masks", every=0, benchmark_only=True),  # the bound
]}

STATIC = tuple(n for n, s in PATTERNS.items() if not s.dynamic)  # fixed and static
DYNAMIC = tuple(n for n, s in PATTERNS.items() if s.dynamic)
TUNABLE = tuple(n for n, s in PATTERNS.items() if s.knob)  # the profiler's candidates, the cost table's rows
SCORED = tuple(n for n, s in PATTERNS.items() if s.scored)  # the profiler's per-call candidates
PRESETS = tuple(n for n, s in PATTERNS.items() if s.preset)
USER_FACING = tuple(n for n, s in PATTERNS.items() if not s.benchmark_only)  # what `videoaccel inspect` draws


def estimate_share(name: str, params: dict, block: int) -> float:
    """What choosing a plan's blocks costs per call, as a share of a dense attention (0 without an estimate cost)."""
    fn = behaviour(name, "estimate_cost")
    return 0.0 if fn is None else fn(params, block)
