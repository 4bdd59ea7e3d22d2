"""Offline profiling: find, per (layer, head, timestep bucket), the cheapest plan that stays faithful.

Calibration runs the pipeline with dense attention. At every self-attention call the profiler
samples query rows of each head (exact attention rows, folded per key block, measure.py) and scores
every candidate plan on them: output relative error and kept mass. Errors are averaged over
prompts and steps per timestep bucket. Then each head gets the cheapest candidate within the error
budget (cost = computed fraction of the score matrix; FP8 counts its measured speed ratio), or, with
a target density, a greedy allocation spends the error where it saves the most. Early steps whose
best plans all miss the budget become dense warm-up steps.
"""
from __future__ import annotations

import copy
import logging
from collections import defaultdict
from dataclasses import dataclass, field, replace

import torch
from tqdm.auto import tqdm

from .. import plan_checks
from ..patterns import VideoGeometry, fit_density
from ..patterns.measure import density_of, evaluate, sample_head
from ..plans import Plan, Profile, config_hash
from .checkpoint import load_checkpoint, save_checkpoint
from ..routing import AttentionCall

log = logging.getLogger("videoaccel")

DENSITIES = (0.05, 0.1, 0.15, 0.25, 0.4)
PATTERNS = ("radial", "diagonal", "multi_diagonal", "vertical_stripe")
FP8_COST = 0.7  # FP8 kernel time over bf16 at equal density (bench/kernels-h100.json, densities 0.1-0.5)


@dataclass
class ProfileConfig:
    error_budget: float = 0.05  # per head: relative L2 error of the attention output on sampled rows
    target_density: float | None = None  # instead of the budget: reach this mean density, least error first
    buckets: int = 3  # timestep buckets
    rows: int = 128  # sampled query rows per head and call
    densities: tuple[float, ...] = DENSITIES
    patterns: tuple[str, ...] = PATTERNS
    compensate: bool = True  # also try each candidate with mass compensation
    order: str = "tile"
    block: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        plan_checks.positive(self.error_budget, "error_budget")
        if self.target_density is not None:
            plan_checks.density(self.target_density, "target_density")
        plan_checks.count(self.buckets, "buckets", 1)
        plan_checks.count(self.rows, "rows", 1)
        for d in self.densities:
            plan_checks.density(d, "candidate density")


@dataclass
class _Candidates:
    plans: list[Plan]
    masks: torch.Tensor  # [C, NB, NB]
    cost: torch.Tensor  # [C]


@dataclass
class Calibration:
    """Running sums of candidate errors per (layer, bucket) -> [heads, C]."""
    err: dict = field(default_factory=lambda: defaultdict(lambda: 0.0))
    count: dict = field(default_factory=lambda: defaultdict(int))
    step_err: dict = field(default_factory=lambda: defaultdict(list))  # step -> best error per head and layer


class Profiler:
    """An attention observer (``videoaccel.observe``) on a dense-accelerated pipeline: scores candidates per call."""

    def __init__(self, config: ProfileConfig, timesteps: list[float]):
        self.config = config
        self.edges = _bucket_edges(timesteps, config.buckets)
        self.cal = Calibration()
        self._cands: dict[VideoGeometry, _Candidates] = {}
        self._gen = torch.Generator().manual_seed(config.seed)
        self.candidates: list[Plan] | None = None
        self.geometry: VideoGeometry | None = None  # of the last observed call
        self.heads = 0

    def bucket(self, timestep: float | None) -> int:
        return 0 if timestep is None else sum(1 for e in self.edges if timestep < e)

    def _candidates(self, g: VideoGeometry) -> _Candidates:
        if g not in self._cands:
            plans, masks = [Plan("skip")], [torch.zeros(g.num_blocks, g.num_blocks, dtype=torch.bool)]
            for name in self.config.patterns:
                for d in self.config.densities:
                    _, m = fit_density(name, g, d)
                    plans.append(Plan(name, (("density", d),)))
                    masks.append(m)
            masks = torch.stack(masks)
            self._cands[g] = _Candidates(plans, masks, density_of(masks, g))
            self.candidates = plans
        return self._cands[g]

    def __call__(self, call: AttentionCall) -> None:
        """One dense self-attention call: sample 0 is scored (with its valid text keys when the rest is padding)."""
        self.geometry, self.heads = call.geometry, call.q.shape[2]
        valid = None if call.text_lengths is None else call.text_lengths[0]
        self.observe(call.layer, call.step, call.timestep, call.q, call.k, call.v, call.geometry, valid)

    def observe(self, layer: int, step: int, timestep: float | None, q, k, v, geometry: VideoGeometry,
                valid_text: int | None = None) -> None:
        """q/k/v [B, S, H, D] of one dense self-attention call (sample 0 is scored, with its
        ``valid_text`` text keys when the rest is padding)."""
        c = self._candidates(geometry)
        b = self.bucket(timestep)
        errs = []
        for h in range(q.shape[2]):
            s = sample_head(q[0, :, h], k[0, :, h], v[0, :, h], geometry, self.config.rows, generator=self._gen,
                            valid_text=valid_text)
            e, _ = evaluate(s, c.masks)
            if self.config.compensate:
                e = torch.cat([e, evaluate(s, c.masks[1:], compensate=True)[0]])
            errs.append(e.cpu())
        errs = torch.stack(errs)  # [H, C']
        self.cal.err[(layer, b)] = self.cal.err[(layer, b)] + errs
        self.cal.count[(layer, b)] += 1
        self.cal.step_err[step].append(errs)

    # ---- choosing ----------------------------------------------------------------------
    def _all_plans(self, g: VideoGeometry):
        c = self._cands[g]
        plans, cost = list(c.plans), c.cost.clone()
        if self.config.compensate:
            plans += [Plan(p.pattern, p.params, compensate=True) for p in c.plans[1:]]
            cost = torch.cat([cost, c.cost[1:] + 1.0 / g.block])  # one pooled key per block
        return plans, cost

    def choose(self, heads: int, num_layers: int, geometry: VideoGeometry, name: str, model=None,
               meta: dict | None = None) -> Profile:
        plans, cost = self._all_plans(geometry)
        dense = Plan()
        table: dict[tuple[int, int], torch.Tensor] = {k: self.cal.err[k] / self.cal.count[k] for k in self.cal.err}
        choice: dict[tuple[int, int], list[int]] = {}
        budget = self.config.error_budget
        for key, err in table.items():  # cheapest candidate within budget, per head; -1 = dense
            picks = []
            for h in range(err.shape[0]):
                ok = (err[h] <= budget).nonzero().flatten()
                picks.append(int(ok[cost[ok].argmin()]) if len(ok) else -1)
            choice[key] = picks
        if self.config.target_density is not None:
            choice = self._greedy(table, cost, self.config.target_density)
        layers = {}
        for layer in range(num_layers):
            per_bucket = []
            for b in range(self.config.buckets):
                picks = choice.get((layer, b))
                per_bucket.append([dense] * heads if picks is None else [plans[i] if i >= 0 else dense for i in picks])
            layers[layer] = per_bucket
        chosen_err = [float(table[k][h, i]) if i >= 0 else 0.0 for k, ps in choice.items() for h, i in enumerate(ps)]
        chosen_cost = [float(cost[i]) if i >= 0 else 1.0 for ps in choice.values() for i in ps]
        # warm-up threshold: the budget, or with a target density the worst head error the allocation accepted
        threshold = budget if self.config.target_density is None else max(chosen_err, default=0.0)
        return Profile(name=name, layers=layers, bucket_edges=self.edges, dense_steps=self._dense_steps(threshold),
                       order=self.config.order, block=self.config.block, calibrated=True,
                       model=None if model is None else {"class": type(model).__name__, "config_hash": config_hash(model.config)},
                       meta={**(meta or {}), "error_budget": budget, "target_density": self.config.target_density,
                             "expected_density": sum(chosen_cost) / max(len(chosen_cost), 1),
                             "expected_max_head_error": max(chosen_err, default=0.0),
                             "cost_model": "analytic (computed fraction of the score matrix)"})

    def _greedy(self, table, cost, target):
        """From all dense, repeatedly take the (layer, bucket, head) move with the least added error
        per unit of cost saved, until the mean cost reaches ``target``."""
        picks = {k: [-1] * v.shape[0] for k, v in table.items()}
        n = sum(len(p) for p in picks.values())
        total = float(n)
        while total / n > target:
            best = None
            for k, err in table.items():
                for h, cur in enumerate(picks[k]):
                    c0, e0 = (1.0, 0.0) if cur < 0 else (float(cost[cur]), float(err[h, cur]))
                    cheaper = (cost < c0 - 1e-9).nonzero().flatten()
                    if not len(cheaper):
                        continue
                    ratio = (err[h, cheaper] - e0).clamp_min(0) / (c0 - cost[cheaper])
                    j = int(cheaper[ratio.argmin()])
                    r = float(ratio.min())
                    if best is None or r < best[0]:
                        best = (r, k, h, j, c0 - float(cost[j]))
            if best is None:
                break
            _, k, h, j, saved = best
            picks[k][h] = j
            total -= saved
        return picks

    def _dense_steps(self, threshold: float) -> int:
        """Leading steps where even the best candidate of the typical head misses ``threshold``."""
        n = 0
        for step in sorted(self.cal.step_err):
            best = torch.stack([e.min(-1).values.median() for e in self.cal.step_err[step]]).median()
            if float(best) > threshold:
                n = step + 1
            else:
                break
        return n


def _bucket_edges(timesteps: list[float], buckets: int) -> list[float]:
    """Timesteps (descending, as schedulers run) splitting the steps into ``buckets`` equal groups."""
    ts = sorted(timesteps, reverse=True)
    if buckets <= 1 or len(ts) < buckets:
        return []
    return [ts[len(ts) * i // buckets] + 1e-3 for i in range(1, buckets)]


@dataclass
class Calibrated:
    """The scores of one calibration run; profiles for several budgets come from it without recalibrating."""

    profiler: Profiler
    heads: int
    num_layers: int
    geometry: VideoGeometry
    model: torch.nn.Module
    meta: dict

    def profile(self, name: str = "profile", **overrides) -> Profile:
        """Choose plans, with ``overrides`` of the config's choosing fields (error_budget, target_density)."""
        prof = copy.copy(self.profiler)
        prof.config = replace(prof.config, **overrides)
        return prof.choose(self.heads, self.num_layers, self.geometry, name, self.model, self.meta)


def profile_pipeline(pipe, prompts: list[str], config: ProfileConfig | None = None, *, name: str = "profile",
                     seed: int = 0, progress: bool = True, checkpoint: str | None = None, **call_kwargs) -> Profile:
    """Run calibration generations with dense attention and return a calibrated Profile.

    ``call_kwargs`` go to ``pipe(...)`` (height, width, num_frames, num_inference_steps, ...). With
    ``checkpoint`` the calibration state is saved after every prompt and an interrupted run with
    the same settings resumes where it stopped."""
    return calibrate(pipe, prompts, config, seed=seed, progress=progress, checkpoint=checkpoint, **call_kwargs).profile(name)


def calibrate(pipe, prompts: list[str], config: ProfileConfig | None = None, *, seed: int = 0, progress: bool = True,
              checkpoint: str | None = None, **call_kwargs) -> Calibrated:
    """The calibration half of profile_pipeline: dense generations with every candidate scored."""
    from .. import pipelines
    from ..pipelines.models import transformers_of

    config = config or ProfileConfig()
    models = transformers_of(pipe)
    if len(models) != 1:
        raise ValueError("profiling pipelines with two transformers (Wan2.2 A14B) is not supported yet: profile each stage")
    _, model = models[0]
    steps = call_kwargs.get("num_inference_steps", 50)
    pipe.scheduler.set_timesteps(steps)
    timesteps = [float(t) for t in pipe.scheduler.timesteps]
    prof = Profiler(config, timesteps)
    key = {"prompts": list(prompts), "seed": seed, "config": repr(config), "call": repr(sorted(call_kwargs.items()))}
    pipelines.accelerate(pipe, Profile("calibration", block=config.block, order=config.order))
    num_layers = pipelines.router_of(model).num_layers
    try:
        start = load_checkpoint(checkpoint, prof, key)
        with pipelines.observe(pipe, prof):
            for i, prompt in enumerate(tqdm(prompts, desc="calibrating", disable=not progress, initial=start)):
                if i < start:
                    continue
                g = torch.Generator(device=getattr(pipe, "device", "cpu")).manual_seed(seed + i)
                pipe(prompt, generator=g, output_type="latent", **call_kwargs)
                if checkpoint:
                    save_checkpoint(checkpoint, prof, i + 1, key)
        geometry, heads = prof.geometry, prof.heads
    finally:
        pipelines.restore(pipe)
    if geometry is None:
        raise ValueError("no self-attention call was observed: is the pipeline's transformer supported?")
    meta = {"prompts": list(prompts), "seed": seed, "call": {k: v for k, v in call_kwargs.items() if isinstance(v, (int, float, str))},
            "geometry": [geometry.frames, geometry.height, geometry.width, geometry.text], "torch": torch.__version__,
            "videoaccel": __import__("videoaccel").__version__}
    return Calibrated(prof, heads, num_layers, geometry, model, meta)
