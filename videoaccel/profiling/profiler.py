"""Offline profiling: find, per (layer, head, timestep bucket), the plans that spend one total budget best.

Calibration runs the pipeline with dense attention. At every self-attention call the profiler
samples query rows of each head (exact attention rows, folded per key block, measure.py) and scores
every candidate plan on them (scoring.py): output relative error of each pattern and density, with and
without mass compensation, and the head's FP8 error. Errors are averaged over prompts and steps per
timestep bucket (calibration.py). A probe (probe.py) measures how much each step's attention error moves
the final latent. Choosing (choose.py, allocate.py) then picks the dense warm-up steps and every head's
plan jointly for a total attention cost (``target_density``) or a predicted final error (``error_budget``),
with costs from a GPU-measured table when given (costs.py). The pipeline is reached through attach.py only.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from .. import __version__, values
from ..patterns import SCORED, TUNABLE, VideoGeometry
from ..plans import Profile
from . import attach, probe
from .calibration import Calibration
from .checkpoint import Checkpoint
from .choose import Chooser
from .costs import CostModel
from .device_costs import device_costs
from .scoring import Scorer

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

    from ..routing import AttentionCall

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
    probe_size: str | None = None  # "FRAMESxHEIGHTxWIDTH" pixels: probe at this (smaller) size; None: the calibration's
    cost_table: str | None = None  # `videoaccel bench cost-table` JSON; None: this GPU's measured table (device_costs), analytic on a CPU
    score_every: int = 1  # score the calls of one step in this many (a different step each prompt): less calibration time
    estimate_rows: int | None = None  # sampled rows per block of the per-call candidates' estimate (None: block / 16)
    estimate_every: int | None = None  # steps one estimate serves (None: the pattern's, 2)

    def __post_init__(self) -> None:
        values.positive(self.error_budget, "error_budget")
        if self.target_density is not None:
            values.density(self.target_density, "target_density")
        values.count(self.buckets, "buckets", 1)
        values.count(self.rows, "rows", 1)
        values.count(self.score_every, "score_every", 1)
        for name in ("estimate_rows", "estimate_every"):
            if getattr(self, name) is not None:
                values.count(getattr(self, name), name, 1)
        for d in self.densities:
            values.density(d, "candidate density")
        values.density(self.probe_density, "probe_density")
        if self.probe_size is not None:
            values.video_size(self.probe_size, "probe_size")
        if self.cost_table is not None:
            CostModel.load(self.cost_table)  # a file that is no cost table stops here, not after the calibration


class Profiler:
    """An attention observer (``videoaccel.observe``) on a dense-accelerated pipeline: scores candidates per call.

    Its parts: ``calibration`` (what was measured), ``scorer`` (the candidates and how a call is scored), ``probe``
    (the step sensitivities, once measured); ``choose`` hands them to a ``Chooser`` (choose.py)."""

    def __init__(self, config: ProfileConfig, timesteps: list[float], boundary: float | None = None):
        if config.fp8 is None:  # FP8 candidates only where this GPU runs FP8 faster than bf16 somewhere (device_costs)
            config = replace(config, fp8=torch.cuda.is_available() and device_costs(torch.device("cuda")).fp8_pays())
        self.config = config
        self.calibration = Calibration.start(timesteps, config.buckets, config.seed, boundary)
        estimate = tuple((k, v) for k, v in (("every", config.estimate_every), ("rows", config.estimate_rows)) if v is not None)
        self.scorer = Scorer(config.patterns, config.densities, rows=config.rows, compensate=config.compensate, fp8=config.fp8,
                             estimate=estimate)
        self.probe: dict | None = None  # probe.measure's result
        self.prompt = 0  # the calibration prompt being run: which steps ``score_every`` scores

    def __call__(self, call: AttentionCall) -> None:
        """One dense self-attention call: sample 0 is scored (with its valid text keys when the rest is padding)."""
        cal = self.calibration
        cal.geometry, cal.heads, cal.batch, cal.device = call.geometry, call.q.shape[2], call.q.shape[0], call.q.device
        valid = None if call.text_lengths is None else call.text_lengths[0]
        self.observe(call.layer, call.step, call.timestep, call.q, call.k, call.v, call.geometry, valid)

    def observe(self, layer: int, step: int, timestep: float | None, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, geometry: VideoGeometry,
                valid_text: int | None = None) -> None:
        """q/k/v [B, S, H, D] of one dense self-attention call (sample 0 is scored, with its
        ``valid_text`` text keys when the rest is padding)."""
        self.calibration.head_dim = q.shape[-1]
        if not self.scores(step):
            return
        errs = self.scorer.score(q, k, v, geometry, self.calibration.generator, valid_text)
        self.calibration.add(layer, step, timestep, errs)

    def scores(self, step: int) -> bool:
        """Whether this prompt scores ``step``'s calls: one step in ``score_every`` (another each prompt), and a
        timestep bucket none of whose steps that rule picks scores its first step (no bucket is left unmeasured: its
        plans would run dense while the allocation counted them free)."""
        n, sb = self.config.score_every, self.calibration.step_bucket
        if (step + self.prompt) % n == 0:
            return True
        steps = [s for s, b in enumerate(sb) if b == sb[step]] if step < len(sb) else [step]
        return step == steps[0] and all((s + self.prompt) % n for s in steps)

    def chooser(self, config: ProfileConfig | None = None) -> Chooser:
        """Choosing from the scores so far, by this profiler's config or ``config`` (another budget)."""
        return Chooser(config or self.config, self.calibration, self.scorer, self.probe)

    def choose(self, heads: int, num_layers: int, geometry: VideoGeometry, name: str, model: torch.nn.Module | None = None,
               meta: dict | None = None) -> Profile:
        """The profile for this config's budget from the scores so far (choose.py)."""
        return self.chooser().profile(heads, num_layers, geometry, name, model, meta)


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
        chooser = self.profiler.chooser(replace(self.profiler.config, **overrides))
        return chooser.profile(self.heads, self.num_layers, self.geometry, name, self.model, self.meta)


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
    models = attach.transformers(pipe)  # Wan2.2 A14B: two, one per stage, profiled together (buckets split at the stage)
    model, boundary = models[0], attach.boundary(pipe)
    steps = call_kwargs.get("num_inference_steps", 50)
    pipe.scheduler.set_timesteps(steps)
    timesteps = [float(t) for t in pipe.scheduler.timesteps]
    profiler = Profiler(config, timesteps, boundary)
    key = {"prompts": list(prompts), "seed": seed, "config": repr(config), "call": repr(sorted(call_kwargs.items()))}
    saved = Checkpoint(checkpoint, key)
    with attach.routed(pipe, Profile("calibration", block=config.block, order=config.order, meta={"observe": True})):
        start = saved.resume(profiler.calibration)
        with attach.observe(pipe, profiler):
            bar = tqdm(total=len(prompts) + int(config.probe), desc="calibrating", disable=not progress, initial=start)
            dense = {}  # the first prompt's latents per step: the probe's dense run (same prompt and seed, same size)
            keep = config.probe and config.probe_size is None
            for i, prompt in enumerate(prompts):
                if i < start:
                    continue
                profiler.prompt = i
                probe.latent_run(pipe, prompt, seed + i, dense.__setitem__ if i == 0 and keep else None, call_kwargs)
                saved.save(profiler.calibration, i + 1)
                bar.update()
        geometry, heads, num_layers = profiler.calibration.geometry, profiler.calibration.heads, attach.num_layers(model)
        if config.probe and geometry is not None:
            bar.set_description("probing step sensitivity")
            _probe(pipe, models, profiler, geometry, prompts[0], seed, call_kwargs, dense or None)
            bar.update()
        bar.close()
    if geometry is None:
        raise ValueError("no self-attention call was observed: is the pipeline's transformer supported?")
    meta = {"prompts": list(prompts), "seed": seed, "call": {k: v for k, v in call_kwargs.items() if isinstance(v, (int, float, str))},
            "geometry": [geometry.frames, geometry.height, geometry.width, geometry.text], "torch": torch.__version__,
            "videoaccel": __version__, **({"stage_boundary": boundary, "transformers": len(models)} if boundary else {})}
    return Calibrated(profiler, heads, num_layers, geometry, model, meta)


def _probe(pipe, models, profiler: Profiler, geometry: VideoGeometry, prompt: str, seed: int, call: dict,
           dense: dict | None) -> None:
    """Step sensitivities (probe.py) with the reference plan: the allocation without step information; ``dense``: the
    first calibration run's latents (a resumed run has none: the probe runs its own). With ``probe_size`` the probe's
    runs are at that size (its own dense run too): step sensitivity is a property of the sampler and the model's
    dynamics more than of the resolution, and a smaller probe costs a fraction of the calibration's generations."""
    reference = profiler.chooser().reference_profile(geometry)
    size = profiler.config.probe_size
    if size is not None:
        f, h, w = values.video_size(size, "probe_size")
        call, dense = {**call, "num_frames": f, "height": h, "width": w}, None
    profiler.probe = {**probe.measure(pipe, models, prompt, seed, lambda: attach.switch(pipe, reference), call, dense=dense),
                      "prompt": prompt, "reference_cost": profiler.config.probe_density, "size": size}
