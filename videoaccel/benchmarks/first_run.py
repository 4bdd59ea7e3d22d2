"""`python -m videoaccel.benchmarks.first_run`: what README command 1 costs on this machine: `videoaccel generate PROMPT --compare-dense` with the shipped profile,
run as a user runs it, on held-out prompts of the embedded model (never trained, never calibrated on).

Records per prompt the verdict, PSNR, SSIM, attention density, dense and accelerated seconds, the wall time of
the whole command and the 1-minute load average before and after; writes OUT/first-run-<dev>.json (bench format)
and docs/dense-vs-accelerated.png (frames 0, 12, 24 of the first prompt: dense left, accelerated right).
`python scripts/render_readme.py` turns the record into the README's first-run and CPU-times blocks.

    python -m videoaccel.benchmarks.first_run --out bench --n 4
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np

from ..files import write_image
from ..tiny import evaluate
from ..video import read_video
from .record import run_suite, suite_command, write_record

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")  # the repository (docs/ is written there)
PICKED = (14, 18, 23, 26, 43, 47)  # held-out prompts of several colours, shapes and motions (evaluate.heldout(50))
LINE = re.compile(r"^(no visible loss|slight loss|VISIBLE LOSS) \(PSNR ([\d.inf]+) dB, SSIM ([\d.]+)\)")


def run_once(prompt: str, out_dir: str, extra: list[str]) -> dict:
    """One `videoaccel generate ... --compare-dense` in a fresh process: its output lines and parsed numbers."""
    out = os.path.join(out_dir, "out.mp4")
    cmd = [sys.executable, "-m", "videoaccel", "generate", prompt, "-o", out, "--compare-dense", *extra]
    load0, t = os.getloadavg()[0], time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall, load1 = time.perf_counter() - t, os.getloadavg()[0]
    if r.returncode:
        raise ValueError(f"{shlex.join(cmd)} failed: {r.stderr[-2000:]}")
    lines = r.stdout.splitlines()
    verdict = next(m for m in map(LINE.match, lines) if m)
    acc = re.search(r"in ([\d.]+) s, attention density ([\d.]+)", r.stdout)
    dense = re.search(r"dense: ([\d.]+) s; speedup ([\d.]+)x", r.stdout)
    return {"prompt": prompt, "verdict": verdict.group(1), "psnr": float(verdict.group(2)), "ssim": float(verdict.group(3)),
            "attn_density": float(acc.group(2)), "accelerated_s": float(acc.group(1)), "dense_s": float(dense.group(1)),
            "speedup": float(dense.group(2)), "wall_s": wall, "load_before": load0, "load_after": load1, "stdout": lines,
            "sbs": out.replace(".mp4", ".sbs.mp4")}


def picture(sbs: str, png: str) -> None:
    """Frames 0, 12 and 24 of a side-by-side video, stacked."""
    v = read_video(sbs)
    rows = [v[i] for i in (0, len(v) // 2, len(v) - 1)]
    gap = np.full((4, v.shape[2], 3), 255, np.uint8)
    write_image(png, np.concatenate([rows[0], gap, rows[1], gap, rows[2]], 0)[..., ::-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m videoaccel.benchmarks.first_run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=4, help="held-out prompts (of PICKED)")
    ap.add_argument("--profile", help="default: the shipped one, as README command 1")
    args = ap.parse_args(argv)
    prompts = [evaluate.heldout(50)[0][i] for i in PICKED[:args.n]]
    extra = ["--profile", args.profile] if args.profile else []
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, prompt in enumerate(prompts):
            rows.append(run_once(prompt, tmp, extra))
            r = rows[-1]
            print(f"{prompt!r}: {r['verdict']} PSNR {r['psnr']} SSIM {r['ssim']}, density {r['attn_density']}, dense "
                  f"{r['dense_s']} s, accelerated {r['accelerated_s']} s ({r['speedup']}x), wall {r['wall_s']:.0f} s, "
                  f"load {r['load_before']:.1f}-{r['load_after']:.1f}", flush=True)
            if i == 0:
                picture(r["sbs"], os.path.join(ROOT, "docs", "dense-vs-accelerated.png"))
            r.pop("sbs")
    command = suite_command(__spec__.name, argv) + f"   ({os.cpu_count()}-core CPU shared with other jobs; float32; " \
              "each row: videoaccel generate PROMPT -o out.mp4 --compare-dense" + (f" --profile {args.profile}" if extra else "") + ")"
    print(f"wrote {write_record('first-run', command, rows, args.out)}")


if __name__ == "__main__":
    run_suite(main)
