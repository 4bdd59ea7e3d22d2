"""Readable float64 references: attention under a layout's token mask, and FP8 quantization.

These are what every kernel is tested against. They materialise the full Sq x Skv mask, so
use them on small shapes only.
"""
from __future__ import annotations

import math

import torch

from .layout import BlockLayout


def masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor,
                     scale: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """q/k/v [B, S, H, D], mask bool [B, H, Sq, Skv] -> (out [B, Sq, H, D] float64, lse [B, H, Sq]).

    Rows that see no key give zeros and lse = -inf.
    """
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    qd, kd, vd = (t.double().transpose(1, 2) for t in (q, k, v))
    s = (qd @ kd.transpose(-1, -2)) * scale
    s = s.masked_fill(~mask, -math.inf)
    lse = torch.logsumexp(s, -1)
    p = torch.exp(s - torch.where(torch.isinf(lse), 0.0, lse)[..., None])
    out = (p @ vd).transpose(1, 2)
    return out, lse


def layout_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: BlockLayout,
                     scale: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 attention of exactly the pairs the layout computes."""
    return masked_attention(q, k, v, layout.key_mask(q.shape[0]), scale)


E4M3_MAX = 448.0


def quantize_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
    """What videoaccel.kernels.fp8.quantize_fp8 must produce, written plainly in torch.

    K minus its mean over tokens, scaled per channel (ks); Q times ks, scaled per token; V scaled
    per channel. Returns (q8, q_scale [B,H,S], k8, k_scale [B,H,D], v8, v_scale [B,H,D],
    k_mean [B,H,D]) with q8/k8/v8 [B,H,S,D]: q * ks ~= q8 * q_scale, k - mean ~= k8 * ks, v ~= v8 * vs.
    """
    from .fp8 import fp8_stats  # the statistics are plain torch reductions, shared

    k_mean, ks, vs = fp8_stats(k, v)
    qf, kf, vf = (t.float().transpose(1, 2) for t in (q, k, v))
    qk = qf * ks[:, :, None]
    qs = qk.abs().amax(-1).clamp_min(1e-12) / E4M3_MAX
    q8 = (qk / qs[..., None]).to(torch.float8_e4m3fn)
    k8 = ((kf - k_mean[:, :, None]) / ks[:, :, None]).to(torch.float8_e4m3fn)
    v8 = (vf / vs[:, :, None]).to(torch.float8_e4m3fn)
    return q8, qs, k8, ks, v8, vs, k_mean
