"""`videoaccel bench stack`: whole denoising loops of full-size random-weight transformers, per stack.

Why whole loops: a step cache saves whole steps or blocks, so one step says nothing about it. Each
row times N steps of a flow-matching Euler loop, classifier-free guidance as the model's pipeline
does it (Wan: two calls a step; CogVideoX, Mochi: one batched [uncond, cond] call; HunyuanVideo:
guidance-distilled, one call), random latents and text (never zeros), for one stack: ``dense``
(SDPA forced to cuDNN, eager: the baseline, measured in the same run), ``cache`` (diffusers' cache
alone), ``sparse`` (a videoaccel preset) and their combinations with ``fp8`` (FP8 attention),
``compile`` (regional torch.compile) and ``fp8linear`` (torchao FP8 linears). Random weights make
content-dependent caches meaningless: use a fixed-schedule one (taylorseer-lite:N, pab:N, or mag,
which here gets flat ratios: a fixed skip schedule). ``--tiny`` runs a tiny Wan on the CPU (tests).
"""
from __future__ import annotations

import json
import math
import sys
import time
from contextlib import nullcontext

import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from torch._dynamo.utils import counters
from torch.nn.attention import SDPBackend, sdpa_kernel

import videoaccel  # the public API, as a user calls it

from .. import cache_spec
from ..pipelines import caches, fp8_linear as fp8
from ..pipelines.compile import compile_transformer, uncompile
from .cases import CASES, TINY
from .e2e import build
from .record import write_record
from .stack_fidelity import run as run_fidelity
from .stack_spec import STACKS, StackArgs, parse_stack, restore_with_report, sparse_preset

BATCHED_CFG = ("CogVideoXTransformer3DModel", "MochiTransformer3DModel")
PIPELINE = {"WanTransformer3DModel": "WanPipeline", "HunyuanVideoTransformer3DModel": "HunyuanVideoPipeline",
            "CogVideoXTransformer3DModel": "CogVideoXPipeline"}  # whose CFG the loop copies


def _spec(text: str, steps: int) -> cache_spec.CacheSpec:
    spec = cache_spec.parse(text)
    if spec is None:
        raise ValueError("--cache none: the cache stacks need a cache, e.g. --cache taylorseer-lite:2")
    if spec.name == "mag" and "mag_ratios" not in spec.kwargs:  # random weights: flat ratios, a fixed skip schedule
        spec = cache_spec.CacheSpec("mag", spec.params + (("mag_ratios", [1.0] * steps),))
    if spec.name in ("taylorseer", "taylorseer-lite") and steps < 8:  # few steps (smoke tests): start caching at once
        spec = cache_spec.CacheSpec(spec.name, spec.params + (("disable_cache_before_step", 1),))
    return spec


def denoise(model, kw: dict, steps: int, now: dict, guidance: float = 5.0) -> torch.Tensor:
    """N flow-matching Euler steps from ``kw``'s latents with CFG as the model's pipeline runs it; the final latents."""
    sched = FlowMatchEulerDiscreteScheduler(shift=5.0)
    sched.set_timesteps(steps, device=kw["hidden_states"].device)
    cls = type(model).__name__
    x, text = kw["hidden_states"], kw["encoder_hidden_states"]
    negative = torch.roll(text, 1, dims=1) * 0.5  # another random text, never zeros
    rest = {k: v for k, v in kw.items() if k not in ("hidden_states", "timestep", "encoder_hidden_states")}
    for t in sched.timesteps:
        now["t"] = float(t)
        ts = t.expand(x.shape[0])
        if cls == "HunyuanVideoTransformer3DModel":  # guidance-distilled: one call
            with model.cache_context("cond"):
                pred = model(hidden_states=x, timestep=ts, encoder_hidden_states=text, **rest)[0]
        elif cls in BATCHED_CFG:
            with model.cache_context("cond_uncond"):
                out = model(hidden_states=torch.cat([x, x]), timestep=torch.cat([ts, ts]),
                            encoder_hidden_states=torch.cat([negative, text]), **rest)[0]
            u, c = out.chunk(2)
            pred = u + guidance * (c - u)
        else:  # Wan: two calls
            with model.cache_context("cond"):
                c = model(hidden_states=x, timestep=ts, encoder_hidden_states=text, **rest)[0]
            with model.cache_context("uncond"):
                u = model(hidden_states=x, timestep=ts, encoder_hidden_states=negative, **rest)[0]
            pred = u + guidance * (c - u)
        x = sched.step(pred, t, x, return_dict=False)[0]
    model._reset_stateful_cache()  # as a pipeline does at its end
    return x


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def run(cases: list[str], out_dir: str, steps: int = 50, cache: str = "taylorseer-lite:2", preset: str = "radial:0.1",
        stacks: list[str] = STACKS, dense_steps: int | None = None, tiny: bool = False) -> list[dict]:
    parsed = {s: parse_stack(s) for s in stacks}
    spec = _spec(cache, steps)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    dense_steps = min(dense_steps or steps, steps)
    results, now = [], {"t": 1000.0}

    def rec(**kw):
        results.append(kw)
        print(json.dumps(kw), flush=True)

    for case in cases:
        model, kw = build(case, device, dtype)
        dense_ms = final = None
        with torch.no_grad():
            for name, parts in parsed.items():
                row = dict(case=case, stack=name, steps=steps, cache=spec.label if "cache" in parts else None,
                           preset=sparse_preset(preset, parts))
                if "fp8linear" in parts:
                    try:
                        fp8.check_available()
                    except ValueError as e:  # said in the row, the other stacks go on
                        rec(**row, skipped=str(e))
                        continue
                if "cache" in parts:
                    model.enable_cache(caches.build(spec, model, lambda: now["t"], steps))
                    caches.check(model, PIPELINE.get(type(model).__name__))  # e.g. FasterCache with two-call CFG: refused
                if "sparse" in parts:
                    chosen = False
                    if "fp8linear" in parts:
                        chosen = fp8.select(model, math.prod({**CASES, **TINY}[case].grid))[0]
                        row["fp8_linears"] = len(chosen)
                    videoaccel.accelerate(model, row["preset"], fp8_linear=chosen)
                if "compile" in parts:
                    torch._dynamo.reset()
                    compile_transformer(model)
                n = dense_steps if parts == ("dense",) else steps
                ctx = sdpa_kernel([SDPBackend.CUDNN_ATTENTION]) if device == "cuda" and "sparse" not in parts else nullcontext()
                with ctx:
                    t0 = time.perf_counter()  # warm-up: compilation (every branch of the cache's schedule), layouts
                    denoise(model, dict(kw), n if "compile" in parts else 1, now)
                    _sync(device)
                    row["warmup_s"] = round(time.perf_counter() - t0, 2)
                    graphs = int(counters["stats"]["unique_graphs"])
                    t0 = time.perf_counter()
                    x = denoise(model, dict(kw), n, now)
                    _sync(device)
                    ms = 1e3 * (time.perf_counter() - t0) * steps / n
                if "compile" in parts:  # graphs compiled inside the timed loop should be 0
                    row.update(graphs=graphs, graphs_in_timed_loop=int(counters["stats"]["unique_graphs"]) - graphs)
                    uncompile(model)
                if "sparse" in parts:
                    row.update(restore_with_report(model))
                if "cache" in parts:
                    model.disable_cache()
                if parts == ("dense",):
                    dense_ms, row["measured_steps"] = ms, n
                    final = x.float() if n == steps else None
                row.update(loop_s=round(ms / 1e3, 3), step_ms=round(ms / steps, 1))
                if dense_ms:
                    row["speedup_vs_dense"] = round(dense_ms / ms, 3)
                if final is not None and parts != ("dense",):
                    row["latent_rel_err"] = round(float((x.float() - final).norm() / final.norm()), 4)
                rec(**row)
        del model, kw
        if device == "cuda":
            torch._dynamo.reset()
            torch.cuda.empty_cache()
    if out_dir:
        print("wrote " + write_record("stack", "videoaccel " + " ".join(sys.argv[1:]), results, out_dir,
                                      name="stack-tiny" if tiny else "stack"))
    return results


def main(args: StackArgs) -> int:
    """`videoaccel bench stack` (cli/bench.py)."""
    for s in args.stacks:
        sparse_preset(args.preset, parse_stack(s))
    if args.fidelity:
        run_fidelity(args.out, args.fidelity, args.steps, args.cache, args.preset, args.stacks)
        return 0
    if not args.tiny and not torch.cuda.is_available():
        raise ValueError("stack needs a CUDA GPU (full-size models); on a CPU add --tiny")
    cases = ["wan-tiny"] if args.tiny else args.models
    unknown = [m for m in cases if m not in CASES and m != "wan-tiny"]
    if unknown:
        raise ValueError(f"unknown models {unknown}; choose from {', '.join(CASES)}")
    cache_spec.check_pipeline(_spec(args.cache, args.steps), None)
    run(cases, args.out, args.steps, args.cache, args.preset, args.stacks, args.dense_steps, args.tiny)
    return 0
