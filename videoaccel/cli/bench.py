"""`videoaccel bench`: check the kernels on this machine (--self-check), time full-size models (e2e) or
write the profiler's cost table (cost-table)."""
from __future__ import annotations

import argparse
import os
import shlex
import sys

from . import args

SUITES = {"e2e": "one denoising step of full-size models (GPU)",
          "cost-table": "kernel time per pattern, density, precision, head dim and block on this GPU, for the profiler",
          "stack": "whole denoising loops per acceleration stack (cache, sparse, fp8, compile)"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="check and time the kernels on this machine")
    bench.add_argument("suite", nargs="?", choices=list(SUITES), help="; ".join(f"{k}: {v}" for k, v in SUITES.items()))
    bench.add_argument("--geometry", default="21x30x52", help="cost-table: latent grid TxHxW (default Wan2.1 480p 81 frames)")
    bench.add_argument("--heads", type=int, default=12, help="cost-table: heads per call")
    bench.add_argument("--self-check", action="store_true", help="check every kernel against the reference on small shapes")
    bench.add_argument("--models", nargs="*", default=["wan1.3b-480p81f", "cogvideox5b-480p49f", "wan14b-720p81f"],
                       help="e2e cases (also hunyuan-720p129f)")
    bench.add_argument("--out", default=os.environ.get("OUT", "."), help="directory for the bench JSON")
    bench.add_argument("--no-fp8-linear", action="store_true", help="skip the torchao FP8 linear settings")
    bench.add_argument("--compile", action="store_true", help="e2e: also time each setting under regional torch.compile")
    bench.add_argument("--cudagraphs", action="store_true", help="e2e with --compile: also CUDA graphs (mode reduce-overhead)")
    bench.add_argument("--presets", nargs="*", default=["radial:0.25", "radial:0.1", "radial:0.1+fp8"],
                       help="videoaccel presets to time in e2e")
    bench.add_argument("--profile", help="e2e: also a calibrated profile FILE mapped onto each model, per timestep bucket "
                       "and for a whole generation (benchmarks/profile_map.py)")
    _add_stack_flags(bench)  # stack: whole denoising loops per acceleration stack (benchmarks/stack.py)
    bench.set_defaults(func=lambda a: bench_stack(a) if a.suite == "stack" else bench_command(
        a.suite, a.self_check, a.out, geometry=a.geometry, heads=a.heads, models=a.models, presets=tuple(a.presets),
        fp8_linear=not a.no_fp8_linear, compile=a.compile, cudagraphs=a.cudagraphs, profile=a.profile))


def _add_stack_flags(bench: argparse.ArgumentParser) -> None:
    """The stack suite's flags on the `videoaccel bench` parser."""
    from ..benchmarks.stack_spec import STACKS

    bench.add_argument("--steps", type=args.positive_int, default=50, help="stack: denoising steps of each timed loop")
    bench.add_argument("--dense-steps", type=args.positive_int, default=None,
                       help="stack: time the dense baseline over this many steps and scale to --steps (dense does the same "
                            "work every step); default: all of them")
    bench.add_argument("--cache", type=args.cache, default="taylorseer-lite:2",
                       help="stack: the step cache of the cache stacks (a fixed-schedule one: random weights)")
    bench.add_argument("--preset", default="radial:0.1", help="stack: the sparse preset (+fp8 is added by the fp8 stacks)")
    bench.add_argument("--stacks", nargs="*", default=list(STACKS), help=f"stack: rows to time ({', '.join(STACKS)})")
    bench.add_argument("--tiny", action="store_true", help="stack: a tiny Wan on this machine's device (smoke test)")
    bench.add_argument("--fidelity", type=args.positive_int, default=None, metavar="N",
                       help="stack: instead, each stack's PSNR/SSIM vs dense and adherence on N held-out prompts of the "
                            "embedded testbed model (its real weights; use --steps 20)")


def bench_stack(a: argparse.Namespace) -> int:
    """`videoaccel bench stack`: the flags as plain values (benchmarks/stack.py)."""
    from ..benchmarks.stack import main
    from ..benchmarks.stack_spec import StackArgs

    return main(StackArgs(models=list(a.models), out=a.out, steps=a.steps, dense_steps=a.dense_steps, cache=a.cache,
                          preset=a.preset, stacks=list(a.stacks), tiny=a.tiny, fidelity=a.fidelity))


def prepare_triton() -> str:
    """Pick the device; without a GPU the Triton kernels run in the interpreter (set before import)."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    os.environ.setdefault("TRITON_INTERPRET", "1")
    return "cpu"


def bench_command(suite: str | None, self_check: bool, out: str, *, geometry: str, heads: int, models: list[str],
                  presets: tuple[str, ...], fp8_linear: bool, compile: bool, cudagraphs: bool, profile: str | None = None) -> int:
    command = "videoaccel " + shlex.join(sys.argv[1:])
    if suite == "cost-table":
        from ..benchmarks.cost_table import run as run_costs

        try:
            path = run_costs(out, command, geometry=geometry, heads=heads)
        except ValueError as e:
            raise SystemExit(str(e)) from None
        print(f"wrote {path} (give it to `videoaccel profile --cost-table`)")
        return 0
    if suite == "e2e":
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("videoaccel bench e2e needs a CUDA GPU (full-size models); on CPU run `videoaccel bench --self-check`")
        from ..benchmarks.e2e import E2E_CASES, run

        unknown = [m for m in models if m not in E2E_CASES]
        if unknown:
            raise SystemExit(f"unknown models {unknown}; choose from {', '.join(E2E_CASES)}")
        run(models, out, presets, fp8_linear=fp8_linear, compile=compile, cudagraphs=cudagraphs, profile=profile)
        return 0
    if not self_check:
        print(f"videoaccel bench: give a suite ({', '.join(SUITES)}) or --self-check (kernels against the reference on "
              "this machine)", file=sys.stderr)
        return 2
    device = prepare_triton()
    from ..selfcheck import format_table, run_self_check

    rows = run_self_check(device)
    print(f"videoaccel self-check on {device}" + (" (Triton interpreter)" if device == "cpu" else ""))
    print(format_table(rows))
    failed = [r for r in rows if not r.ok]
    print(f"{len(rows) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0
