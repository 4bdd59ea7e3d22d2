"""The `videoaccel` command line: one module per subcommand, its flags in parsers.py.

Every command that runs a model goes through session.py (model, call defaults, prompts, default
profile) and loading.py (the pipeline, one timed generation). A command module turns its parsed flags
into typed arguments of its own functions (its ``run``): no argparse namespace travels further.
Parsing loads neither torch nor diffusers: a command's module is imported once its flags have parsed
(parsers.py).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import NoReturn

from tqdm.contrib.logging import logging_redirect_tqdm

from .parsers import COMMANDS


class Parser(argparse.ArgumentParser):
    """A bad flag or value is one line and exit code 2, like every other bad input (no usage block; --help has it)."""

    def error(self, message: str) -> NoReturn:
        hint = f" (see {self.prog} --help)" if message.startswith(("the following arguments", "unrecognized")) else ""
        self.exit(2, f"{self.prog}: {' '.join(message.split())}{hint}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="videoaccel", description="Faster video diffusion transformers.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def rank_tag() -> str:
    """`` (rank R of N)`` in a group of several processes (ranks.py), so that each rank's error line says whose it is."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return f" (rank {os.environ.get('RANK', '0')} of {world})" if world > 1 else ""


def main(argv: list[str] | None = None) -> int:
    """Run a command; a known error (bad value, unreadable or unwritable file) is one line on stderr and exit code 2."""
    # Idle OpenMP threads sleep instead of spinning: on a shared CPU spinning threads take the cores from the
    # working ones (measured: sparse attention 3.5x slower with 2 spinning threads under load). Before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the subcommand's parser, whose --help lists its flags
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sub.choices[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        with logging_redirect_tqdm([logging.getLogger("videoaccel")]):  # a notice above a running progress bar, not on its line
            return args.func(args)
    except (ValueError, OSError) as e:
        message = str(e)
    print(f"videoaccel {args.command}{rank_tag()}: {' '.join(message.split())}", file=sys.stderr)
    return 2
