"""`python -m videoaccel.benchmarks.recall`: oracle attention recall of a Wan model at several geometries (bench
suite attention-recall).

Over `videoaccel.profiling.attention_stats` (also `videoaccel inspect --attention`): dense generations
of held-out prompts of the embedded model's grammar, recall per layer/head on sampled query blocks at three steps.
Writes OUT/attention-recall-<dev>.json (bench-format.md) and OUT/attention-recall-<geometry>.png.

    python -m videoaccel.benchmarks.recall --model assets/tiny-t2v --geometries 25x192x320,49x384x640 --out $OUT
"""
from __future__ import annotations

import argparse
import os

import torch
from diffusers import WanPipeline

from ..pictures import recall_png, require
from ..profiling import attention_stats
from ..tiny import evaluate
from ..tiny.model import TEXT_LEN
from ..values import video_size
from .record import run_suite, suite_command, write_record


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m videoaccel.benchmarks.recall", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="assets/tiny-t2v")
    ap.add_argument("--geometries", default="25x192x320,49x384x640", help="FRAMESxHEIGHTxWIDTH in pixels, comma-separated")
    ap.add_argument("--prompts", type=int, default=2, help="held-out prompts per geometry")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--out", required=True)
    ap.add_argument("--tag", default="", help="label stored in each row (e.g. the training run)")
    args = ap.parse_args(argv)
    sizes = [video_size(g, "--geometries") for g in args.geometries.split(",")]  # before any work
    require()  # the pictures need matplotlib: said before the generations
    os.makedirs(args.out, exist_ok=True)
    cuda = torch.cuda.is_available()
    pipe = WanPipeline.from_pretrained(args.model, torch_dtype=torch.bfloat16 if cuda else torch.float32)
    pipe = pipe.to("cuda" if cuda else "cpu")
    pipe.set_progress_bar_config(disable=True)
    prompts = evaluate.heldout(args.prompts)[0]
    rows = []
    for geo, (f, h, w) in zip(args.geometries.split(","), sizes):
        obs = attention_stats.measure(pipe, prompts, num_inference_steps=args.steps, guidance_scale=5.0, num_frames=f,
                                      height=h, width=w, max_sequence_length=TEXT_LEN, negative_prompt="", progress=False)
        got = obs.rows(os.path.basename(os.path.normpath(args.model)))
        for r in got:
            r.update(pixels=geo, tag=args.tag)
        recall_png(got, os.path.join(args.out, f"attention-recall-{geo}.png"))
        print(f"{geo} ({got[0]['tokens']} tokens)\n{attention_stats.summary(got)}", flush=True)
        rows += got
    write_record("attention-recall", suite_command(__spec__.name, argv), rows, args.out)


if __name__ == "__main__":
    run_suite(main)
