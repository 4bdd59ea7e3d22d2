"""diffusers hooks: step tracking on the transformer, tile-major token order around its blocks.

The step hook runs outside compiled code (``torch.compiler.disable``): under ``torch.compile`` of
the whole transformer it is one break at its entry, never inside a block. It builds the forward's
``StepContext`` (routing/context.py) once: inside a pipeline call the step is the scheduler's own
step index (so a pipeline with two transformers, Wan2.2 A14B, counts pipeline steps, and a new
schedule starts a new generation even after an interrupted one) and the timestep is read off the
scheduler's host-side list (one device read per pipeline call), not off the timestep tensor. The
tile-order hooks sit on modules outside the blocks and only index with tensors the router prepared.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from diffusers.hooks import HookRegistry, ModelHook

from ..routing import AttentionRouter
from . import caches
from .graphs import ForwardGraphs
from .spec import ModelSpec, named_arg

STEP_HOOK = "videoaccel_step"
ORDER_HOOK = "videoaccel_tile_order"


class StepHook(ModelHook):
    """Reads the step, timestep and latent grid of every transformer call (classifier-free guidance as two
    passes shares one step). Reset at the end of each pipeline call and when a new schedule starts."""

    _is_stateful = True

    def __init__(self, router: AttentionRouter, spec: ModelSpec, scheduler: Any = None, pipeline: str | None = None,
                 check: Callable[[], None] | None = None):
        super().__init__()
        self.router, self.spec, self.scheduler, self.pipeline, self.check = router, spec, scheduler, pipeline, check
        self._timesteps: list[float] | None = None  # the scheduler's, on the host, for this pipeline call
        self._schedule: torch.Tensor | None = None  # the scheduler's timesteps tensor they were read from
        self._cache = None  # the diffusers cache config last checked (caches.py): enabled before or after accelerate
        self.graphs: ForwardGraphs | None = None  # CUDA graphs of whole forwards (graphs.py), when enabled

    @torch.compiler.disable
    def pre_forward(self, module: torch.nn.Module, *args: Any, **kwargs: Any) -> tuple[tuple, dict]:
        config = caches.cache_config(module)
        if config is not self._cache:
            caches.check(module, self.pipeline)  # before any block runs
            self._cache = config
            self.router.cache = caches.describe(config)
        if self.check is not None:
            self.check()
        x = named_arg(module, args, kwargs, "hidden_states")
        self._new_schedule()
        t = self._timestep(named_arg(module, args, kwargs, "timestep"))
        self.router.begin_forward(self._step(t), t, self.spec.grid(module, args, kwargs), self.spec.text(module, args, kwargs),
                                  x.device)
        return args, kwargs

    def new_forward(self, module: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
        """The forward itself, or its CUDA graph for this forward's step context when graphs are on (graphs.py)."""
        if self.graphs is None:
            return self.fn_ref.original_forward(*args, **kwargs)
        return self._replay(module, args, kwargs)

    @torch.compiler.disable(recursive=False)
    def _replay(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> Any:
        return self.graphs(module, self.fn_ref.original_forward, args, kwargs)

    def _scheduled(self) -> bool:
        return hasattr(self.scheduler, "step_index") and isinstance(getattr(self.scheduler, "timesteps", None), torch.Tensor)

    def _new_schedule(self) -> None:
        """``set_timesteps`` made a new schedule: a new generation starts (also after one that was interrupted)."""
        if self._scheduled() and self.scheduler.timesteps is not self._schedule:
            self._schedule, self._timesteps = self.scheduler.timesteps, None
            self.router.reset()
            self.router.schedule(len(self._schedule))

    def _step(self, t: float | None) -> int:
        """The pipeline's step (the scheduler's index from its first step); without a scheduler, timestep changes."""
        if self._scheduled():
            index = self.scheduler.step_index
            begin = getattr(self.scheduler, "begin_index", None) or 0
            return 0 if index is None else max(0, index - begin)
        prev = self.router.context
        return 0 if prev is None else prev.step + int(t != prev.timestep)

    def _timestep(self, t) -> float | None:
        index = getattr(self.scheduler, "step_index", None)
        if index is not None and self._scheduled():
            if self._timesteps is None:
                self._timesteps = [float(x) for x in self.scheduler.timesteps.tolist()]
            if index < len(self._timesteps):
                return self._timesteps[index]
        if isinstance(t, torch.Tensor):  # first step, or no scheduler: one read per forward
            return float(t.float().max())
        return None if t is None else float(t)

    def reset_state(self, module: torch.nn.Module) -> torch.nn.Module:
        self.router.reset()
        self._timesteps = self._schedule = None
        return module


class TileOrderHook(ModelHook):
    """One of Wan's per-token modules outside the blocks, its output reordered: ``patch_embedding``
    (to tile-major, before the tokens are flattened), ``rope`` and ``condition_embedder`` (their
    per-token outputs to tile-major) and ``proj_out`` (back to frame-major before unpatchify)."""

    def __init__(self, router: AttentionRouter, where: str):
        super().__init__()
        self.router, self.where = router, where

    def post_forward(self, module: torch.nn.Module, output: Any) -> Any:
        index = self.router.tile_index
        if index is None:
            return output
        fwd, back = index
        if self.where == "patch_embedding":  # [B, C, F, H, W]: reorder the flattened (F, H, W)
            return output.flatten(2).index_select(2, fwd).view(output.shape)
        if self.where == "rope":
            return tuple(r.index_select(1, fwd) for r in output)
        if self.where == "condition_embedder":  # per-token timestep embeddings (Wan2.2 TI2V) only
            temb, proj, *rest = output
            if temb.dim() == 3:
                temb, proj = temb.index_select(1, fwd), proj.index_select(1, fwd)
            return (temb, proj, *rest)
        return output.index_select(1, back)


TILE_MODULES = ("patch_embedding", "rope", "condition_embedder", "proj_out")


def add_hook(module: torch.nn.Module, hook: ModelHook, name: str) -> None:
    HookRegistry.check_if_exists_or_initialize(module).register_hook(hook, name)


def remove_hook(module: torch.nn.Module, name: str) -> None:
    """Remove one of our hooks, wherever it sits in the module's chain. diffusers' ``remove_hook`` relinks
    the hook above by its ``forward``, which bypasses a hook above that replaces the forward (a cache hook
    enabled after accelerate: FasterCache on the transformer, TaylorSeer on ``proj_out``); relink that one's
    ``original_forward`` instead, so the cache keeps working and ``disable_cache()`` restores the stock forward."""
    registry = getattr(module, "_diffusers_hook", None)
    if registry is None or name not in registry.hooks:
        return
    index = registry._hook_order.index(name)
    ref = registry._fn_refs[index]
    below = ref.original_forward if ref.original_forward is not None else ref.forward
    if index + 1 < len(registry._hook_order):
        above = registry._fn_refs[index + 1]
        if above.original_forward is not None:
            above.original_forward = below
        else:
            above.forward = below
    else:
        registry._module_ref.forward = below
    registry._module_ref = registry.hooks[name].deinitalize_hook(registry._module_ref)
    del registry.hooks[name]
    registry._hook_order.pop(index)
    registry._fn_refs.pop(index)
