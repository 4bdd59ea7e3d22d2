"""Intercept diffusers' attention dispatch for the self-attention calls videoaccel routes.

Wan, HunyuanVideo and LTX processors call ``dispatch_attention_fn``; with no backend set on the
processor it uses the registry's active backend. videoaccel registers one backend function and
makes it active while any pipeline is accelerated: during a call of a routed processor (marked on a
module-level holder by ``RoutedProcessor``: plain attributes that torch.compile traces, where a
thread-local would break the graph) it hands q/k/v to the ``videoaccel::attention`` op with the
processor's route tensor, under Ulysses context parallelism after diffusers' own all-to-all; every
other call goes to the backend that was active before, unchanged. This touches diffusers' private
``_AttentionBackendRegistry``: all of that is in this module, checked against the versions tested.
"""
from __future__ import annotations

import inspect
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


class _Current:
    """The routed processor whose stock code is running (None between calls)."""
    processor: RoutedProcessor | None = None


NAME = _BackendName("videoaccel")
_current = _Current()
_state = {"users": 0, "previous": None}


def _videoaccel_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attn_mask: torch.Tensor | None = None,
                          dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                          enable_gqa: bool = False, _parallel_config=None) -> torch.Tensor:
    proc = _current.processor
    cp = None if _parallel_config is None else _parallel_config.context_parallel_config
    ulysses_only = cp is not None and cp.ring_degree == 1 and cp.ulysses_degree > 1
    if proc is None or is_causal or dropout_p or enable_gqa or (cp is not None and not ulysses_only):
        if proc is not None:
            _current.processor = None  # this processor call's attention is spent either way
            if cp is not None:
                proc.router._fallback(proc.layer, "ring context parallelism is not routed (Ulysses only): ran the previous backend")
        prev = _state["previous"]
        fn = ad._AttentionBackendRegistry._backends[prev]
        kw = dict(query=query, key=key, value=value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal,
                  scale=scale, enable_gqa=enable_gqa, _parallel_config=_parallel_config)
        names = ad._AttentionBackendRegistry._supported_arg_names[prev]
        return fn(**{k: v for k, v in kw.items() if k in names})
    _current.processor = None  # one self-attention call per processor call
    if ulysses_only:
        return _ulysses(proc.route, query, key, value, attn_mask, scale, _parallel_config)
    return attention(query, key, value, attn_mask, proc.route, scale)


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
    """Make the interceptor the active backend (reference-counted across accelerated pipelines)."""
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


class RoutedProcessor:
    """Wraps a stock processor: marks its attention call for the router, otherwise runs it as is.
    Make one with ``routed(inner, router, layer)``: its class shows the stock ``__call__`` signature."""

    def __init__(self, inner: Any, router: AttentionRouter, layer: int):
        self.inner, self.router, self.layer = inner, router, layer
        self.route = route_tensor(router.id, layer)  # bound before tracing: a tensor, so no guard on the layer

    def __call__(self, attn: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
        _current.processor = self
        try:
            return self.inner(attn, *args, **kwargs)
        finally:
            _current.processor = None

    def __getattr__(self, name):  # _attention_backend, _parallel_config, ... live on the stock processor
        inner = self.__dict__.get("inner")
        if inner is None:  # during copy/pickle reconstruction
            raise AttributeError(name)
        return getattr(inner, name)


_CLASSES: dict[type, type] = {}


def routed(inner: Any, router: AttentionRouter, layer: int) -> RoutedProcessor:
    """diffusers filters a processor's kwargs by ``inspect.signature(processor.__call__)``: a subclass per
    stock class carries the stock signature (an instance attribute instead would break torch.compile's trace)."""
    cls = _CLASSES.get(type(inner))
    if cls is None:
        def __call__(self, attn, *args, **kwargs):
            return RoutedProcessor.__call__(self, attn, *args, **kwargs)

        __call__.__signature__ = inspect.signature(type(inner).__call__)
        cls = _CLASSES[type(inner)] = type(f"Routed{type(inner).__name__}", (RoutedProcessor,), {"__call__": __call__})
    return cls(inner, router, layer)
