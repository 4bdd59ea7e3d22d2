"""`videoaccel compare A B`: how close an accelerated video is to its reference, frame by frame.

Prints PSNR/SSIM per frame and their means, plus LPIPS when it can be computed offline, and can
write a side-by-side video and a JSON report. Every input and output path is checked before any
work, so bad input exits with code 2 and writes nothing.

Prompt-set mode goes in a separate hook, ``compare_prompts(args)`` (added by another change);
that is why A and B are optional positionals here.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile

USAGE_ERROR = 2


def add_compare_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `compare` subcommand on an argparse subparsers object; sets func=run_compare."""
    p = subparsers.add_parser(
        "compare", help="PSNR / SSIM (/ LPIPS) between two videos",
        description="Compare video B against reference A frame by frame (.mp4, .gif or a PNG-frame directory).",
    )
    p.add_argument("A", nargs="?", help="reference video (e.g. dense attention)")
    p.add_argument("B", nargs="?", help="video to compare (e.g. accelerated)")
    p.add_argument("--side-by-side", metavar="OUT", help="write A|B next to each other (.mp4, .gif or a directory)")
    p.add_argument("--json", metavar="OUT", help="write per-frame and mean metrics as JSON")
    p.set_defaults(func=run_compare)
    return p


def _num(x: float) -> float | None:
    """JSON has no infinity: identical frames (PSNR inf) are written as null."""
    return None if not math.isfinite(x) else x


def _write_json(obj: dict, path: str) -> None:
    """Temp file + rename, like the video writer, so a failed write leaves no partial report."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2, allow_nan=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _check_json_path(path: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise OSError(f"cannot write {path}: directory {d} does not exist (create it first)")
    if not os.access(d, os.W_OK | os.X_OK):
        raise OSError(f"cannot write {path}: directory {d} is not writable")
    if os.path.isdir(path):
        raise OSError(f"cannot write JSON to {path}: it is a directory (give a file name)")


def _fmt(x: float, digits: int) -> str:
    return "inf" if math.isinf(x) else f"{x:.{digits}f}"


def run_compare(args: argparse.Namespace) -> int:
    """Compare args.A with args.B; 0 on success, 2 (message on stderr, nothing written) on bad input."""
    from .metrics import check_pair, lpips_or_none, psnr, side_by_side, ssim
    from .video import check_output_path, read_video, write_video

    if not args.A or not args.B:
        print("videoaccel compare: give two videos, e.g. `videoaccel compare dense.mp4 fast.mp4`", file=sys.stderr)
        return USAGE_ERROR
    try:
        if args.side_by_side:
            check_output_path(args.side_by_side)
        if args.json:
            _check_json_path(args.json)
        a, b = read_video(args.A), read_video(args.B)
        check_pair(a, b)
    except (OSError, ValueError) as exc:
        print(f"videoaccel compare: {exc}", file=sys.stderr)
        return USAGE_ERROR

    p_per, p_mean = psnr(a, b)
    s_per, s_mean = ssim(a, b)
    lp, lp_msg = lpips_or_none(a, b)

    print(f"A: {args.A}\nB: {args.B}\n{a.shape[0]} frames, {a.shape[2]}x{a.shape[1]}")
    print(f"{'frame':>5}  {'PSNR(dB)':>9}  {'SSIM':>7}")
    for i, (p, s) in enumerate(zip(p_per, s_per)):
        print(f"{i:>5}  {_fmt(p, 2):>9}  {s:>7.4f}")
    print(f"{'mean':>5}  {_fmt(p_mean, 2):>9}  {s_mean:>7.4f}")
    print(lp_msg)

    try:
        if args.side_by_side:
            write_video(side_by_side(a, b, labels=("A", "B")), args.side_by_side)
            print(f"wrote side-by-side video to {args.side_by_side}")
        if args.json:
            _write_json({
                "a": args.A, "b": args.B, "frames": int(a.shape[0]),
                "height": int(a.shape[1]), "width": int(a.shape[2]),
                "per_frame": [{"frame": i, "psnr": _num(p), "ssim": s} for i, (p, s) in enumerate(zip(p_per, s_per))],
                "psnr_mean": _num(p_mean), "ssim_mean": s_mean,
                "lpips": lp, "lpips_message": lp_msg,
                "note": "psnr null = identical frames (infinite PSNR)",
            }, args.json)
            print(f"wrote metrics to {args.json}")
    except (OSError, ValueError) as exc:
        print(f"videoaccel compare: {exc}", file=sys.stderr)
        return 1
    return 0
