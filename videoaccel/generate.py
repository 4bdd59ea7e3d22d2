"""`videoaccel generate`: text to video with a diffusers pipeline, accelerated by a profile."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import cli_args


def add_generate_parser(sub) -> None:
    g = sub.add_parser("generate", help="generate a video from a prompt (embedded tiny model by default)")
    g.add_argument("prompt")
    g.add_argument("-o", "--output", default="out.mp4", help=".mp4, .gif, or a directory for PNG frames")
    g.add_argument("--model", default=None, help="diffusers directory or hub id (default: the embedded tiny model)")
    g.add_argument("--profile", default=None, help="profile file or preset (default: the model's shipped profile, else radial)")
    g.add_argument("--dense", action="store_true", help="no acceleration (the stock pipeline)")
    g.add_argument("--steps", type=cli_args.positive_int, default=None)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--height", type=cli_args.size)
    g.add_argument("--width", type=cli_args.size)
    g.add_argument("--frames", type=cli_args.positive_int)
    g.add_argument("--fps", type=cli_args.positive_int, help="default: the model's videoaccel.json, else 8")
    g.add_argument("--guidance", type=cli_args.non_negative)
    g.add_argument("--compile", action="store_true",
                   help="regional torch.compile of the transformer (a one-step warm-up run compiles; its time is printed)")
    g.add_argument("--cache", type=cli_args.cache, default=None, metavar="NAME[:VALUE]",
                   help="also a diffusers step cache: fbc:THRESHOLD, mag:THRESHOLD, taylorseer:N, taylorseer-lite:N, faster:N, "
                        "pab:N, or none (default: the profile's measured recommendation, if it has one)")
    g.add_argument("--compare-dense", action="store_true", help="also run dense with the same seed: speedup, PSNR, SSIM; "
                   "writes OUT.dense.mp4 and OUT.sbs.mp4 (dense | accelerated) beside the output")
    g.add_argument("--ulysses", type=cli_args.positive_int, default=1,
                   help="split the sequence over N GPUs (diffusers' Ulysses context parallelism); launch with "
                        "torchrun --nproc-per-node N -m videoaccel generate ... --ulysses N")
    g.set_defaults(func=run_generate)


def _check_geometry(model: str, call: dict) -> None:
    """Wan's VAE takes 4k + 1 frames and sizes divisible by 16 (8x VAE, patch 2): say so before loading the model
    (the pipeline class of a local directory is in its model_index.json)."""
    from .tiny.model import latent_grid

    index = Path(model) / "model_index.json"
    cls = json.loads(index.read_text()).get("_class_name") if index.is_file() else None
    if cls in ("WanPipeline", "WanImageToVideoPipeline") and {"num_frames", "height", "width"} <= call.keys():
        latent_grid(call["num_frames"], call["height"], call["width"])


def beside(path: str, tag: str) -> str:
    """``out.mp4`` -> ``out.<tag>.mp4``; a PNG directory ``frames/`` -> ``frames.<tag>/``."""
    p = Path(path.rstrip("/"))
    name = f"{p.stem}.{tag}{p.suffix}" if p.suffix else f"{p.name}.{tag}"
    return str(p.with_name(name)) + ("/" if path.endswith("/") else "")


def _run(pipe, prompt, call, seed):
    import torch

    from .video import as_uint8_video

    g = torch.Generator(device="cpu").manual_seed(seed)
    t = time.perf_counter()
    frames = pipe(prompt, generator=g, output_type="np", **call).frames[0]
    return as_uint8_video(frames), time.perf_counter() - t


def _timed(pipe, prompt, call, seed, compile: bool):
    """_run, after a one-step warm-up that compiles when ``compile`` (printed: compilation is paid once per process)."""
    if compile:
        import torch

        from .pipelines.compile import compile_transformer
        from .pipelines.models import transformers_of

        torch._dynamo.reset()
        for _, model in transformers_of(pipe):
            compile_transformer(model)
        _, warm = _run(pipe, prompt, {**call, "num_inference_steps": 1}, seed)
        print(f"compiled (regional torch.compile): warm-up step {warm:.1f} s")
    return _run(pipe, prompt, call, seed)


def _cache(args: argparse.Namespace, profile, model: str):
    """The step cache to stack: ``--cache`` (``none``: no cache), else the profile's recommendation (said once);
    what the spelling and the pipeline class refuse, before the model loads."""
    from .cache_spec import check_pipeline, parse

    spec = parse(args.cache) if args.cache is not None else getattr(profile, "cache", None)
    if args.cache is None and spec is not None:
        print(f"cache {spec.label}: the profile's recommendation (--cache none turns it off)")
    index = Path(model) / "model_index.json"
    check_pipeline(spec, json.loads(index.read_text()).get("_class_name") if index.is_file() else None)
    return spec


def _init_parallel(degree: int) -> int:
    """Join the torchrun process group; the world must be exactly the Ulysses degree (one GPU a rank)."""
    import os

    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world != degree:
        raise ValueError(f"--ulysses {degree} needs {degree} processes, this run has {world}: launch with "
                         f"torchrun --nproc-per-node {degree} -m videoaccel generate ... --ulysses {degree}")
    if not torch.cuda.is_available() or torch.cuda.device_count() < degree:
        raise ValueError(f"--ulysses {degree} needs {degree} CUDA GPUs")
    rank = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl")
    return rank


def run_generate(args: argparse.Namespace) -> int:
    import inspect

    import videoaccel

    from . import session
    from .pipelines import caches
    from .pipelines import check_profile
    from .plans import load_profile
    from .prompt_check import empty_prompt_note, long_prompt_note
    from .video import check_output_path, write_video

    extra = [beside(args.output, "dense"), beside(args.output, "sbs")] if args.compare_dense and not args.dense else []
    try:
        model, embedded = session.resolve_model(args.model)
        defaults = session.model_defaults(model)
        call = session.call_kwargs(args, defaults)
        for path in [args.output] + extra:
            check_output_path(path)
        _check_geometry(model, call)
        profile = None if args.dense else load_profile(args.profile or session.default_profile(model, embedded))
        cache = _cache(args, profile, model)
    except (OSError, ValueError) as e:
        print(str(e), file=sys.stderr)
        return 2
    rank = 0
    if args.ulysses > 1:
        try:
            rank = _init_parallel(args.ulysses)
        except ValueError as e:
            print(str(e), file=sys.stderr)
            return 2
    if rank == 0 and (note := empty_prompt_note(args.prompt)):
        print(note, file=sys.stderr)
    pipe = session.load_pipeline(model, device=f"cuda:{rank}" if args.ulysses > 1 else None)
    if rank == 0:
        print(session.describe_call(pipe, call, model), flush=True)
    if rank == 0 and (note := long_prompt_note(pipe, args.prompt, call)):
        print(note, file=sys.stderr)
    if not args.dense:
        check_profile(pipe, profile)  # against the model, before any step (ValueError: one line, exit 2 in cli.main)
    if args.ulysses > 1:
        from diffusers import ContextParallelConfig

        pipe.transformer.enable_parallelism(config=ContextParallelConfig(ulysses_degree=args.ulysses))
    dense_frames = dense_s = None
    steps = call.get("num_inference_steps") or inspect.signature(pipe).parameters["num_inference_steps"].default
    if args.compare_dense or args.dense:
        caches.enable(pipe, cache if args.dense else None, steps)  # --dense --cache: the stock pipeline with the cache
        dense_frames, dense_s = _timed(pipe, args.prompt, call, args.seed, args.compile)
    frames, seconds, density = dense_frames, dense_s, 1.0
    if not args.dense:
        caches.enable(pipe, cache, steps)
        videoaccel.accelerate(pipe, profile)
        frames, seconds = _timed(pipe, args.prompt, call, args.seed, args.compile)
        density = videoaccel.report(pipe).mean_density
        videoaccel.restore(pipe)
    if rank != 0:  # only rank 0 writes
        return 0
    fps = args.fps or defaults.get("fps", 8)
    try:
        write_video(frames, args.output, fps=fps)
        if extra:
            from .metrics import side_by_side

            write_video(dense_frames, extra[0], fps=fps)
            write_video(side_by_side(dense_frames, frames, labels=("dense", "accelerated")), extra[1], fps=fps)
    except (OSError, ValueError) as e:
        print(str(e), file=sys.stderr)
        return 2
    print(f"wrote {args.output}: {frames.shape[0]} frames {frames.shape[2]}x{frames.shape[1]} in {seconds:.1f} s, "
          f"attention density {density:.3f}" + (" (dense)" if args.dense else "") + (", compiled" if args.compile else ", eager") + (f", cache {cache.label}" if cache else ""))
    if extra:
        from .metrics import psnr, ssim

        print(f"dense: {dense_s:.1f} s; speedup {dense_s / seconds:.2f}x; PSNR {psnr(frames, dense_frames)[1]:.2f} dB; "
              f"SSIM {ssim(frames, dense_frames)[1]:.4f} vs dense\nwrote {extra[0]} (dense) and {extra[1]} (dense | accelerated)")
    return 0
