"""torch.compile for accelerated (or dense) transformers: regional by default.

Regional compilation compiles the repeated blocks (diffusers' ``compile_repeated_blocks`` where
the model declares them, else the spec's blocks one by one): all blocks share one compiled graph,
so compile time does not grow with depth. Routed attention is an opaque custom op inside it
(routing/op.py), so accelerating, changing profiles or restoring needs no recompilation of the
non-attention code beyond the first switch from the stock processors.

Modes: ``None`` (inductor default), ``"max-autotune-no-cudagraphs"``, or ``"reduce-overhead"``. On an
accelerated transformer ``"reduce-overhead"`` compiles in the default mode and replays whole forwards
as CUDA graphs, one per step context (graphs.py): inductor's own graphs cannot take the attention op
(tagged cudagraph-unsafe: its work changes between steps), so they would leave its launches and the
host work around it in every forward. On a dense transformer it is inductor's mode, unchanged.
"""
from __future__ import annotations

import torch

from .installation import installation_of
from .models import spec_for


def compile_transformer(model: torch.nn.Module, *, mode: str | None = None, regional: bool = True,
                        backend: str = "inductor", fullgraph: bool = False) -> None:
    """Compile ``model`` in place (lazily: the first forward compiles). Undo with ``uncompile``."""
    inst = installation_of(model)
    if mode == "reduce-overhead" and inst is not None:
        if not regional:
            raise ValueError("CUDA graphs of an accelerated forward take the regional compile (regional=True)")
        inst.cuda_graphs(True)
        mode = None
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
    """Back to eager for ``model`` and its blocks, without CUDA graphs (dynamo's caches stay; torch._dynamo.reset()
    clears them)."""
    inst = installation_of(model)
    if inst is not None and inst.step_hook.graphs is not None:
        inst.cuda_graphs(False)
    for m in model.modules():
        if getattr(m, "_compiled_call_impl", None) is not None:
            m._compiled_call_impl = None
