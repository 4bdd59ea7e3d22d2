"""`python -m videoaccel.benchmarks.multigpu`: Wan2.1-14B 720p 81f (random weights), one denoising step on 1, 2, 4, 8 GPUs
(as many as present), dense cuDNN vs videoaccel plans under Ulysses context parallelism
(diffusers' engine), plus the N-GPU output against the 1-GPU output. Writes bench-format JSON
`multigpu-<device>.json` to $OUT.

    python -m videoaccel.benchmarks.multigpu                 # every GPU count up to the machine's
    python -m videoaccel.benchmarks.multigpu --max-gpus 1    # the single-GPU part only

Each GPU count runs as `torchrun --nproc-per-node N -m videoaccel.benchmarks.multigpu --worker ...`.
Keep NVLink multicast off (NCCL_NVLS_ENABLE=0), as the lending machines require.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch
import torch.distributed as dist
from diffusers import ContextParallelConfig
from safetensors.torch import load_file, save_file
from torch.nn.attention import SDPBackend, sdpa_kernel

import videoaccel  # the public API, as a user calls it

from ..files import write_json
from .e2e import build
from .record import run_suite, suite_command, write_record
from .timing import median_ms

CASE = "wan14b-720p81f"
SETTINGS = ("cudnn", "radial:0.1", "radial:0.1+fp8")


def worker(args) -> None:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if world > 1:
        dist.init_process_group("nccl")
    model, kw = build(CASE)
    if world > 1:
        model.enable_parallelism(config=ContextParallelConfig(ulysses_degree=world))
    rows = []
    for name in args.settings:
        if name != "cudnn":
            videoaccel.accelerate(model, name)
        with torch.no_grad(), sdpa_kernel([SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION]):
            last = {"out": model(**kw)[0]}  # warm-up
            ms = median_ms(lambda: last.update(out=model(**kw)[0]), args.repeats, warmup=False,
                           before=dist.barrier if world > 1 else None)
            out = last["out"]
        row = {"case": CASE, "gpus": world, "impl": "cudnn" if name == "cudnn" else f"videoaccel-{name}", "ms": ms}
        if name != "cudnn":
            rep = videoaccel.report(model)
            row.update(attn_density=round(rep.mean_density, 4), fallbacks=rep.fallbacks)
            videoaccel.restore(model)
        ref_path = os.path.join(args.tmp, f"out-{name.replace(':', '_').replace('+', '_')}-1gpu.safetensors")
        if rank == 0:
            if world == 1:
                save_file({"out": out.cpu().contiguous()}, ref_path)
            elif os.path.exists(ref_path):
                ref = load_file(ref_path)["out"].to(out.device).float()
                row["rel_err_vs_1gpu"] = float((out.float() - ref).norm() / ref.norm())
            rows.append(row)
            print(json.dumps(row), flush=True)
    if rank == 0:
        write_json(rows, os.path.join(args.tmp, f"rows-{world}.json"), allow_nan=True)
    if world > 1:
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m videoaccel.benchmarks.multigpu")
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--max-gpus", type=int, default=8)
    ap.add_argument("--settings", nargs="*", default=list(SETTINGS))
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--tmp", default=None)
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    args = ap.parse_args(argv)
    if args.worker:
        worker(args)
        return
    tmp = args.tmp or tempfile.mkdtemp()
    counts = [n for n in (1, 2, 4, 8) if n <= min(args.max_gpus, torch.cuda.device_count())]
    env = dict(os.environ, NCCL_NVLS_ENABLE="0", TORCH_SYMM_MEM_DISABLE_MULTICAST="1", NVSHMEM_DISABLE_NVLS="1")
    rows = []
    for n in counts:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(n), "-m", __spec__.name, "--worker",
               "--tmp", tmp, "--repeats", str(args.repeats), "--settings", *args.settings]
        r = subprocess.run(cmd, env=env)
        path = os.path.join(tmp, f"rows-{n}.json")
        if r.returncode != 0 or not os.path.exists(path):
            rows.append({"case": CASE, "gpus": n, "error": f"torchrun exited {r.returncode}"})
            continue
        rows += json.load(open(path))
    one = {r["impl"]: r["ms"] for r in rows if r.get("gpus") == 1 and "ms" in r}
    for r in rows:
        if "ms" in r and r["impl"] in one:
            r["speedup_vs_same_plan_1gpu"] = one[r["impl"]] / r["ms"]
            if "cudnn" in one:
                r["speedup_vs_cudnn_1gpu"] = one["cudnn"] / r["ms"]
    write_record("multigpu", suite_command(__spec__.name, argv), rows, args.out,
                 device=f"{torch.cuda.device_count()} x {torch.cuda.get_device_name()}")
    for r in rows:
        print(r)


if __name__ == "__main__":
    run_suite(main)
