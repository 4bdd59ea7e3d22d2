"""The header every committed benchmark JSON carries (docs/bench-format.md), and its file-name device tag."""
from __future__ import annotations

import datetime
import os
import subprocess

import torch


def device_name() -> str:
    return torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"


def device_tag(device: str) -> str:
    """h100 / h200 / cpu / gpu: the <device> of bench/<suite>-<device>.json."""
    return "h100" if "H100" in device else "h200" if "H200" in device else "cpu" if device.startswith("cpu") else "gpu"


def header(suite: str, command: str, results: list) -> dict:
    import triton

    sha = os.environ.get("VIDEOACCEL_SHA") or subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                                              text=True).stdout.strip() or "unknown"
    return {"suite": suite, "device": device_name(), "torch": torch.__version__, "triton": triton.__version__,
            "videoaccel": sha, "command": command, "date": datetime.date.today().isoformat(), "results": results}
