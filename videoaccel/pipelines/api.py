"""accelerate / accelerated / restore / report: the user surface on a diffusers pipeline."""
from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Union

import torch

from ..plan_checks import profile_fits_model
from ..plans import Profile, config_hash, load_profile
from ..routing import AttentionRouter, Observer, Report
from . import caches
from . import fp8_linear as fp8
from .installation import Installation, installation_of
from .models import check_pipeline, spec_for, transformers_of
from .spec import attention_heads

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline, ModelMixin

Pipe = Union["DiffusionPipeline", "ModelMixin"]  # a pipeline, or one transformer
ProfileLike = Union[str, Path, Profile]  # a preset name, a profile .json, or a Profile


def _check_fingerprint(profile: Profile, model: torch.nn.Module) -> None:
    if profile.model is None:
        return
    cls, h = profile.model.get("class"), profile.model.get("config_hash")
    if cls != type(model).__name__ or (h is not None and h != config_hash(model.config)):  # presets name the class only
        raise ValueError(f"profile {profile.name!r} was made for {cls} (config {h}), not this {type(model).__name__} "
                         f"(config {config_hash(model.config)}): profile this model with `videoaccel profile`")


@dataclass
class Accelerated:
    """The installations of one ``accelerated(pipe, profile)`` call; a context manager that restores on exit."""
    pipe: Pipe
    installations: list[Installation]

    def report(self) -> Report:
        return report(self.pipe)

    def restore(self) -> None:
        for inst in self.installations:
            inst.undo()

    def __enter__(self) -> Accelerated:
        return self

    def __exit__(self, *exc) -> None:
        self.restore()


def accelerated(pipe: Pipe, profile: ProfileLike = "radial", *, fp8_linear: bool | list[str] = False) -> Accelerated:
    """Route the self-attention of ``pipe``'s transformer(s) by ``profile`` (a Profile, a profile file or a preset
    name: dense, radial[:density], draft[:top_p], ... with optional +fp8), in place, until the returned object's
    ``restore()`` (or the end of ``with videoaccel.accelerated(pipe, profile): ...``).

    ``fp8_linear``: also run linear layers of the blocks in FP8 (torchao dynamic float8; a CUDA GPU of
    compute capability 8.9 or newer): ``True`` keeps those whose shape measured faster in FP8
    (fp8_linear.select, compiled, at a Wan 480p sequence: a few seconds per shape), or give the layer
    names. Separate from the per-head FP8 attention. Off by default: it pays off only under
    torch.compile (pipelines.compile.compile_transformer)."""
    profile = check_profile(pipe, profile)
    if fp8_linear is not False:
        fp8.check_available()
    done = []
    for _, model in transformers_of(pipe):
        inst = Installation.install(model, profile, getattr(pipe, "scheduler", None),
                                    None if isinstance(pipe, torch.nn.Module) else type(pipe).__name__)
        done.append(inst)
        if fp8_linear is not False:
            names = fp8.select(model)[0] if fp8_linear is True else list(fp8_linear)
            inst.linear_weights = fp8.apply(model, names)
    return Accelerated(pipe, done)


def accelerate(pipe: Pipe, profile: ProfileLike = "radial", *, fp8_linear: bool | list[str] = False) -> None:
    """``accelerated`` without keeping the handle: undo with ``restore(pipe)``."""
    accelerated(pipe, profile, fp8_linear=fp8_linear)


def check_profile(pipe: Pipe, profile: ProfileLike) -> Profile:
    """The loaded profile, or ValueError for anything accelerate() would refuse (profile values, another
    model's profile, layer/head counts), before any step runs and without installing anything."""
    profile = load_profile(profile)
    check_pipeline(pipe)
    for name, model in transformers_of(pipe):
        if installation_of(model) is not None:
            raise ValueError(f"{name} is already accelerated: call videoaccel.restore(pipe) before accelerating again")
        spec = spec_for(model)
        _check_fingerprint(profile, model)
        attn = spec.self_attention(model)
        profile_fits_model(profile, len(attn), attention_heads(attn[0]) if attn else None)
        caches.check(model, None if isinstance(pipe, torch.nn.Module) else type(pipe).__name__)  # a cache enabled before
        if getattr(model, "_parallel_config", None) is not None and spec.processor != "dispatch":
            raise ValueError(f"{type(model).__name__} under context parallelism is not supported by videoaccel yet "
                             "(its processors call SDPA directly); run it on one GPU or dense")
    return profile


def restore(pipe: Pipe) -> None:
    """Remove everything accelerate() installed; the pipeline computes exactly as before."""
    for _, model in transformers_of(pipe):
        inst = installation_of(model)
        if inst is not None:
            inst.undo()


def report(pipe: Pipe) -> Report:
    """Per transformer, per layer: calls, steps seen, per-head plans and achieved densities, FP8 calls,
    fallbacks and density misses with their reasons, attention time (when ``set_timing(pipe, True)``).
    ``print(report(pipe))`` shows a table; ``.to_dict()`` gives JSON-ready data."""
    return Report({name: _router(name, model).report() for name, model in transformers_of(pipe)})


def _router(name: str, model: torch.nn.Module) -> AttentionRouter:
    inst = installation_of(model)
    if inst is None:
        raise ValueError(f"{name} is not accelerated: call videoaccel.accelerate(pipe, profile) first")
    return inst.router


@contextmanager
def observe(pipe: Pipe, observer: Observer) -> Iterator[Observer]:
    """Call ``observer(AttentionCall)`` on every routed self-attention call of ``pipe`` inside the block
    (layer, step, timestep, q, k, v, geometry, text lengths); the router does not know who listens."""
    with ExitStack() as stack:
        for name, model in transformers_of(pipe):
            stack.enter_context(_router(name, model).observing(observer))
        yield observer


def set_timing(pipe: Pipe, on: bool = True) -> None:
    """Time every routed attention call (synchronises the GPU per call: for measurement, not production)."""
    for name, model in transformers_of(pipe):
        _router(name, model).timing = on


def router_of(model: torch.nn.Module) -> AttentionRouter:
    return _router(type(model).__name__, model)
