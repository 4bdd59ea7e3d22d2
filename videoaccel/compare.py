"""`videoaccel compare A B`: how close an accelerated video is to its reference, frame by frame.

Prints PSNR/SSIM per frame and their means, plus LPIPS when it can be computed offline, and can
write a side-by-side video and a JSON report. Every input and output path is checked before any
work, so bad input exits with code 2 and writes nothing.

Prompt-set mode (``--prompts FILE``): run a model dense and accelerated with the same seeds over a
prompt set and report PSNR/SSIM vs dense, achieved attention density, speedup and, for prompts of
the embedded model's grammar, colour/direction adherence of both (compare_prompts).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

from . import cli_args
from .files import check_writable, write_json

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
    p.add_argument("--prompts", metavar="FILE", help="prompt-set mode: one prompt per line, dense vs accelerated")
    p.add_argument("--profile", default=None, help="prompt-set mode: profile file or preset to compare with dense "
                   "(default: as videoaccel generate)")
    p.add_argument("--model", help="prompt-set mode: diffusers directory (default: the embedded model)")
    p.add_argument("--steps", type=cli_args.positive_int,
                   help="prompt-set mode; this, --guidance and the geometry default to the model's videoaccel.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--height", type=cli_args.size)
    p.add_argument("--width", type=cli_args.size)
    p.add_argument("--frames", type=cli_args.positive_int)
    p.add_argument("--guidance", type=cli_args.non_negative)
    p.set_defaults(func=run_compare)
    return p


def _num(x: float) -> float | None:
    """JSON has no infinity: identical frames (PSNR inf) are written as null."""
    return None if not math.isfinite(x) else x


def _check_json_path(path: str) -> None:
    if os.path.isdir(path):
        raise OSError(f"cannot write JSON to {path}: it is a directory (give a file name)")
    check_writable(path)


def _fmt(x: float, digits: int) -> str:
    return "inf" if math.isinf(x) else f"{x:.{digits}f}"


def run_compare(args: argparse.Namespace) -> int:
    """Compare args.A with args.B; 0 on success, 2 (message on stderr, nothing written) on bad input."""
    from .metrics import check_pair, lpips_or_none, psnr, side_by_side, ssim
    from .video import check_output_path, read_video, write_video

    if getattr(args, "prompts", None):
        return compare_prompts(args)
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
            write_json({
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


def _expected(prompt: str) -> tuple[str | None, str | None]:
    """Colour and direction named in a prompt of the embedded model's grammar (None when absent)."""
    from .tiny.data import COLOURS, DIRECTIONS

    words = prompt.lower().split()
    colour = next((w for w in words if w in COLOURS), None)
    direction = next((w for w in words if w in DIRECTIONS), None)
    return colour, direction


def compare_prompts(args: argparse.Namespace) -> int:
    """Dense vs accelerated over a prompt set, same seeds; JSON report (``--json``, default compare.json)."""
    import time

    import videoaccel

    from . import session
    from .generate import _run
    from .metrics import psnr, ssim
    from .pipelines import check_profile
    from .plans import load_profile
    from .tiny.detect import detect

    out = args.json or "compare.json"
    try:
        _check_json_path(out)
    except (OSError, ValueError) as e:
        print(str(e), file=sys.stderr)
        return USAGE_ERROR
    prompts = session.read_prompts(args.prompts)
    try:
        model, embedded = session.resolve_model(args.model)
        call = session.call_kwargs(args, session.model_defaults(model))
        args.profile = args.profile or session.default_profile(model, embedded)
        profile = load_profile(args.profile)
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return USAGE_ERROR
    pipe = session.load_pipeline(model)
    profile = check_profile(pipe, profile)  # against the model, before any generation
    print(session.describe_call(pipe, call, model) + f"; {len(prompts)} prompts, dense and accelerated", flush=True)
    rows = []
    for i, prompt in enumerate(prompts):
        dense, t_dense = _run(pipe, prompt, call, args.seed + i)
        videoaccel.accelerate(pipe, profile)
        fast, t_fast = _run(pipe, prompt, call, args.seed + i)
        rep = videoaccel.report(pipe)
        videoaccel.restore(pipe)
        colour, direction = _expected(prompt)
        dd, df = detect(dense), detect(fast)
        rows.append({"prompt": prompt, "seed": args.seed + i, "psnr": _num(psnr(fast, dense)[1]), "ssim": ssim(fast, dense)[1],
                     "attn_density": rep.mean_density, "dense_s": t_dense,
                     "accelerated_s": t_fast, "expected": [colour, direction],
                     "dense_detected": [dd.colour, dd.direction], "accelerated_detected": [df.colour, df.direction]})
        r = rows[-1]
        print(f"{i + 1}/{len(prompts)} {prompt!r}: PSNR {_fmt(math.inf if r['psnr'] is None else r['psnr'], 2)} dB, "
              f"SSIM {r['ssim']:.4f}, attention density {r['attn_density']:.3f}, dense {t_dense:.1f} s, "
              f"accelerated {t_fast:.1f} s", flush=True)

    def acc(key, j):
        hits = [r[key][j] == r["expected"][j] for r in rows if r["expected"][j] is not None]
        return sum(hits) / len(hits) if hits else None

    finite = [r["psnr"] for r in rows if r["psnr"] is not None]
    summary = {"profile": args.profile, "model": model, "prompts": len(rows), "time": time.strftime("%Y-%m-%d %H:%M:%S"),
               "mean_psnr": sum(finite) / len(finite) if finite else None, "mean_ssim": sum(r["ssim"] for r in rows) / len(rows),
               "mean_attn_density": sum(r["attn_density"] for r in rows) / len(rows),
               "speedup": sum(r["dense_s"] for r in rows) / sum(r["accelerated_s"] for r in rows),
               "colour_dense": acc("dense_detected", 0), "colour_accelerated": acc("accelerated_detected", 0),
               "direction_dense": acc("dense_detected", 1), "direction_accelerated": acc("accelerated_detected", 1)}
    write_json({"summary": summary, "rows": rows}, out)
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in summary.items()}, indent=1))
    print(f"wrote {out}")
    return 0
