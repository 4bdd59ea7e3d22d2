"""accelerate / restore / report: the one-line user surface on a diffusers pipeline."""
from __future__ import annotations

import logging

import torch

from ..plan_checks import profile_fits_model
from ..plans import Profile, config_hash, load_profile
from . import dispatch
from .hooks import ORDER_HOOK, STEP_HOOK, StepHook, TileOrderHook, add_hook, remove_hook
from .models import spec_for, transformers_of
from .processors import REPLACEMENTS
from .router import AttentionRouter

log = logging.getLogger("videoaccel")
_ATTR = "_videoaccel"


def _check_fingerprint(profile: Profile, model: torch.nn.Module) -> None:
    if profile.model is None:
        return
    cls, h = profile.model.get("class"), profile.model.get("config_hash")
    if cls != type(model).__name__ or (h is not None and h != config_hash(model.config)):  # presets name the class only
        raise ValueError(f"profile {profile.name!r} was made for {cls} (config {h}), not this {type(model).__name__} "
                         f"(config {config_hash(model.config)}): profile this model with `videoaccel profile`")


def accelerate(pipe, profile="radial", *, fp8_linear: bool = False):
    """Route the self-attention of ``pipe``'s transformer(s) by ``profile`` (a Profile, a profile
    file or a preset name: dense, radial[:density], draft[:top_p], ... with optional +fp8). In place;
    returns ``pipe``. Undo with ``restore(pipe)``.

    ``fp8_linear``: also run the transformer's linear layers in FP8 (torchao dynamic float8; a CUDA
    GPU of compute capability 8.9 or newer). Separate from the per-head FP8 attention. Off by
    default: without torch.compile torchao's eager quantisation can cost more than it saves
    (bench/e2e-h100.json)."""
    prof = check_profile(pipe, profile)
    if fp8_linear:
        _check_fp8_linear()
    for _, model in transformers_of(pipe):
        _install(model, prof)
        if fp8_linear:
            _fp8_linears(model)
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
        if getattr(model, "_parallel_config", None) is not None and spec.processor != "dispatch":
            raise ValueError(f"{type(model).__name__} under context parallelism is not supported by videoaccel yet "
                             "(its processors call SDPA directly); run it on one GPU or dense")
    return prof


def _check_fp8_linear() -> None:
    if not torch.cuda.is_available() or torch.cuda.get_device_capability() < (8, 9):
        raise ValueError("fp8_linear needs a CUDA GPU with FP8 tensor cores (compute capability >= 8.9, e.g. H100)")
    try:
        import torchao  # noqa: F401
    except ImportError:
        raise ValueError("fp8_linear needs torchao: pip install torchao (a version matching your torch)") from None


def _fp8_linears(model: torch.nn.Module) -> None:
    """Quantise linear weights to float8 with torchao, keeping the originals on the CPU for restore()."""
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, quantize_

    originals = {name: m.weight.detach().to("cpu") for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    quantize_(model, Float8DynamicActivationFloat8WeightConfig())
    getattr(model, _ATTR)["saved"]["linear_weights"] = originals


def _install(model: torch.nn.Module, prof: Profile) -> None:
    spec = spec_for(model)
    attn = spec.self_attention(model)
    router = AttentionRouter(prof, spec, len(attn))
    if getattr(model, "_parallel_config", None) is not None and router.order == "tile":
        router.order = "frame"  # context parallelism shards the sequence between blocks: no model-level reordering
        log.info("videoaccel: %s is context-parallel: frame-major token order", type(model).__name__)
    if prof.order == "tile" and not spec.tile_order:
        log.info("videoaccel: %s runs frame-major token order (tile-major reordering is implemented for Wan)", type(model).__name__)
    saved = {"processors": [m.processor for m in attn], "backends": [], "cross": []}
    if spec.processor == "dispatch":
        dispatch.install()
        for i, m in enumerate(attn):
            saved["backends"].append(getattr(m.processor, "_attention_backend", None))
            m.processor._attention_backend = None  # use the registry's active backend: the interceptor
            _set_processor(m, dispatch.RoutedProcessor(m.processor, router, i))
    else:
        for i, m in enumerate(attn):
            _set_processor(m, REPLACEMENTS[spec.processor](router, i))
    if torch.cuda.is_available():  # cross-attention: the fastest dense path
        from diffusers.models.attention_dispatch import AttentionBackendName

        for m in spec.cross_attention(model):
            saved["cross"].append((m, getattr(m.processor, "_attention_backend", None)))
            m.processor._attention_backend = AttentionBackendName._NATIVE_CUDNN
    add_hook(model, StepHook(router), STEP_HOOK)
    if spec.tile_order:
        blocks = list(model.blocks)
        cache: dict = {}
        for i, b in enumerate(blocks):
            add_hook(b, TileOrderHook(router, i == 0, i == len(blocks) - 1, cache), ORDER_HOOK)
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
        if spec.tile_order:
            for b in model.blocks:
                remove_hook(b, ORDER_HOOK)
        delattr(model, _ATTR)
    return pipe


def report(pipe) -> dict:
    """Per transformer, per layer: calls, steps seen, per-head plans, achieved density, FP8 calls,
    fallbacks with their reasons, attention time (when ``set_timing(pipe, True)``)."""
    out = {}
    for name, model in transformers_of(pipe):
        state = getattr(model, _ATTR, None)
        if state is None:
            raise ValueError(f"{name} is not accelerated: call videoaccel.accelerate(pipe, profile) first")
        out[name] = state["router"].report()
    return out


def set_timing(pipe, on: bool = True) -> None:
    """Time every routed attention call (synchronises the GPU per call: for measurement, not production)."""
    for _, model in transformers_of(pipe):
        getattr(model, _ATTR)["router"].timing = on


def router_of(model: torch.nn.Module) -> AttentionRouter:
    return getattr(model, _ATTR)["router"]
