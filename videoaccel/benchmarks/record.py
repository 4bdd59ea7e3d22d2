"""The header every committed benchmark JSON carries (docs/bench-format.md), its file-name device tag,
and the one writer every suite uses."""
from __future__ import annotations

import datetime
import os
import subprocess

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
