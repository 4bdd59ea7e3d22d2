"""Every subcommand's flags, and the module that runs it.

Why apart from the command modules: parsing a command line (and ``--help``, and a bad flag's one-line error) must
not load torch or diffusers. This module imports only light ones; each command's module, with its heavy imports at
its top, is imported by the ``_run_*`` function its parser sets as ``func``, once the flags have parsed: the command
line's side of the package's lazy boundary (``videoaccel/__init__.py``).
"""
from __future__ import annotations

import argparse
import os
import sys

from ..benchmarks.stack_spec import STACKS
from ..patterns.registry import BLOCKS, ORDERS, USER_FACING
from . import args as types

ALLOW_PICKLE_HELP = ("load a model directory whose weights are pickle files (.bin, .pt) without safetensors: this UNPICKLES "
                     "them, which can run code from the files; only for files you trust (default: refused)")
SUITES = {"e2e": "one denoising step of full-size models (GPU)",
          "cost-table": "kernel time per pattern, density, precision, head dim and block on this GPU, for the profiler",
          "stack": "whole denoising loops per acceleration stack (cache, sparse, fp8, compile)"}


def add_generate(sub: argparse._SubParsersAction) -> None:
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
    g.add_argument("--allow-pickle", action="store_true", help=ALLOW_PICKLE_HELP)
    g.set_defaults(func=_run_generate)


def add_compare(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the `compare` subcommand on an argparse subparsers object."""
    p = subparsers.add_parser(
        "compare", help="PSNR / SSIM (/ LPIPS) between two videos",
        description="Compare video B against reference A frame by frame (.mp4, .gif or a PNG-frame directory).",
    )
    p.add_argument("A", nargs="?", help="reference video (e.g. dense attention)")
    p.add_argument("B", nargs="?", help="video to compare (e.g. accelerated)")
    p.add_argument("--side-by-side", metavar="OUT", help="write A|B next to each other (.mp4, .gif or a directory)")
    p.add_argument("--json", metavar="OUT", help="write per-frame and mean metrics as JSON")
    p.add_argument("--prompts", metavar="FILE", help="prompt-set mode: one prompt per line, dense vs accelerated")
    p.add_argument("--profile", default=None, help="prompt-set mode: profile file or preset to compare with dense "
                   "(default: as videoaccel generate)")
    p.add_argument("--model", help="prompt-set mode: diffusers directory (default: the embedded model)")
    p.add_argument("--steps", type=types.positive_int,
                   help="prompt-set mode; this, --guidance and the geometry default to the model's videoaccel.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--height", type=types.size)
    p.add_argument("--width", type=types.size)
    p.add_argument("--frames", type=types.positive_int)
    p.add_argument("--guidance", type=types.non_negative)
    p.set_defaults(func=_run_compare)
    return p


def add_profile(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("profile", help="calibrate a pipeline once and write its per-head attention plans")
    parser.add_argument("--model", help="diffusers pipeline directory or hub id (default: the embedded tiny model)")
    parser.add_argument("--prompts", required=True, help="text file, one calibration prompt per line")
    parser.add_argument("-o", "--output", required=True, help="profile .json to write")
    parser.add_argument("--steps", type=types.positive_int,
                      help="this, --guidance and the geometry default to the model's videoaccel.json")
    parser.add_argument("--guidance", type=types.non_negative)
    parser.add_argument("--height", type=types.size)
    parser.add_argument("--width", type=types.size)
    parser.add_argument("--frames", type=types.positive_int)
    parser.add_argument("--error-budget", type=types.positive, default=0.05,
                      help="predicted relative L2 error of the final latent (the cheapest profile that meets it)")
    parser.add_argument("--target-density", type=types.density, help="instead: the generation's total attention cost relative "
                      "to dense (dense warm-up steps count 1.0, skipped heads 0), least predicted error first")
    parser.add_argument("--cost-table", help="`videoaccel bench cost-table` JSON of the target GPU (default: analytic costs)")
    parser.add_argument("--no-probe", action="store_true", help="skip the step-sensitivity probe (every step weighs the same)")
    parser.add_argument("--probe-size", metavar="FxHxW", help="run the step-sensitivity probe at this smaller size in pixels "
                        "(e.g. 33x240x416): a fraction of its cost at full size")
    parser.add_argument("--fp8", action=argparse.BooleanOptionalAction, default=None,
                      help="FP8 variants as per-head candidates (default: when a CUDA GPU is present)")
    parser.add_argument("--buckets", type=types.positive_int, default=3, help="timestep buckets")
    parser.add_argument("--score-every", type=types.positive_int, default=1,
                        help="score the attention of one step in N (another step each prompt): N times less scoring")
    parser.add_argument("--block", type=int, default=128, choices=BLOCKS,
                      help="attention block; 64 for short sequences or heads that need finer masks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name")
    parser.add_argument("--allow-pickle", action="store_true", help=ALLOW_PICKLE_HELP)
    parser.set_defaults(func=_run_profile)


def add_inspect(sub: argparse._SubParsersAction) -> None:
    insp = sub.add_parser("inspect", help="summarise a profile, or render a pattern's block layout, as text and PNG")
    insp.add_argument("profile", nargs="?", help="a profile .json to summarise (with -o: a layers x heads PNG)")
    insp.add_argument("--pattern", help=", ".join(USER_FACING))
    insp.add_argument("--geometry", help="TxHxW latent tokens after patchify, e.g. 21x30x52 (Wan2.1 480p 81f)")
    insp.add_argument("--text", type=types.non_negative_int, default=0, help="joined text tokens")
    insp.add_argument("--text-position", choices=["front", "back"], default="back")
    insp.add_argument("--block", type=int, default=128, choices=BLOCKS)
    insp.add_argument("--order", choices=ORDERS, default="tile")
    insp.add_argument("--param", action="append", default=[], help="pattern parameter NAME=VALUE (repeatable)")
    insp.add_argument("--density", type=types.density, help="fit the pattern's knob to this density")
    insp.add_argument("--qk", help="draft/pyramid: .safetensors with one head's 'q' and 'k' [S, D]")
    insp.add_argument("--synthetic", default="local", choices=["local", "temporal", "stripe"],
                      help="draft/pyramid without --qk: planted structure to draw from")
    insp.add_argument("-o", "--output", help="PNG path")
    insp.add_argument("--attention", action="store_true",
                      help="measure how sparse a model's self-attention is: oracle recall per layer/head during real generations")
    insp.add_argument("--model", help="--attention: diffusers pipeline directory (default: the embedded model)")
    insp.add_argument("--prompts", help="--attention: text file, one prompt per line")
    insp.add_argument("--frames", type=types.positive_int)
    insp.add_argument("--height", type=types.size)
    insp.add_argument("--width", type=types.size)
    insp.add_argument("--steps", type=types.positive_int)
    insp.add_argument("--json", help="--attention: write the rows (bench format) here")
    insp.set_defaults(func=_run_inspect)


def add_bench(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="check and time the kernels on this machine")
    bench.add_argument("suite", nargs="?", choices=list(SUITES), help="; ".join(f"{k}: {v}" for k, v in SUITES.items()))
    bench.add_argument("--geometry", default="21x30x52", help="cost-table: latent grid TxHxW (default Wan2.1 480p 81 frames)")
    bench.add_argument("--heads", type=int, default=12, help="cost-table: heads per call")
    bench.add_argument("--self-check", action="store_true", help="check every kernel against the reference on small shapes")
    bench.add_argument("--models", nargs="*", default=["wan1.3b-480p81f", "cogvideox5b-480p49f", "wan14b-720p81f"],
                       help="e2e cases (also hunyuan-720p129f)")
    bench.add_argument("--out", default=os.environ.get("OUT", "."), help="directory for the bench JSON")
    bench.add_argument("--no-fp8-linear", action="store_true", help="skip the torchao FP8 linear settings")
    bench.add_argument("--compile", action="store_true", help="e2e: also time each setting under regional torch.compile")
    bench.add_argument("--cudagraphs", action="store_true", help="e2e with --compile: also CUDA graphs (mode reduce-overhead)")
    bench.add_argument("--presets", nargs="*", default=["radial:0.25", "radial:0.1", "radial:0.1+fp8"],
                       help="videoaccel presets to time in e2e")
    bench.add_argument("--profile", help="e2e: also a calibrated profile FILE mapped onto each model, per timestep bucket "
                       "and for a whole generation (benchmarks/profile_map.py)")
    # stack: whole denoising loops per acceleration stack (benchmarks/stack.py)
    bench.add_argument("--steps", type=types.positive_int, default=50, help="stack: denoising steps of each timed loop")
    bench.add_argument("--dense-steps", type=types.positive_int, default=None,
                       help="stack: time the dense baseline over this many steps and scale to --steps (dense does the same "
                            "work every step); default: all of them")
    bench.add_argument("--cache", type=types.cache, default="taylorseer-lite:2",
                       help="stack: the step cache of the cache stacks (a fixed-schedule one: random weights)")
    bench.add_argument("--preset", default="radial:0.1", help="stack: the sparse preset (+fp8 is added by the fp8 stacks)")
    bench.add_argument("--stacks", nargs="*", default=list(STACKS), help=f"stack: rows to time ({', '.join(STACKS)})")
    bench.add_argument("--tiny", action="store_true", help="stack: a tiny Wan on this machine's device (smoke test)")
    bench.add_argument("--fidelity", type=types.positive_int, default=None, metavar="N",
                       help="stack: instead, each stack's PSNR/SSIM vs dense and adherence on N held-out prompts of the "
                            "embedded testbed model (its real weights; use --steps 20)")
    bench.set_defaults(func=_run_bench)


def add_vocab(sub: argparse._SubParsersAction) -> None:
    v = sub.add_parser("vocab", help="list the words the model's tokenizer knows (the embedded model: about 30)")
    v.add_argument("--model", help="diffusers directory (default: the embedded tiny model)")
    v.set_defaults(func=_run_vocab)


# Each command's module loads here, after its flags parsed (the lazy boundary: see the module docstring).
def _run_generate(a: argparse.Namespace) -> int:
    from . import generate

    return generate.run(a)


def _run_compare(a: argparse.Namespace) -> int:
    if a.prompts:  # a model runs: torch and diffusers
        from . import compare_prompts

        return compare_prompts.run(a)
    from . import compare  # two video files: no torch

    return compare.run(a)


def _run_profile(a: argparse.Namespace) -> int:
    from . import profile

    return profile.run(a)


def _run_inspect(a: argparse.Namespace) -> int:
    if a.attention:  # a model runs
        from . import inspect_attention

        return inspect_attention.run(a)
    from . import inspect

    return inspect.run(a)


def _run_bench(a: argparse.Namespace) -> int:
    if a.suite is None and not a.self_check:
        print(f"videoaccel bench: give a suite ({', '.join(SUITES)}) or --self-check (kernels against the reference on "
              "this machine)", file=sys.stderr)
        return 2
    from . import bench

    return bench.run(a)


def _run_vocab(a: argparse.Namespace) -> int:
    from . import vocab

    return vocab.run(a)


COMMANDS = (add_generate, add_compare, add_profile, add_inspect, add_bench, add_vocab)  # in `videoaccel --help` order
