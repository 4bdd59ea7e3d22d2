"""The per-forward context: what one transformer forward's attention calls share, built once by the step hook.

Why an object: every attention call of a forward needs the denoising step, the timestep's bucket, the
latent grid and the joined text length; the step hook computes them once (outside compiled code) and
the router hands the context to the compiler and executors of each call as an argument, so nothing on
the call path reads state written from elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..patterns.registry import PATTERNS
from ..plans import Profile


@dataclass(frozen=True)
class StepContext:
    step: int  # pipeline denoising step (0-based); a forward without a scheduler counts timestep changes
    timestep: float | None
    passes: int  # forwards of this step before this one (CFG as two passes: 0, then 1)
    grid: tuple[int, int, int]  # latent (frames, height, width) tokens
    text: int  # joined text tokens the forward's inputs carry (0: text only through cross-attention)
    device: torch.device
    phase: tuple[bool, int]  # (a dense warm-up step, the timestep bucket): what selects the plans
    refresh: frozenset[int]  # ``every`` values whose per-call estimates run in this forward (estimate.py)


def estimate_periods(profile: Profile) -> tuple[int, ...]:
    """The ``every`` values of a profile's per-call estimates (steps one estimate serves; 0: every call)."""
    plans = {profile.default} | {p for bs in profile.layers.values() for hs in bs for p in hs}
    return tuple(sorted({int(p.kwargs.get("every", PATTERNS[p.pattern].every)) for p in plans
                         if PATTERNS[p.pattern].selection in ("top_k", "mask")}))
