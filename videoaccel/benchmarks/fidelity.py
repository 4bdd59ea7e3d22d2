"""`python -m videoaccel.benchmarks.fidelity`: fidelity of profiled vs preset attention plans on the embedded model (GPU; runs on CPU at small n).

One calibration run on training-grammar prompts, then profiles for several error budgets and target
densities chosen from it, then uncalibrated presets at matching densities, and the oracle (exact top-k
key blocks per call or per layer across its heads, profiling/oracle.py) at each target total density, with each
number of dense warm-up steps it may spend (the bound: its best row). Each plan generates the
held-out prompts (never-trained colour/shape/direction triples) with the same seeds as dense: PSNR and
SSIM against dense, achieved attention density (total: warm-up steps at 1.0), colour/direction
adherence, ``oracle_gap_db`` = PSNR minus the bound's at the same target total density,
``own_bound_gap_db`` = PSNR minus the oracle spending the profile's own allocation (``oracle_like``), the
transformer's time per generation eager / compiled / with CUDA graphs with ``speedup`` /
``speedup_compiled`` / ``speedup_graphs`` against dense in the same mode (benchmarks/generation_time.py), and the
routed attention's GPU kernel time relative to dense (``attention_cost``, eager, torch.profiler; the top kernels in
``attention_kernels``) beside the profile's ``expected_cost``.
Writes (bench-format.md)

    OUT/tiny-model-<dev>.json   dense adherence of the embedded model (issue: embedded model)
    OUT/fidelity-<dev>.json     one row per plan
    OUT/profile-<tag>.json      every profile it chose (profiles/tiny-t2v.json is one of them, renamed)

    VIDEOACCEL_SHA=$(git rev-parse --short HEAD) python -m videoaccel.benchmarks.fidelity --model assets/tiny-t2v --out $OUT
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

import numpy as np
import torch
from diffusers import WanPipeline

import videoaccel  # the public API, as a user calls it

from ..metrics import psnr, ssim
from ..plans import preset
from ..profiling import ProfileConfig, calibrate
from ..profiling.device_costs import device_costs
from ..profiling.oracle import oracle_like
from ..tiny import data, detect, evaluate
from ..tiny.model import DEFAULT_FRAMES, DEFAULT_HEIGHT, DEFAULT_WIDTH, TEXT_LEN
from ..values import video_size
from .calibration_time import calib_spec
from .fidelity_rows import compensation_flags, gaps, oracles, preset_density, uses
from .generation_time import MODES, attention_ms, transformer_ms
from .record import run_suite, suite_command, write_record


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m videoaccel.benchmarks.fidelity", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="assets/tiny-t2v")
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=50, help="held-out prompts for dense adherence")
    ap.add_argument("--fidelity-n", type=int, help="the first this many of them for the plan sweep (default: all)")
    ap.add_argument("--calib", type=int, default=8, help="calibration prompts (training grammar)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--budgets", default="0.03,0.06,0.1,0.15")
    ap.add_argument("--targets", default="0.25,0.15,0.1")
    ap.add_argument("--oracles", help="total densities of the oracle rows (default: --targets); '' for none")
    ap.add_argument("--presets", default="radial:0.25,radial:0.15,radial:0.1,diagonal:0.25")
    ap.add_argument("--block", type=int, default=64, help="the profiles' block (64: the embedded model's sequences are short)")
    ap.add_argument("--preset-block", type=int, default=128, help="block of the preset rows (128: the presets' own)")
    ap.add_argument("--oracle-block", type=int, help="block of the oracle the gap is measured against (default: --block, "
                    "the profiles' own grid)")
    ap.add_argument("--oracle-per-layer", action=argparse.BooleanOptionalAction, default=True,
                    help="the oracle picks the top blocks of all heads of a layer together (a budget per layer, as a "
                         "profile spends it), not a fixed density per head")
    ap.add_argument("--oracle-warmups", default="0,1,2", help="dense warm-up steps the oracle may spend; the bound at a "
                    "total density is its best row over these")
    ap.add_argument("--oracle-order", default="tile", choices=["frame", "tile"],
                    help="token order of the oracle's blocks (default: the profiles' and presets' own)")
    ap.add_argument("--oracle-compensate", default="0", help="comma-separated 0/1: oracle rows without and/or with "
                    "compensation of the skipped blocks (as profiles may spend it; its pooled keys counted in the density)")
    ap.add_argument("--oracle-like", default="0,1", help="comma-separated 0/1 ('' for none): each calibrated profile's own "
                    "bound, the per-layer oracle spending what it spends where it spends it (warm-up steps, each layer's "
                    "density per timestep bucket), without and/or with compensation (the bound is their best: compensation "
                    "lifts it ~1 dB at low density on the CPU geometry); field own_bound_gap_db")
    ap.add_argument("--oracle-like-per-head", action="store_true", help="also each profile's per-head oracle: its heads' "
                    "own densities on their exact top blocks (what its plans keep with a perfect estimate)")
    ap.add_argument("--no-probe", action="store_true", help="profiles without the step-sensitivity probe")
    ap.add_argument("--calib-geometry", help="FRAMESxHEIGHTxWIDTH (pixels): also calibrate the --targets there and run "
                    "those profiles at this run's size (what a profile loses at a size it was not calibrated for)")
    ap.add_argument("--fast-calib", default="", help="K:E[:noprobe|:probeFxHxW],...: also calibrate on the first K calibration "
                    "prompts scoring one step in E (without the probe, or probing at FxHxW pixels), and run its target profiles "
                    "(what cheaper profiling costs)")
    ap.add_argument("--patterns", help="comma-separated candidate patterns (default: the profiler's; on a CPU the static "
                    "ones: the sampled estimate costs more time there than it saves)")
    ap.add_argument("--score-every", type=int, default=1, help="the main calibration scores one step in this many")
    ap.add_argument("--estimate-rows", type=int, help="sampled rows per block of the profiles' per-call estimate (default "
                    "block / 16)")
    ap.add_argument("--estimate-every", type=int, help="steps one estimate serves in the profiles (default 2)")
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--time-n", type=int, default=3, help="prompts per timing mode (the first warms up; 0: no timing)")
    ap.add_argument("--time-modes", default=",".join(MODES), help="transformer time per generation in these modes")
    ap.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help="the embedded model's geometry by default "
                    "(WanPipeline's own defaults, 81 x 480 x 832, are far outside what it was trained on)")
    ap.add_argument("--height", type=int, default=DEFAULT_HEIGHT)
    ap.add_argument("--width", type=int, default=DEFAULT_WIDTH)
    args = ap.parse_args(argv)
    calib_size = video_size(args.calib_geometry, "--calib-geometry") if args.calib_geometry else None  # before any work
    fasts = [calib_spec(x, "--fast-calib") for x in args.fast_calib.split(",") if x]
    compensate = compensation_flags(args.oracle_compensate, "--oracle-compensate")
    like_compensate = compensation_flags(args.oracle_like, "--oracle-like")
    os.makedirs(args.out, exist_ok=True)
    cuda = torch.cuda.is_available()
    torch.backends.cudnn.benchmark = True  # the VAE's conv3d: without it bf16 decoding is ~10x slower
    pipe = WanPipeline.from_pretrained(args.model, torch_dtype=torch.bfloat16 if cuda else torch.float32)
    pipe = pipe.to("cuda" if cuda else "cpu")
    pipe.set_progress_bar_config(disable=True)
    call = dict(num_inference_steps=args.steps, guidance_scale=5.0, max_sequence_length=TEXT_LEN, num_frames=args.frames,
                height=args.height, width=args.width)
    prompts, seeds, specs = evaluate.heldout(args.n)
    command = suite_command(__spec__.name, argv)

    dense, dense_s = evaluate.generate(pipe, prompts, seeds, args.batch, **call)
    adh = detect.score(dense, specs)
    print(f"dense: colour {adh['colour']:.2f} direction {adh['direction']:.2f} ({dense_s:.1f} s for {args.n})", flush=True)
    write_record("tiny-model", command, [{"case": f"heldout-{args.n}", "impl": "dense", "colour": adh["colour"],
                                          "direction": adh["direction"], "seconds": dense_s, "steps": args.steps,
                                          "guidance": 5.0, "prompts": prompts, "seeds": seeds, "detected": adh["detected"]}],
                 args.out)

    rng = np.random.default_rng(1234)
    calib = [data.prompt(data.sample_spec(rng, "train")) for _ in range(args.calib)]
    targets, budgets = [d for d in args.targets.split(",") if d], [b for b in args.budgets.split(",") if b]
    plans, calib_s, fast_runs, per_prompt, cost_table_s = [], None, {}, dense_s / args.n, None
    patterns = {"patterns": tuple(args.patterns.split(","))} if args.patterns else {}
    config = ProfileConfig(block=args.block, probe=not args.no_probe, score_every=args.score_every, estimate_rows=args.estimate_rows,
                           estimate_every=args.estimate_every, **patterns)
    if targets or budgets:  # no calibration when only oracles or presets are asked for
        t = time.perf_counter()
        device_costs(pipe.device)  # measured once per GPU and versions, then cached: not part of a profile's cost
        cost_table_s = time.perf_counter() - t
        t = time.perf_counter()
        cal = calibrate(pipe, calib, config, seed=1000, progress=False, **call)
        calib_s = time.perf_counter() - t
        print(f"profiling: {args.calib} calibration prompts and the probe in {calib_s:.1f} s = {calib_s / per_prompt:.2f} dense "
              f"generations of one prompt ({per_prompt:.1f} s each)", flush=True)
        plans = [(f"target-{d}", cal.profile(f"tiny-target-{d}", target_density=float(d))) for d in targets]
        for spec, (n_fast, every, probe, probe_size) in zip(args.fast_calib.split(","), fasts):
            t = time.perf_counter()
            quick = calibrate(pipe, calib[:n_fast], replace(config, score_every=every, probe=config.probe and probe,
                                                            probe_size=probe_size), seed=1000, progress=False, **call)
            fast_s = time.perf_counter() - t
            fast_runs[spec] = {"prompts": n_fast, "score_every": every, "probe": config.probe and probe, "probe_size": probe_size,
                               "seconds": fast_s, "dense_generations": fast_s / per_prompt}
            print(f"fast profiling ({spec}): {fast_s:.1f} s = {fast_s / per_prompt:.2f} dense generations", flush=True)
            plans += [(f"target-{d}-fast{spec}", quick.profile(f"tiny-target-{d}-fast{spec}", target_density=float(d)))
                      for d in targets]
        plans += [(f"budget-{b}", cal.profile(f"tiny-budget-{b}", error_budget=float(b))) for b in budgets]
        if args.calib_geometry:  # the same profiles calibrated at another size, run at this one (the router says so)
            f, h, w = calib_size
            other = calibrate(pipe, calib, config, seed=1000, progress=False, **{**call, "num_frames": f, "height": h, "width": w})
            plans += [(f"target-{d}-calib{args.calib_geometry}", other.profile(f"tiny-target-{d}-calib{args.calib_geometry}",
                                                                                          target_density=float(d)))
                      for d in targets]
    for tag, profile in plans:
        profile.save(os.path.join(args.out, f"profile-{tag.replace(':', '-')}.json"))  # no ':' in a file name
    plans = [row for tag, profile in plans for row in  # each profile right after its own bound: a run cut short keeps pairs
             [(f"oracle-like-{tag}{'' if layer else '-per-head'}{'-comp' if comp else ''}", oracle_like(profile, comp, layer))
              for comp in like_compensate for layer in (True, False)[:1 + args.oracle_like_per_head]]
             + [(tag, profile)]]
    plans += [(p, replace(preset(p), block=args.preset_block)) for p in args.presets.split(",") if p]
    plans = oracles(args, compensate) + plans

    k = args.fidelity_n or args.n
    prompts, seeds, specs, dense = prompts[:k], seeds[:k], specs[:k], dense[:k]
    adh = detect.score(dense, specs)
    rows = [{"case": f"heldout-{k}", "impl": "dense", "attn_density": 1.0, "psnr": None, "ssim": 1.0,
             "colour": adh["colour"], "direction": adh["direction"], "seconds": dense_s * k / args.n}]
    modes = [m for m in args.time_modes.split(",") if m] if cuda and args.time_n > 1 else []
    timing = lambda: {m: transformer_ms(pipe, prompts[:args.time_n], seeds[:args.time_n], m, **call) for m in modes}  # noqa: E731
    attn = (lambda: attention_ms(pipe, prompts[0], seeds[0], **call)) if modes else (lambda: (None, None))  # noqa: E731
    with videoaccel.accelerated(pipe, "dense"):  # the baseline through the same path (and the same graphs)
        base = timing()
        dense_attn, dense_kernels = attn()
    rows[0].update({f"ms_{m}": v for m, v in base.items()}, attention_ms=dense_attn, attention_kernels=dense_kernels)
    print("dense transformer ms per generation:", {m: round(v, 1) for m, v in base.items()}, flush=True)
    for tag, profile in plans:
        videoaccel.accelerate(pipe, profile)
        oracle = profile.meta.get("oracle", False)
        per_sample = oracle or uses(profile, "sampled")  # a batch shares one layout: masks from q/k are exact per sample only at batch 1
        videos, seconds = evaluate.generate(pipe, prompts, seeds, 1 if per_sample else args.batch, **call)
        rep = videoaccel.report(pipe)
        att, kernels = (None, None) if oracle else attn()  # warm: the row's generations built its tables
        ms = {} if oracle else timing()  # the oracle computes dense attention to choose its blocks: no speed to claim
        videoaccel.restore(pipe)
        p = [psnr(a, b)[1] for a, b in zip(videos, dense)]
        s = [ssim(a, b)[1] for a, b in zip(videos, dense)]
        a = detect.score(videos, specs)
        finite = [x for x in p if np.isfinite(x)]
        calibrated = profile.calibrated
        target = profile.meta.get("total_density") if oracle else profile.budget.get("target_density") if calibrated else preset_density(tag)
        row = {"case": f"heldout-{k}", "impl": f"videoaccel-{tag}", "profile": profile.name, "calibrated": calibrated,
               "oracle": oracle, "like": profile.meta.get("like"), "target_density": target, "attn_density": rep.mean_density,
               "expected_density": profile.budget.get("expected_density") if calibrated else None,
               "dense_steps": profile.dense_steps,
               "expected_error": profile.budget.get("expected_error") if calibrated else None,
               "psnr": float(np.mean(finite)) if finite else None, "psnr_min": float(min(finite)) if finite else None,
               "ssim": float(np.mean(s)), "ssim_min": float(min(s)), "colour": a["colour"], "direction": a["direction"],
               "seconds": seconds, "fallbacks": rep.fallbacks, **{f"ms_{m}": v for m, v in ms.items()},
               "expected_cost": profile.budget.get("expected_cost") if calibrated else None, "attention_ms": att,
               "attention_kernels": kernels,
               "attention_cost": att / dense_attn if att is not None and dense_attn else None,
               **{("speedup" if m == "eager" else f"speedup_{m}"): base[m] / v for m, v in ms.items()}}
        rows.append(row)
        gaps(rows)
        speed = " ".join(f"{k} {v:.2f}x" for k, v in row.items() if k.startswith("speedup"))
        if row["attention_cost"] is not None:
            speed += f" attention {row['attention_cost']:.3f} of dense (expected {row['expected_cost']})"
        print(f"{row['impl']:<28} density {row['attn_density']:.3f} PSNR {row['psnr']} gap {row.get('oracle_gap_db')} "
              f"own {row.get('own_bound_gap_db')} SSIM {row['ssim']:.4f} "
              f"colour {row['colour']:.2f} direction {row['direction']:.2f} {speed}", flush=True)
        write_record("fidelity", command, rows, args.out,
                     calibration={"prompts": calib, "seconds": calib_s, "dense_seconds_per_prompt": per_prompt,
                                  "dense_generations": calib_s / per_prompt if calib_s else None, "probe": not args.no_probe, "block": args.block,
                                  "score_every": args.score_every, "cost_table_seconds": cost_table_s,
                                  **({"fast": fast_runs} if fast_runs else {})})


if __name__ == "__main__":
    run_suite(main)
