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

from .geometry import VideoGeometry


@dataclass
class HeadSample:
    rows: torch.Tensor  # int64 [R] absolute query rows (video)
    out: torch.Tensor  # float32 [R, D] exact attention output
    block_mass: torch.Tensor  # [R, NB] softmax mass per video key block
    block_pv: torch.Tensor  # [R, NB, D] sum over the block of p * v
    text_mass: torch.Tensor  # [R]
    text_pv: torch.Tensor  # [R, D]
    pooled_weight: torch.Tensor  # [R, NB] n_j exp(q . mean k_j * scale - lse): a skipped block's compensated mass
    pooled_v: torch.Tensor  # [NB, D] mean value per block
    row_block: torch.Tensor  # int64 [R] query block of each row


def sample_head(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, geometry: VideoGeometry, n_rows: int = 256,
                scale: float | None = None, generator: torch.Generator | None = None,
                valid_text: int | None = None) -> HeadSample:
    """q/k/v [S, D] of one head and one sample (the full joint sequence); text keys past
    ``valid_text`` are padding and excluded, as the model's mask does."""
    S, D = q.shape
    scale = D ** -0.5 if scale is None else scale
    lo, hi = geometry.video_range
    rows = lo + torch.randperm(hi - lo, generator=generator)[:n_rows].sort().values.to(q.device)
    qs = q[rows].float()
    s = (qs @ k.float().T) * scale  # [R, S]
    if valid_text is not None and valid_text < geometry.text:
        tlo = geometry.text_range[0]
        s[:, tlo + valid_text:tlo + geometry.text] = float("-inf")
    lse = torch.logsumexp(s, -1, keepdim=True)
    p = torch.exp(s - lse)
    out = p @ v.float()
    nb, bs = geometry.num_blocks, geometry.block
    blk = torch.arange(hi - lo, device=q.device) // bs
    pad = nb * bs - (hi - lo)
    pb = torch.nn.functional.pad(p[:, lo:hi], (0, pad)).reshape(len(rows), nb, bs)  # [R, NB, bs]
    vb = torch.nn.functional.pad(v[lo:hi].float(), (0, 0, 0, pad)).reshape(nb, bs, D)
    block_mass = pb.sum(-1)
    block_pv = torch.einsum("rnb,nbd->rnd", pb, vb)  # per-block P.V without an [R, S, D] intermediate
    tlo, thi = geometry.text_range
    text_mass, text_pv = p[:, tlo:thi].sum(-1), p[:, tlo:thi] @ v[tlo:thi].float()
    counts = torch.bincount(blk, minlength=nb).float()
    k_mean = torch.zeros(nb, D, device=q.device).index_add_(0, blk, k[lo:hi].float()) / counts[:, None]
    v_mean = torch.zeros(nb, D, device=q.device).index_add_(0, blk, v[lo:hi].float()) / counts[:, None]
    pooled_weight = torch.exp((qs @ k_mean.T) * scale + torch.log(counts) - lse)
    return HeadSample(rows, out, block_mass, block_pv, text_mass, text_pv, pooled_weight, v_mean, (rows - lo) // bs)


def evaluate(sample: HeadSample, masks: torch.Tensor, compensate: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """masks bool [C, NB, NB] -> (relative L2 error of the output on the sampled rows [C], mean kept mass [C])."""
    kept = masks.to(sample.block_mass.device)[:, sample.row_block].float()  # [C, R, NB]
    mass = (kept * sample.block_mass).sum(-1) + sample.text_mass  # [C, R]
    num = torch.einsum("crn,rnd->crd", kept, sample.block_pv) + sample.text_pv
    den = mass
    if compensate:
        w = (1 - kept) * sample.pooled_weight
        num = num + w @ sample.pooled_v
        den = den + w.sum(-1)
    out = num / den.clamp_min(1e-30)[..., None]
    err = (out - sample.out).flatten(1).norm(dim=-1) / sample.out.norm()
    return err, mass.mean(-1)


def fp8_error(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, sample: HeadSample, geometry: VideoGeometry,
              scale: float | None = None, valid_text: int | None = None) -> torch.Tensor:
    """Relative L2 error (a 0-d tensor on q's device: no host sync) of FP8 attention (all keys) on the sample's rows,
    for one head's q/k/v [S, D].

    On a GPU the FP8 kernel itself runs; elsewhere its numerics are emulated in torch (the kernel's
    quantisation of Q, K, V, then P scaled by 448 and rounded to e4m3 against the row maximum, l in fp32)."""
    S, D = q.shape
    scale = D ** -0.5 if scale is None else scale
    keys = torch.ones(S, dtype=torch.bool, device=q.device)
    if valid_text is not None and valid_text < geometry.text:
        tlo = geometry.text_range[0]
        keys[tlo + valid_text:tlo + geometry.text] = False
    if q.is_cuda:
        from ..kernels import BlockLayout, sparse_attention

        padded = valid_text is not None and valid_text < geometry.text
        sub = keys.nonzero().flatten() if padded else None  # nonzero syncs: only when text padding is dropped
        n = S if sub is None else len(sub)
        qs, ks, vs = ((t if sub is None else t[sub])[None, :, None].to(torch.bfloat16).contiguous() for t in (q, k, v))
        lay = BlockLayout.dense(1, n, n, device=q.device)
        out = sparse_attention(qs, ks, vs, lay, scale=scale, fp8=True)[0, :, 0].float()
        approx = out[sample.rows if sub is None else torch.searchsorted(sub, sample.rows)]
    else:
        from ..kernels.fp8 import E4M3_MAX
        from ..kernels.reference import quantize_reference

        q8, qsc, k8, ksc, v8, vsc, _ = quantize_reference(*(t[None, :, None] for t in (q, k, v)))
        dq = q8[0, 0, sample.rows].float() * qsc[0, 0, sample.rows, None] / ksc[0, 0]
        dk = k8[0, 0].float() * ksc[0, 0]  # K's mean is dropped: softmax is invariant to it, as in the kernel
        dv = v8[0, 0].float() * vsc[0, 0]
        s = (dq @ dk.T) * scale
        s[:, ~keys] = float("-inf")
        p = torch.exp(s - s.amax(-1, keepdim=True)) * E4M3_MAX
        approx = (p.to(torch.float8_e4m3fn).float() @ dv) / p.sum(-1, keepdim=True)
    return (approx - sample.out).norm() / sample.out.norm()
