"""The header every committed benchmark JSON carries (docs/bench-format.md), its file-name device tag,
the one writer every suite uses, and the entry point of every suite run as ``python -m
videoaccel.benchmarks.<suite>`` (``run_suite``: the command it records, bad input as one line)."""
from __future__ import annotations

import datetime
import os
import shlex
import subprocess
import sys
from typing import Callable, NoReturn

import torch
import triton

from ..files import write_json


def device_name() -> str:
    return torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"


def device_tag(device: str) -> str:
    """h100 / h200 / cpu / gpu: the <device> of bench/<suite>-<device>.json."""
    return "h100" if "H100" in device else "h200" if "H200" in device else "cpu" if device.startswith("cpu") else "gpu"


def header(suite: str, command: str, results: list, device: str | None = None) -> dict:
    sha = os.environ.get("VIDEOACCEL_SHA") or subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                                              text=True).stdout.strip() or "unknown"
    return {"suite": suite, "device": device or device_name(), "torch": torch.__version__, "triton": triton.__version__,
            "videoaccel": sha, "command": command, "date": datetime.date.today().isoformat(), "results": results}


def write_record(suite: str, command: str, results: list, out_dir: str, *, name: str | None = None,
                 device: str | None = None, **extra) -> str:
    """``out_dir/<name or suite>-<device tag>.json`` in the bench format (``extra``: top-level fields after the
    header); returns the path."""
    doc = {**header(suite, command, results, device), **extra}
    path = os.path.join(out_dir, f"{name or suite}-{device_tag(doc['device'])}.json")
    os.makedirs(out_dir, exist_ok=True)
    write_json(doc, path, indent=1, allow_nan=True)  # as before: a row may hold NaN (e.g. no dense reference)
    return path


def suite_command(module: str, argv: list[str] | None = None) -> str:
    """The ``command`` a suite records: ``python -m <module> ARGS`` (``argv``: this process's arguments)."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python", "-m", module, *([shlex.join(args)] if args else [])])


def run_suite(main: Callable[[list[str] | None], int | None]) -> NoReturn:
    """``python -m videoaccel.benchmarks.<suite>``: exit with ``main()``'s code; a ValueError (bad input, its fix
    named) or an OSError (an output that cannot be written) is one line on stderr and exit code 2, as on the
    `videoaccel` command line."""
    try:
        code = main(None)
    except (ValueError, OSError) as e:
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        print(f"{spec.name if spec else os.path.basename(sys.argv[0])}: {' '.join(str(e).split())}", file=sys.stderr)
        code = 2
    sys.exit(code or 0)
