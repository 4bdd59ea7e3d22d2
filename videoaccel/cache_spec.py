"""Cache spellings (``--cache NAME[:VALUE]``, a profile's ``"cache"`` entry), checked without torch.

A ``CacheSpec`` names one of diffusers' step caches and its parameters; ``pipelines/caches.py``
turns it into the diffusers config. Parsing lives here, free of torch and diffusers, so a bad
``--cache`` stops in the argument parser before any model loads.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .profile_schema import shown

# name -> (the one value NAME:VALUE sets, its default, what it is, example)
KNOBS: dict[str, tuple[str, Any, str, str]] = {
    "fbc": ("threshold", 0.05, "First-Block-Cache threshold, a number > 0", "fbc:0.05"),
    "mag": ("threshold", 0.06, "MagCache error threshold, a number > 0 (or 'calibrate')", "mag:0.06"),
    "taylorseer": ("cache_interval", 5, "TaylorSeer refresh interval in steps, a whole number >= 2", "taylorseer:5"),
    "taylorseer-lite": ("cache_interval", 5, "TaylorSeer-lite refresh interval in steps, a whole number >= 2", "taylorseer-lite:5"),
    "faster": ("spatial_attention_block_skip_range", 2, "FasterCache attention refresh interval, a whole number >= 2", "faster:2"),
    "pab": ("spatial_attention_block_skip_range", 2, "PAB self-attention refresh interval, a whole number >= 2", "pab:2"),
}
# further parameters a profile may set (JSON values passed to the diffusers config)
EXTRA = {
    "fbc": (),
    "mag": ("max_skip_steps", "retention_ratio", "num_inference_steps", "mag_ratios", "calibrate"),
    "taylorseer": ("disable_cache_before_step", "disable_cache_after_step", "max_order"),
    "taylorseer-lite": ("disable_cache_before_step", "disable_cache_after_step", "max_order"),
    "faster": ("spatial_attention_timestep_skip_range", "unconditional_batch_skip_range",
               "unconditional_batch_timestep_skip_range", "alpha_low_frequency", "alpha_high_frequency", "attention_weight"),
    "pab": ("spatial_attention_timestep_skip_range",),
}
NAMES = tuple(KNOBS)
# pipelines that run classifier-free guidance as two transformer calls (FasterCache needs one batched call)
TWO_PASS_CFG = ("WanPipeline", "WanImageToVideoPipeline", "WanVideoToVideoPipeline", "HunyuanVideoPipeline")
FASTER_PIPELINES = ("CogVideoXPipeline", "MochiPipeline")  # batched CFG, a transformer diffusers' FasterCache runs
USAGE = ("--cache NAME[:VALUE] with NAME one of fbc:THRESHOLD, mag:THRESHOLD, taylorseer:N, taylorseer-lite:N, faster:N, "
         "pab:N, or none")


@dataclass(frozen=True)
class CacheSpec:
    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def label(self) -> str:
        knob = KNOBS[self.name][0]
        value = self.kwargs.get(knob)
        return self.name if value is None else f"{self.name}:{value:g}" if isinstance(value, float) else f"{self.name}:{value}"

    def to_json(self) -> dict:
        return {"name": self.name, "params": dict(self.params)}


def _knob(name: str, value: Any) -> Any:
    knob, _, what, example = KNOBS[name]
    if name == "mag" and value == "calibrate":
        return None
    if name in ("fbc", "mag"):
        ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value > 0
        v = float(value) if ok else None
    else:
        ok = not isinstance(value, bool) and isinstance(value, int) and value >= 2
        v = value if ok else None
    if v is None:
        raise ValueError(f"{name}: {knob}={shown(value)} must be a {what}, e.g. {example}")
    return v


def parse(text: str) -> CacheSpec | None:
    """``NAME[:VALUE]`` -> CacheSpec; ``none`` -> None. ValueError naming the valid spellings."""
    name, sep, value = text.strip().partition(":")
    if name == "none" and not sep:
        return None
    if name not in KNOBS:
        raise ValueError(f"unknown cache {text!r}: use {USAGE}")
    knob = KNOBS[name][0]
    if not sep:
        return CacheSpec(name, ((knob, KNOBS[name][1]),))
    if name == "mag" and value == "calibrate":
        return CacheSpec(name, (("calibrate", True),))
    try:
        raw: Any = float(value) if name in ("fbc", "mag") else int(value)
    except ValueError:
        raw = value
    return CacheSpec(name, ((knob, _knob(name, raw)),))


def from_json(d: Any, source: str = "profile") -> CacheSpec:
    """A profile's ``"cache": {"name": ..., "params": {...}}`` entry, checked."""
    if not isinstance(d, dict) or d.get("name") not in KNOBS or not isinstance(d.get("params", {}), dict):
        raise ValueError(f"{source}: cache {shown(d)} must be like {{\"name\": \"fbc\", \"params\": {{\"threshold\": 0.05}}}} "
                         f"with name one of {', '.join(NAMES)}")
    name, params = d["name"], dict(d.get("params", {}))
    allowed = (KNOBS[name][0],) + EXTRA[name]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"{source}: cache {name} has unknown params {unknown}; allowed: {', '.join(allowed)}")
    if KNOBS[name][0] in params and not params.get("calibrate"):
        params[KNOBS[name][0]] = _knob(name, params[KNOBS[name][0]])
    return CacheSpec(name, tuple(sorted(params.items())))


def check_pipeline(spec: CacheSpec | None, pipeline: str | None) -> None:
    """What can be refused from the spelling and the pipeline class alone (before the model loads)."""
    if spec is None:
        return
    if spec.name == "mag" and "mag_ratios" not in spec.kwargs and not spec.kwargs.get("calibrate"):
        raise ValueError("MagCache needs this model's magnitude ratios: run once with --cache mag:calibrate (it prints them) "
                         "and put them in the profile as \"cache\": {\"name\": \"mag\", \"params\": {\"mag_ratios\": [...]}}")
    if spec.name == "faster" and pipeline is not None and pipeline not in FASTER_PIPELINES:
        raise ValueError(f"--cache faster runs with {', '.join(FASTER_PIPELINES)} (one batched [uncond, cond] call, a transformer "
                         f"diffusers' FasterCache takes), not {pipeline}: use --cache pab:N, fbc or taylorseer")
