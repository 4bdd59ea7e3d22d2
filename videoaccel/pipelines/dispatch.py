"""Route the self-attention of models whose stock processors call diffusers' ``dispatch_attention_fn``.

Wan, HunyuanVideo and LTX processors pass their own ``_parallel_config`` to ``dispatch_attention_fn``,
which hands it to the active backend. videoaccel puts a ``RoutedConfig`` there on each routed
self-attention processor (the layer's route tensor, and the context-parallel config it replaced) and
registers one backend function, active while any pipeline is accelerated. A call that arrives with a
``RoutedConfig`` goes to the ``videoaccel::attention`` op (under Ulysses context parallelism after
diffusers' own all-to-all); every other call (cross-attention, other models) goes to the backend that
was active before, unchanged. So the route travels as an argument of the call itself, the stock
processor code runs as it is, and nothing is shared between calls. Registering the backend touches
diffusers' private ``_AttentionBackendRegistry``: all of that is in this module, checked against the
versions tested.
"""
from __future__ import annotations

from typing import Any

import torch
from diffusers.models import attention_dispatch as ad

from ..routing import AttentionRouter
from ..routing.op import attention, route_tensor


class _BackendName(str):
    """The registry reads ``backend.value`` (enum members); a str that answers it too."""

    @property
    def value(self) -> str:
        return str(self)


class RoutedConfig:
    """What a routed processor passes as its parallel config: its route, and the config it replaced."""

    def __init__(self, router: AttentionRouter, layer: int, parallel: Any = None):
        self.router, self.layer, self.parallel = router, layer, parallel
        self.route = route_tensor(router.id, layer)  # bound before tracing: a tensor, so no guard on the layer

    @property
    def context_parallel_config(self):
        return None if self.parallel is None else self.parallel.context_parallel_config


NAME = _BackendName("videoaccel")
_state = {"users": 0, "previous": None}


def _previous(**kw) -> torch.Tensor:
    prev = _state["previous"]
    names = ad._AttentionBackendRegistry._supported_arg_names[prev]
    return ad._AttentionBackendRegistry._backends[prev](**{k: v for k, v in kw.items() if k in names})


def _videoaccel_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attn_mask: torch.Tensor | None = None,
                          dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                          enable_gqa: bool = False, _parallel_config=None) -> torch.Tensor:
    routed = _parallel_config if isinstance(_parallel_config, RoutedConfig) else None
    parallel = routed.parallel if routed is not None else _parallel_config
    cp = None if parallel is None else parallel.context_parallel_config
    ulysses_only = cp is not None and cp.ring_degree == 1 and cp.ulysses_degree > 1
    kw = dict(query=query, key=key, value=value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale,
              enable_gqa=enable_gqa, _parallel_config=parallel)
    if routed is None:
        return _previous(**kw)
    if is_causal or dropout_p or enable_gqa or (cp is not None and not ulysses_only):
        why = "ring context parallelism is not routed (Ulysses only)" if cp is not None and not ulysses_only else \
            "a causal, dropout or grouped-query call is not routed"
        routed.router._fallback(routed.layer, f"{why}: ran the previous backend")
        return _previous(**kw)
    if ulysses_only:
        return _ulysses(routed.route, query, key, value, attn_mask, scale, parallel)
    return attention(query, key, value, attn_mask, routed.route, scale)


def _ulysses(route, query, key, value, attn_mask, scale, parallel_config):
    """diffusers' Ulysses all-to-all around the router: each rank gets the full sequence and heads
    [rank * H / P, (rank + 1) * H / P), so global head = rank * H / P + local head."""
    cp = parallel_config.context_parallel_config
    world, heads = cp.ulysses_degree, query.shape[2]
    if heads % world:
        raise ValueError(f"{heads} attention heads do not split over ulysses_degree={world}: use a degree that divides them")
    rank = cp._ulysses_mesh.get_local_rank()

    def forward_op(ctx, q, k, v, mask, dropout_p, is_causal, scale_, enable_gqa, return_lse, _save_ctx=True, _parallel_config=None):
        return attention(q, k, v, mask, route, scale_, rank * (heads // world), heads)

    return ad.TemplatedUlyssesAttention.apply(query, key, value, attn_mask, 0.0, False, scale, False, False, forward_op, None,
                                              parallel_config)


def install() -> None:
    """Make the router's backend the active one (reference-counted across accelerated pipelines)."""
    reg = ad._AttentionBackendRegistry
    if not all(hasattr(reg, a) for a in ("_backends", "_supported_arg_names", "_active_backend", "register")):
        raise RuntimeError("this diffusers version's attention registry is not the one videoaccel was built for "
                           "(tested with diffusers 0.35-0.42): install a tested diffusers version")
    if _state["users"] == 0:
        if NAME not in reg._backends:
            reg.register(NAME, supports_context_parallel=True)(_videoaccel_attention)
        _state["previous"] = reg._active_backend
        reg._active_backend = NAME
    _state["users"] += 1


def uninstall() -> None:
    _state["users"] -= 1
    if _state["users"] == 0:
        ad._AttentionBackendRegistry._active_backend = _state["previous"]


def route(processor: Any, router: AttentionRouter, layer: int) -> tuple[Any, Any]:
    """Route a stock processor's attention: returns what to put back on ``restore`` (its backend and parallel config)."""
    saved = (getattr(processor, "_attention_backend", None), getattr(processor, "_parallel_config", None))
    processor._attention_backend = None  # use the registry's active backend: the router's
    processor._parallel_config = RoutedConfig(router, layer, saved[1])
    return saved


def unroute(processor: Any, saved: tuple[Any, Any]) -> None:
    processor._attention_backend, processor._parallel_config = saved


def routed(processor: Any) -> bool:
    """Whether the processor still carries its route (diffusers' ``enable_parallelism`` after accelerate replaces it)."""
    return isinstance(getattr(processor, "_parallel_config", None), RoutedConfig)
