"""`videoaccel compare A B`: how close an accelerated video is to its reference, frame by frame.

Prints PSNR/SSIM per frame and their means, plus LPIPS when it can be computed offline, and can
write a side-by-side video and a JSON report. Every input and output path is checked before any
work, so bad input exits with code 2 and writes nothing.

Prompt-set mode (``--prompts FILE``, compare_prompts.py: a module of its own, so that this one loads no
torch): run a model dense and accelerated with the same seeds over a prompt set and report PSNR/SSIM vs
dense, achieved attention density, speedup and, for prompts of the embedded model's grammar,
colour/direction adherence of both.
"""
from __future__ import annotations

import argparse
import sys

from ..files import check_json_path, write_json
from ..metrics import check_pair, fmt, lpips_or_none, num, psnr, side_by_side, ssim, verdict
from ..video import check_output_path, read_video, write_video

USAGE_ERROR = 2


def run(a: argparse.Namespace) -> int:
    return compare_videos(a.A, a.B, side_by_side_out=a.side_by_side, json_out=a.json)


def compare_videos(a_path: str | None, b_path: str | None, *, side_by_side_out: str | None, json_out: str | None) -> int:
    """Compare video B with reference A; 0 on success, 2 (message on stderr, nothing written) on bad input."""
    if not a_path or not b_path:
        print("videoaccel compare: give two videos, e.g. `videoaccel compare dense.mp4 fast.mp4`", file=sys.stderr)
        return USAGE_ERROR
    try:
        if side_by_side_out:
            check_output_path(side_by_side_out)
        if json_out:
            check_json_path(json_out)
        a, b = read_video(a_path), read_video(b_path)
        check_pair(a, b)
    except (OSError, ValueError) as exc:
        print(f"videoaccel compare: {exc}", file=sys.stderr)
        return USAGE_ERROR

    p_per, p_mean = psnr(a, b)
    s_per, s_mean = ssim(a, b)
    lp, lp_msg = lpips_or_none(a, b)

    print(f"A: {a_path}\nB: {b_path}\n{a.shape[0]} frames, {a.shape[2]}x{a.shape[1]}")
    print(f"B against A: {verdict(p_mean, s_mean)}")
    print(f"{'frame':>5}  {'PSNR(dB)':>9}  {'SSIM':>7}")
    for i, (p, s) in enumerate(zip(p_per, s_per)):
        print(f"{i:>5}  {fmt(p, 2):>9}  {s:>7.4f}")
    print(f"{'mean':>5}  {fmt(p_mean, 2):>9}  {s_mean:>7.4f}")
    print(lp_msg)

    try:
        if side_by_side_out:
            write_video(side_by_side(a, b, labels=("A", "B")), side_by_side_out)
            print(f"wrote side-by-side video to {side_by_side_out}")
        if json_out:
            write_json({
                "a": a_path, "b": b_path, "frames": int(a.shape[0]),
                "height": int(a.shape[1]), "width": int(a.shape[2]),
                "per_frame": [{"frame": i, "psnr": num(p), "ssim": s} for i, (p, s) in enumerate(zip(p_per, s_per))],
                "psnr_mean": num(p_mean), "ssim_mean": s_mean, "verdict": verdict(p_mean, s_mean),
                "lpips": lp, "lpips_message": lp_msg,
                "note": "psnr null = identical frames (infinite PSNR)",
            }, json_out)
            print(f"wrote metrics to {json_out}")
    except (OSError, ValueError) as exc:
        print(f"videoaccel compare: {exc}", file=sys.stderr)
        return 1
    return 0
