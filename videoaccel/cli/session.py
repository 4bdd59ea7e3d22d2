"""What every command that runs a model shares before it loads one: the model, its call defaults, the default
profile, the prompts, and the line that says which call is about to run (loading.py loads and runs it).

Call defaults belong to the model (call_defaults.py), so a model gives the same defaults however it is
named. Flags override them; what neither gives is the pipeline's own default (printed, so a 50-step
81-frame call on a CPU is visible before it starts).
"""
from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..call_defaults import CALL_DEFAULTS, KEYS, model_defaults
from ..files import read_text
from ..profile_schema import summarise
from ..prompt_check import read_prompts
from ..tiny import EMBEDDED, EMBEDDED_PROFILE

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

PROFILE_NAME = "videoaccel_profile.json"  # a calibrated profile shipped inside a user's model directory
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")  # weights diffusers would load by unpickling
__all__ = ["EMBEDDED", "EMBEDDED_PROFILE", "call_kwargs", "default_profile", "describe_call", "model_defaults", "pipeline_class",
           "prompt_count", "read_prompts", "resolve_model"]


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


def default_profile(model: str, embedded: bool) -> str:
    """The embedded model's calibrated profile, a model directory's own videoaccel_profile.json, else radial."""
    if embedded and EMBEDDED_PROFILE.exists():
        return str(EMBEDDED_PROFILE)
    own = Path(model) / PROFILE_NAME
    return str(own) if own.exists() else "radial"


def prompt_count(prompts: list[str]) -> str:
    """"1 prompt", "3 prompts": the count the call line names."""
    return f"{len(prompts)} prompt{'' if len(prompts) == 1 else 's'}"


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
