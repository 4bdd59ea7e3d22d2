"""Readable float64 references: attention under a layout's token mask, and FP8 quantization.

These are what every kernel is tested against. They materialise the full Sq x Skv mask, so
use them on small shapes only.
"""
from __future__ import annotations

import math

import torch

from .dense import masked_softmax
from .fp8 import E4M3_MAX
from .layout import BlockLayout


def masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor,
                     scale: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """q/k/v [B, S, H, D], mask bool [B, H, Sq, Skv] -> (out [B, Sq, H, D] float64, lse [B, H, Sq]).

    Rows that see no key give zeros and lse = -inf.
    """
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    qd, kd, vd = (t.double().transpose(1, 2) for t in (q, k, v))
    p, lse = masked_softmax((qd @ kd.transpose(-1, -2)) * scale, mask)
    out = (p @ vd).transpose(1, 2)
    return out, lse


def layout_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: BlockLayout,
                     scale: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 attention of exactly the pairs the layout computes."""
    return masked_attention(q, k, v, layout.key_mask(q.shape[0]), scale)



def fp8_stats_reference(k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What fp8.fp8_stats must produce: K's mean, max |K - mean| / 448 and max |V| / 448 over tokens, [B, H, D]."""
    k_mean = k.mean(dim=1, dtype=torch.float32)
    k_min, k_max = torch.aminmax(k, dim=1)
    k_scale = torch.maximum(k_max.float() - k_mean, k_mean - k_min.float()).clamp_min(1e-12) / E4M3_MAX
    v_scale = torch.linalg.vector_norm(v, ord=float("inf"), dim=1, dtype=torch.float32).clamp_min(1e-12) / E4M3_MAX
    return k_mean, k_scale, v_scale


def quantize_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                       stats: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, ...]:
    """What videoaccel.kernels.fp8.quantize_fp8 must produce, written plainly in torch.

    K minus its mean over tokens, scaled per channel (ks); Q times ks, scaled per token; V scaled
    per channel. Returns (q8, q_scale [B,H,S], k8, k_scale [B,H,D], v8, v_scale [B,H,D],
    k_mean [B,H,D]) with q8/k8/v8 [B,H,S,D]: q * ks ~= q8 * q_scale, k - mean ~= k8 * ks, v ~= v8 * vs.
    ``stats`` (k_mean, k_scale, v_scale): quantise with these instead of fp8_stats_reference's (to
    check the quantisation bit for bit apart from the statistics' summation order).
    """
    k_mean, ks, vs = stats if stats is not None else fp8_stats_reference(k, v)
    qf, kf, vf = (t.float().transpose(1, 2) for t in (q, k, v))
    qk = qf * ks[:, :, None]
    qs = qk.abs().amax(-1).clamp_min(1e-12) / E4M3_MAX
    q8 = (qk * (1 / qs)[..., None]).to(torch.float8_e4m3fn)  # times the reciprocal, as the kernel does
    k8 = ((kf - k_mean[:, :, None]) * (1 / ks)[:, :, None]).to(torch.float8_e4m3fn)
    v8 = (vf * (1 / vs)[:, :, None]).to(torch.float8_e4m3fn)
    return q8, qs, k8, ks, v8, vs, k_mean


def dequantize_fp8(f8, seq_kv: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fp8Inputs -> the float64 q, k, v [B, S, H, D] they stand for (Q * ks / ks, K smoothed back,
    V unscaled): an FP8 kernel is exact attention of these up to P's e4m3 rounding."""
    q = f8.q.double() * f8.q_scale[..., None].double() / f8.k_scale[:, :, None].double()
    k = f8.k.double() * f8.k_scale[:, :, None].double() + f8.k_mean[:, :, None].double()
    v = f8.v_t[..., f8.v_pad: f8.v_pad + seq_kv].transpose(-1, -2).double() * f8.v_scale[:, :, None].double()
    return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)


def pyramid_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, levels: torch.Tensor, block: int,
                      video_range: tuple[int, int], text_range: tuple[int, int] = (0, 0), compensate: bool = False,
                      scale: float | None = None, text_lengths: list[int] | None = None) -> torch.Tensor:
    """float64 pyramid attention written as one masked softmax over every candidate key.

    Keys: all tokens (level 0, text included), then for l = 1.. the video tokens mean-pooled over
    2**l consecutive tokens (logit + l ln 2), then (``compensate``) one mean key per video block
    (logit + ln n). Video query rows of block i see level-l keys of block j where levels[h, i, j]
    == l, the block means of skipped blocks when compensating, and the text; other rows see every
    level-0 key. levels: int [H, NB, NB], -1 = skip. ``text_lengths``: valid text keys per sample
    (the rest of text_range is padding, seen by no row).
    """
    B, S, H, D = q.shape
    scale = D ** -0.5 if scale is None else scale
    lo, hi = video_range
    sv = hi - lo
    nb = -(-sv // block)

    def pooled(x, f):  # [B, ceil(sv/f), H, D] means over groups of f (last group partial)
        xs = x[:, lo:hi].double()
        n = -(-sv // f)
        xs = torch.nn.functional.pad(xs, (0, 0, 0, 0, 0, n * f - sv))
        cnt = torch.clamp(sv - torch.arange(n, device=x.device) * f, max=f).double()
        return xs.reshape(B, n, f, H, D).sum(2) / cnt[None, :, None, None], cnt

    keys, vals, bias, key_block, key_level = [k.double()], [v.double()], [torch.zeros(S, dtype=torch.float64)], [], []
    pos = torch.arange(S)
    key_block.append(torch.where((pos >= lo) & (pos < hi), (pos - lo) // block, -1))
    key_level.append(torch.zeros(S, dtype=torch.long))
    max_level = int(levels.max()) if levels.numel() else 0
    for lvl in range(1, max_level + 1):
        f = 2 ** lvl
        kp, _ = pooled(k, f)
        vp, _ = pooled(v, f)
        keys.append(kp)
        vals.append(vp)
        bias.append(torch.full((kp.shape[1],), lvl * math.log(2), dtype=torch.float64))
        key_block.append(torch.arange(kp.shape[1]) * f // block)
        key_level.append(torch.full((kp.shape[1],), lvl))
    if compensate:
        kp, cnt = pooled(k, block)
        vp, _ = pooled(v, block)
        keys.append(kp)
        vals.append(vp)
        bias.append(torch.log(cnt).cpu())
        key_block.append(torch.arange(nb))
        key_level.append(torch.full((nb,), -1))
    kc, vc = torch.cat(keys, 1), torch.cat(vals, 1)
    bias, key_block, key_level = torch.cat(bias), torch.cat(key_block), torch.cat(key_level)
    is_text = torch.zeros(B, kc.shape[1], dtype=torch.bool)
    for b in range(B):
        n = text_range[1] - text_range[0] if text_lengths is None else text_lengths[b]
        is_text[b, text_range[0]:text_range[0] + n] = True
    is_text = is_text[:, None, None]  # [B, 1, 1, K]
    rows = torch.arange(S)
    in_video = (rows >= lo) & (rows < hi)
    qb = ((rows - lo) // block).clamp(0, nb - 1)
    lv = levels.cpu().long()  # [H, NB, NB]
    want = lv[:, qb][:, :, key_block.clamp(min=0)]  # [H, S, K]: the level each key must have to count
    mask = (want == key_level[None, None]) & (key_block >= 0)[None, None]
    if compensate:
        mask |= (want == -1) & (key_level == -1)[None, None]
    mask = mask[None] | is_text  # [B, H, S, K]
    dense_row = ((key_level == 0) & (key_block >= 0))[None, None, None] | is_text
    mask = torch.where(in_video[None, None, :, None], mask, dense_row)
    s = torch.einsum("bqhd,bkhd->bhqk", q.double(), kc) * scale + bias.to(q.device)
    p, _ = masked_softmax(s, mask.to(q.device))
    return torch.einsum("bhqk,bkhd->bqhd", p, vc)
