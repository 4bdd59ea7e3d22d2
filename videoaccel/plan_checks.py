"""Checks of plans and profiles, run when they are made (Plan, presets, profile files) and against a model.

Each pattern parameter is checked by its kind of value (values.py); each error names the valid range
and an example, so an out-of-range value stops where it is written instead of running as something else.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from .patterns.registry import BLOCKS, ORDERS, PATTERNS
from .profile_schema import nearest, shown
from .values import count, density, fraction, mass, positive, thresholds


_KIND: dict[str, Callable[[Any, str], Any]] = {
    "density": density, "top_p": lambda v, n: None if v is None else mass(v, n), "decay": positive, "t": fraction, "h": fraction, "w": fraction,
    "columns": fraction, "thresholds": thresholds,
    "sink_frames": lambda v, n: count(v, n, 0), "keep_every": lambda v, n: count(v, n, 1),
    "top_k": lambda v, n: count(v, n, 1), "every": lambda v, n: count(v, n, 1), "rows": lambda v, n: count(v, n, 1),
}


def plan_params(pattern: str, params: tuple[tuple[str, Any], ...]) -> tuple[tuple[str, Any], ...]:
    """``params`` checked for ``pattern`` (sequences become tuples, so plans stay hashable)."""
    allowed = PATTERNS[pattern].params
    out = []
    for key, value in params:
        if key not in allowed:
            raise ValueError(f"{pattern} has no parameter {shown(key)}{nearest(key, allowed)}: it takes {', '.join(allowed) or 'none'}")
        out.append((key, _KIND[key](value, f"{pattern} {key}")))
    keys = dict(out)
    if pattern == "draft" and (keys.get("top_p", 0.9) is None) == (keys.get("top_k") is None):
        raise ValueError(f"draft takes one of top_p (e.g. 0.9) or top_k (then set top_p to null); got {shown(keys)}")
    return tuple(out)


def profile_fields(p: Any) -> None:
    """A Profile's fields beyond its plans: types and ranges a file could get wrong (ValueError naming the field)."""
    if not isinstance(p.name, str):
        raise ValueError(f"name={shown(p.name)} must be a string")
    if not isinstance(p.calibrated, bool):
        raise ValueError(f"calibrated={shown(p.calibrated)} must be true or false")
    for layer, buckets in p.layers.items():
        if isinstance(layer, bool) or not isinstance(layer, int) or layer < 0:
            raise ValueError(f"layer key {shown(layer)} must be a layer index >= 0, e.g. \"0\"")
        if not isinstance(buckets, list) or not buckets or any(not isinstance(b, list) or not b for b in buckets):
            raise ValueError(f"layer {layer} must hold one non-empty list of head plans per timestep bucket, e.g. "
                             "[[plan, plan, ...]]; leave a layer out to give it the default plan")
        if len({len(b) for b in buckets}) > 1:
            raise ValueError(f"layer {layer} has {shown([len(b) for b in buckets])} head plans in its buckets: give every bucket one "
                             "plan per head")
    if any(isinstance(e, bool) or not isinstance(e, (int, float)) or not math.isfinite(e) for e in p.bucket_edges) \
            or list(p.bucket_edges) != sorted(p.bucket_edges, reverse=True):
        raise ValueError(f"bucket_edges={shown(p.bucket_edges)} must be timesteps in descending order, e.g. [800.0, 400.0]")
    count(p.dense_steps, "dense_steps", 0)
    for layer in p.dense_layers:
        count(layer, "dense_layers entry", 0)
    if p.order not in ORDERS:
        raise ValueError(f"order={shown(p.order)}: use 'frame' or 'tile'")
    if isinstance(p.block, bool) or not isinstance(p.block, int) or p.block not in BLOCKS:
        raise ValueError(f"block={shown(p.block)}: use 16, 32, 64 or 128")
    m = p.model
    if m is not None and (not isinstance(m, dict) or not isinstance(m.get("class"), str)
                          or not isinstance(m.get("config_hash"), (str, type(None)))):
        raise ValueError(f"model={shown(m)} must be null or {{\"class\": \"WanTransformer3DModel\", \"config_hash\": \"...\" or null}}")
    if not isinstance(p.meta, dict):
        raise ValueError(f"meta={shown(p.meta)} must be an object")
    step_budget(p)


def step_budget(p: Any) -> None:
    """Schema-2 fields: steps, budget (its bucket_steps) and cost_model."""
    if p.steps is not None:
        count(p.steps, "steps", 1)
    if not isinstance(p.budget, dict):
        raise ValueError(f"budget={shown(p.budget)} must be an object, e.g. {{\"target_density\": 0.25}}")
    split = p.budget.get("bucket_steps")
    if split is not None:
        if not isinstance(split, list) or any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in split):
            raise ValueError(f"budget.bucket_steps={shown(split)} must list the sparse steps of each bucket, e.g. [3, 7, 6]")
        if p.steps is not None and sum(split) + p.dense_steps > p.steps:
            raise ValueError(f"budget.bucket_steps={shown(split)} and dense_steps={p.dense_steps} exceed steps={p.steps}")
    if not isinstance(p.cost_model, dict) or p.cost_model.get("source") not in ("analytic", "measured"):
        raise ValueError(f"cost_model={shown(p.cost_model)} must be an object with source 'analytic' or 'measured'")


def profile_fits_model(p: Any, num_layers: int, heads: int | None) -> None:
    """ValueError before any step runs when ``p``'s layers or head counts are not the model's."""
    extra = sorted(i for i in set(p.layers) | set(p.dense_layers) if i >= num_layers)
    if extra:
        raise ValueError(f"profile {shown(p.name)} names layers {shown(extra)} but the model has {num_layers} (0-{num_layers - 1}): "
                         "it was made for another model; profile this one with `videoaccel profile`")
    wrong = sorted({len(b) for bs in p.layers.values() for b in bs} - {heads}) if heads else []
    if wrong:
        raise ValueError(f"profile {shown(p.name)} has {wrong[0]} head plans per layer but the model has {heads} heads: "
                         "it was made for another model; profile this one with `videoaccel profile`")


class ProfileNotApplied(UserWarning):
    """A profile that cannot run as written (all dense, or a warm-up as long as the run): said, never silent."""


def stock_dense(p: Any, num_layers: int) -> bool:
    """Every head of every layer runs stock dense attention (dense, bf16): nothing is accelerated."""
    def stock(plan: Any) -> bool:
        return plan.pattern == "dense" and plan.precision == "bf16"

    return all(i in p.dense_layers or all(stock(x) for bs in p.layers.get(i, [[p.default]]) for x in bs)
               for i in range(num_layers))


def unapplied_note(p: Any, num_layers: int, steps: int | None = None) -> str | None:
    """One line when ``p`` cannot run as written on a model of ``num_layers`` layers (a run of ``steps`` steps when
    known): its dense warm-up covers the whole run, or every head is dense. None where dense is what was asked: the
    ``dense`` preset, and profiles that only route to watch attention (``meta["observe"]``: calibration, statistics)."""
    if p.meta.get("preset") and p.name == "dense" or p.meta.get("observe"):
        return None
    if steps is not None and p.dense_steps >= steps:
        return (f"profile {shown(p.name)} runs its first {p.dense_steps} steps dense (warm-up) and this run has {steps}, "
                "so it runs fully dense: give more steps, or use a profile with fewer dense_steps")
    if stock_dense(p, num_layers):
        return (f"profile {shown(p.name)} has every head of every layer dense, so it runs as the stock model: "
                "choose a sparse profile or a preset such as radial")
    return None
