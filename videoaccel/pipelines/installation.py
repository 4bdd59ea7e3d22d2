"""What ``accelerate`` puts on one transformer, held by the object that takes it off again.

Why an object: the router, the stock processors and backends it replaced, the cross-attention
backends and any FP8-linear weights are one unit; ``Installation.undo`` restores exactly them, and
the model carries its installation (``model._videoaccel``) so ``restore(pipe)`` finds it.

A ``copy.deepcopy`` of an accelerated model is refused: the copy's processors and hooks would share
(or half-copy) this router and its undo record, so restoring one would break the other. The model
carries a ``__deepcopy__`` that raises before any weight is copied; ``undo`` takes it off.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from diffusers.models.attention_dispatch import AttentionBackendName

from ..plan_checks import ProfileNotApplied, unapplied_note
from ..plans import Profile
from ..routing import AttentionRouter
from . import dispatch, fp8_linear
from .graphs import ForwardGraphs
from .hooks import ORDER_HOOK, STEP_HOOK, TILE_MODULES, StepHook, TileOrderHook, add_hook, remove_hook
from .models import spec_for
from .processors import REPLACEMENTS
from .spec import attention_heads

log = logging.getLogger("videoaccel")
ATTR = "_videoaccel"


@dataclass
class Installation:
    model: torch.nn.Module
    router: AttentionRouter
    processors: list[Any]  # the stock self-attention processors, in layer order
    saved: list[Any] = field(default_factory=list)  # their attention backends and parallel configs (dispatch models)
    cross: list[tuple[torch.nn.Module, Any]] = field(default_factory=list)  # cross-attention modules and their backends
    linear_weights: dict[str, torch.Tensor] = field(default_factory=dict)  # stock weights of FP8 linears
    step_hook: StepHook | None = None

    @classmethod
    def install(cls, model: torch.nn.Module, profile: Profile, scheduler: Any, pipeline: str | None = None) -> Installation:
        spec = spec_for(model)
        attn = spec.self_attention(model)
        tile = spec.tile_order and getattr(model, "_parallel_config", None) is None
        if spec.tile_order and not tile:  # context parallelism shards the sequence between blocks: no model-level reordering
            log.info("videoaccel: %s is context-parallel: frame-major token order", type(model).__name__)
        router = AttentionRouter(profile, len(attn), attention_heads(attn[0]), spec.text_position, tile_order=tile)
        if note := unapplied_note(profile, len(attn)):  # once per process and text (Python's warning registry)
            warnings.warn(f"videoaccel: {note}", ProfileNotApplied, stacklevel=2)
        if profile.order == "tile" and not spec.tile_order:
            log.info("videoaccel: %s runs frame-major token order (tile-major reordering is implemented for Wan)",
                     type(model).__name__)
        inst = cls(model, router, [m.processor for m in attn])
        if spec.processor == "dispatch":
            dispatch.install()
            inst.saved = [dispatch.route(m.processor, router, i) for i, m in enumerate(attn)]
        else:
            for i, m in enumerate(attn):
                _set_processor(m, REPLACEMENTS[spec.processor](router, i))
        if torch.cuda.is_available():  # cross-attention: the fastest dense path
            for m in spec.cross_attention(model):
                inst.cross.append((m, getattr(m.processor, "_attention_backend", None)))
                m.processor._attention_backend = AttentionBackendName._NATIVE_CUDNN
        inst.step_hook = StepHook(router, spec, scheduler, pipeline, inst.check)
        add_hook(model, inst.step_hook, STEP_HOOK)
        if router.order == "tile":
            for name in TILE_MODULES:
                add_hook(getattr(model, name), TileOrderHook(router, name), ORDER_HOOK)
        setattr(model, ATTR, inst)
        object.__setattr__(model, "__deepcopy__", inst.__deepcopy__)  # copy.deepcopy looks it up on the instance
        return inst

    def __deepcopy__(self, memo: dict | None = None) -> Installation:
        raise ValueError(f"copy.deepcopy of an accelerated {type(self.model).__name__}: the copy would share this model's "
                         "attention router; restore first (videoaccel.restore(pipe)), copy, then accelerate the copy")

    def undo(self) -> None:
        """The model computes exactly as before ``install`` (again: nothing to do)."""
        model = self.model
        if getattr(model, ATTR, None) is not self:
            return
        for m, proc in zip(spec_for(model).self_attention(model), self.processors):
            _set_processor(m, proc)
        for proc, saved in zip(self.processors, self.saved):
            dispatch.unroute(proc, saved)
        if self.saved:
            dispatch.uninstall()
        for m, backend in self.cross:
            m.processor._attention_backend = backend
        fp8_linear.restore(model, self.linear_weights)
        remove_hook(model, STEP_HOOK)
        if self.router.order == "tile":
            for name in TILE_MODULES:
                remove_hook(getattr(model, name), ORDER_HOOK)
        delattr(model, ATTR)
        model.__dict__.pop("__deepcopy__", None)


    def cuda_graphs(self, on: bool) -> None:
        """Replay whole forwards as CUDA graphs, one per step context (graphs.py), or stop doing so."""
        if on and not torch.cuda.is_available():
            raise ValueError("CUDA graphs need a CUDA GPU: compile without cuda graphs on this machine")
        if on:
            plans = [self.router.profile.default] + [p for bs in self.router.profile.layers.values() for hs in bs for p in hs]
            if any(p.pattern == "pyramid" for p in plans):
                raise ValueError("pyramid plans choose their passes on the host each call: they cannot run in a CUDA graph")
            if spec_for(self.model).text_position == "back":
                raise ValueError(f"{type(self.model).__name__} pads its joined text per prompt, which a CUDA graph would "
                                 "freeze: compile it without cuda graphs")
        self.step_hook.graphs = ForwardGraphs(self.router) if on else None

    def check(self) -> None:
        """Before each forward: the routed processors still carry their routes (ValueError naming the fix)."""
        if self.saved and not dispatch.routed(self.processors[0]):
            raise ValueError(f"{type(self.model).__name__}'s attention processors lost videoaccel's routing (was "
                             "enable_parallelism or set_attn_processor called after accelerate?): call videoaccel.restore(pipe), "
                             "set up parallelism or processors, then accelerate again")


def installation_of(model: torch.nn.Module) -> Installation | None:
    return getattr(model, ATTR, None)


def _set_processor(module: torch.nn.Module, processor) -> None:
    if hasattr(module, "set_processor"):
        module.set_processor(processor)
    else:  # MochiAttention
        module.processor = processor
