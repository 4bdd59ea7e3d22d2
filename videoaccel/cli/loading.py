"""Loading and running the pipeline a command works on: safetensors weights only unless asked, a Wan geometry
checked before it loads, the note for a profile that cannot run as written, and one timed generation (what
comes before: session.py).
"""
from __future__ import annotations

import inspect
import time
import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch
from diffusers import DiffusionPipeline

from ..pipelines.models import spec_for, transformers_of, wan_latent_grid
from ..plan_checks import ProfileNotApplied, unapplied_note
from ..profile_schema import shown
from ..video import as_uint8_video
from .session import pipeline_class

try:  # where diffusers has it, from_pretrained resolves ``dtype=`` (dtype_kwarg)
    from diffusers.utils import deprecation_utils
except ImportError:
    deprecation_utils = None

if TYPE_CHECKING:
    from ..plans import Profile


def check_geometry(model: str, call: dict) -> None:
    """Wan's VAE takes 4k + 1 frames and sizes divisible by 16 (8x VAE, patch 2): say so before loading the model."""
    cls = pipeline_class(model)
    if cls in ("WanPipeline", "WanImageToVideoPipeline") and {"num_frames", "height", "width"} <= call.keys():
        wan_latent_grid(call["num_frames"], call["height"], call["width"])


def generate_video(pipe: DiffusionPipeline, prompt: str, call: dict, seed: int) -> tuple[np.ndarray, float]:
    """One video (uint8 [F, H, W, 3]) from a CPU generator seeded with ``seed``, and the seconds it took."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    t = time.perf_counter()
    frames = pipe(prompt=prompt, generator=g, output_type="np", **call).frames[0]  # by name: I2V pipelines take the image first
    return as_uint8_video(frames), time.perf_counter() - t


def load_pipeline(model: str, device: str | None = None, allow_pickle: bool = False) -> DiffusionPipeline:
    """A diffusers pipeline from a local directory or a hub id (the hub needs network access); bf16 on a GPU, float32 on a
    CPU. Safetensors weights only, unless ``allow_pickle`` (then diffusers may unpickle .bin files)."""
    cuda = torch.cuda.is_available()
    safe = {} if allow_pickle else {"use_safetensors": True}
    try:
        pipe = DiffusionPipeline.from_pretrained(model, **safe, **dtype_kwarg(torch.bfloat16 if cuda else torch.float32))
    except (OSError, ValueError) as e:
        why = " ".join(str(e).split()) if str(e) else type(e).__name__
        hint = ("; its weights are not safetensors: convert them, or pass --allow-pickle for files you trust"
                if not allow_pickle and "safetensors" in why else "")
        raise ValueError(f"cannot load a diffusers pipeline from {shown(model)}: give a local diffusers directory, or a hub id "
                         f"on a machine with network access ({why}){hint}") from None
    return pipe.to(device or ("cuda" if cuda else "cpu"))


def profile_note(pipe: DiffusionPipeline, profile: Profile, call: dict) -> str | None:
    """The one line for a profile that cannot run as written on this call (its warm-up covers every step, or every
    head is dense), before generating. The library's own warning of it is then off in this process: said once."""
    warnings.filterwarnings("ignore", category=ProfileNotApplied)
    param = inspect.signature(pipe).parameters.get("num_inference_steps")
    steps = call.get("num_inference_steps") or (param.default if param is not None else None)
    layers = max(len(spec_for(m).self_attention(m)) for _, m in transformers_of(pipe))
    note = unapplied_note(profile, layers, steps if isinstance(steps, int) else None)
    return None if note is None else f"warning: {note}"


def dtype_kwarg(dtype: torch.dtype) -> dict:
    """``from_pretrained``'s dtype argument: ``dtype=`` where diffusers resolves it (there ``torch_dtype`` warns that it
    is deprecated), ``torch_dtype=`` on older diffusers. Its signature is ``**kwargs``, so ask the module that resolves it."""
    return {"dtype": dtype} if hasattr(deprecation_utils, "_resolve_dtype") else {"torch_dtype": dtype}
