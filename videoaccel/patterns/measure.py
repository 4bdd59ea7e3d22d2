"""Score candidate layouts of one head on sampled query rows, without materialising S x S.

For R sampled video query rows, the exact attention row (all S keys) is computed once and folded
per key block: the mass each block holds and its mass-weighted value sum. A candidate block mask
then costs only an [R, NB] selection: its output on those rows is the renormalised sum of the
kept blocks, its recall the kept mass. Mass compensation adds each skipped block through its mean
key and value, as the kernels do. Dozens of candidates per head take milliseconds on a GPU.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..kernels.fp8 import E4M3_MAX
from ..kernels.reference import quantize_reference
from .geometry import VideoGeometry


@dataclass
class HeadSample:
    """Sampled rows of one head, or of every head of a call (then each field but ``rows`` / ``row_block`` has a
    leading head axis: the heads share the rows)."""
    rows: torch.Tensor  # int64 [R] absolute query rows (video)
    out: torch.Tensor  # float32 [(H,) R, D] exact attention output
    block_mass: torch.Tensor  # [(H,) R, NB] softmax mass per video key block
    block_pv: torch.Tensor  # [(H,) R, NB, D] sum over the block of p * v
    text_mass: torch.Tensor  # [(H,) R]
    text_pv: torch.Tensor  # [(H,) R, D]
    pooled_weight: torch.Tensor  # [(H,) R, NB] n_j exp(q . mean k_j * scale - lse): a skipped block's compensated mass
    pooled_v: torch.Tensor  # [(H,) NB, D] mean value per block
    row_block: torch.Tensor  # int64 [R] query block of each row
    lse: torch.Tensor  # [(H,) R, 1] the rows' log-sum-exp (FP8 error reuses it)


def _keys(S: int, geometry: VideoGeometry, valid_text: int | None, device) -> torch.Tensor | None:
    """bool [S] of the keys a row sees when text past ``valid_text`` is padding (None: all)."""
    if valid_text is None or valid_text >= geometry.text:
        return None
    keys = torch.ones(S, dtype=torch.bool, device=device)
    tlo = geometry.text_range[0]
    keys[tlo + valid_text:tlo + geometry.text] = False
    return keys


def sample_heads(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, geometry: VideoGeometry, n_rows: int = 256,
                 scale: float | None = None, generator: torch.Generator | None = None,
                 valid_text: int | None = None) -> HeadSample:
    """q/k/v [S, H, D] of one sample (the full joint sequence), every head at once on the same rows; text keys
    past ``valid_text`` are padding and excluded, as the model's mask does."""
    S, H, D = q.shape
    scale = D ** -0.5 if scale is None else scale
    lo, hi = geometry.video_range
    rows = lo + torch.randperm(hi - lo, generator=generator)[:n_rows].sort().values.to(q.device)
    qs, kf, vf = q[rows].float().transpose(0, 1), k.float().transpose(0, 1), v.float().transpose(0, 1)  # [H, *, D]
    s = (qs @ kf.transpose(1, 2)) * scale  # [H, R, S]
    keys = _keys(S, geometry, valid_text, q.device)
    if keys is not None:
        s = s.masked_fill(~keys, float("-inf"))
    lse = torch.logsumexp(s, -1, keepdim=True)
    p = torch.exp(s - lse)
    out = p @ vf
    nb, bs = geometry.num_blocks, geometry.block
    blk = torch.arange(hi - lo, device=q.device) // bs
    pad = nb * bs - (hi - lo)
    pb = torch.nn.functional.pad(p[..., lo:hi], (0, pad)).reshape(H, len(rows), nb, bs)  # [H, R, NB, bs]
    vb = torch.nn.functional.pad(vf[:, lo:hi], (0, 0, 0, pad)).reshape(H, nb, bs, D)
    block_mass = pb.sum(-1)
    block_pv = torch.einsum("hrnb,hnbd->hrnd", pb, vb)  # per-block P.V without an [R, S, D] intermediate
    tlo, thi = geometry.text_range
    text_mass, text_pv = p[..., tlo:thi].sum(-1), p[..., tlo:thi] @ vf[:, tlo:thi]
    counts = torch.bincount(blk, minlength=nb).float()
    k_mean = torch.zeros(H, nb, D, device=q.device).index_add_(1, blk, kf[:, lo:hi]) / counts[:, None]
    v_mean = torch.zeros(H, nb, D, device=q.device).index_add_(1, blk, vf[:, lo:hi]) / counts[:, None]
    pooled_weight = torch.exp((qs @ k_mean.transpose(1, 2)) * scale + torch.log(counts) - lse)
    return HeadSample(rows, out, block_mass, block_pv, text_mass, text_pv, pooled_weight, v_mean, (rows - lo) // bs, lse)


def sample_head(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, geometry: VideoGeometry, n_rows: int = 256,
                scale: float | None = None, generator: torch.Generator | None = None,
                valid_text: int | None = None) -> HeadSample:
    """``sample_heads`` of one head: q/k/v [S, D]."""
    s = sample_heads(q[:, None], k[:, None], v[:, None], geometry, n_rows, scale, generator, valid_text)
    return HeadSample(s.rows, *(getattr(s, f)[0] for f in ("out", "block_mass", "block_pv", "text_mass", "text_pv",
                                                           "pooled_weight", "pooled_v")), s.row_block, s.lse[0])


def evaluate(sample: HeadSample, masks: torch.Tensor, compensate: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """masks bool [C, NB, NB] (one head's sample) or [H, C, NB, NB] (every head's) -> (relative L2 error of the
    output on the sampled rows [(H,) C], mean kept mass [(H,) C])."""
    kept = masks.to(sample.block_mass.device)[..., sample.row_block, :].float()  # [(H,) C, R, NB]
    mass = (kept * sample.block_mass.unsqueeze(-3)).sum(-1) + sample.text_mass.unsqueeze(-2)  # [(H,) C, R]
    num = torch.einsum("...crn,...rnd->...crd", kept, sample.block_pv) + sample.text_pv.unsqueeze(-3)
    den = mass
    if compensate:
        w = (1 - kept) * sample.pooled_weight.unsqueeze(-3)
        num = num + w @ sample.pooled_v.unsqueeze(-3)
        den = den + w.sum(-1)
    out = num / den.clamp_min(1e-30)[..., None]
    ref = sample.out.unsqueeze(-3)
    err = (out - ref).flatten(-2).norm(dim=-1) / ref.flatten(-2).norm(dim=-1)
    return err, mass.mean(-1)


def fp8_error(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, sample: HeadSample, geometry: VideoGeometry,
              scale: float | None = None, valid_text: int | None = None) -> torch.Tensor:
    """Relative L2 error of FP8 attention (all keys) on the sample's rows, per head ([H] for q/k/v [S, H, D] and an
    every-head sample; 0-d for one head's [S, D]): no host sync, no full attention. The kernel's numerics
    emulated on the rows only: its quantisation of Q, K, V (per-token Q, per-channel K smoothed by its
    mean, per-channel V), then P scaled by 448 and rounded to e4m3 against the row maximum, l in fp32."""
    one = q.dim() == 2
    if one:
        q, k, v = q[:, None], k[:, None], v[:, None]
    S, H, D = q.shape
    scale = D ** -0.5 if scale is None else scale
    q8, qsc, k8, ksc, v8, vsc, _ = quantize_reference(q[sample.rows][None], k[None], v[None])  # [1, H, *, *]
    dq = q8[0].float() * qsc[0, :, :, None] / ksc[0, :, None]  # [H, R, D]
    dk = k8[0].float() * ksc[0, :, None]  # K's mean is dropped: softmax is invariant to it, as in the kernel
    dv = v8[0].float() * vsc[0, :, None]
    s = (dq @ dk.transpose(1, 2)) * scale  # [H, R, S]
    keys = _keys(S, geometry, valid_text, q.device)
    if keys is not None:
        s = s.masked_fill(~keys, float("-inf"))
    p = torch.exp(s - s.amax(-1, keepdim=True)) * E4M3_MAX
    approx = (p.to(torch.float8_e4m3fn).float() @ dv) / p.sum(-1, keepdim=True)
    ref = sample.out if sample.out.dim() == 3 else sample.out[None]
    err = (approx - ref).flatten(1).norm(dim=-1) / ref.flatten(1).norm(dim=-1)
    return err[0] if one else err
