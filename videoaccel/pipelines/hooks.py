"""diffusers hooks: step tracking on the transformer, tile-major token order around its blocks."""
from __future__ import annotations

import torch
from diffusers.hooks import HookRegistry, ModelHook

from ..patterns import VideoGeometry
from ..patterns.token_order import sequence_index
from .models import named_arg
from .router import AttentionRouter

STEP_HOOK = "videoaccel_step"
ORDER_HOOK = "videoaccel_tile_order"


class StepHook(ModelHook):
    """Reads the timestep and the latent grid of every transformer call; a new timestep is a new step
    (classifier-free guidance as two passes shares one). Reset at the end of each pipeline call."""

    _is_stateful = True

    def __init__(self, router: AttentionRouter):
        super().__init__()
        self.router = router

    def pre_forward(self, module, *args, **kwargs):
        t = named_arg(module, args, kwargs, "timestep")
        value = float(t.float().max()) if isinstance(t, torch.Tensor) else (float(t) if t is not None else None)
        self.router.begin_forward(value, self.router.spec.grid(module, args, kwargs))
        return args, kwargs

    def reset_state(self, module):
        self.router.reset()
        return module


class TileOrderHook(ModelHook):
    """Wan blocks: reorder tokens tile-major before the first block and back after the last. Each block
    also gets its rotary embedding (and per-token timestep embedding, Wan2.2 TI2V) reordered, once per
    forward."""

    def __init__(self, router: AttentionRouter, first: bool, last: bool, cache: dict):
        super().__init__()
        self.router, self.first, self.last, self.cache = router, first, last, cache

    def _index(self, seq_len: int, device, inverse: bool = False):
        f, h, w = self.router.grid
        g = VideoGeometry(f, h, w, block=self.router.profile.block, order="tile")
        if g.seq_len != seq_len:
            return None
        return sequence_index(g, inverse, str(device))

    def pre_forward(self, module, hidden_states, encoder_hidden_states, temb, rotary_emb, *args, **kwargs):
        if self.router.order != "tile" or self.router.grid is None:
            return (hidden_states, encoder_hidden_states, temb, rotary_emb, *args), kwargs
        idx = self._index(hidden_states.shape[1], hidden_states.device)
        if idx is None:
            return (hidden_states, encoder_hidden_states, temb, rotary_emb, *args), kwargs
        if self.first:
            hidden_states = hidden_states.index_select(1, idx)
        if temb.dim() == 4:  # per-token timestep embedding [B, S, 6, C]
            temb = temb.index_select(1, idx)
        if self.cache.get("forward") != self.router.forward_id:  # once per transformer forward, shared by the blocks
            self.cache["forward"] = self.router.forward_id
            self.cache["rope"] = tuple(r.index_select(1, idx) for r in rotary_emb)
        return (hidden_states, encoder_hidden_states, temb, self.cache["rope"], *args), kwargs

    def post_forward(self, module, output):
        if not self.last or self.router.order != "tile" or self.router.grid is None:
            return output
        idx = self._index(output.shape[1], output.device, inverse=True)
        return output if idx is None else output.index_select(1, idx)


def add_hook(module: torch.nn.Module, hook: ModelHook, name: str) -> None:
    HookRegistry.check_if_exists_or_initialize(module).register_hook(hook, name)


def remove_hook(module: torch.nn.Module, name: str) -> None:
    registry = getattr(module, "_diffusers_hook", None)
    if registry is not None:
        registry.remove_hook(name, recurse=False)
