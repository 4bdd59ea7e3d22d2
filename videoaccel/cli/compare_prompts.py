"""`videoaccel compare --prompts FILE`: dense vs accelerated over a prompt set, same seeds.

Reports PSNR/SSIM vs dense, achieved attention density and speedup per prompt and overall. What a
video should show is model-specific, so a ``Scorer`` adds its own fields to each row and to the
summary (the embedded model's colour/direction adherence: tiny/evaluate.py).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Protocol

import numpy as np

from .. import pipelines
from ..files import check_json_path, write_json
from ..metrics import PLAN_FIX, num, psnr, ssim, verdict
from ..plans import load_profile
from ..prompt_check import unknown_words_note
from ..tiny.evaluate import Adherence
from . import loading, session
from .compare import USAGE_ERROR


class Scorer(Protocol):
    def row(self, prompt: str, dense: np.ndarray, accelerated: np.ndarray) -> dict:
        """Fields of one prompt's row."""

    def summary(self, rows: list[dict]) -> dict:
        """Fields of the summary over every row."""


def run(a: argparse.Namespace) -> int:
    return compare_prompts(a.prompts, a.json or "compare.json", vars(a), model=a.model, profile=a.profile, seed=a.seed,
                           scorer=Adherence())


def compare_prompts(prompts_file: str, out: str, flags: dict, *, model: str | None, profile: str | None, seed: int,
                    scorer: Scorer | None = None) -> int:
    """Write the JSON report to ``out``; 2 (message on stderr) on bad input before any model work."""
    try:
        check_json_path(out)
    except (OSError, ValueError) as e:
        print(str(e), file=sys.stderr)
        return USAGE_ERROR
    prompts = session.read_prompts(prompts_file)
    try:
        model, embedded = session.resolve_model(model)
        call = session.call_kwargs(flags, session.model_defaults(model))
        spec = profile or session.default_profile(model, embedded)
        profile = load_profile(spec)
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return USAGE_ERROR
    pipe = loading.load_pipeline(model)
    profile = pipelines.check_profile(pipe, profile)  # against the model, before any generation
    print(session.describe_call(pipe, call, model) + f"; {session.prompt_count(prompts)}, dense and accelerated", flush=True)
    if note := unknown_words_note(pipe, " ".join(prompts), model, embedded):
        print(note, file=sys.stderr)
    rows = []
    for i, prompt in enumerate(prompts):
        dense, t_dense = loading.generate_video(pipe, prompt, call, seed + i)
        pipelines.accelerate(pipe, profile)
        fast, t_fast = loading.generate_video(pipe, prompt, call, seed + i)
        rep = pipelines.report(pipe)
        pipelines.restore(pipe)
        p, s = psnr(fast, dense)[1], ssim(fast, dense)[1]
        rows.append({"prompt": prompt, "seed": seed + i, "psnr": num(p), "ssim": s, "verdict": verdict(p, s),
                     "attn_density": rep.mean_density, "dense_s": t_dense, "accelerated_s": t_fast,
                     **(scorer.row(prompt, dense, fast) if scorer else {})})
        print(f"{i + 1}/{len(prompts)} {prompt!r}: {verdict(p, s)}, attention density {rep.mean_density:.3f}, "
              f"dense {t_dense:.1f} s, accelerated {t_fast:.1f} s", flush=True)
    finite = [r["psnr"] for r in rows if r["psnr"] is not None]
    summary = {"profile": spec, "model": model, "prompts": len(rows), "time": time.strftime("%Y-%m-%d %H:%M:%S"),
               "mean_psnr": sum(finite) / len(finite) if finite else None, "mean_ssim": sum(r["ssim"] for r in rows) / len(rows),
               "mean_attn_density": sum(r["attn_density"] for r in rows) / len(rows),
               "speedup": sum(r["dense_s"] for r in rows) / sum(r["accelerated_s"] for r in rows),
               **(scorer.summary(rows) if scorer else {})}
    worst = min(rows, key=lambda r: (math.inf if r["psnr"] is None else r["psnr"], r["ssim"]))
    summary["verdict"] = verdict(math.inf if worst["psnr"] is None else worst["psnr"], worst["ssim"], PLAN_FIX)
    print(f"lowest-PSNR prompt {worst['prompt']!r}: {summary['verdict']}")
    write_json({"summary": summary, "rows": rows}, out)
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in summary.items()}, indent=1))
    print(f"wrote {out}")
    return 0
