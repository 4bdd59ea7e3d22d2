"""Kernel backends: each says once what it can run, and one function chooses (``choose``).

A backend is a name, a check that returns why it cannot run a call (None: it can) and its launcher
(same contract for all: q/k/v [B, S, H, D], a ``BlockLayout``, the scale, whether to return the lse,
quantised FP8 inputs or None, an output buffer or None). The order of preference, the environment
override ``VIDEOACCEL_KERNEL`` and the measured exception (``gluon_preferred``) live in
``choose_kernel``, a pure function tested without a GPU. A choice the inputs do not fit comes back
with the reason, which callers count (``sparse_attention``: ``GLUON_FALLBACKS``; the router: in
``videoaccel.report``), never silently.

Dense attention of a whole call is not a layout: the router sends all-dense calls to cuDNN SDPA
(``kernels.dense_attention``) and every other call, dense heads included, through one layout launch.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Literal

import torch

from ._triton_utils import INTERPRET
from .checks import check_triton_device
from .fp8 import Fp8Inputs, quantize_fp8
from .gluon_attention import fp8_v_pad, gluon_block_sparse_attention, gluon_preferred, gluon_unsupported
from .layout import BlockLayout
from .torch_attention import torch_block_sparse_attention
from .triton_attention import triton_block_sparse_attention

Backend = Literal["auto", "triton", "gluon", "torch"]
GLUON_DEFAULT = True  # "auto" picks the Gluon kernel on sm90 (H100: 1.3-1.5x Flex, bench/kernels-h100.json)
KERNEL_ENV = "VIDEOACCEL_KERNEL"


def _triton_unsupported(q, k, v, layout, fp8: bool) -> str | None:
    try:
        check_triton_device(q.device)
    except ValueError as e:
        return str(e)
    return None


def _torch_unsupported(q, k, v, layout, fp8: bool) -> str | None:
    return "fp8 needs the Triton kernel (a CUDA GPU, or TRITON_INTERPRET=1 with backend='triton')" if fp8 else None


def _torch_run(q, k, v, layout, scale, return_lse, fp8, out):
    return torch_block_sparse_attention(q, k, v, layout, scale, return_lse, out=out)


@dataclass(frozen=True)
class KernelBackend:
    name: str
    unsupported: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, BlockLayout, bool], str | None]
    run: Callable[..., torch.Tensor | tuple[torch.Tensor, torch.Tensor]]
    fp8_pad: Callable[[BlockLayout], int] = lambda layout: 0  # quantize_fp8's v_pad for this backend's FP8 reads


BACKENDS: dict[str, KernelBackend] = {b.name: b for b in [
    KernelBackend("gluon", gluon_unsupported, gluon_block_sparse_attention, fp8_v_pad),
    KernelBackend("triton", _triton_unsupported, triton_block_sparse_attention),
    KernelBackend("torch", _torch_unsupported, _torch_run),
]}


def auto_kernel(env: str | None) -> str:
    """The kernel ``backend="auto"`` wants on a GPU: ``VIDEOACCEL_KERNEL`` when set, else ``GLUON_DEFAULT``."""
    want = (env or "").strip().lower() or ("gluon" if GLUON_DEFAULT else "triton")
    if want not in ("gluon", "triton"):
        raise ValueError(f"{KERNEL_ENV}={env!r} is not a kernel: set it to 'gluon' or 'triton' (or unset it)")
    return want


def choose_kernel(backend: str, *, env: str | None, gluon_reason: str | None,
                  interpret: bool = INTERPRET, gluon_faster: bool = True) -> tuple[str, str | None]:
    """(kernel, fallback reason) for a CUDA (or interpreter) call: kernel is "triton" or "gluon".

    Pure, so the policy is tested without a GPU. ``gluon_reason`` is gluon_unsupported()'s answer
    (None: Gluon can run these inputs); ``gluon_faster`` is gluon_preferred()'s (False: the default
    choice keeps the classic kernel, which measured faster there; an explicit request still gets
    Gluon). Raises ValueError for a forced Gluon call it cannot honour and for an unknown backend or
    environment value.
    """
    if backend not in ("auto", "triton", "gluon"):
        raise ValueError(f"unknown backend {backend!r}: use 'auto', 'triton', 'gluon' or 'torch'")
    why = "the Triton interpreter runs the classic kernel" if interpret else gluon_reason
    if backend == "gluon":
        if why:
            raise ValueError(f"backend='gluon' cannot run this call: {why}; use backend='triton' or 'auto'")
        return "gluon", None
    if backend == "triton":
        return "triton", None
    want = auto_kernel(env)
    if want == "gluon" and not (env or "").strip() and not gluon_faster:
        return "triton", None
    if want == "gluon" and why:
        return "triton", why
    return want, None


def choose(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: BlockLayout, fp8: bool = False,
           backend: str = "auto") -> tuple[KernelBackend, str | None]:
    """The backend for this call and the reason it is not the one ``auto`` wanted (None: no fallback).
    CPU tensors take the PyTorch path unless a Triton backend is asked for (the interpreter)."""
    if backend == "auto" and not q.is_cuda:
        backend = "torch"
    if backend == "torch":
        why = _torch_unsupported(q, k, v, layout, fp8)
        if why:
            raise ValueError(why)
        return BACKENDS["torch"], None
    env = os.environ.get(KERNEL_ENV)
    wants_gluon = backend == "gluon" or (backend == "auto" and auto_kernel(env) == "gluon")  # only then ask what Gluon cannot take
    reason = gluon_unsupported(q, k, v, layout, fp8=fp8) if wants_gluon else None
    kernel, reason = choose_kernel(backend, env=env, gluon_reason=reason, gluon_faster=gluon_preferred(q.shape[-1], layout.block_m))
    chosen = BACKENDS[kernel]
    why = chosen.unsupported(q, k, v, layout, fp8)
    if why:
        raise ValueError(why)
    return chosen, reason


def run(chosen: KernelBackend, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: BlockLayout, scale: float,
        return_lse: bool = False, fp8: bool = False, out: torch.Tensor | None = None):
    """Launch ``chosen`` (quantising first for FP8, with the backend's V padding)."""
    f8: Fp8Inputs | None = quantize_fp8(q, k, v, v_pad=chosen.fp8_pad(layout)) if fp8 else None
    return chosen.run(q, k, v, layout, scale, return_lse, f8, out)
