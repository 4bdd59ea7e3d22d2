"""The `videoaccel` command line: one module per subcommand, each registering its own parser.

Every command that runs a model goes through session.py (model, call defaults, prompts, default
profile, one timed generation). A command module turns its parsed flags into typed arguments of its
own functions: no argparse namespace travels further.
"""
from __future__ import annotations

import argparse
import os
import sys

from . import bench, compare, generate, inspect, profile


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videoaccel", description="Faster video diffusion transformers.")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (bench, inspect, generate, compare, profile):
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command; a known error (bad value, unreadable or unwritable file) is one line on stderr and exit code 2."""
    # Idle OpenMP threads sleep instead of spinning: on a shared CPU spinning threads take the cores from the
    # working ones (measured: sparse attention 3.5x slower with 2 spinning threads under load). Before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as e:
        message = str(e)
    except SystemExit as e:
        if not isinstance(e.code, str):
            raise
        message = e.code
    print(f"videoaccel {args.command}: {' '.join(message.split())}", file=sys.stderr)
    return 2
