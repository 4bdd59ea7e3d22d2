"""Block score estimation: mean-pooled Q and K per block and the block-to-block score map.

The cheap preview of the attention map that draft-guided and top-p selection read. Pooling is
one Triton pass over Q and K (memory-bound, ~1% of dense attention); the [NQB, NKB] scores
are a small batched matmul. Each pooled key stands for n tokens, so its logit gets + ln(n):
the softmax over blocks then estimates each block's share of the attention mass.
"""
from __future__ import annotations


import torch
import triton
import triton.language as tl

from ._triton_utils import INTERPRET
from .checks import check_qkv
from .layout import num_blocks


@triton.jit
def _pool_kernel(X, OUT, stride_b, stride_s, stride_h, H, lo, hi, NB,
                 BLOCK: tl.constexpr, HEAD_DIM: tl.constexpr):
    blk = tl.program_id(0)
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = bh % H
    rows = lo + blk * BLOCK + tl.arange(0, BLOCK)
    ok = rows < hi
    offs_d = tl.arange(0, HEAD_DIM)
    x = tl.load(X + b * stride_b + h * stride_h + rows[:, None] * stride_s + offs_d[None, :], mask=ok[:, None], other=0.0)
    n = tl.sum(ok.to(tl.float32), 0)
    tl.store(OUT + (bh * NB + blk) * HEAD_DIM + offs_d, tl.sum(x.to(tl.float32), 0) / n)


def pool_blocks(x: torch.Tensor, block: int, token_range: tuple[int, int] | None = None) -> torch.Tensor:
    """Mean of each block of tokens of x [B, S, H, D] over ``token_range`` -> float32 [B, H, NB, D]."""
    B, S, H, D = x.shape
    lo, hi = (0, S) if token_range is None else token_range
    nb = num_blocks(lo, hi, block)
    if x.device.type == "cpu" and not INTERPRET:
        xs = torch.nn.functional.pad(x[:, lo:hi].float(), (0, 0, 0, 0, 0, nb * block - (hi - lo)))
        cnt = torch.clamp(hi - lo - torch.arange(nb) * block, max=block).float()
        return xs.reshape(B, nb, block, H, D).sum(2).permute(0, 2, 1, 3) / cnt[None, None, :, None]
    out = torch.empty(B, H, nb, D, dtype=torch.float32, device=x.device)
    if nb:
        _pool_kernel[(nb, B * H)](x, out, x.stride(0), x.stride(1), x.stride(2), H, lo, hi, nb, BLOCK=block, HEAD_DIM=D)
    return out


def block_scores(q: torch.Tensor, k: torch.Tensor, block_m: int = 128, block_n: int = 128,
                 q_range: tuple[int, int] | None = None, kv_range: tuple[int, int] | None = None,
                 scale: float | None = None) -> torch.Tensor:
    """Estimated attention mass of each (query block, key block): float32 [B, H, NQB, NKB], rows sum to 1."""
    check_qkv(q, k)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    kv_lo, kv_hi = (0, k.shape[1]) if kv_range is None else kv_range
    qp = pool_blocks(q, block_m, q_range)
    kp = pool_blocks(k, block_n, (kv_lo, kv_hi))
    nkb = kp.shape[2]
    counts = torch.clamp(kv_hi - kv_lo - torch.arange(nkb, device=q.device) * block_n, max=block_n).float()
    logits = torch.matmul(qp, kp.transpose(-1, -2)) * scale + torch.log(counts)
    return torch.softmax(logits, -1)
