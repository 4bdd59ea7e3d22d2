"""Resumable calibration: the profiler's running sums saved after every prompt as safetensors.

Tensors go in the safetensors body and everything else (settings key, progress, geometry) in its
JSON metadata, so reading a checkpoint never runs code: a file that is not one is refused.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import TYPE_CHECKING

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..files import atomic_path
from ..patterns import VideoGeometry

if TYPE_CHECKING:
    from .profiler import Profiler

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


def save_checkpoint(path: str, prof: Profiler, done: int, key: dict) -> None:
    cal = prof.cal
    tensors = {f"err.{layer}.{b}": t for (layer, b), t in cal.err.items()}
    tensors.update({f"step_err.{s}.{i}": t for s, ts in cal.step_err.items() for i, (_, t) in enumerate(ts)})
    tensors["rng"] = prof._gen.get_state()
    g = prof.geometry
    meta = {"key": key, "done": done, "count": [[layer, b, n] for (layer, b), n in cal.count.items()],
            "steps": {str(s): [layer for layer, _ in ts] for s, ts in cal.step_err.items()}, "heads": prof.heads,
            "geometry": None if g is None else asdict(g)}
    with atomic_path(path) as tmp:
        save_file({k: t.contiguous() for k, t in tensors.items()}, tmp, metadata={FORMAT: json.dumps(meta)})


def load_checkpoint(path: str | None, prof: Profiler, key: dict) -> int:
    """Prompts already calibrated by an interrupted run with the same settings (0 if none)."""
    meta = check_checkpoint(path)
    if meta is None:
        return 0
    if meta.get("key") != key:
        raise ValueError(f"checkpoint {path} was written with other settings or prompts: delete it to start over")
    t = load_file(path)
    cal = prof.cal
    for layer, b, n in meta["count"]:
        cal.err[(layer, b)] = t[f"err.{layer}.{b}"]
        cal.count[(layer, b)] = n
    for s, layers in meta["steps"].items():  # per step: (layer, errors) of every call
        cal.step_err[int(s)] = [(layer, t[f"step_err.{s}.{i}"]) for i, layer in enumerate(layers)]
    prof._gen.set_state(t["rng"])
    g = None if meta["geometry"] is None else VideoGeometry(**meta["geometry"])
    prof.geometry, prof.heads = g, meta["heads"]
    if g is not None:
        prof._candidates(g)
    return int(meta["done"])
