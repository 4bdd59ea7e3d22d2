"""accelerate / restore / report: the one-line user surface on a diffusers pipeline."""
from __future__ import annotations

import logging
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

import torch

from ..plan_checks import profile_fits_model
from ..plans import Profile, config_hash, load_profile
from ..routing import AttentionRouter, Observer, Report
from . import caches, dispatch
from . import fp8_linear as fp8
from .hooks import ORDER_HOOK, STEP_HOOK, TILE_MODULES, StepHook, TileOrderHook, add_hook, remove_hook
from .models import spec_for, transformers_of
from .processors import REPLACEMENTS

log = logging.getLogger("videoaccel")
_ATTR = "_videoaccel"


def _check_fingerprint(profile: Profile, model: torch.nn.Module) -> None:
    if profile.model is None:
        return
    cls, h = profile.model.get("class"), profile.model.get("config_hash")
    if cls != type(model).__name__ or (h is not None and h != config_hash(model.config)):  # presets name the class only
        raise ValueError(f"profile {profile.name!r} was made for {cls} (config {h}), not this {type(model).__name__} "
                         f"(config {config_hash(model.config)}): profile this model with `videoaccel profile`")


def accelerate(pipe, profile="radial", *, fp8_linear: bool | list[str] = False):
    """Route the self-attention of ``pipe``'s transformer(s) by ``profile`` (a Profile, a profile
    file or a preset name: dense, radial[:density], draft[:top_p], ... with optional +fp8). In place;
    returns ``pipe``. Undo with ``restore(pipe)``.

    ``fp8_linear``: also run linear layers of the blocks in FP8 (torchao dynamic float8; a CUDA GPU of
    compute capability 8.9 or newer): ``True`` keeps those whose shape measured faster in FP8
    (fp8_linear.select, compiled, at a Wan 480p sequence: a few seconds per shape), or give the layer
    names. Separate from the per-head FP8 attention. Off by default: it pays off only under
    torch.compile (pipelines.compile.compile_transformer)."""
    prof = check_profile(pipe, profile)
    if fp8_linear is not False:
        fp8.check_available()
    for _, model in transformers_of(pipe):
        _install(model, prof, getattr(pipe, "scheduler", None), None if isinstance(pipe, torch.nn.Module) else type(pipe).__name__)
        if fp8_linear is not False:
            names = fp8.select(model)[0] if fp8_linear is True else list(fp8_linear)
            getattr(model, _ATTR)["saved"]["linear_weights"] = fp8.apply(model, names)
    return pipe


def check_profile(pipe, profile) -> Profile:
    """The loaded profile, or ValueError for anything accelerate() would refuse (profile values, another
    model's profile, layer/head counts), before any step runs and without installing anything."""
    prof = load_profile(profile)
    for name, model in transformers_of(pipe):
        if hasattr(model, _ATTR):
            raise ValueError(f"{name} is already accelerated: call videoaccel.restore(pipe) before accelerating again")
        spec = spec_for(model)
        _check_fingerprint(prof, model)
        attn = spec.self_attention(model)
        profile_fits_model(prof, len(attn), getattr(attn[0], "heads", None) if attn else None)
        caches.check(model, None if isinstance(pipe, torch.nn.Module) else type(pipe).__name__)  # a cache enabled before
        if getattr(model, "_parallel_config", None) is not None and spec.processor != "dispatch":
            raise ValueError(f"{type(model).__name__} under context parallelism is not supported by videoaccel yet "
                             "(its processors call SDPA directly); run it on one GPU or dense")
    return prof


def _install(model: torch.nn.Module, prof: Profile, scheduler, pipeline: str | None = None) -> None:
    spec = spec_for(model)
    attn = spec.self_attention(model)
    tile = spec.tile_order and getattr(model, "_parallel_config", None) is None
    if spec.tile_order and not tile:  # context parallelism shards the sequence between blocks: no model-level reordering
        log.info("videoaccel: %s is context-parallel: frame-major token order", type(model).__name__)
    router = AttentionRouter(prof, len(attn), attn[0].heads, spec.text_position, tile_order=tile)
    if prof.order == "tile" and not spec.tile_order:
        log.info("videoaccel: %s runs frame-major token order (tile-major reordering is implemented for Wan)", type(model).__name__)
    saved = {"processors": [m.processor for m in attn], "backends": [], "cross": []}
    if spec.processor == "dispatch":
        dispatch.install()
        for i, m in enumerate(attn):
            saved["backends"].append(getattr(m.processor, "_attention_backend", None))
            m.processor._attention_backend = None  # use the registry's active backend: the interceptor
            _set_processor(m, dispatch.routed(m.processor, router, i))
    else:
        for i, m in enumerate(attn):
            _set_processor(m, REPLACEMENTS[spec.processor](router, i))
    if torch.cuda.is_available():  # cross-attention: the fastest dense path
        from diffusers.models.attention_dispatch import AttentionBackendName

        for m in spec.cross_attention(model):
            saved["cross"].append((m, getattr(m.processor, "_attention_backend", None)))
            m.processor._attention_backend = AttentionBackendName._NATIVE_CUDNN
    add_hook(model, StepHook(router, spec, scheduler, pipeline), STEP_HOOK)
    if router.order == "tile":
        for name in TILE_MODULES:
            add_hook(getattr(model, name), TileOrderHook(router, name), ORDER_HOOK)
    setattr(model, _ATTR, {"router": router, "saved": saved})


def _set_processor(module: torch.nn.Module, processor) -> None:
    if hasattr(module, "set_processor"):
        module.set_processor(processor)
    else:  # MochiAttention
        module.processor = processor


def restore(pipe):
    """Remove everything accelerate() installed; the pipeline computes exactly as before."""
    for _, model in transformers_of(pipe):
        state = getattr(model, _ATTR, None)
        if state is None:
            continue
        spec = spec_for(model)
        saved = state["saved"]
        for m, proc in zip(spec.self_attention(model), saved["processors"]):
            _set_processor(m, proc)
        for proc, backend in zip(saved["processors"], saved["backends"]):
            proc._attention_backend = backend
        if saved["backends"]:
            dispatch.uninstall()
        for m, backend in saved["cross"]:
            m.processor._attention_backend = backend
        for name, w in saved.get("linear_weights", {}).items():
            lin = model.get_submodule(name)
            lin.weight = torch.nn.Parameter(w.to(lin.weight.device), requires_grad=False)
        remove_hook(model, STEP_HOOK)
        if state["router"].order == "tile":
            for name in TILE_MODULES:
                remove_hook(getattr(model, name), ORDER_HOOK)
        delattr(model, _ATTR)
    return pipe


def report(pipe) -> Report:
    """Per transformer, per layer: calls, steps seen, per-head plans and achieved densities, FP8 calls,
    fallbacks and density misses with their reasons, attention time (when ``set_timing(pipe, True)``).
    ``print(report(pipe))`` shows a table; ``.to_dict()`` gives JSON-ready data."""
    return Report({name: _router(name, model).report() for name, model in transformers_of(pipe)})


def _router(name: str, model: torch.nn.Module) -> AttentionRouter:
    state = getattr(model, _ATTR, None)
    if state is None:
        raise ValueError(f"{name} is not accelerated: call videoaccel.accelerate(pipe, profile) first")
    return state["router"]


@contextmanager
def observe(pipe, observer: Observer) -> Iterator[Observer]:
    """Call ``observer(AttentionCall)`` on every routed self-attention call of ``pipe`` inside the block
    (layer, step, timestep, q, k, v, geometry, text lengths); the router does not know who listens."""
    with ExitStack() as stack:
        for name, model in transformers_of(pipe):
            stack.enter_context(_router(name, model).observing(observer))
        yield observer


def set_timing(pipe, on: bool = True) -> None:
    """Time every routed attention call (synchronises the GPU per call: for measurement, not production)."""
    for _, model in transformers_of(pipe):
        getattr(model, _ATTR)["router"].timing = on


def router_of(model: torch.nn.Module) -> AttentionRouter:
    return getattr(model, _ATTR)["router"]
