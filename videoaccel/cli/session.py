"""What every command that runs a model shares: the model, its call defaults, the default profile, the
prompts, the line that says which call is about to run, and one timed generation.

Call defaults belong to the model (call_defaults.py), so a model gives the same defaults however it is
named. Flags override them; what neither gives is the pipeline's own default (printed, so a 50-step
81-frame call on a CPU is visible before it starts).
"""
from __future__ import annotations

import inspect
import json
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from diffusers import DiffusionPipeline

from ..call_defaults import CALL_DEFAULTS, KEYS, model_defaults
from ..files import read_text
from ..pipelines.models import spec_for, transformers_of, wan_latent_grid
from ..plan_checks import ProfileNotApplied, unapplied_note
from ..profile_schema import shown, summarise
from ..prompt_check import read_prompts
from ..tiny import EMBEDDED, EMBEDDED_PROFILE
from ..video import as_uint8_video

try:  # where diffusers has it, from_pretrained resolves ``dtype=`` (dtype_kwarg)
    from diffusers.utils import deprecation_utils
except ImportError:
    deprecation_utils = None

if TYPE_CHECKING:
    from ..plans import Profile

PROFILE_NAME = "videoaccel_profile.json"  # a calibrated profile shipped inside a user's model directory
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")  # weights diffusers would load by unpickling
__all__ = ["EMBEDDED", "EMBEDDED_PROFILE", "call_kwargs", "check_geometry", "default_profile", "describe_call", "generate_video",
           "load_pipeline", "model_defaults", "read_prompts", "resolve_model"]


def resolve_model(model: str | None, allow_pickle: bool = False) -> tuple[str, bool]:
    """(path or hub id, is the embedded model); ValueError naming the fix when the embedded model is missing, or
    when a local directory's weights are pickle files only (unless ``allow_pickle``): before anything loads."""
    if model is None:
        if not EMBEDDED.exists():
            raise ValueError(f"the embedded model is not in this checkout ({EMBEDDED}): pass --model DIR")
        return str(EMBEDDED), True
    if not allow_pickle and (pickled := pickle_only_weights(model)):
        raise ValueError(f"{model} holds weights as pickle files only ({summarise(pickled)}): loading them would unpickle, "
                         "which can run code from the file. Convert them once, in a process you trust: python -c \"from "
                         f"diffusers import DiffusionPipeline as P; P.from_pretrained('{model}').save_pretrained('{model}-safetensors')\" "
                         "and pass that directory; or, for files you trust, --allow-pickle (generate, profile)")
    return model, Path(model).resolve() == EMBEDDED.resolve()


def pickle_only_weights(model: str) -> list[str]:
    """Weight files of a local diffusers directory (its root and component folders) that are pickles with no
    .safetensors beside them; [] for a hub id."""
    root = Path(model)
    if not root.is_dir():
        return []
    found = []
    for folder in [root] + sorted(p for p in root.iterdir() if p.is_dir()):
        names = [p.name for p in folder.iterdir() if p.is_file()]
        if not any(n.endswith(".safetensors") for n in names):
            found += [str((folder / n).relative_to(root)) for n in sorted(names) if n.endswith(PICKLE_SUFFIXES)]
    return found


def call_kwargs(flags: Mapping[str, Any], defaults: dict) -> dict:
    """Pipeline call arguments: a flag given on the command line (``flags``: name -> value, None when not
    given), else the model's default, else left out."""
    call = {}
    for key, (arg, _, flag) in KEYS.items():
        val = flags.get(flag) if flag else None
        val = defaults.get(key) if val is None else val
        if arg is not None and val is not None:
            call[arg] = val
    return call


def pipeline_class(model: str) -> str | None:
    """The pipeline class of a local diffusers directory (its model_index.json), read before loading; None for a hub id."""
    index = Path(model) / "model_index.json"
    if not index.is_file():
        return None
    try:
        data = json.loads(read_text(index, "model index", "the model_index.json diffusers saved"))
    except json.JSONDecodeError as e:
        raise ValueError(f"cannot read model index {index}: it is not JSON ({e}); the model directory is damaged") from None
    return data.get("_class_name") if isinstance(data, dict) else None


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


def default_profile(model: str, embedded: bool) -> str:
    """The embedded model's calibrated profile, a model directory's own videoaccel_profile.json, else radial."""
    if embedded and EMBEDDED_PROFILE.exists():
        return str(EMBEDDED_PROFILE)
    own = Path(model) / PROFILE_NAME
    return str(own) if own.exists() else "radial"


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


def describe_call(pipe: DiffusionPipeline, call: dict, model: str) -> str:
    """One line: frames, size, video tokens, steps, guidance, text tokens; what the call leaves out is the pipeline's default."""
    params = inspect.signature(pipe).parameters if callable(pipe) else {}
    full = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty} | call
    f, h, w = full.get("num_frames"), full.get("height"), full.get("width")
    line = f"{f} frames, height {h}, width {w}" if None not in (f, h, w) else "the pipeline's default size"
    tokens = _video_tokens(pipe, f, h, w)
    if tokens:
        line += f" ({tokens[0]}x{tokens[1]}x{tokens[2]} = {tokens[0] * tokens[1] * tokens[2]} video tokens)"
    line += f", {full.get('num_inference_steps')} steps, guidance {full.get('guidance_scale')}"
    if full.get("max_sequence_length") is not None:
        line += f", text {full['max_sequence_length']} tokens"
    source = Path(model) / CALL_DEFAULTS
    return f"{type(pipe).__name__} {model}: {line}" + (f" (defaults: {source})" if source.is_file() else " (defaults: the pipeline's)")


def _video_tokens(pipe, f, h, w) -> tuple[int, int, int] | None:
    """Latent (frames, height, width) tokens after the VAE and patchify, where the pipeline says its factors."""
    ts, ss = getattr(pipe, "vae_scale_factor_temporal", None), getattr(pipe, "vae_scale_factor_spatial", None)
    patch = getattr(getattr(getattr(pipe, "transformer", None), "config", None), "patch_size", None)
    if None in (f, h, w, ts, ss, patch):
        return None
    pt, ph, pw = patch if isinstance(patch, (tuple, list)) else (1, patch, patch)
    return -(-((f - 1) // ts + 1) // pt), h // ss // ph, w // ss // pw
