"""`generate --image PATH` / `--video PATH`: what image-to-video and video-to-video pipelines are conditioned on.

Read and checked before the model loads: the file decodes, and the pipeline class (from the model directory's
model_index.json) takes that input, or needs one that was not given. One-line ValueError naming the fix.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import diffusers
from PIL import Image, UnidentifiedImageError

from ..video import read_video
from . import session

FLAGS = {"image": "--image", "video": "--video"}


def _call_parameters(cls: str | None) -> dict[str, inspect.Parameter] | None:
    """The pipeline class's call parameters; None for a class this diffusers does not know (a hub id, a custom class)."""
    pipeline = getattr(diffusers, cls, None) if cls else None
    return None if pipeline is None else dict(inspect.signature(pipeline.__call__).parameters)


def _read_image(path: str) -> Any:
    if not Path(path).is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"cannot read image {path}: {e} (give a PNG or JPEG file)") from None


def _read_video(path: str) -> list:
    return [Image.fromarray(frame) for frame in read_video(path)]


def conditioning(model: str, image: str | None, video: str | None) -> dict[str, Any]:
    """The pipeline call's ``image`` / ``video`` arguments, read from the files given."""
    cls = session.pipeline_class(model)
    params = _call_parameters(cls)
    given = {"image": image, "video": video}
    out = {}
    for name, path in given.items():
        flag = FLAGS[name]
        if path is None:
            if params is not None and name in params and params[name].default is inspect.Parameter.empty:
                raise ValueError(f"{cls} needs {flag} PATH (the {name} it starts from)")
            continue
        if params is not None and name not in params:
            raise ValueError(f"{cls} takes no {name}: drop {flag} (it is for image-to-video and video-to-video pipelines)")
        out[name] = _read_image(path) if name == "image" else _read_video(path)
    return out
