"""The transformer's time per generation, eager, compiled and with CUDA graphs: speed beside fidelity.

Why the transformer only: a generation also encodes text and decodes video, which no attention plan
changes; the product's claim is about the denoising loop. CUDA events around every transformer call
(forward hooks), summed per generation, batch 1; the first generation of each mode is excluded
(compilation, table building, graph captures). Modes: ``eager``; ``compiled`` (regional torch.compile,
default mode); ``graphs`` (compiled, and whole forwards replayed as CUDA graphs per step context:
compile_transformer(mode="reduce-overhead")). The dense baseline runs through the same path with the
``dense`` profile, so every mode compares like with like. ``attention_ms``: the GPU time of the routed attention alone.
"""
from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import torch

from ..pipelines.compile import compile_transformer, uncompile

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

MODES = ("eager", "compiled", "graphs")
OP = "videoaccel::attention"  # routing/op.py: every routed call, dense baseline included


def transformer_ms(pipe: DiffusionPipeline, prompts: list[str], seeds: list[int], mode: str = "eager", **call) -> float:
    """Mean ms of transformer work per generation over ``prompts[1:]`` (the first warms up), in ``mode``."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: use one of {', '.join(MODES)}")
    model = pipe.transformer
    events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []

    def pre(*_):
        events.append((torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)))
        events[-1][0].record()

    def post(*_):
        events[-1][1].record()

    handles = [model.register_forward_pre_hook(pre), model.register_forward_hook(post)]
    if mode != "eager":
        torch._dynamo.reset()
        compile_transformer(model, mode="reduce-overhead" if mode == "graphs" else None)
    total = 0.0
    try:
        for i, (prompt, seed) in enumerate(zip(prompts, seeds)):
            events.clear()
            pipe(prompt=prompt, generator=torch.Generator("cpu").manual_seed(seed), output_type="latent", **call)
            torch.cuda.synchronize()
            if i:
                total += sum(a.elapsed_time(b) for a, b in events)
    finally:
        for h in handles:
            h.remove()
        if mode != "eager":
            uncompile(model)
            torch._dynamo.reset()
    return total / max(len(prompts) - 1, 1)


def attention_ms(pipe: DiffusionPipeline, prompt: str, seed: int, top: int = 8, **call) -> tuple[float, dict[str, float]]:
    """GPU time (ms) of every kernel launched inside ``videoaccel::attention`` in one generation of the accelerated
    ``pipe`` (torch.profiler), and the ``top`` kernels' shares: what a profile's ``expected_cost`` predicts relative
    to dense. Kernel time, not wall time: no per-call synchronisation, so host work between launches is not counted
    (compiled and graph runs hide it; report()'s timing mode synchronises per call and counts it). Run it warm."""
    acts = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=acts) as prof:
        pipe(prompt=prompt, generator=torch.Generator("cpu").manual_seed(seed), output_type="latent", **call)
        torch.cuda.synchronize()
    kernels: Counter[str] = Counter()

    def walk(e) -> None:
        for k in e.kernels:
            kernels[k.name] += k.duration / 1e3
        for child in e.cpu_children:
            walk(child)

    for e in prof.events():
        parent = e.cpu_parent
        while parent is not None and parent.name != OP:
            parent = parent.cpu_parent
        if e.name == OP and parent is None:  # the outermost record of each call (no double count)
            walk(e)
    if not kernels:
        raise RuntimeError(f"no GPU kernel ran inside {OP}: is the pipeline accelerated and on a GPU?")
    return sum(kernels.values()), {name[:80]: ms for name, ms in kernels.most_common(top)}
