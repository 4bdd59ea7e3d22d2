"""`videoaccel generate`: text (and image or video) to video with a diffusers pipeline, accelerated by a profile."""
from __future__ import annotations

import argparse
import inspect
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from diffusers import ContextParallelConfig

from .. import cache_spec, pipelines
from ..metrics import PLAN_FIX, psnr, side_by_side, ssim, verdict
from ..pipelines import caches
from ..pipelines.compile import compile_transformer
from ..pipelines.models import transformers_of
from ..plans import load_profile
from ..prompt_check import empty_prompt_note, long_prompt_note, unknown_words_note
from ..video import check_output_path, write_video
from . import loading, ranks, session
from .conditioning import conditioning


def run(a: argparse.Namespace) -> int:
    return generate_command(a.prompt, a.output, vars(a), model=a.model, profile=a.profile, dense=a.dense, seed=a.seed,
                            compile=a.compile, compare_dense=a.compare_dense, ulysses=a.ulysses, cache=a.cache,
                            allow_pickle=a.allow_pickle, image=a.image, video=a.video)


def beside(path: str, tag: str) -> str:
    """``out.mp4`` -> ``out.<tag>.mp4``; a PNG directory ``frames/`` -> ``frames.<tag>/``."""
    p = Path(path.rstrip("/"))
    name = f"{p.stem}.{tag}{p.suffix}" if p.suffix else f"{p.name}.{tag}"
    return str(p.with_name(name)) + ("/" if path.endswith("/") else "")


def _timed(pipe, prompt, call, seed, compile: bool):
    """loading.generate_video, after a one-step warm-up that compiles when ``compile`` (printed: compilation is
    paid once per process)."""
    if compile:
        torch._dynamo.reset()
        for _, model in transformers_of(pipe):
            compile_transformer(model)
        _, warm = loading.generate_video(pipe, prompt, {**call, "num_inference_steps": 1}, seed)
        print(f"compiled (regional torch.compile): warm-up step {warm:.1f} s")
    return loading.generate_video(pipe, prompt, call, seed)


def _cache(text: str | None, profile, model: str):
    """The step cache to stack: ``--cache`` (``none``: no cache), else the profile's recommendation (said once);
    what the spelling and the pipeline class refuse, before the model loads."""
    spec = cache_spec.parse(text) if text is not None else getattr(profile, "cache", None)
    if text is None and spec is not None:
        print(f"cache {spec.label}: the profile's recommendation (--cache none turns it off)")
    cache_spec.check_pipeline(spec, session.pipeline_class(model))
    return spec


def _init_parallel(degree: int) -> int:
    """Join the process group; the world must be exactly the Ulysses degree (one GPU a rank)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world != degree:
        raise ValueError(f"--ulysses {degree} needs {degree} processes, this run has {world}: run `videoaccel generate "
                         f"... --ulysses {degree}` (it starts them), or torchrun --nproc-per-node {degree}")
    rank = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl")
    return rank


def _check_gpus(degree: int) -> None:
    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if have < degree:
        raise ValueError(f"--ulysses {degree} needs {degree} CUDA GPUs, this machine has {have}")


def generate_command(prompt: str, output: str, flags: dict, *, model: str | None, profile: str | None, dense: bool, seed: int,
                     compile: bool, compare_dense: bool, ulysses: int, cache: str | None = None, allow_pickle: bool = False,
                     image: str | None = None, video: str | None = None) -> int:
    """Generate one video (and with ``compare_dense`` its dense twin and a side-by-side); bad input raises ValueError
    or OSError before the model loads (cli.main: one line, exit code 2)."""
    extra = [beside(output, "dense"), beside(output, "sbs")] if compare_dense and not dense else []
    model, embedded = session.resolve_model(model, allow_pickle)
    defaults = session.model_defaults(model)
    call = session.call_kwargs(flags, defaults)
    for path in [output] + extra:
        check_output_path(path)
    loading.check_geometry(model, call)
    call.update(conditioning(model, image, video))
    profile = None if dense else load_profile(profile or session.default_profile(model, embedded))
    step_cache = _cache(cache, profile, model)
    if ulysses > 1:
        _check_gpus(ulysses)
        if not ranks.launched():  # start the ranks here: a failure stays one line a rank (ranks.py)
            return ranks.run_ranks(ulysses, sys.argv[1:])
    rank = _init_parallel(ulysses) if ulysses > 1 else 0
    if rank == 0 and (note := empty_prompt_note(prompt)):
        print(note, file=sys.stderr)
    pipe = loading.load_pipeline(model, device=f"cuda:{rank}" if ulysses > 1 else None, allow_pickle=allow_pickle)
    if rank == 0:
        print(session.describe_call(pipe, call, model), flush=True)
    for note in (long_prompt_note(pipe, prompt, call), unknown_words_note(pipe, prompt, model, embedded)):
        if rank == 0 and note:
            print(note, file=sys.stderr)
    if not dense:
        pipelines.check_profile(pipe, profile)  # against the model, before any step (ValueError: one line, exit 2 in cli.main)
        note = loading.profile_note(pipe, profile, call)  # cannot run as written: said once, before generating
        if rank == 0 and note:
            print(note, file=sys.stderr)
    if ulysses > 1:
        pipe.transformer.enable_parallelism(config=ContextParallelConfig(ulysses_degree=ulysses))
    dense_frames = dense_s = None
    steps = call.get("num_inference_steps") or inspect.signature(pipe).parameters["num_inference_steps"].default
    if compare_dense or dense:
        caches.enable(pipe, step_cache if dense else None, steps)  # --dense --cache: the stock pipeline with the cache
        dense_frames, dense_s = _timed(pipe, prompt, call, seed, compile)
    frames, seconds, density = dense_frames, dense_s, 1.0
    if not dense:
        caches.enable(pipe, step_cache, steps)
        pipelines.accelerate(pipe, profile)
        frames, seconds = _timed(pipe, prompt, call, seed, compile)
        density = pipelines.report(pipe).mean_density
        pipelines.restore(pipe)
    if rank != 0:  # only rank 0 writes
        return 0
    fps = flags.get("fps") or defaults.get("fps", 8)
    write_video(frames, output, fps=fps)
    if extra:
        write_video(dense_frames, extra[0], fps=fps)
        write_video(side_by_side(dense_frames, frames, labels=("dense", "accelerated")), extra[1], fps=fps)
        print(verdict(psnr(frames, dense_frames)[1], ssim(frames, dense_frames)[1], PLAN_FIX))
    print(f"wrote {output}: {frames.shape[0]} frames {frames.shape[2]}x{frames.shape[1]} in {seconds:.1f} s, "
          f"attention density {density:.3f}" + (" (dense)" if dense else "") + (", compiled" if compile else ", eager")
          + (f", cache {step_cache.label}" if step_cache else ""))
    if extra:
        print(f"dense: {dense_s:.1f} s; speedup {dense_s / seconds:.2f}x\n"
              f"wrote {extra[0]} (dense) and {extra[1]} (dense | accelerated)")
    return 0
