"""torch.compile for accelerated (or dense) transformers: regional by default.

Regional compilation compiles the repeated blocks (diffusers' ``compile_repeated_blocks`` where
the model declares them, else the spec's blocks one by one): all blocks share one compiled graph,
so compile time does not grow with depth. Routed attention is an opaque custom op inside it
(routing/op.py), so accelerating, changing profiles or restoring needs no recompilation of the
non-attention code beyond the first switch from the stock processors.

Modes: ``None`` (inductor default), ``"max-autotune-no-cudagraphs"``, or ``"reduce-overhead"``
(CUDA graphs around everything but the attention op, which is tagged cudagraph-unsafe).
"""
from __future__ import annotations

import torch

from .models import spec_for


def compile_transformer(model: torch.nn.Module, *, mode: str | None = None, regional: bool = True,
                        backend: str = "inductor", fullgraph: bool = False) -> None:
    """Compile ``model`` in place (lazily: the first forward compiles). Undo with ``uncompile``."""
    kw = dict(mode=mode, backend=backend, fullgraph=fullgraph) if backend == "inductor" else dict(backend=backend, fullgraph=fullgraph)
    if not regional:
        model.compile(**kw)
        return
    if getattr(model, "_repeated_blocks", None):
        model.compile_repeated_blocks(**kw)
        return
    for block in spec_for(model).blocks(model):  # e.g. CogVideoX declares no repeated blocks
        block.compile(**kw)


def uncompile(model: torch.nn.Module) -> None:
    """Back to eager for ``model`` and its blocks (dynamo's caches stay; torch._dynamo.reset() clears them)."""
    for m in model.modules():
        if getattr(m, "_compiled_call_impl", None) is not None:
            m._compiled_call_impl = None
