"""The call defaults a saved tiny model carries (``videoaccel.json`` beside ``model_index.json``; read by videoaccel.session)."""
from __future__ import annotations

import json
from pathlib import Path

from ..session import CALL_DEFAULTS


def write_call_defaults(model_dir: str | Path, *, frames: int, height: int, width: int, steps: int = 20, guidance: float = 5.0,
                        max_sequence_length: int = 16, negative_prompt: str = "", fps: int = 8) -> Path:
    """Write the geometry the model was trained at and how it is meant to be called, so every command and any
    name of the directory give the same defaults."""
    path = Path(model_dir) / CALL_DEFAULTS
    path.write_text(json.dumps({"frames": frames, "height": height, "width": width, "steps": steps, "guidance": guidance,
                                "max_sequence_length": max_sequence_length, "negative_prompt": negative_prompt, "fps": fps},
                               indent=1) + "\n")
    return path
