"""`videoaccel generate`: text (and image or video) to video with a diffusers pipeline, accelerated by a profile."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import args as types
from . import ranks, session
from .conditioning import conditioning


def add_parser(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("generate", help="generate a video from a prompt (embedded tiny model by default)")
    g.add_argument("prompt")
    g.add_argument("-o", "--output", default="out.mp4", help=".mp4, .gif, or a directory for PNG frames")
    g.add_argument("--model", default=None, help="diffusers directory or hub id (default: the embedded tiny model)")
    g.add_argument("--profile", default=None, help="profile file or preset (default: the model's shipped profile, else radial)")
    g.add_argument("--dense", action="store_true", help="no acceleration (the stock pipeline)")
    g.add_argument("--image", default=None, metavar="PATH", help="the image an image-to-video pipeline starts from")
    g.add_argument("--video", default=None, metavar="PATH", help="the video a video-to-video (or VACE) pipeline starts from: "
                   ".mp4, .gif or a directory of PNG frames")
    g.add_argument("--steps", type=types.positive_int, default=None)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--height", type=types.size)
    g.add_argument("--width", type=types.size)
    g.add_argument("--frames", type=types.positive_int)
    g.add_argument("--fps", type=types.positive_int, help="default: the model's videoaccel.json, else 8")
    g.add_argument("--guidance", type=types.non_negative)
    g.add_argument("--compile", action="store_true",
                   help="regional torch.compile of the transformer (a one-step warm-up run compiles; its time is printed)")
    g.add_argument("--cache", type=types.cache, default=None, metavar="NAME[:VALUE]",
                   help="also a diffusers step cache: fbc:THRESHOLD, mag:THRESHOLD, taylorseer:N, taylorseer-lite:N, faster:N, "
                        "pab:N, or none (default: the profile's measured recommendation, if it has one)")
    g.add_argument("--compare-dense", action="store_true", help="also run dense with the same seed: speedup, PSNR, SSIM; "
                   "writes OUT.dense.mp4 and OUT.sbs.mp4 (dense | accelerated) beside the output")
    g.add_argument("--ulysses", type=types.positive_int, default=1,
                   help="split the sequence over N GPUs (diffusers' Ulysses context parallelism): starts N processes "
                        "(or run it under torchrun --nproc-per-node N -m videoaccel)")
    g.add_argument("--allow-pickle", action="store_true", help=session.ALLOW_PICKLE_HELP)
    g.set_defaults(func=lambda a: generate_command(a.prompt, a.output, vars(a), model=a.model, profile=a.profile, dense=a.dense,
                                                   seed=a.seed, compile=a.compile, compare_dense=a.compare_dense,
                                                   ulysses=a.ulysses, cache=a.cache, allow_pickle=a.allow_pickle,
                                                   image=a.image, video=a.video))


def beside(path: str, tag: str) -> str:
    """``out.mp4`` -> ``out.<tag>.mp4``; a PNG directory ``frames/`` -> ``frames.<tag>/``."""
    p = Path(path.rstrip("/"))
    name = f"{p.stem}.{tag}{p.suffix}" if p.suffix else f"{p.name}.{tag}"
    return str(p.with_name(name)) + ("/" if path.endswith("/") else "")


def _timed(pipe, prompt, call, seed, compile: bool):
    """session.generate_video, after a one-step warm-up that compiles when ``compile`` (printed: compilation is
    paid once per process)."""
    if compile:
        import torch

        from ..pipelines.compile import compile_transformer
        from ..pipelines.models import transformers_of

        torch._dynamo.reset()
        for _, model in transformers_of(pipe):
            compile_transformer(model)
        _, warm = session.generate_video(pipe, prompt, {**call, "num_inference_steps": 1}, seed)
        print(f"compiled (regional torch.compile): warm-up step {warm:.1f} s")
    return session.generate_video(pipe, prompt, call, seed)


def _cache(text: str | None, profile, model: str):
    """The step cache to stack: ``--cache`` (``none``: no cache), else the profile's recommendation (said once);
    what the spelling and the pipeline class refuse, before the model loads."""
    from ..cache_spec import check_pipeline, parse

    spec = parse(text) if text is not None else getattr(profile, "cache", None)
    if text is None and spec is not None:
        print(f"cache {spec.label}: the profile's recommendation (--cache none turns it off)")
    check_pipeline(spec, session.pipeline_class(model))
    return spec


def _init_parallel(degree: int) -> int:
    """Join the process group; the world must be exactly the Ulysses degree (one GPU a rank)."""
    import os

    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world != degree:
        raise ValueError(f"--ulysses {degree} needs {degree} processes, this run has {world}: run `videoaccel generate "
                         f"... --ulysses {degree}` (it starts them), or torchrun --nproc-per-node {degree}")
    rank = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl")
    return rank


def _check_gpus(degree: int) -> None:
    import torch

    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if have < degree:
        raise ValueError(f"--ulysses {degree} needs {degree} CUDA GPUs, this machine has {have}")


def generate_command(prompt: str, output: str, flags: dict, *, model: str | None, profile: str | None, dense: bool, seed: int,
                     compile: bool, compare_dense: bool, ulysses: int, cache: str | None = None, allow_pickle: bool = False,
                     image: str | None = None, video: str | None = None) -> int:
    """Generate one video (and with ``compare_dense`` its dense twin and a side-by-side); bad input raises ValueError
    or OSError before the model loads (cli.main: one line, exit code 2)."""
    import inspect

    from .. import pipelines
    from ..pipelines import caches
    from ..plans import load_profile
    from ..prompt_check import empty_prompt_note, long_prompt_note, unknown_words_note
    from ..video import check_output_path, write_video

    extra = [beside(output, "dense"), beside(output, "sbs")] if compare_dense and not dense else []
    model, embedded = session.resolve_model(model, allow_pickle)
    defaults = session.model_defaults(model)
    call = session.call_kwargs(flags, defaults)
    for path in [output] + extra:
        check_output_path(path)
    session.check_geometry(model, call)
    call.update(conditioning(model, image, video))
    profile = None if dense else load_profile(profile or session.default_profile(model, embedded))
    cache_spec = _cache(cache, profile, model)
    if ulysses > 1:
        _check_gpus(ulysses)
        if not ranks.launched():  # start the ranks here: a failure stays one line a rank (ranks.py)
            return ranks.run_ranks(ulysses, sys.argv[1:])
    rank = _init_parallel(ulysses) if ulysses > 1 else 0
    if rank == 0 and (note := empty_prompt_note(prompt)):
        print(note, file=sys.stderr)
    pipe = session.load_pipeline(model, device=f"cuda:{rank}" if ulysses > 1 else None, allow_pickle=allow_pickle)
    if rank == 0:
        print(session.describe_call(pipe, call, model), flush=True)
    for note in (long_prompt_note(pipe, prompt, call), unknown_words_note(pipe, prompt, model, embedded)):
        if rank == 0 and note:
            print(note, file=sys.stderr)
    if not dense:
        pipelines.check_profile(pipe, profile)  # against the model, before any step (ValueError: one line, exit 2 in cli.main)
        note = session.profile_note(pipe, profile, call)  # cannot run as written: said once, before generating
        if rank == 0 and note:
            print(note, file=sys.stderr)
    if ulysses > 1:
        from diffusers import ContextParallelConfig

        pipe.transformer.enable_parallelism(config=ContextParallelConfig(ulysses_degree=ulysses))
    dense_frames = dense_s = None
    steps = call.get("num_inference_steps") or inspect.signature(pipe).parameters["num_inference_steps"].default
    if compare_dense or dense:
        caches.enable(pipe, cache_spec if dense else None, steps)  # --dense --cache: the stock pipeline with the cache
        dense_frames, dense_s = _timed(pipe, prompt, call, seed, compile)
    frames, seconds, density = dense_frames, dense_s, 1.0
    if not dense:
        caches.enable(pipe, cache_spec, steps)
        pipelines.accelerate(pipe, profile)
        frames, seconds = _timed(pipe, prompt, call, seed, compile)
        density = pipelines.report(pipe).mean_density
        pipelines.restore(pipe)
    if rank != 0:  # only rank 0 writes
        return 0
    fps = flags.get("fps") or defaults.get("fps", 8)
    write_video(frames, output, fps=fps)
    if extra:
        from ..metrics import PLAN_FIX, psnr, side_by_side, ssim, verdict

        write_video(dense_frames, extra[0], fps=fps)
        write_video(side_by_side(dense_frames, frames, labels=("dense", "accelerated")), extra[1], fps=fps)
        print(verdict(psnr(frames, dense_frames)[1], ssim(frames, dense_frames)[1], PLAN_FIX))
    print(f"wrote {output}: {frames.shape[0]} frames {frames.shape[2]}x{frames.shape[1]} in {seconds:.1f} s, "
          f"attention density {density:.3f}" + (" (dense)" if dense else "") + (", compiled" if compile else ", eager")
          + (f", cache {cache_spec.label}" if cache_spec else ""))
    if extra:
        print(f"dense: {dense_s:.1f} s; speedup {dense_s / seconds:.2f}x\n"
              f"wrote {extra[0]} (dense) and {extra[1]} (dense | accelerated)")
    return 0
