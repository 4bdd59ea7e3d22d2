"""The one entry point for block-sparse attention: checks inputs, then picks the backend.

CUDA tensors run a GPU kernel: the classic Triton kernel, or on Hopper (sm90) the Gluon kernel
(gluon_attention.py); CPU tensors run the PyTorch implementation of the same layout (or the
Triton interpreter when asked, which is how CI tests the kernel).

Choosing the GPU kernel (``choose_kernel``): ``backend="triton"`` / ``"gluon"`` force one (a
forced Gluon call on inputs it cannot take raises, naming why). ``backend="auto"`` follows the
environment variable ``VIDEOACCEL_KERNEL=gluon|triton`` when set (whole pipelines), else
``GLUON_DEFAULT`` (True), except where the classic kernel measured faster (``gluon_preferred``:
64-row layouts at head dim 64). An automatic Gluon choice the inputs do not fit (a head dim, strides,
FP8 on 64-row blocks, not sm90, the interpreter) runs the classic kernel instead: counted in ``GLUON_FALLBACKS`` and
warned once per reason, never silently wrong.
"""
from __future__ import annotations

import os
import warnings
from collections import Counter
from typing import Literal, overload

import torch

from ._triton_utils import INTERPRET
from .checks import check_qkv, check_triton_device
from .fp8 import quantize_fp8
from .gluon_attention import fp8_v_pad, gluon_block_sparse_attention, gluon_preferred, gluon_unsupported
from .layout import BlockLayout
from .torch_attention import torch_block_sparse_attention
from .triton_attention import triton_block_sparse_attention

Backend = Literal["auto", "triton", "gluon", "torch"]
GLUON_DEFAULT = True  # "auto" picks the Gluon kernel on sm90 (H100: 1.3-1.5x Flex, bench/kernels-h100.json)
KERNEL_ENV = "VIDEOACCEL_KERNEL"
GLUON_FALLBACKS: Counter = Counter()  # reason -> calls that wanted Gluon automatically and ran the classic kernel


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


def auto_kernel(env: str | None) -> str:
    """The kernel ``backend="auto"`` wants: ``VIDEOACCEL_KERNEL`` when set, else ``GLUON_DEFAULT``."""
    want = (env or "").strip().lower() or ("gluon" if GLUON_DEFAULT else "triton")
    if want not in ("gluon", "triton"):
        raise ValueError(f"{KERNEL_ENV}={env!r} is not a kernel: set it to 'gluon' or 'triton' (or unset it)")
    return want


def _fallback(reason: str) -> None:
    if not GLUON_FALLBACKS[reason]:
        warnings.warn(f"Gluon attention kernel not used ({reason}): running the classic Triton kernel "
                      "(counted in videoaccel.kernels.attention.GLUON_FALLBACKS)", stacklevel=3)
    GLUON_FALLBACKS[reason] += 1


def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: BlockLayout, fp8: bool) -> None:
    check_qkv(q, k, v)
    if fp8 and q.dtype == torch.float32:
        raise ValueError("fp8=True takes bf16 or fp16 inputs: cast q, k, v to bfloat16")
    layout.check_inputs(q, k)


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
    Rows that see no key return zeros (lse -inf). ``out`` (shaped and typed like q) is written
    in place when given.
    """
    _check(q, k, v, layout, fp8)
    if out is not None and (out.shape != q.shape or out.dtype != q.dtype or out.device != q.device or out.stride(-1) != 1):
        raise ValueError(f"out must be shaped, typed and placed like q ({tuple(q.shape)}, {q.dtype}, {q.device}) with a contiguous last dim")
    scale = q.shape[-1] ** -0.5 if scale is None else float(scale)
    if backend == "auto" and not q.is_cuda:
        backend = "torch"
    if backend == "torch":
        if fp8:
            raise ValueError("fp8 needs the Triton kernel (a CUDA GPU, or TRITON_INTERPRET=1 with backend='triton')")
        return torch_block_sparse_attention(q, k, v, layout, scale, return_lse, out=out)
    env = os.environ.get(KERNEL_ENV)
    wants_gluon = backend == "gluon" or (backend == "auto" and auto_kernel(env) == "gluon")  # only then ask what Gluon cannot take
    reason = gluon_unsupported(q, k, v, layout, fp8=fp8) if wants_gluon else None
    kernel, reason = choose_kernel(backend, env=env, gluon_reason=reason, gluon_faster=gluon_preferred(q.shape[-1], layout.block_m))
    if reason:
        _fallback(reason)
    check_triton_device(q.device)
    f8 = quantize_fp8(q, k, v, v_pad=fp8_v_pad(layout) if kernel == "gluon" else 0) if fp8 else None
    if kernel == "gluon":
        return gluon_block_sparse_attention(q, k, v, layout, scale, return_lse, fp8=f8, out=out)
    return triton_block_sparse_attention(q, k, v, layout, scale, return_lse, fp8=f8, out=out)
