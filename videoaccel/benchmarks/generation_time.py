"""The transformer's time per generation, eager, compiled and with CUDA graphs: speed beside fidelity.

Why the transformer only: a generation also encodes text and decodes video, which no attention plan
changes; the product's claim is about the denoising loop. CUDA events around every transformer call
(forward hooks), summed per generation, batch 1; the first generation of each mode is excluded
(compilation, table building, graph captures). Modes: ``eager``; ``compiled`` (regional torch.compile,
default mode); ``graphs`` (compiled, and whole forwards replayed as CUDA graphs per step context:
compile_transformer(mode="reduce-overhead")). The dense baseline runs through the same path with the
``dense`` profile, so every mode compares like with like. ``attention_ms``: the routed attention alone.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..pipelines import report, set_timing
from ..pipelines.compile import compile_transformer, uncompile

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

MODES = ("eager", "compiled", "graphs")


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


def attention_ms(pipe: DiffusionPipeline, prompt: str, seed: int, **call) -> float:
    """ms of routed attention in one generation of the accelerated ``pipe`` (every call timed by report(), eager):
    what a profile's ``expected_cost`` predicts relative to dense. Run it warm (tables and layouts built)."""
    def total() -> float:
        return sum(r.attention_ms or 0.0 for t in report(pipe).transformers.values() for r in t.layers.values())

    set_timing(pipe, True)
    try:
        before = total()
        pipe(prompt=prompt, generator=torch.Generator("cpu").manual_seed(seed), output_type="latent", **call)
        return total() - before
    finally:
        set_timing(pipe, False)
