"""Input checks shared by every kernel entry point, so each bad input gets one message naming the fix.

Kernels take the diffusers layout [B, S, H, D]. The Triton kernels need a CUDA GPU, or the Triton
interpreter on CPU (TRITON_INTERPRET=1, read when videoaccel is imported).
"""
from __future__ import annotations

import torch

from ._triton_utils import INTERPRET

DTYPES = (torch.bfloat16, torch.float16, torch.float32)
HEAD_DIMS = (64, 128)  # what the block-sparse kernels are compiled for


def check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor | None = None, *, kernel: bool = True) -> None:
    """q [B, Sq, H, D], k (and v) [B, Skv, H, D]: rank, matching sizes, one float dtype and device, no empty
    axis; for our Triton kernels (``kernel``) also bf16/fp16/fp32, a head dim they are built for and a
    contiguous last dim."""
    ts = (q, k) if v is None else (q, k, v)
    shapes = ", ".join(str(tuple(t.shape)) for t in ts)
    if any(t.dim() != 4 for t in ts):
        raise ValueError(f"q, k, v must be [B, S, H, D] (the diffusers layout; add a batch axis with x[None]); got {shapes}")
    if v is not None and k.shape != v.shape:
        raise ValueError(f"k and v must match in shape (the same number of keys and values); got {shapes}")
    if q.shape[0] != k.shape[0] or q.shape[2:] != k.shape[2:]:
        raise ValueError(f"q and k must share B, H, D (only S may differ); got {shapes}")
    if 0 in q.shape or 0 in k.shape:
        raise ValueError(f"q, k, v have an empty axis ({shapes}): skip the call when there is no batch or no token")
    if len({t.dtype for t in ts}) > 1 or (kernel and q.dtype not in DTYPES) or not q.dtype.is_floating_point:
        raise ValueError(f"q, k, v must share one dtype of bf16, fp16 or fp32; got {', '.join(str(t.dtype) for t in ts)}: cast them")
    if len({t.device for t in ts}) > 1:
        raise ValueError(f"q, k, v are on {', '.join(str(t.device) for t in ts)}: move them to one device")
    if not kernel:
        return
    if q.shape[-1] not in HEAD_DIMS:
        raise ValueError(f"head dim {q.shape[-1]} is not supported: the kernels take {' or '.join(map(str, HEAD_DIMS))} "
                         "(route this head to dense_attention)")
    if any(t.stride(-1) != 1 for t in ts):
        raise ValueError("the last (head) dim of q, k, v must be contiguous: call .contiguous()")


def check_triton_device(device: torch.device) -> None:
    """The Triton kernels run on CUDA, or on CPU only under the interpreter."""
    if device.type == "cpu" and not INTERPRET:
        raise ValueError("the Triton kernels need a CUDA GPU, or on CPU the interpreter: set TRITON_INTERPRET=1 "
                         "before importing videoaccel (or use backend='torch' for CPU tensors)")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"tensors on {device} are not supported: use a CUDA GPU or the CPU")
