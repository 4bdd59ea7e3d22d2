"""`videoaccel profile`: calibrate a pipeline once and write its per-head attention plans."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..patterns.registry import BLOCKS
from . import args as types
from . import session

if TYPE_CHECKING:
    from ..profiling import ProfileConfig


def add_parser(sub: argparse._SubParsersAction) -> None:
    prof = sub.add_parser("profile", help="calibrate a pipeline once and write its per-head attention plans")
    prof.add_argument("--model", help="diffusers pipeline directory or hub id (default: the embedded tiny model)")
    prof.add_argument("--prompts", required=True, help="text file, one calibration prompt per line")
    prof.add_argument("-o", "--output", required=True, help="profile .json to write")
    prof.add_argument("--steps", type=types.positive_int,
                      help="this, --guidance and the geometry default to the model's videoaccel.json")
    prof.add_argument("--guidance", type=types.non_negative)
    prof.add_argument("--height", type=types.size)
    prof.add_argument("--width", type=types.size)
    prof.add_argument("--frames", type=types.positive_int)
    prof.add_argument("--error-budget", type=types.positive, default=0.05,
                      help="predicted relative L2 error of the final latent (the cheapest profile that meets it)")
    prof.add_argument("--target-density", type=types.density, help="instead: the generation's total attention cost relative "
                      "to dense (dense warm-up steps count 1.0, skipped heads 0), least predicted error first")
    prof.add_argument("--cost-table", help="`videoaccel bench cost-table` JSON of the target GPU (default: analytic costs)")
    prof.add_argument("--no-probe", action="store_true", help="skip the step-sensitivity probe (every step weighs the same)")
    prof.add_argument("--fp8", action=argparse.BooleanOptionalAction, default=None,
                      help="FP8 variants as per-head candidates (default: when a CUDA GPU is present)")
    prof.add_argument("--buckets", type=types.positive_int, default=3, help="timestep buckets")
    prof.add_argument("--block", type=int, default=128, choices=BLOCKS,
                      help="attention block; 64 for short sequences or heads that need finer masks")
    prof.add_argument("--seed", type=int, default=0)
    prof.add_argument("--name")
    prof.add_argument("--allow-pickle", action="store_true", help=session.ALLOW_PICKLE_HELP)
    prof.set_defaults(func=_dispatch)


def _dispatch(a) -> int:
    from ..profiling import ProfileConfig

    cfg = ProfileConfig(error_budget=a.error_budget, target_density=a.target_density, buckets=a.buckets, block=a.block,
                        seed=a.seed, probe=not a.no_probe, fp8=a.fp8, cost_table=a.cost_table)
    return profile_command(a.model, a.prompts, a.output, cfg, vars(a), name=a.name, seed=a.seed, allow_pickle=a.allow_pickle)


def profile_command(model: str | None, prompts_file: str, output: str, cfg: ProfileConfig, flags: dict, *, name: str | None, seed: int,
                    allow_pickle: bool = False) -> int:
    """Calibrate on the prompts, write the profile to ``output`` (resumable: ``output``.partial); every file is
    checked before the model loads."""
    from ..files import check_writable
    from ..profiling import profile_pipeline
    from ..profiling.checkpoint import check_checkpoint
    from ..profiling.inspect import summary
    from ..prompt_check import unknown_words_note

    prompts = session.read_prompts(prompts_file)
    checkpoint = output + ".partial"  # resume an interrupted run with the same settings
    check_writable(output)
    check_writable(checkpoint)
    check_checkpoint(checkpoint)
    model, embedded = session.resolve_model(model, allow_pickle)
    call = session.call_kwargs(flags, session.model_defaults(model))
    session.check_geometry(model, call)
    pipe = session.load_pipeline(model, allow_pickle=allow_pickle)
    print(session.describe_call(pipe, call, model) + f"; calibrating on {len(prompts)} prompts (dense)", flush=True)
    if note := unknown_words_note(pipe, " ".join(prompts), model, embedded):
        print(note, file=sys.stderr)
    prof = profile_pipeline(pipe, prompts, cfg, name=name or Path(output).stem, seed=seed, checkpoint=checkpoint, **call)
    prof.save(output)  # atomic: a failed write keeps the old file and says so
    Path(checkpoint).unlink(missing_ok=True)
    print(summary(prof))
    print(f"wrote {output}")
    return 0
