"""Resumable calibration: the calibration state (calibration.py) saved after every prompt as safetensors.

Tensors go in the safetensors body and everything else (settings key, progress, geometry) in its
JSON metadata, so reading a checkpoint never runs code: a file that is not one is refused.
"""
from __future__ import annotations

import json
import os

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..files import atomic_path
from .calibration import Calibration

FORMAT = "videoaccel-calibration-1"


def check_checkpoint(path: str | None) -> dict | None:
    """The metadata of the checkpoint at ``path`` (None when there is none); ValueError when the file
    is not a videoaccel checkpoint (e.g. an old pickle): nothing in it is executed."""
    if not path or not os.path.exists(path):
        return None
    try:
        with safe_open(path, "pt") as f:
            meta = json.loads((f.metadata() or {}).get(FORMAT, "null"))
    except (SafetensorError, OSError, ValueError) as e:
        meta, why = None, f" ({str(e).splitlines()[0][:120]})"
    else:
        why = ""
    if not isinstance(meta, dict):
        raise ValueError(f"{path} is not a videoaccel calibration checkpoint{why}: it was not read; delete it "
                         "(or choose another -o) to start the calibration over")
    return meta


class Checkpoint:
    """The checkpoint file of one calibration (``path`` None: none), for settings and prompts ``key``: a run
    resumes from it only when its key is the same."""

    def __init__(self, path: str | None, key: dict):
        self.path, self.key = path, key

    def resume(self, calibration: Calibration) -> int:
        """Load the state an interrupted run saved into ``calibration``; the prompts it had finished (0 if none)."""
        meta = check_checkpoint(self.path)
        if meta is None:
            return 0
        if meta.get("key") != self.key:
            raise ValueError(f"checkpoint {self.path} was written with other settings or prompts: delete it to start over")
        calibration.load_state(load_file(self.path), meta)
        return int(meta["done"])

    def save(self, calibration: Calibration, done: int) -> None:
        """The state after ``done`` prompts, written atomically (nothing without a path)."""
        if not self.path:
            return
        tensors, state = calibration.state()
        meta = {"key": self.key, "done": done, **state}
        with atomic_path(self.path) as tmp:
            save_file({k: t.contiguous() for k, t in tensors.items()}, tmp, metadata={FORMAT: json.dumps(meta)})
