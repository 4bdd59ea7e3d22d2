"""The one entry point for block-sparse attention: checks inputs, then picks the backend.

CUDA tensors run the Triton kernel; CPU tensors run the PyTorch implementation of the same
layout (or the Triton interpreter when asked, which is how CI tests the kernel).
"""
from __future__ import annotations

from typing import Literal

import torch

from .fp8 import quantize_fp8
from .layout import BlockLayout
from .torch_attention import torch_block_sparse_attention
from .triton_attention import triton_block_sparse_attention

Backend = Literal["auto", "triton", "torch"]
_DTYPES = (torch.bfloat16, torch.float16, torch.float32)


def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: BlockLayout, fp8: bool) -> None:
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(f"q, k, v must be [B, S, H, D] (the diffusers layout); got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if k.shape != v.shape or q.shape[0] != k.shape[0] or q.shape[2:] != k.shape[2:]:
        raise ValueError(f"k and v must match, and share B, H, D with q: got q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    if not (q.dtype == k.dtype == v.dtype) or q.dtype not in _DTYPES:
        raise ValueError(f"q, k, v must share one dtype of bf16, fp16 or fp32; got {q.dtype}, {k.dtype}, {v.dtype}: cast them")
    if fp8 and q.dtype == torch.float32:
        raise ValueError("fp8=True takes bf16 or fp16 inputs: cast q, k, v to bfloat16")
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v are on {q.device}, {k.device}, {v.device}: move them to one device")
    if q.shape[-1] not in (64, 128):
        raise ValueError(f"head dim {q.shape[-1]} is not supported: the kernels take 64 or 128 (route this head to dense_attention)")
    if any(t.stride(-1) != 1 for t in (q, k, v)):
        raise ValueError("the last (head) dim of q, k, v must be contiguous: call .contiguous()")
    layout.check_inputs(q, k)


def sparse_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: BlockLayout, *,
                     scale: float | None = None, fp8: bool = False, return_lse: bool = False,
                     backend: Backend = "auto", out: torch.Tensor | None = None):
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
    f8 = quantize_fp8(q, k, v) if fp8 else None
    return triton_block_sparse_attention(q, k, v, layout, scale, return_lse, fp8=f8, out=out)
