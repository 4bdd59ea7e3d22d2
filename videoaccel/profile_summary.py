"""Text summaries of a profile: what each layer and head runs, per timestep bucket (`videoaccel inspect`,
`videoaccel profile`); beside plans.py, so reading a profile loads no profiler."""
from __future__ import annotations

import numpy as np

from .plans import Profile


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
            d = np.nanmean([p.density for p in heads])
            cells.append(f"b{b}: " + ", ".join(f"{k} x{v}" for k, v in sorted(counts.items())) + f" (density {d:.2f})")
        lines.append(f"layer {layer:3d}: " + " | ".join(cells))
    return "\n".join(lines)
