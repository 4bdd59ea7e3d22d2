"""The `videoaccel` command line."""
from __future__ import annotations

import argparse
import os
import sys


def _prepare_triton() -> str:
    """Pick the device; without a GPU the Triton kernels run in the interpreter (set before import)."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    os.environ.setdefault("TRITON_INTERPRET", "1")
    return "cpu"


def _cmd_bench(args: argparse.Namespace) -> int:
    if not args.self_check:
        print("videoaccel bench: nothing to run; use --self-check (GPU suites: scripts/gpu_check.py)", file=sys.stderr)
        return 2
    device = _prepare_triton()
    from .selfcheck import format_table, run_self_check

    rows = run_self_check(device)
    print(f"videoaccel self-check on {device}" + (" (Triton interpreter)" if device == "cpu" else ""))
    print(format_table(rows))
    failed = [r for r in rows if not r.ok]
    print(f"{len(rows) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videoaccel", description="Faster video diffusion transformers.")
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser("bench", help="check and time the kernels on this machine")
    bench.add_argument("--self-check", action="store_true", help="check every kernel against the reference on small shapes")
    bench.set_defaults(func=_cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
