"""A model's call defaults: ``videoaccel.json`` beside ``model_index.json``.

Why in the model directory: the script that saves a model writes how it is meant to be called (the
geometry it was trained at, steps, guidance), so every command and any name of the directory give
the same defaults. Flags override them (cli/session.py).
"""
from __future__ import annotations

import json
from pathlib import Path

from .files import read_text, write_text

CALL_DEFAULTS = "videoaccel.json"
# key -> (pipeline argument or None, type, CLI flag)
KEYS: dict[str, tuple[str | None, type, str | None]] = {
    "frames": ("num_frames", int, "frames"), "height": ("height", int, "height"), "width": ("width", int, "width"),
    "steps": ("num_inference_steps", int, "steps"), "guidance": ("guidance_scale", float, "guidance"),
    "max_sequence_length": ("max_sequence_length", int, None), "negative_prompt": ("negative_prompt", str, None),
    "fps": (None, int, "fps")}


def model_defaults(model: str) -> dict:
    """The model directory's videoaccel.json ({} when it has none, e.g. a hub id); ValueError naming a bad entry."""
    path = Path(model) / CALL_DEFAULTS
    if not path.is_file():
        return {}
    try:
        data = json.loads(read_text(path, "call defaults", "a JSON object such as {\"steps\": 20}"))
    except json.JSONDecodeError as e:
        raise ValueError(f"cannot read call defaults {path}: it is not JSON ({e}); fix or remove it") from None
    unknown = set(data) - set(KEYS) if isinstance(data, dict) else {"(not an object)"}
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; allowed: {', '.join(KEYS)}")
    for key, val in data.items():
        typ = KEYS[key][1]
        if not isinstance(val, typ) and not (typ is float and isinstance(val, int)) or isinstance(val, bool):
            raise ValueError(f"{path}: {key} must be {typ.__name__}, got {val!r}")
    return data


def write_call_defaults(model_dir: str | Path, *, frames: int, height: int, width: int, steps: int = 20, guidance: float = 5.0,
                        max_sequence_length: int = 16, negative_prompt: str = "", fps: int = 8) -> Path:
    """Write the geometry the model was trained at and how it is meant to be called."""
    path = Path(model_dir) / CALL_DEFAULTS
    write_text(path, json.dumps({"frames": frames, "height": height, "width": width, "steps": steps, "guidance": guidance,
                                "max_sequence_length": max_sequence_length, "negative_prompt": negative_prompt, "fps": fps},
                               indent=1) + "\n")
    return path
