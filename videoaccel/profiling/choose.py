"""Turning calibration scores into a profile: candidates, step weights, the allocation.

Why separate from the observer (profiler.py): one calibration serves many budgets; choosing runs
on the stored scores only. ``self`` is the Profiler whose scores are used.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import torch

from ..patterns import VideoGeometry
from ..plans import Plan, Profile, config_hash
from .allocate import allocate
from .costs import FP8_COST, CostModel
from .device_costs import device_costs

if TYPE_CHECKING:
    from .profiler import Profiler


def per_layer(keys: list, choice: torch.Tensor, plans: list[Plan], num_layers: int, buckets: int) -> dict:
    """layers[i][b] = per-head plans; a (layer, bucket) never observed runs dense."""
    heads = choice.shape[1]
    return {layer: [[plans[i] for i in choice[keys.index((layer, b))].tolist()] if (layer, b) in keys else [Plan()] * heads
                    for b in range(buckets)] for layer in range(num_layers)}


def candidates(self: Profiler, g: VideoGeometry, costs: CostModel) -> tuple[list[Plan], torch.Tensor, torch.Tensor]:
    """Every candidate, its cost and its computed density: patterns, compensated, their FP8 variants, then
    dense last (error 0). The density is the exact mask density at this geometry (+ a sampled plan's
    estimate); analytic costs are that, FP8 variants times ``FP8_COST``; a measured table prices each plan."""
    base = list(self._cands[g].plans)
    plans = base + ([replace(p, compensate=True) for p in base[1:]] if self.config.compensate else [])
    if self.config.fp8:
        plans += [replace(p, precision="fp8") for p in plans[1:]]
    plans.append(Plan())
    exact = self._cands[g].cost
    bf16 = torch.cat([exact, exact[1:] + 1.0 / g.block if self.config.compensate else exact[:0]])
    fp8 = bf16[1:] if self.config.fp8 else bf16[:0]
    density = torch.cat([bf16, fp8, torch.ones(1)])
    if costs.source == "measured":
        return plans, torch.tensor([costs.cost(p, self.head_dim, g.block) for p in plans]), density
    return plans, torch.cat([bf16, fp8 * FP8_COST, torch.ones(1)]), density

def expand(self: Profiler, raw: torch.Tensor) -> torch.Tensor:
    """Measured errors [..., C'] -> errors of every candidate of ``_all_plans`` [..., C] (FP8 error
    adds in quadrature to the pattern's)."""
    if not self.config.fp8:
        return torch.cat([raw, raw.new_zeros(*raw.shape[:-1], 1)], -1)
    pat, f = raw[..., :-1], raw[..., -1:]
    return torch.cat([pat, (pat[..., 1:] ** 2 + f ** 2).sqrt(), raw.new_zeros(*raw.shape[:-1], 1)], -1)

def tables(self: Profiler) -> tuple[list, torch.Tensor]:
    keys = sorted(self.cal.err)
    err = torch.stack([expand(self, self.cal.err[k] / self.cal.count[k]) for k in keys])
    return keys, err

def step_weights(self: Profiler, keys: list, choice: torch.Tensor) -> torch.Tensor:
    """w2[s]: the probe's final error from step s, squared, per unit of mean squared head error of the
    reference plan ``choice`` at that step; uniform without a probe."""
    n = len(self.step_bucket)
    if self.probe is None:
        return torch.full((n,), 1.0 / n)
    row = {k: i for i, k in enumerate(keys)}
    w2 = torch.zeros(n)
    for s in range(n):
        calls = self.cal.step_err.get(s, [])
        b = self.step_bucket[s]
        e2 = [float((expand(self, e)[torch.arange(e.shape[0]), choice[row[(layer, b)]]] ** 2).mean())
              for layer, e in calls if (layer, b) in row]
        ref = sum(e2) / len(e2) if e2 else 0.0
        w2[s] = self.probe["final"][s] ** 2 / max(ref, 1e-12)
    return w2

def reference(self: Profiler, geometry: VideoGeometry) -> tuple[list, torch.Tensor, list[Plan]]:
    """The plan the probe perturbs with: the allocation without step information at probe_density."""
    keys, err = tables(self)
    plans, cost, _ = candidates(self, geometry, CostModel())
    kb = torch.tensor([b for _, b in keys])
    a = allocate(err, cost, kb, self.step_bucket, torch.ones(len(self.step_bucket)), target=self.config.probe_density,
                 warm_up=False)
    return keys, a.choice, plans

def profile(self: Profiler, heads: int, num_layers: int, geometry: VideoGeometry, name: str, model: torch.nn.Module | None = None,
           meta: dict | None = None) -> Profile:
    costs = CostModel.load(self.config.cost_table) if self.config.cost_table else device_costs(self.device)
    plans, cost, dens = candidates(self, geometry, costs)
    keys, err = tables(self)
    w2 = step_weights(self, keys, reference(self, geometry)[1] if self.probe is not None else None)
    kb = torch.tensor([b for _, b in keys])
    target = self.config.target_density
    a = allocate(err, cost, kb, self.step_bucket, w2, target=target, error_budget=None if target else self.config.error_budget)
    layers = per_layer(keys, a.choice, plans, num_layers, self.config.buckets)
    mean_d = [float(dens[a.choice[kb == b]].mean()) if (kb == b).any() else 1.0 for b in range(self.config.buckets)]
    n = len(self.step_bucket)
    budget = {"target_density": target, "error_budget": None if target else self.config.error_budget,
              "bucket_steps": a.bucket_steps, "expected_density": (a.warm + sum(x * d for x, d in zip(a.bucket_steps, mean_d))) / n,
              "expected_cost": a.cost, "expected_error": a.error,
              "error_units": "relative L2 of the final latent" if self.probe else "mean per-head attention error"}
    return Profile(name=name, layers=layers, bucket_edges=self.edges, dense_steps=a.warm, order=self.config.order,
                   block=self.config.block, calibrated=True, steps=n, budget=budget, cost_model=costs.to_json(),
                   model=None if model is None else {"class": type(model).__name__, "config_hash": config_hash(model.config)},
                   meta={**(meta or {}), "step_weights": w2.tolist(), **({"probe": self.probe} if self.probe else {})})
