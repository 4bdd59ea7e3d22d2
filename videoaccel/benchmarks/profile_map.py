"""A calibrated profile's plans on another model's layers and heads: how ``bench e2e --profile`` times
what the profiler picks where attention dominates.

Why a mapping: the testbed's calibrated profiles (8 layers x 4 heads) keep their videos faithful, but
their speed only tells at full size (Wan2.1-1.3B 480p: 30 layers x 12 heads). The mapping is plain and
documented, not a claim of fidelity at full size:

- layer i of the target takes the profile's layer ``i * L_profile // L_target`` (depth-proportional);
- head h takes the profile's head ``h % H_profile`` (each head pattern repeated across the wider layer);
- every timestep bucket keeps its plans; the block becomes the target's (plan parameters are fractions
  of the latent grid or densities, so they carry over);
- dense warm-up steps are not part of a step's time: the mapped profile has none, and ``total_speedup``
  puts them back for a whole generation of ``steps`` steps.
"""
from __future__ import annotations

from dataclasses import replace

from ..plans import Profile


def map_profile(profile: Profile, num_layers: int, heads: int, block: int | None = None) -> Profile:
    """``profile``'s plans on ``num_layers`` layers of ``heads`` heads (see the module docstring)."""
    if not profile.layers:
        return replace(profile, name=f"{profile.name}-mapped", dense_steps=0, model=None, block=block or profile.block)
    src = max(profile.layers) + 1
    layers = {}
    for i in range(num_layers):
        buckets = profile.layers.get(i * src // num_layers)
        if buckets is None:
            continue
        layers[i] = [[hs[h % len(hs)] for h in range(heads)] for hs in buckets]
    dense_layers = tuple(i for i in range(num_layers) if i * src // num_layers in profile.dense_layers)
    return replace(profile, name=f"{profile.name}-mapped", layers=layers, dense_layers=dense_layers, dense_steps=0,
                   model=None, block=block or profile.block, meta={**profile.meta, "mapped_from": profile.name})


def total_speedup(step_speedups: list[float], bucket_steps: list[int], dense_steps: int) -> float:
    """A whole generation's speedup: ``dense_steps`` at 1.0, then each bucket's steps at its measured speedup."""
    steps = dense_steps + sum(bucket_steps)
    time = dense_steps + sum(n / s for n, s in zip(bucket_steps, step_speedups))
    return steps / time


def profile_totals(case: str, profile: Profile, results: list, rec) -> None:
    """Whole-generation rows of the mapped profile: its warm-up steps at 1.0, each bucket's steps at its speedup."""
    split = profile.budget.get("bucket_steps") or [1] * (len(profile.bucket_edges) + 1)
    for how in ("eager", "compiled", "compiled-cudagraphs"):
        rows = {r["impl"]: r for r in results if r.get("case") == case and r["impl"].startswith("videoaccel-profile-bucket")
                and r["impl"].endswith(f"-{how}")}
        got = [rows.get(f"videoaccel-profile-bucket{b}-{how}") for b in range(len(split))]
        if not all(got):
            continue
        key = "speedup_vs_cudnn"
        rec(case=case, impl=f"videoaccel-profile:{profile.name}-{how}", bucket_steps=split, dense_steps=profile.dense_steps,
            **{f"step_{key}": [r[key] for r in got]},
            speedup_vs_cudnn=total_speedup([r[key] for r in got], split, 0),
            generation_speedup_vs_cudnn=total_speedup([r[key] for r in got], split, profile.dense_steps),
            attn_density=sum(n * r["attn_density"] for n, r in zip(split, got)) / sum(split),
            mapping="layer i <- i * L_profile // L_model, head h <- h % H_profile, block 128, no warm-up (profile_map.py)")


def bucket_timesteps(profile: Profile | None) -> list[float]:
    """A timestep inside each of the profile's buckets (edges descend from 1000)."""
    if profile is None:
        return []
    edges = [1000.0] + list(profile.bucket_edges) + [0.0]
    return [(hi + lo) / 2 for hi, lo in zip(edges, edges[1:])]
