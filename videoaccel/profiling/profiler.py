"""Offline profiling: find, per (layer, head, timestep bucket), the plans that spend one total budget best.

Calibration runs the pipeline with dense attention. At every self-attention call the profiler
samples query rows of each head (exact attention rows, folded per key block, measure.py) and scores
every candidate plan on them: output relative error of each pattern and density, with and without
mass compensation, and the head's FP8 error. Errors are averaged over prompts and steps per timestep
bucket. A probe (probe.py) measures how much each step's attention error moves the final latent.
The allocation (allocate.py) then chooses the dense warm-up steps and every head's plan jointly for a
total attention cost (``target_density``) or a predicted final error (``error_budget``), with costs
from a GPU-measured table when given (costs.py).
"""
from __future__ import annotations

import copy
import logging
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

from .. import __version__, pipelines, values
from ..patterns import SCORED, TUNABLE, VideoGeometry
from ..pipelines.models import transformers_of
from ..plans import Profile, bucket_of
from ..routing import AttentionCall
from . import attach, choose, probe, scoring
from .checkpoint import load_checkpoint, save_checkpoint
from .device_costs import device_costs
from .costs import CostModel

log = logging.getLogger("videoaccel")

DENSITIES = (0.05, 0.1, 0.15, 0.25, 0.4)


@dataclass
class ProfileConfig:
    error_budget: float = 0.05  # predicted relative L2 error of the final latent (per-head attention error without the probe)
    target_density: float | None = None  # instead of the budget: the generation's total attention cost, warm-up steps at 1.0
    buckets: int = 3  # timestep buckets
    rows: int = 128  # sampled query rows per head and call
    densities: tuple[float, ...] = DENSITIES
    patterns: tuple[str, ...] = TUNABLE + SCORED  # static families, then per-call masks (sampled)
    compensate: bool = True  # also try each candidate with mass compensation
    order: str = "tile"
    block: int = 128
    seed: int = 0
    fp8: bool | None = None  # FP8 variants of every candidate, their error measured per head; None: where they pay on this GPU
    probe: bool = True  # measure step sensitivity (probe.py); off: every step weighs the same
    probe_density: float = 0.2  # cost of the reference plan the probe perturbs with
    cost_table: str | None = None  # `videoaccel bench cost-table` JSON; None: this GPU's measured table (device_costs), analytic on a CPU

    def __post_init__(self) -> None:
        values.positive(self.error_budget, "error_budget")
        if self.target_density is not None:
            values.density(self.target_density, "target_density")
        values.count(self.buckets, "buckets", 1)
        values.count(self.rows, "rows", 1)
        for d in self.densities:
            values.density(d, "candidate density")
        values.density(self.probe_density, "probe_density")
        if self.cost_table is not None:
            CostModel.load(self.cost_table)  # a file that is no cost table stops here, not after the calibration


@dataclass
class Calibration:
    """Running sums of candidate errors per (layer, bucket) -> [heads, C]."""
    err: dict = field(default_factory=lambda: defaultdict(lambda: 0.0))
    count: dict = field(default_factory=lambda: defaultdict(int))
    step_err: dict = field(default_factory=lambda: defaultdict(list))  # step -> [(layer, errors [H, C'])] per call


class Profiler:
    """An attention observer (``videoaccel.observe``) on a dense-accelerated pipeline: scores candidates per call."""

    def __init__(self, config: ProfileConfig, timesteps: list[float]):
        if config.fp8 is None:  # FP8 candidates only where this GPU runs FP8 faster than bf16 somewhere (device_costs)
            config = replace(config, fp8=torch.cuda.is_available() and device_costs(torch.device("cuda")).fp8_pays())
        self.config = config
        self.edges = _bucket_edges(timesteps, config.buckets)
        self.step_bucket = [self.bucket(t) for t in timesteps]
        self.head_dim = 128
        self.probe: dict | None = None  # probe.measure's result
        self.cal = Calibration()
        self._cands: dict[VideoGeometry, scoring.Candidates] = {}
        self._gen = torch.Generator().manual_seed(config.seed)
        self.geometry: VideoGeometry | None = None  # of the last observed call
        self.heads = 0
        self.device: torch.device | None = None  # of the observed calls: whose costs the allocation reads

    def bucket(self, timestep: float | None) -> int:
        return bucket_of(timestep, self.edges)

    def _candidates(self, g: VideoGeometry) -> scoring.Candidates:
        if g not in self._cands:
            self._cands[g] = scoring.build(self.config.patterns, self.config.densities, g)
        return self._cands[g]

    def __call__(self, call: AttentionCall) -> None:
        """One dense self-attention call: sample 0 is scored (with its valid text keys when the rest is padding)."""
        self.geometry, self.heads, self.device = call.geometry, call.q.shape[2], call.q.device
        valid = None if call.text_lengths is None else call.text_lengths[0]
        self.observe(call.layer, call.step, call.timestep, call.q, call.k, call.v, call.geometry, valid)

    def observe(self, layer: int, step: int, timestep: float | None, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, geometry: VideoGeometry,
                valid_text: int | None = None) -> None:
        """q/k/v [B, S, H, D] of one dense self-attention call (sample 0 is scored, with its
        ``valid_text`` text keys when the rest is padding)."""
        b = self.bucket(timestep)
        self.head_dim = q.shape[-1]
        errs = scoring.score_call(self._candidates(geometry), q, k, v, geometry, rows=self.config.rows, compensate=self.config.compensate,
                                  fp8=self.config.fp8, generator=self._gen, valid_text=valid_text)
        self.cal.err[(layer, b)] = self.cal.err[(layer, b)] + errs
        self.cal.count[(layer, b)] += 1
        self.cal.step_err[step].append((layer, errs))

    def choose(self, heads: int, num_layers: int, geometry: VideoGeometry, name: str, model: torch.nn.Module | None = None,
               meta: dict | None = None) -> Profile:
        """The profile for this config's budget from the scores so far (choose.py)."""
        return choose.profile(self, heads, num_layers, geometry, name, model, meta)


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


def profile_pipeline(pipe: DiffusionPipeline, prompts: list[str], config: ProfileConfig | None = None, *, name: str = "profile",
                     seed: int = 0, progress: bool = True, checkpoint: str | None = None, **call_kwargs) -> Profile:
    """Run calibration generations with dense attention and return a calibrated Profile.

    ``call_kwargs`` go to ``pipe(...)`` (height, width, num_frames, num_inference_steps, ...). With
    ``checkpoint`` the calibration state is saved after every prompt and an interrupted run with
    the same settings resumes where it stopped."""
    return calibrate(pipe, prompts, config, seed=seed, progress=progress, checkpoint=checkpoint, **call_kwargs).profile(name)


def calibrate(pipe: DiffusionPipeline, prompts: list[str], config: ProfileConfig | None = None, *, seed: int = 0, progress: bool = True,
              checkpoint: str | None = None, **call_kwargs) -> Calibrated:
    """The calibration half of profile_pipeline: dense generations with every candidate scored."""
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
    pipelines.accelerate(pipe, Profile("calibration", block=config.block, order=config.order, meta={"observe": True}))
    try:
        start = load_checkpoint(checkpoint, prof, key)
        with attach.observe(pipe, prof):
            bar = tqdm(total=len(prompts) + int(config.probe), desc="calibrating", disable=not progress, initial=start)
            for i, prompt in enumerate(prompts):
                if i < start:
                    continue
                g = torch.Generator(device=getattr(pipe, "device", "cpu")).manual_seed(seed + i)
                pipe(prompt=prompt, generator=g, output_type="latent", **call_kwargs)
                if checkpoint:
                    save_checkpoint(checkpoint, prof, i + 1, key)
                bar.update()
        geometry, heads, num_layers = prof.geometry, prof.heads, attach.num_layers(model)
        if config.probe and geometry is not None:
            bar.set_description("probing step sensitivity")
            _probe(pipe, model, prof, geometry, prompts[0], seed, call_kwargs)
            bar.update()
        bar.close()
    finally:
        pipelines.restore(pipe)
    if geometry is None:
        raise ValueError("no self-attention call was observed: is the pipeline's transformer supported?")
    meta = {"prompts": list(prompts), "seed": seed, "call": {k: v for k, v in call_kwargs.items() if isinstance(v, (int, float, str))},
            "geometry": [geometry.frames, geometry.height, geometry.width, geometry.text], "torch": torch.__version__,
            "videoaccel": __version__}
    return Calibrated(prof, heads, num_layers, geometry, model, meta)


def _probe(pipe, model, prof: Profiler, geometry: VideoGeometry, prompt: str, seed: int, call: dict) -> None:
    """Step sensitivities (probe.py) with the reference plan: the allocation without step information."""
    keys, choice, plans = choose.reference(prof, geometry)
    layers = choose.per_layer(keys, choice, plans, max(k[0] for k in keys) + 1, prof.config.buckets)
    ref = Profile("probe-reference", layers=layers, bucket_edges=prof.edges, order=prof.config.order, block=prof.config.block)

    def switch():
        pipelines.restore(pipe)
        pipelines.accelerate(pipe, ref)

    prof.probe = {**probe.measure(pipe, model, prompt, seed, switch, call), "prompt": prompt,
                  "reference_cost": prof.config.probe_density}
