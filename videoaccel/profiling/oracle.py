"""Oracle plans for benchmarks: exact top-k block masks at a total attention density.

Why: the fidelity benchmark reports every plan's gap to the oracle at the same total density (dense
warm-up steps counted at 1.0), the upper bound a block mask of that size can reach. Each call costs
a full attention map (patterns/oracle.py): never ship an oracle profile. ``per_layer`` takes the top
blocks of each layer across its heads at once (``oracle_layer``), as a profile's per-head budgets may
spend them; a per-head oracle keeps every head at one density and is no bound for a profile.
``oracle_like`` spends exactly what one calibrated profile spends, where it spends it (its warm-up steps, dense
layers and each layer's density in each timestep bucket): that profile's own bound, whatever its allocation.
"""
from __future__ import annotations

from ..plans import Plan, Profile
from .costs import computed_density


def oracle_profile(density: float, block: int = 128, dense_steps: int = 0, order: str = "frame",
                   per_layer: bool = False, compensate: bool = False) -> Profile:
    """Every call keeps its exact top ``density`` key blocks (per head, or ``per_layer`` across its heads), with the
    skipped blocks' mass ``compensate``d as a profile's heads may; the first ``dense_steps`` run dense."""
    pattern = "oracle_layer" if per_layer else "oracle"
    return Profile(name=f"{pattern}-b{block}-{density:.3g}" + (f"-w{dense_steps}" if dense_steps else "") + ("-comp" if compensate else ""),
                   default=Plan(pattern, (("density", float(density)),), compensate=compensate), dense_steps=dense_steps, order=order,
                   block=block, meta={"oracle": True, "benchmark_only": True})


def oracle_for_total(total: float, steps: int, dense_steps: int = 0, block: int = 128, order: str = "frame",
                     per_layer: bool = False, compensate: bool = False) -> Profile:
    """The oracle whose total density over ``steps`` (warm-up steps at 1.0; compensation's pooled key per block at
    1/block, as the profiler counts it) is ``total``."""
    if not 0 <= dense_steps < steps:
        raise ValueError(f"dense_steps={dense_steps} must lie in [0, steps={steps})")
    per_step = (total * steps - dense_steps) / (steps - dense_steps) - (1.0 / block if compensate else 0.0)
    if per_step <= 0:
        raise ValueError(f"{dense_steps} dense steps of {steps} already exceed the total density {total}")
    profile = oracle_profile(min(per_step, 1.0), block, dense_steps, order, per_layer, compensate)
    profile.meta["total_density"] = total
    return profile


def oracle_like(profile: Profile, compensate: bool = False, per_layer: bool = True) -> Profile:
    """The oracle at ``profile``'s allocation: the same warm-up steps, dense layers, buckets, order and block; in every
    (layer, bucket) its heads' mean computed density (a sampled plan's estimate and compensation's pooled keys included,
    as the profiler counts them) spent on the layer's exact top blocks across its heads, or (``per_layer`` False) each
    head's own density on its exact top blocks per row (what the profile's plans would keep with a perfect estimate);
    ``compensate``d (its pooled keys paid from that density) or not."""
    pooled = 1.0 / profile.block

    def plan(d: float, pattern: str) -> Plan:
        d = min(d - (pooled if compensate else 0.0), 1.0)
        return Plan() if d >= 1.0 else Plan(pattern, (("density", max(d, pooled)),), compensate=compensate)

    layers = {}
    for layer, buckets in profile.layers.items():
        layers[layer] = []
        for plans in buckets:
            costs = [computed_density(p, profile.block) for p in plans]
            if any(c != c for c in costs):
                raise ValueError(f"profile {profile.name!r} has a plan without a fixed density (layer {layer}): its oracle "
                                 "needs a density per layer")
            layers[layer].append([plan(sum(costs) / len(costs), "oracle_layer")] * len(plans) if per_layer
                                 else [plan(c, "oracle") for c in costs])
    meta = {"oracle": True, "benchmark_only": True, "total_density": profile.budget.get("target_density"), "like": profile.name}
    return Profile(name=f"oracle-like-{profile.name}" + ("" if per_layer else "-per-head") + ("-comp" if compensate else ""),
                   default=Plan(), layers=layers, bucket_edges=list(profile.bucket_edges), dense_steps=profile.dense_steps,
                   dense_layers=profile.dense_layers, order=profile.order, block=profile.block, steps=profile.steps, meta=meta)
