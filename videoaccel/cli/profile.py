"""`videoaccel profile`: calibrate a pipeline once and write its per-head attention plans."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..files import check_writable
from ..profile_summary import summary
from ..profiling import ProfileConfig, profile_pipeline
from ..profiling.checkpoint import check_checkpoint
from ..prompt_check import unknown_words_note
from . import loading, session


def run(a: argparse.Namespace) -> int:
    cfg = ProfileConfig(error_budget=a.error_budget, target_density=a.target_density, buckets=a.buckets, block=a.block,
                        seed=a.seed, probe=not a.no_probe, fp8=a.fp8, cost_table=a.cost_table, score_every=a.score_every,
                        probe_size=a.probe_size)
    return profile_command(a.model, a.prompts, a.output, cfg, vars(a), name=a.name, seed=a.seed, allow_pickle=a.allow_pickle)


def profile_command(model: str | None, prompts_file: str, output: str, cfg: ProfileConfig, flags: dict, *, name: str | None, seed: int,
                    allow_pickle: bool = False) -> int:
    """Calibrate on the prompts, write the profile to ``output`` (resumable: ``output``.partial); every file is
    checked before the model loads."""
    prompts = session.read_prompts(prompts_file)
    checkpoint = output + ".partial"  # resume an interrupted run with the same settings
    check_writable(output)
    check_writable(checkpoint)
    check_checkpoint(checkpoint)
    model, embedded = session.resolve_model(model, allow_pickle)
    call = session.call_kwargs(flags, session.model_defaults(model))
    loading.check_geometry(model, call)
    pipe = loading.load_pipeline(model, allow_pickle=allow_pickle)
    print(session.describe_call(pipe, call, model) + f"; calibrating on {session.prompt_count(prompts)} (dense)", flush=True)
    if note := unknown_words_note(pipe, " ".join(prompts), model, embedded):
        print(note, file=sys.stderr)
    profile = profile_pipeline(pipe, prompts, cfg, name=name or Path(output).stem, seed=seed, checkpoint=checkpoint, **call)
    profile.save(output)  # atomic: a failed write keeps the old file and says so
    Path(checkpoint).unlink(missing_ok=True)
    print(summary(profile))
    print(f"wrote {output}")
    return 0
