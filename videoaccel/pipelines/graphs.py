"""CUDA graphs of an accelerated transformer's whole forward: captured once per step context, replayed after.

Why whole forwards, and why here: at the lengths where attention does not dominate (480p, the
12k-token testbed) a forward is hundreds of small launches whose host cost rivals the GPU work, and
torch.compile's ``reduce-overhead`` cannot graph the attention op (its work changes between steps), so
the launches around it stay. What a forward launches is fixed by its ``StepContext``: the phase (dense
warm-up or timestep bucket: which plans run) and which per-call estimates refresh (the router decides
both once per forward). So one graph per (phase, refresh, input shapes and dtypes, other arguments)
serves every step with that context: its first forward runs eagerly (compiling, building tables,
tuning), is then captured, and later forwards copy their inputs into the graph's static buffers, replay
it and clone the output (CFG's two passes replay one graph twice). The router's bookkeeping (the
report's per-call statistics) recorded during the capture is replayed with it.

Not combinable with diffusers' step caches (they decide on the host whether blocks run), attention
timing (it synchronises per call) or observers (they read q/k/v on the host): refused, naming why.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..routing import AttentionRouter
from . import caches


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    inputs: list[torch.Tensor]  # static buffers, in the order ``_tensors`` finds the call's tensors
    output: Any
    calls: list  # the router's recorded bookkeeping of one forward


def _tensors(args: tuple, kwargs: dict) -> list[torch.Tensor]:
    found = [a for a in args if isinstance(a, torch.Tensor)]
    found += [v for _, v in sorted(kwargs.items()) if isinstance(v, torch.Tensor)]
    return found


def _signature(args: tuple, kwargs: dict) -> tuple:
    """What besides tensor values changes a forward: tensor shapes, dtypes, devices and every other argument."""
    def one(x):
        if isinstance(x, torch.Tensor):
            return ("T", tuple(x.shape), x.dtype, str(x.device))
        if isinstance(x, (list, tuple)):
            return tuple(one(y) for y in x)
        return repr(x)
    return tuple(one(a) for a in args) + tuple((k, one(v)) for k, v in sorted(kwargs.items()))


def _clone(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.clone()
    if isinstance(x, (list, tuple)):
        return type(x)(_clone(y) for y in x)
    if hasattr(x, "to_tuple"):  # diffusers' output dataclasses
        return type(x)(*(_clone(y) for y in x.to_tuple()))
    return x


class ForwardGraphs:
    """The CUDA graphs of one transformer's forward, keyed by step context."""

    def __init__(self, router: AttentionRouter):
        self.router = router
        self.graphs: dict[tuple, _Graph] = {}
        self._pool = None
        self.captures = 0

    def check(self, model: torch.nn.Module) -> None:
        if caches.cache_config(model) is not None:
            raise ValueError("CUDA graphs of an accelerated forward cannot stack with a diffusers step cache (it decides "
                             "on the host which blocks run): disable the cache or compile without cuda graphs")
        if self.router.timing or self.router.observers:
            raise ValueError("CUDA graphs replay without the host: turn off videoaccel.set_timing and observers, or "
                             "compile without cuda graphs")

    def __call__(self, model: torch.nn.Module, forward: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        self.check(model)
        ctx = self.router.context
        key = (ctx.phase, ctx.refresh, _signature(args, kwargs))
        entry = self.graphs.get(key)
        if entry is None:
            return self._capture(key, forward, args, kwargs)
        for static, x in zip(entry.inputs, _tensors(args, kwargs)):
            static.copy_(x)
        entry.graph.replay()
        self.router.replay(entry.calls)
        return _clone(entry.output)

    def _capture(self, key: tuple, forward: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        """Run eagerly (the result returned), then capture the same forward on static copies of its inputs."""
        lasts = self.router.compiler.estimate_state()
        out = forward(*args, **kwargs)
        self.router.compiler.estimate_state(lasts)  # the capture estimates exactly as the eager run did
        statics = {id(t): t.clone() for t in _tensors(args, kwargs)}
        s_args = tuple(statics.get(id(a), a) for a in args)
        s_kwargs = {k: statics.get(id(v), v) for k, v in kwargs.items()}
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with self.router.recording() as calls, torch.cuda.graph(graph, pool=self._pool):
            output = forward(*s_args, **s_kwargs)
        self._pool = graph.pool()  # graphs of one forward share memory: they never run at once, outputs are cloned
        self.graphs[key] = _Graph(graph, _tensors(s_args, s_kwargs), output, calls)
        self.captures += 1
        return out
