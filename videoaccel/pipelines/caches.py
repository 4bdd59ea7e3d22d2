"""Composition with diffusers' step caches (``transformer.enable_cache(config)``), in either order.

videoaccel writes no cache: it routes the self-attention calls a cache lets run. Why it composes:
caches hook blocks (FirstBlockCache, MagCache, TaylorSeer-lite), attention modules (PAB, FasterCache,
TaylorSeer) or the transformer (FasterCache's batch split), while videoaccel swaps processors and
hooks the transformer only to read the step off the pipeline's timestep; skipped blocks simply make
no attention call (``report()`` shows them per step). ``check`` refuses, before any block runs, the
combinations diffusers cannot run or that would do nothing, naming the fix; ``build`` turns a
``CacheSpec`` (``--cache fbc:0.05``, a profile's ``"cache"``) into the diffusers config.
"""
from __future__ import annotations

import logging
import re
from typing import Callable

import torch
from diffusers.hooks import (FasterCacheConfig, FirstBlockCacheConfig, MagCacheConfig, PyramidAttentionBroadcastConfig,
                             TaylorSeerCacheConfig)

from ..cache_spec import TWO_PASS_CFG, CacheSpec, check_pipeline
from .models import spec_for, transformers_of

log = logging.getLogger("videoaccel")

# config class -> (short name, the hook names it registers: one of them on some module means it hooked something)
SUPPORTED = {
    FirstBlockCacheConfig: ("fbc", ("fbc_leader_block_hook",)),
    MagCacheConfig: ("mag", ("mag_cache_leader_block_hook",)),
    TaylorSeerCacheConfig: ("taylorseer", ("taylorseer_cache",)),
    FasterCacheConfig: ("faster", ("faster_cache_block",)),
    PyramidAttentionBroadcastConfig: ("pab", ("pyramid_attention_broadcast",)),
}
# diffusers' FasterCache cannot run these transformers (checked on tiny real models, diffusers 0.42)
FASTER_UNSUPPORTED = {"HunyuanVideoTransformer3DModel": "its denoiser hook splits the text mask but not the pooled projections",
                      "LTXVideoTransformer3DModel": "its latents are [B, S, C], a tensor format FasterCache does not take"}
_warned: set[str] = set()


def cache_config(model: torch.nn.Module):
    """The diffusers cache config enabled on ``model`` (None: no cache)."""
    return getattr(model, "_cache_config", None)


def describe(config) -> str | None:
    """A short label for the report: ``fbc(threshold=0.05)``."""
    if config is None:
        return None
    name = SUPPORTED.get(type(config), (type(config).__name__,))[0]
    knobs = {"fbc": ("threshold",), "mag": ("threshold", "max_skip_steps"), "taylorseer": ("cache_interval", "use_lite_mode"),
             "faster": ("spatial_attention_block_skip_range",), "pab": ("spatial_attention_block_skip_range",)}.get(name, ())
    return f"{name}(" + ", ".join(f"{k}={getattr(config, k)}" for k in knobs) + ")"


def check(model: torch.nn.Module, pipeline: str | None = None) -> None:
    """ValueError, naming the fix, for a cache videoaccel cannot stack with on ``model`` (inside ``pipeline``)."""
    config = cache_config(model)
    if config is None:
        return
    cls = type(model).__name__
    if type(config) not in SUPPORTED:
        raise ValueError(f"{type(config).__name__} on {cls} is not checked with videoaccel (it stacks with FirstBlockCache, "
                         "MagCache, TaylorSeer, FasterCache and PyramidAttentionBroadcast): call transformer.disable_cache() "
                         "or use one of those")
    name, hooks = SUPPORTED[type(config)]
    if name == "faster":
        if cls in FASTER_UNSUPPORTED:
            raise ValueError(f"diffusers' FasterCache cannot run {cls} ({FASTER_UNSUPPORTED[cls]}): use --cache pab:N, fbc or "
                             "taylorseer instead")
        if pipeline in TWO_PASS_CFG and not config.is_guidance_distilled:
            raise ValueError(f"FasterCache approximates the unconditional half of a batched [uncond, cond] call; {pipeline} runs "
                             "guidance as two calls: use --cache pab:N, fbc or taylorseer with it")
    if not any(h in getattr(m, "_diffusers_hook", None).hooks for m in model.modules()
               if getattr(m, "_diffusers_hook", None) is not None for h in hooks):
        fix = (f"pass cache_identifiers={attention_patterns(model)[:1]}... (its self-attention modules) or use "
               "--cache taylorseer:N" if name == "taylorseer" else "check its block identifiers against the model's module names")
        raise ValueError(f"{type(config).__name__} hooks no module of {cls}, so it would do nothing: {fix}")
    if name in ("pab", "faster") and pipeline in TWO_PASS_CFG and pipeline + name not in _warned:
        _warned.add(pipeline + name)
        log.warning("videoaccel: %s keeps one counter and cache per attention layer across the conditional and unconditional "
                    "passes of %s (diffusers' behaviour): a reused output may come from the other pass", name, pipeline)


def attention_patterns(model: torch.nn.Module) -> list[str]:
    """Full-match patterns naming ``model``'s self-attention modules (TaylorSeer's ``cache_identifiers``)."""
    attn = {id(m) for m in spec_for(model).self_attention(model)}
    return [re.escape(n) for n, m in model.named_modules() if id(m) in attn]


def build(spec: CacheSpec, model: torch.nn.Module, timestep: Callable[[], float], steps: int | None = None):
    """The diffusers config for ``spec`` on ``model``. ``timestep``: the current timestep (PAB and FasterCache
    compare it to their windows; a pipeline's ``lambda: pipe.current_timestep``); ``steps``: the denoising steps
    (MagCache interpolates its ratios to them)."""
    kw = spec.kwargs
    if spec.name == "fbc":
        return FirstBlockCacheConfig(**kw)
    if spec.name == "mag":
        check_pipeline(spec, None)
        if steps is None and "num_inference_steps" not in kw:
            raise ValueError("MagCache needs the number of denoising steps: pass steps (e.g. --steps 50)")
        return MagCacheConfig(**{"num_inference_steps": steps, **kw})
    if spec.name.startswith("taylorseer"):
        dtype = next(model.parameters()).dtype
        lite = {"use_lite_mode": True} if spec.name == "taylorseer-lite" else {"cache_identifiers": attention_patterns(model)}
        return TaylorSeerCacheConfig(**kw, taylor_factors_dtype=dtype, **lite)
    if spec.name == "faster":
        weight = kw.pop("attention_weight", 0.5)
        tensor_format = "BFCHW" if type(model).__name__ == "CogVideoXTransformer3DModel" else "BCFHW"
        return FasterCacheConfig(**{"spatial_attention_timestep_skip_range": (-1, 681), **kw}, current_timestep_callback=timestep,
                                 attention_weight_callback=lambda _: weight, tensor_format=tensor_format)
    return PyramidAttentionBroadcastConfig(**kw, current_timestep_callback=timestep)


def enable(pipe, spec: CacheSpec | None, steps: int | None = None) -> None:
    """``transformer.enable_cache`` for each transformer of ``pipe`` with ``spec`` (None: nothing), checked first."""
    if spec is None:
        return
    for _, model in transformers_of(pipe):
        model.enable_cache(build(spec, model, lambda: pipe.current_timestep, steps))
        try:
            check(model, type(pipe).__name__)
        except ValueError:
            model.disable_cache()
            raise


def disable(pipe) -> None:
    """``disable_cache`` for each transformer of ``pipe`` that has one."""
    for _, model in transformers_of(pipe):
        if cache_config(model) is not None:
            model.disable_cache()
