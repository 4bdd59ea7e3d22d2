"""The compensation epilogue (Triton under the interpreter, and its PyTorch CPU path) against the float64
pyramid reference with every skipped block as one pooled key: odd lengths, text joined front and back,
head dims 64 and 128, only the chosen heads rewritten, outputs poisoned before the sparse launch."""
import math

import pytest
import torch

from videoaccel.kernels import sparse_attention
from videoaccel.kernels.compensate import compensate_
from videoaccel.kernels.reference import layout_attention, pyramid_reference
from videoaccel.patterns import VideoGeometry, build_layout
from helpers import rel_l2

CASES = {  # geometry, heads, head dim, valid text per sample
    "video-odd-d64": (VideoGeometry(3, 5, 7, block=32), 3, 64, None),
    "text-front-d128": (VideoGeometry(2, 6, 9, text=11, text_position="front", block=32), 2, 128, None),
    "text-back-padded-b64": (VideoGeometry(3, 7, 9, text=9, text_position="back", block=64), 2, 64, [9, 4]),
}


@pytest.mark.parametrize("backend, dtype", [("triton", torch.float32), ("triton", torch.bfloat16), ("torch", torch.float32)])
@pytest.mark.parametrize("case", list(CASES))
def test_compensation_matches_pooled_key_reference(case, backend, dtype):
    g, H, D, lens = CASES[case]
    B = 1 if lens is None else len(lens)
    gen = torch.Generator().manual_seed(len(case))
    q, k, v = (torch.randn(B, g.seq_len, H, D, generator=gen).to(dtype) for _ in range(3))
    masks = torch.rand(H, g.num_blocks, g.num_blocks, generator=gen) < 0.4
    masks |= torch.eye(g.num_blocks, dtype=torch.bool)
    lay = build_layout(g, masks, lens)
    out = torch.full_like(q, math.nan)
    out, lse = sparse_attention(q, k, v, lay, return_lse=True, backend=backend, out=out)
    heads = torch.tensor([H - 1, 0][: max(1, H - 1)])
    compensate_(q, k, v, out, lse, lay, heads, D ** -0.5, backend=backend)
    assert not torch.isnan(out).any()
    levels = torch.where(masks, 0, -1)
    ref = pyramid_reference(q, k, v, levels, g.block, g.video_range, g.text_range, compensate=True, text_lengths=lens)
    plain = layout_attention(q, k, v, lay)[0]
    for h in range(H):
        want = ref if h in heads.tolist() else plain
        assert rel_l2(out[:, :, h], want[:, :, h]) < (1e-4 if dtype == torch.float32 else 1.5e-2), h


def test_lse_is_merged_too():
    g, H, D, _ = CASES["video-odd-d64"]
    q, k, v = (torch.randn(1, g.seq_len, H, D) for _ in range(3))
    masks = torch.eye(g.num_blocks, dtype=torch.bool).expand(H, -1, -1).clone()
    lay = build_layout(g, masks)
    out, lse = sparse_attention(q, k, v, lay, return_lse=True, backend="torch")
    before = lse.clone()
    compensate_(q, k, v, out, lse, lay, torch.arange(H), D ** -0.5, backend="torch")
    assert (lse >= before - 1e-6).all() and (lse > before + 1e-3).any()  # the skipped mass is added to the denominator
