"""Turning calibration scores into a profile: candidates with their costs, step weights, the allocation.

Why separate from the observer (profiler.py): one calibration serves many budgets; choosing runs on
the stored scores only. A ``Chooser`` holds one config (the calibration's, or one with another budget)
and reads the calibration state, the scorer's candidates (built once per geometry, cached by the scorer) and the
probe's result.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import torch

from ..patterns import VideoGeometry
from ..plans import Plan, Profile, config_hash
from ..routing.call_graphs import MAX_BYTES
from .allocate import allocate
from .calibration import Calibration
from .costs import FP8_COST, CostModel
from .device_costs import device_costs
from .scoring import Scorer

if TYPE_CHECKING:
    from .profiler import ProfileConfig


def per_layer(keys: list, choice: torch.Tensor, plans: list[Plan], num_layers: int, buckets: int) -> dict:
    """layers[i][b] = per-head plans; a (layer, bucket) never observed runs dense."""
    heads = choice.shape[1]
    return {layer: [[plans[i] for i in choice[keys.index((layer, b))].tolist()] if (layer, b) in keys else [Plan()] * heads
                    for b in range(buckets)] for layer in range(num_layers)}


class Chooser:
    """The profile for one config's budget from a calibration's scores (and the probe's step sensitivities)."""

    def __init__(self, config: ProfileConfig, calibration: Calibration, scorer: Scorer, probe: dict | None):
        self.config, self.calibration, self.scorer, self.probe = config, calibration, scorer, probe

    def candidates(self, g: VideoGeometry, costs: CostModel) -> tuple[list[Plan], torch.Tensor, torch.Tensor]:
        """Every candidate, its cost and its computed density: patterns, compensated, their FP8 variants, then
        dense last (error 0). The density is the exact mask density at this geometry (+ a sampled plan's
        estimate); analytic costs are that, FP8 variants times ``FP8_COST``; a measured table prices each plan
        (with the copies of a call the router replays as a CUDA graph)."""
        built = self.scorer.candidates(g)
        base = list(built.plans)
        plans = base + ([replace(p, compensate=True) for p in base[1:]] if self.config.compensate else [])
        if self.config.fp8:
            plans += [replace(p, precision="fp8") for p in plans[1:]]
        plans.append(Plan())
        exact = built.cost
        bf16 = torch.cat([exact, exact[1:] + 1.0 / g.block if self.config.compensate else exact[:0]])
        fp8 = bf16[1:] if self.config.fp8 else bf16[:0]
        density = torch.cat([bf16, fp8, torch.ones(1)])
        if costs.source == "measured":
            cal = self.calibration
            graphed = (cal.device is not None and cal.device.type == "cuda"  # as CallGraphs.eligible (no padding mask)
                       and cal.batch * g.seq_len * cal.heads * cal.head_dim * 2 <= MAX_BYTES)
            return plans, torch.tensor([costs.cost(p, cal.head_dim, g.block, g.seq_len if graphed else None)
                                        for p in plans]), density
        return plans, torch.cat([bf16, fp8 * FP8_COST, torch.ones(1)]), density

    def expand(self, raw: torch.Tensor) -> torch.Tensor:
        """Measured errors [..., C'] -> errors of every candidate of ``candidates`` [..., C] (FP8 error
        adds in quadrature to the pattern's)."""
        if not self.config.fp8:
            return torch.cat([raw, raw.new_zeros(*raw.shape[:-1], 1)], -1)
        pat, f = raw[..., :-1], raw[..., -1:]
        return torch.cat([pat, (pat[..., 1:] ** 2 + f ** 2).sqrt(), raw.new_zeros(*raw.shape[:-1], 1)], -1)

    def tables(self) -> tuple[list, torch.Tensor]:
        keys, means = self.calibration.mean_errors()
        return keys, torch.stack([self.expand(m) for m in means])

    def step_weights(self, keys: list, choice: torch.Tensor) -> torch.Tensor:
        """w2[s]: the probe's final error from step s, squared, per unit of mean squared head error of the
        reference plan ``choice`` at that step; uniform without a probe."""
        step_bucket = self.calibration.step_bucket
        n = len(step_bucket)
        if self.probe is None:
            return torch.full((n,), 1.0 / n)
        row = {k: i for i, k in enumerate(keys)}
        w2 = torch.zeros(n)
        for s in range(n):
            b = step_bucket[s]
            # a step calibration did not score (score_every) takes the scored steps of its bucket
            calls = self.calibration.step_calls(s) or [c for t in range(n) if step_bucket[t] == b
                                                        for c in self.calibration.step_calls(t)]
            e2 = [float((self.expand(e)[torch.arange(e.shape[0]), choice[row[(layer, b)]]] ** 2).mean())
                  for layer, e in calls if (layer, b) in row]
            ref = sum(e2) / len(e2) if e2 else 0.0
            w2[s] = self.probe["final"][s] ** 2 / max(ref, 1e-12)
        return w2

    def reference(self, geometry: VideoGeometry) -> tuple[list, torch.Tensor, list[Plan]]:
        """The plan the probe perturbs with: the allocation without step information at probe_density."""
        keys, err = self.tables()
        plans, cost, _ = self.candidates(geometry, CostModel())
        kb = torch.tensor([b for _, b in keys])
        step_bucket = self.calibration.step_bucket
        a = allocate(err, cost, kb, step_bucket, torch.ones(len(step_bucket)), target=self.config.probe_density,
                     warm_up=False)
        return keys, a.choice, plans

    def reference_profile(self, geometry: VideoGeometry) -> Profile:
        """``reference`` as a profile over every observed layer (probe.py runs it)."""
        keys, choice, plans = self.reference(geometry)
        layers = per_layer(keys, choice, plans, max(k[0] for k in keys) + 1, self.calibration.buckets)
        return Profile("probe-reference", layers=layers, bucket_edges=self.calibration.edges, order=self.config.order,
                       block=self.config.block)

    def profile(self, heads: int, num_layers: int, geometry: VideoGeometry, name: str, model: torch.nn.Module | None = None,
                meta: dict | None = None) -> Profile:
        config, calibration = self.config, self.calibration
        costs = CostModel.load(config.cost_table) if config.cost_table else device_costs(calibration.device)
        plans, cost, dens = self.candidates(geometry, costs)
        keys, err = self.tables()
        w2 = self.step_weights(keys, self.reference(geometry)[1] if self.probe is not None else None)
        kb = torch.tensor([b for _, b in keys])
        target = config.target_density
        # a target is in computed density (what the mask computes; the unit): time, measured or analytic, is
        # reported beside it; an error budget buys the least time
        a = allocate(err, dens if target else cost, kb, calibration.step_bucket, w2, target=target,
                     error_budget=None if target else config.error_budget)
        layers = per_layer(keys, a.choice, plans, num_layers, calibration.buckets)
        n = len(calibration.step_bucket)

        def total(per_plan: torch.Tensor) -> float:  # over the generation: warm-up steps at 1.0, each bucket's mean plan
            means = [float(per_plan[a.choice[kb == b]].mean()) if (kb == b).any() else 1.0 for b in range(calibration.buckets)]
            return (a.warm + sum(x * m for x, m in zip(a.bucket_steps, means))) / n

        budget = {"target_density": target, "error_budget": None if target else config.error_budget,
                  "bucket_steps": a.bucket_steps, "expected_density": total(dens), "expected_cost": total(cost),
                  "expected_error": a.error,
                  "error_units": "relative L2 of the final latent" if self.probe else "mean per-head attention error"}
        return Profile(name=name, layers=layers, bucket_edges=calibration.edges, dense_steps=a.warm, order=config.order,
                       block=config.block, calibrated=True, steps=n, budget=budget, cost_model=costs.to_json(),
                       model=None if model is None else {"class": type(model).__name__, "config_hash": config_hash(model.config)},
                       meta={**(meta or {}), "step_weights": w2.tolist(), **({"probe": self.probe} if self.probe else {})})
