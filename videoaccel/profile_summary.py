"""Summaries and pictures of a profile: what each layer and head runs, per timestep bucket (`videoaccel inspect`,
`videoaccel profile`); beside plans.py, so reading a profile loads no profiler."""
from __future__ import annotations

import cv2
import numpy as np

from .files import write_image
from .patterns.registry import PATTERNS, USER_FACING
from .plans import Plan, Profile

COLORS = {name: PATTERNS[name].color for name in USER_FACING}  # the legend


def _density(p: Plan) -> float:
    return p.density


def step_budget(profile: Profile) -> str:
    """Where the generation's attention cost goes: dense warm-up steps, each bucket's density, the total."""
    dens = profile.bucket_density()
    split = profile.budget.get("bucket_steps")
    steps = f"{profile.steps} steps" if profile.steps else "any number of steps"
    cells = [f"b{b}: {d:.3f}" + (f" x {split[b]} steps" if split and b < len(split) else "") for b, d in enumerate(dens)]
    total = profile.total_density()
    exact = profile.budget.get("expected_density")
    asked = {k: profile.budget[k] for k in ("target_density", "error_budget") if profile.budget.get(k) is not None}
    cost = profile.cost_model.get("source", "analytic") + (f" ({profile.cost_model['device']})" if profile.cost_model.get("device") else "")
    return (f"step budget ({steps}): dense warm-up steps {profile.dense_steps}; per-bucket density {', '.join(cells)}; "
            f"total density {'n/a' if total is None else f'{total:.3f}'}" + (f" (nominal; {exact:.3f} at the calibration geometry, "
                                                                                 "whole blocks and mask estimates counted)" if exact else "")
            + (f"; asked {asked}" if asked else "") + f"; cost model {cost}")


def summary(profile: Profile, num_layers: int | None = None) -> str:
    n = num_layers or (max(profile.layers) + 1 if profile.layers else 0)
    lines = [f"profile {profile.name!r}: {'calibrated' if profile.calibrated else 'uncalibrated preset'}, order {profile.order}, "
             f"block {profile.block}, {len(profile.bucket_edges) + 1} timestep bucket(s), dense warm-up steps {profile.dense_steps}, "
             f"dense layers {list(profile.dense_layers)}",
             f"model: {profile.model or 'any'}", step_budget(profile)]
    for layer in range(n):
        buckets = profile.layers.get(layer)
        if buckets is None:
            lines.append(f"layer {layer:3d}: all heads {profile.default.label}")
            continue
        cells = []
        for b, heads in enumerate(buckets):
            counts: dict[str, int] = {}
            for p in heads:
                key = p.pattern + ("+fp8" if p.precision == "fp8" else "") + ("+comp" if p.compensate else "")
                counts[key] = counts.get(key, 0) + 1
            d = np.nanmean([_density(p) for p in heads])
            cells.append(f"b{b}: " + ", ".join(f"{k} x{v}" for k, v in sorted(counts.items())) + f" (density {d:.2f})")
        lines.append(f"layer {layer:3d}: " + " | ".join(cells))
    return "\n".join(lines)


def write_png(profile: Profile, path: str, cell: int = 14) -> None:
    """Layers (rows) x heads (columns) per bucket, coloured by pattern, shaded by density; raises on write failure."""
    if not profile.layers:
        raise ValueError(f"profile {profile.name!r} has no per-layer plans to draw (a preset: every head runs {profile.default.label})")
    n_layers = max(profile.layers) + 1
    n_buckets = max(len(b) for b in profile.layers.values())
    heads = max(len(h) for b in profile.layers.values() for h in b)
    panels = []
    for b in range(n_buckets):
        img = np.full((n_layers * cell, heads * cell, 3), 255, dtype=np.uint8)
        for layer, buckets in profile.layers.items():
            for h, p in enumerate(buckets[min(b, len(buckets) - 1)]):
                col = np.array(COLORS.get(p.pattern, (0, 0, 0)), dtype=np.float64)
                d = _density(p)
                shade = 1.0 if np.isnan(d) else 0.45 + 0.55 * d
                img[layer * cell:(layer + 1) * cell - 1, h * cell:(h + 1) * cell - 1] = (col * shade + 255 * (1 - shade)).astype(np.uint8)
        cap = np.full((24, img.shape[1], 3), 255, dtype=np.uint8)
        cv2.putText(cap, f"bucket {b}", (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        panels.append(np.concatenate([cap, img], 0))
        panels.append(np.full((panels[-1].shape[0], 12, 3), 255, dtype=np.uint8))
    legend = np.full((22 * len(COLORS), 220, 3), 255, dtype=np.uint8)
    for i, (name, col) in enumerate(COLORS.items()):
        cv2.rectangle(legend, (4, i * 22 + 4), (18, i * 22 + 18), col, -1)
        cv2.putText(legend, name, (24, i * 22 + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    h = max(p.shape[0] for p in panels + [legend])
    pad = lambda im: np.concatenate([im, np.full((h - im.shape[0], im.shape[1], 3), 255, dtype=np.uint8)], 0)  # noqa: E731
    write_image(path, np.concatenate([pad(p) for p in panels + [legend]], 1))
