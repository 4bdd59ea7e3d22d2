"""The public entry point for block-sparse attention: checks inputs, chooses a backend, launches.

CUDA tensors run a GPU kernel: the classic Triton kernel, or on Hopper (sm90) the Gluon kernel
(gluon_attention.py); CPU tensors run the PyTorch implementation of the same layout (or the
Triton interpreter when asked, which is how CI tests the kernel). The choice is backends.py's:
``backend="triton"`` / ``"gluon"`` force one (a forced Gluon call on inputs it cannot take raises,
naming why); ``"auto"`` follows ``VIDEOACCEL_KERNEL`` / ``GLUON_DEFAULT``. An automatic Gluon choice
the inputs do not fit runs the classic kernel instead: counted in ``GLUON_FALLBACKS`` and warned once
per reason, never silently wrong. (The router chooses once per call shape and counts its fallbacks in
``videoaccel.report`` instead.)
"""
from __future__ import annotations

import warnings
from collections import Counter
from typing import Literal, overload

import torch

from .backends import Backend, choose, run
from .checks import check_qkv
from .layout import BlockLayout

GLUON_FALLBACKS: Counter = Counter()  # reason -> calls that wanted Gluon automatically and ran the classic kernel


def _fallback(reason: str) -> None:
    if not GLUON_FALLBACKS[reason]:
        warnings.warn(f"Gluon attention kernel not used ({reason}): running the classic Triton kernel "
                      "(counted in videoaccel.kernels.attention.GLUON_FALLBACKS)", stacklevel=3)
    GLUON_FALLBACKS[reason] += 1


def check_call(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: BlockLayout, fp8: bool,
               out: torch.Tensor | None = None) -> None:
    """Every input check of a layout call, in one place (ValueError naming the fix)."""
    check_qkv(q, k, v)
    if fp8 and q.dtype == torch.float32:
        raise ValueError("fp8=True takes bf16 or fp16 inputs: cast q, k, v to bfloat16")
    layout.check_inputs(q, k)
    if out is not None and (out.shape != q.shape or out.dtype != q.dtype or out.device != q.device or out.stride(-1) != 1):
        raise ValueError(f"out must be shaped, typed and placed like q ({tuple(q.shape)}, {q.dtype}, {q.device}) with a contiguous last dim")


@overload
def sparse_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: BlockLayout, *, scale: float | None = None,
                     fp8: bool = False, return_lse: Literal[False] = False, backend: Backend = "auto",
                     out: torch.Tensor | None = None) -> torch.Tensor: ...
@overload
def sparse_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: BlockLayout, *, scale: float | None = None,
                     fp8: bool = False, return_lse: Literal[True], backend: Backend = "auto",
                     out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]: ...
def sparse_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: BlockLayout, *,
                     scale: float | None = None, fp8: bool = False, return_lse: bool = False,
                     backend: Backend = "auto", out: torch.Tensor | None = None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Attention over exactly the (query, key) pairs of ``layout``.

    q [B, Sq, H, D], k/v [B, Skv, H, D] -> out [B, Sq, H, D] (and lse [B, H, Sq] float32, natural
    log, when ``return_lse``). ``fp8`` quantises q/k/v to e4m3 first (CUDA or interpreter only).
    Rows that see no key return zeros (lse -inf); an idle head's rows are not written. ``out``
    (shaped and typed like q) is written in place when given.
    """
    check_call(q, k, v, layout, fp8, out)
    scale = q.shape[-1] ** -0.5 if scale is None else float(scale)
    chosen, reason = choose(q, k, v, layout, fp8, backend)
    if reason:
        _fallback(reason)
    return run(chosen, q, k, v, layout, scale, return_lse, fp8, out)
