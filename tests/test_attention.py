"""Block-sparse attention (Triton kernel under the interpreter, and the PyTorch CPU path) against
the float64 reference of the same layout: fresh random inputs, odd lengths, D 64/128, text
ranges, Sq != Skv, NaN-poisoned outputs."""
import math

import pytest
import torch

from videoaccel.kernels import BlockLayout, dense_attention, sparse_attention
from videoaccel.kernels.reference import layout_attention, masked_attention
from helpers import random_layout, rel_l2

# (batch, Sq, Skv, heads, D, block_m, block_n, q_range, kv_range, kv_always)
CASES = {
    "video-only-odd": (1, 157, 157, 3, 64, 32, 32, None, None, None),
    "d128-bm64-bn32": (2, 131, 131, 2, 128, 64, 32, None, None, None),
    "sq-ne-skv": (1, 97, 203, 2, 64, 32, 64, None, None, None),
    "text-front": (1, 150, 150, 2, 64, 32, 32, (26, 150), (26, 150), [[[0, 26]]]),
    "text-back-per-sample": (2, 140, 140, 2, 128, 32, 32, (0, 113), (0, 113), [[[113, 125]], [[113, 140]]]),
    # 64-token blocks (profiles for short sequences): each spans two interpreter tiles, tails partial
    "b64-d64-odd": (1, 197, 197, 3, 64, 64, 64, None, None, None),
    "b64-d128-text-front": (1, 181, 181, 2, 128, 64, 64, (26, 181), (26, 181), [[[0, 26]]]),
    "b64-d64-text-back-per-sample": (2, 163, 163, 2, 64, 64, 64, (0, 131), (0, 131), [[[131, 140]], [[131, 163]]]),
}

TOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.2e-2}


def _inputs(case, dtype, seed):
    B, Sq, Skv, H, D, bm, bn, qr, kr, al = CASES[case]
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, Sq, H, D, generator=g).to(dtype)
    k = torch.randn(B, Skv, H, D, generator=g).to(dtype)
    v = torch.randn(B, Skv, H, D, generator=g).to(dtype)
    lay = random_layout(H, Sq, Skv, bm, bn, qr, kr, al, gen=g)
    return q, k, v, lay


@pytest.mark.parametrize("backend", ["triton", "torch"])
@pytest.mark.parametrize("case", list(CASES))
def test_matches_reference(case, backend):
    seed = hash((case, backend)) % 1000
    for dtype in ((torch.bfloat16,) if backend == "triton" else (torch.float32, torch.bfloat16)):
        q, k, v, lay = _inputs(case, dtype, seed)
        out = torch.full_like(q, math.nan)
        o, lse = sparse_attention(q, k, v, lay, return_lse=True, backend=backend, out=out)
        assert o.data_ptr() == out.data_ptr()
        assert not torch.isnan(o).any(), "unwritten output elements"
        ref, ref_lse = layout_attention(q, k, v, lay)
        assert rel_l2(o, ref) < TOL[dtype]
        assert torch.equal(torch.isinf(lse), torch.isinf(ref_lse))
        fin = torch.isfinite(ref_lse)
        assert (lse[fin].double() - ref_lse[fin]).abs().max() < 1e-4


def test_triton_fp16_and_fp32():
    for dtype in (torch.float16, torch.float32):
        q, k, v, lay = _inputs("sq-ne-skv", dtype, 7)
        o = sparse_attention(q, k, v, lay, backend="triton")
        assert rel_l2(o, layout_attention(q, k, v, lay)[0]) < TOL[dtype]


@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_empty_rows_give_zero_and_minus_inf(backend):
    mask = torch.zeros(1, 3, 3, dtype=torch.bool)
    mask[0, 0, 1] = True  # only the first query block sees anything
    lay = BlockLayout.from_block_mask(mask, 70, 70, block_m=32, block_n=32)
    q, k, v = (torch.randn(1, 70, 1, 64) for _ in range(3))
    o, lse = sparse_attention(q, k, v, lay, return_lse=True, backend=backend)
    assert torch.all(o[:, 32:] == 0) and torch.all(torch.isinf(lse[..., 32:]))
    assert rel_l2(o[:, :32], layout_attention(q, k, v, lay)[0][:, :32]) < 1e-5


def test_dense_layout_equals_full_attention():
    q, k, v = (torch.randn(1, 77, 2, 64) for _ in range(3))
    lay = BlockLayout.dense(2, 77, 77, 32, 32)
    ref = masked_attention(q, k, v, torch.ones(1, 2, 77, 77, dtype=torch.bool))[0]
    assert rel_l2(sparse_attention(q, k, v, lay, backend="triton"), ref) < 1e-5
    assert rel_l2(dense_attention(q, k, v), ref) < 1e-5


def test_custom_scale():
    q, k, v, lay = _inputs("video-only-odd", torch.float32, 3)
    o = sparse_attention(q, k, v, lay, scale=0.3, backend="torch")
    assert rel_l2(o, layout_attention(q, k, v, lay, scale=0.3)[0]) < 1e-5


@pytest.mark.parametrize("mutate, msg", [
    (lambda q, k, v: (q.transpose(1, 2), k, v), "share B, H, D"),
    (lambda q, k, v: (q[..., :48].contiguous(), k[..., :48].contiguous(), v[..., :48].contiguous()), "head dim 48"),
    (lambda q, k, v: (q.double(), k.double(), v.double()), "dtype"),
    (lambda q, k, v: (q, k.half(), v), "dtype"),
    (lambda q, k, v: (q[0], k[0], v[0]), r"\[B, S, H, D\]"),
    (lambda q, k, v: (q, k[:, :-1], v), "must match"),
    (lambda q, k, v: (q.transpose(-1, -2).contiguous().transpose(-1, -2), k, v), "contiguous"),
])
def test_bad_inputs_name_the_fix(mutate, msg):
    q, k, v, lay = _inputs("video-only-odd", torch.float32, 0)
    with pytest.raises(ValueError, match=msg):
        sparse_attention(*mutate(q, k, v), lay)


def test_fp8_on_cpu_path_and_fp32_are_refused():
    q, k, v, lay = _inputs("video-only-odd", torch.float32, 0)
    with pytest.raises(ValueError, match="bfloat16"):
        sparse_attention(q, k, v, lay, fp8=True, backend="triton")
    with pytest.raises(ValueError, match="Triton kernel"):
        sparse_attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), lay, fp8=True, backend="torch")


@pytest.mark.parametrize("case", ["text-front", "d128-bm64-bn32", "text-back-per-sample", "b64-d128-text-front"])
@pytest.mark.parametrize("fp8", [False, True])
def test_pointer_and_tma_paths_agree(case, fp8):
    """The kernel's two load paths (TMA descriptors on Hopper, pointers elsewhere) compute the same."""
    from videoaccel.kernels import quantize_fp8
    from videoaccel.kernels.triton_attention import triton_block_sparse_attention

    q, k, v, lay = _inputs(case, torch.bfloat16, 21)
    f8 = quantize_fp8(q, k, v) if fp8 else None
    a, la = triton_block_sparse_attention(q, k, v, lay, q.shape[-1] ** -0.5, True, fp8=f8, tma=True)
    b, lb = triton_block_sparse_attention(q, k, v, lay, q.shape[-1] ** -0.5, True, fp8=f8, tma=False)
    assert torch.equal(a, b) and torch.equal(la, lb)


@pytest.mark.parametrize("backend", ["triton", "torch"])
@pytest.mark.parametrize("case", ["text-front", "text-back-per-sample", "b64-d128-text-front"])
def test_head_roles_dense_and_idle_in_one_launch(case, backend):
    """Dense heads run every block as dense rows, idle heads get no work (their rows keep the poison),
    LUT heads follow their rows: one launch, each head checked against the reference of its role."""
    from dataclasses import replace

    q, k, v, lay = _inputs(case, torch.bfloat16, 11)
    H = q.shape[2]
    lay = replace(lay, lut=torch.cat([lay.lut, lay.lut[:1]]), counts=torch.cat([lay.counts, lay.counts[:1]]),
                  dense_heads=(0,), idle_heads=(H,), validated=False)
    q, k, v = (torch.cat([t, t[:, :, :1]], 2) for t in (q, k, v))  # one more head: idle
    out = torch.full_like(q, math.nan)
    o, lse = sparse_attention(q, k, v, lay, return_lse=True, backend=backend, out=out)
    assert torch.isnan(o[:, :, H]).all(), "an idle head's rows must stay untouched"
    assert not torch.isnan(o[:, :, :H]).any(), "unwritten output elements"
    ref, ref_lse = layout_attention(q, k, v, lay)
    assert rel_l2(o[:, :, :H], ref[:, :, :H]) < TOL[torch.bfloat16]
    full = masked_attention(q[:, :, :1], k[:, :, :1], v[:, :, :1], lay.key_mask(q.shape[0])[:, :1])[0]
    assert torch.equal(lay.key_mask(q.shape[0])[:, 0, lay.q_range[0]:lay.q_range[1], lay.kv_range[0]:lay.kv_range[1]].all(),
                       torch.tensor(True))  # the dense head sees its whole region
    assert rel_l2(o[:, :, :1], full) < TOL[torch.bfloat16]
    assert (lse[:, :H][torch.isfinite(ref_lse[:, :H])].double() - ref_lse[:, :H][torch.isfinite(ref_lse[:, :H])]).abs().max() < 1e-4
    assert lay.head_density()[0] > lay.head_density()[1] and lay.head_density()[H] == 0.0
