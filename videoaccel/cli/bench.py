"""`videoaccel bench`: check the kernels on this machine (--self-check), time full-size models (e2e) or
write the profiler's cost table (cost-table), or time whole denoising loops per stack (stack).

A suite's module is imported when that suite runs: the kernels load with it, so that --self-check can
choose the Triton interpreter first (prepare_triton)."""
from __future__ import annotations

import argparse
import os
import shlex
import sys

import torch

from ..benchmarks.stack_spec import StackArgs


def run(a: argparse.Namespace) -> int:
    if a.suite == "stack":
        return bench_stack(a)
    return bench_command(a.suite, a.out, geometry=a.geometry, heads=a.heads, models=a.models,
                         presets=tuple(a.presets), fp8_linear=not a.no_fp8_linear, compile=a.compile,
                         cudagraphs=a.cudagraphs, profile=a.profile)


def bench_stack(a: argparse.Namespace) -> int:
    """`videoaccel bench stack`: the flags as plain values (benchmarks/stack.py)."""
    from ..benchmarks.stack import main

    return main(StackArgs(models=list(a.models), out=a.out, steps=a.steps, dense_steps=a.dense_steps, cache=a.cache,
                          preset=a.preset, stacks=list(a.stacks), tiny=a.tiny, fidelity=a.fidelity))


def prepare_triton() -> str:
    """Pick the device; without a GPU the Triton kernels run in the interpreter (set before import)."""
    if torch.cuda.is_available():
        return "cuda"
    os.environ.setdefault("TRITON_INTERPRET", "1")
    return "cpu"


def bench_command(suite: str | None, out: str, *, geometry: str, heads: int, models: list[str],
                  presets: tuple[str, ...], fp8_linear: bool, compile: bool, cudagraphs: bool, profile: str | None = None) -> int:
    command = "videoaccel " + shlex.join(sys.argv[1:])
    if suite == "cost-table":
        from ..benchmarks.cost_table import run as run_costs

        path = run_costs(out, command, geometry=geometry, heads=heads)
        print(f"wrote {path} (give it to `videoaccel profile --cost-table`)")
        return 0
    if suite == "e2e":
        if not torch.cuda.is_available():
            raise ValueError("e2e needs a CUDA GPU (full-size models); on CPU run `videoaccel bench --self-check`")
        from ..benchmarks.e2e import E2E_CASES, run

        unknown = [m for m in models if m not in E2E_CASES]
        if unknown:
            raise ValueError(f"unknown models {unknown}; choose from {', '.join(E2E_CASES)}")
        run(models, out, presets, fp8_linear=fp8_linear, compile=compile, cudagraphs=cudagraphs, profile_path=profile)
        return 0
    device = prepare_triton()  # no suite: --self-check (parsers.py refuses neither)
    from ..selfcheck import format_table, run_self_check  # the kernels load here, after the interpreter was chosen

    rows = run_self_check(device)
    print(f"videoaccel self-check on {device}" + (" (Triton interpreter)" if device == "cpu" else ""))
    print(format_table(rows))
    failed = [r for r in rows if not r.ok]
    print(f"{len(rows) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0
