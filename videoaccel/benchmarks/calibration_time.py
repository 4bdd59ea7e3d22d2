"""`python -m videoaccel.benchmarks.calibration_time`: what profiling costs at a full size, in dense generations (GPU).

Why: on the embedded model a calibration is counted against its own short dense generations; the unit that
matters is a real model's. A ``WanPipeline`` with the embedded model's tokenizer, text encoder and VAE around
a Wan2.1-1.3B transformer (its published config, random weights, bf16; only the text and latent channel
counts follow the small encoder and VAE) at 81 x 480 x 832 (32760 tokens): one dense generation to latents
(after a warm-up), then ``calibrate`` once per asked configuration (prompts : score-every [: noprobe]), each
timed. Timing only: random weights make no video worth a fidelity figure. Writes OUT/calibration-time-<dev>.json.
"""
from __future__ import annotations

import argparse
import time

import torch
from diffusers import WanPipeline

from ..profiling import ProfileConfig, calibrate
from ..profiling.device_costs import device_costs
from ..profiling.probe import latent_run
from ..tiny.model import Z_DIM, components
from ..values import video_size
from .cases import CASES
from .e2e import build_case
from .record import run_suite, suite_command, write_record


def pipeline(case: str) -> WanPipeline:
    """The embedded model's pipeline parts around ``case``'s transformer (random weights)."""
    c = CASES[case]
    parts = components()
    c = type(c)(c.name, c.model, {**c.config, "in_channels": Z_DIM, "out_channels": Z_DIM, "text_dim": 128}, c.latent)
    parts["transformer"] = build_case(c)[0]
    pipe = WanPipeline(**parts)
    pipe.text_encoder.to("cuda", torch.bfloat16)
    pipe.vae.to("cuda", torch.bfloat16)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def calib_spec(text: str, flag: str = "--configs") -> tuple[int, int, bool, str | None]:
    """A calibration configuration PROMPTS:SCORE_EVERY[:noprobe|:probeFxHxW] -> (prompts, score_every, probe,
    probe_size), checked before any work (probeFxHxW: the probe at that size in pixels, ProfileConfig.probe_size)."""
    parts = text.split(":")
    tail = parts[2] if len(parts) == 3 else ""
    size = tail[len("probe"):] if tail.startswith("probe") else None
    ok = len(parts) in (2, 3) and all(p.isdigit() and int(p) > 0 for p in parts[:2]) and (tail in ("", "noprobe") or size)
    if ok and size:
        try:
            video_size(size)
        except ValueError:
            ok = False
    if not ok:
        raise ValueError(f"{flag} {text!r} must be PROMPTS:SCORE_EVERY[:noprobe|:probeFxHxW] (whole numbers >= 1), "
                         "e.g. 1:4:noprobe or 1:4:probe17x128x224")
    return int(parts[0]), int(parts[1]), tail != "noprobe", size


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m videoaccel.benchmarks.calibration_time", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--case", default="wan1.3b-480p81f")
    ap.add_argument("--steps", type=int, default=10, help="denoising steps of every run (the ratio is per generation)")
    ap.add_argument("--configs", default="1:4:noprobe,1:4", help="comma-separated PROMPTS:SCORE_EVERY[:noprobe|:probeFxHxW]")
    ap.add_argument("--block", type=int, default=128)
    args = ap.parse_args(argv)
    configs = [(c, calib_spec(c)) for c in args.configs.split(",")]  # checked before any work
    pipe = pipeline(args.case)
    f, h, w = CASES[args.case].latent
    call = dict(num_inference_steps=args.steps, guidance_scale=5.0, num_frames=(f - 1) * 4 + 1, height=h * 8, width=w * 8)
    prompts = ["a red circle slowly moving left", "a blue square quickly bouncing up", "a green triangle moving right"]
    device_costs(pipe.device)  # the cost table: measured once per GPU and versions, then cached (not a profile's cost)
    latent_run(pipe, prompts[0], 0, None, {**call, "num_inference_steps": 2})  # warm-up: kernels, cuDNN, allocator
    torch.cuda.synchronize()
    t = time.perf_counter()
    latent_run(pipe, prompts[0], 0, None, call)
    torch.cuda.synchronize()
    dense_s = time.perf_counter() - t
    print(f"dense generation ({args.steps} steps): {dense_s:.1f} s", flush=True)
    rows = [{"case": args.case, "impl": "dense", "seconds": dense_s, "steps": args.steps}]
    for label, (n, every, probe, probe_size) in configs:
        config = ProfileConfig(block=args.block, score_every=every, probe=probe, probe_size=probe_size, target_density=0.25)
        t = time.perf_counter()
        calibrate(pipe, prompts[:n], config, seed=0, progress=False, **call)
        torch.cuda.synchronize()
        s = time.perf_counter() - t
        rows.append({"case": args.case, "impl": f"calibrate-{label}", "prompts": n, "score_every": every, "probe": probe,
                     "probe_size": probe_size, "seconds": s, "dense_generations": s / dense_s, "steps": args.steps})
        print(f"calibrate {label}: {s:.1f} s = {s / dense_s:.2f} dense generations", flush=True)
    write_record("calibration-time", suite_command(__spec__.name, argv), rows, args.out)


if __name__ == "__main__":
    run_suite(main)
