"""Dense attention on the fastest dense path: cuDNN SDPA on CUDA (see bench/ and anchors).

Takes the diffusers layout [B, S, H, D]; the transposes are views, no copies.
"""
from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from .checks import check_qkv

log = logging.getLogger(__name__)

# cuDNN first (fastest on Hopper); the others only where cuDNN cannot take the call.
_CUDA_ORDER = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


def masked_softmax(s: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(p, lse) of the scores ``s`` over the keys where ``mask`` is True (last dim). A row that sees no
    key gets p = 0 and lse = -inf, as the kernels give it: the pyramid merge then weighs it zero."""
    s = s.masked_fill(~mask, -math.inf)
    lse = torch.logsumexp(s, -1)
    return torch.exp(s - torch.where(torch.isinf(lse), 0.0, lse)[..., None]), lse


def dense_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """softmax(q k^T * scale) v for q/k/v [B, S, H, D] -> [B, Sq, H, D]."""
    check_qkv(q, k, v, kernel=False)
    qt, kt, vt = (t.transpose(1, 2) for t in (q, k, v))
    if q.is_cuda:
        with sdpa_kernel(_CUDA_ORDER, set_priority=True):
            out = F.scaled_dot_product_attention(qt, kt, vt, scale=scale)
    else:
        out = F.scaled_dot_product_attention(qt, kt, vt, scale=scale)
    return out.transpose(1, 2)
