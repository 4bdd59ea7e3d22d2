"""The one entry point for block-sparse attention: checks inputs, then picks the backend.

CUDA tensors run the Triton kernel; CPU tensors run the PyTorch implementation of the same
layout (or the Triton interpreter when asked, which is how CI tests the kernel).
"""
from __future__ import annotations

from typing import Literal, overload

import torch

from .checks import check_qkv, check_triton_device
from .fp8 import quantize_fp8
from .layout import BlockLayout
from .torch_attention import torch_block_sparse_attention
from .triton_attention import triton_block_sparse_attention

Backend = Literal["auto", "triton", "torch"]


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
    if backend == "auto":
        backend = "triton" if q.is_cuda else "torch"
    if backend == "torch":
        if fp8:
            raise ValueError("fp8 needs the Triton kernel (a CUDA GPU, or TRITON_INTERPRET=1 with backend='triton')")
        return torch_block_sparse_attention(q, k, v, layout, scale, return_lse, out=out)
    if backend != "triton":
        raise ValueError(f"unknown backend {backend!r}: use 'auto', 'triton' or 'torch'")
    check_triton_device(q.device)
    f8 = quantize_fp8(q, k, v) if fp8 else None
    return triton_block_sparse_attention(q, k, v, layout, scale, return_lse, fp8=f8, out=out)
