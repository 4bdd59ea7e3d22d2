"""FP8 path: the fused quantisation kernel equals the torch quantisation exactly, and the FP8
attention kernel equals the float64 attention of the dequantised inputs up to P's e4m3
rounding (bounded per element), with an exact-in-fp32 log-sum-exp."""
import math

import pytest
import torch
import triton
import triton.language as tl

from videoaccel.kernels import quantize_fp8, sparse_attention
from videoaccel.kernels._triton_utils import to_fp8
from videoaccel.kernels.reference import fp8_stats_reference, masked_attention, quantize_reference
from helpers import rel_l2
from test_attention import _inputs, CASES


@triton.jit
def _round_kernel(X, Y, N: tl.constexpr):
    offs = tl.arange(0, N)
    tl.store(Y + offs, to_fp8(tl.load(X + offs), True))


def test_e4m3_rounding_matches_torch_cast_everywhere():
    """The interpreter-side rounding (used because the interpreter's own cast is wrong) is
    bit-exact with torch's cast: every e4m3 value, every tie between neighbours, random values
    and subnormals."""
    allv = torch.arange(256, dtype=torch.uint8).view(torch.float8_e4m3fn).float()
    allv = allv[torch.isfinite(allv)].unique()
    mids = (allv[1:] + allv[:-1]) / 2
    x = torch.cat([allv, mids, torch.randn(3000) * 100, torch.rand(1000) * 0.03, -torch.rand(100) * 1e-4])
    x = x.clamp(-448, 448)
    n = 1 << (x.numel() - 1).bit_length()
    x = torch.cat([x, torch.zeros(n - x.numel())])
    y = torch.empty_like(x)
    _round_kernel[(1,)](x, y, N=n)
    assert torch.equal(y, x.to(torch.float8_e4m3fn).float())


@pytest.mark.parametrize("case", ["video-only-odd", "text-back-per-sample", "sq-ne-skv", "b64-d128-text-front"])
def test_quantize_matches_reference(case):
    q, k, v, _ = _inputs(case, torch.bfloat16, 11)
    k = k + 3 * torch.randn(1, 1, k.shape[2], k.shape[3]).to(k.dtype)  # channel offsets: what smoothing removes
    pad = 7 if "text-front" in case else 0  # the Gluon kernel's 16-byte alignment of V's first region token
    f8 = quantize_fp8(q, k, v, v_pad=pad)
    for a, b in zip((f8.k_mean, f8.k_scale, f8.v_scale), fp8_stats_reference(k, v)):  # Triton passes vs torch reductions
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    q8, qs, k8, ks, v8, vs, km = quantize_reference(q, k, v, stats=(f8.k_mean, f8.k_scale, f8.v_scale))
    assert torch.equal(f8.q.view(torch.uint8), q8.view(torch.uint8))
    assert torch.equal(f8.k.view(torch.uint8), k8.view(torch.uint8))
    skv = k.shape[1]
    assert torch.equal(f8.v_t[..., pad:pad + skv].transpose(-1, -2).view(torch.uint8), v8.view(torch.uint8))
    assert not f8.v_t[..., :pad].view(torch.uint8).any() and f8.v_t.shape[-1] % 16 == 0
    for a, b in ((f8.q_scale, qs), (f8.k_scale, ks), (f8.v_scale, vs), (f8.k_mean, km)):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_quantize_one_plane_writes_that_plane_as_the_whole_pass():
    """``planes`` (for measuring one plane's time) launches only those planes, each written as the full pass writes it."""
    q, k, v, _ = _inputs("video-only-odd", torch.bfloat16, 5)
    full = quantize_fp8(q, k, v)
    for plane, field in enumerate(("q", "k", "v_t")):
        one = quantize_fp8(q, k, v, planes=(plane, plane + 1), num_warps=8)
        assert torch.equal(getattr(one, field).view(torch.uint8), getattr(full, field).view(torch.uint8)), field


def _dequantised(q, k, v):
    q8, qs, k8, ks, v8, vs, km = quantize_reference(q, k, v)
    dq = (q8.double() * qs[..., None].double() / ks[:, :, None].double()).transpose(1, 2)
    dk = (k8.double() * ks[:, :, None].double() + km[:, :, None].double()).transpose(1, 2)
    dv = (v8.double() * vs[:, :, None].double()).transpose(1, 2)
    return dq, dk, dv


@pytest.mark.parametrize("case", list(CASES))
def test_fp8_attention_matches_dequantised_reference(case):
    q, k, v, lay = _inputs(case, torch.bfloat16, 5)
    out = torch.full_like(q, math.nan)
    o, lse = sparse_attention(q, k, v, lay, fp8=True, return_lse=True, backend="triton", out=out)
    assert not torch.isnan(o).any()
    dq, dk, dv = _dequantised(q, k, v)
    mask = lay.key_mask(q.shape[0])
    ref, ref_lse = masked_attention(dq, dk, dv, mask)
    fin = torch.isfinite(ref_lse)
    # the softmax statistics never see P's rounding: exact up to fp32 arithmetic
    assert (lse[fin].double() - ref_lse[fin]).abs().max() < 2e-4
    # P is rounded to e4m3 (relative error <= 2**-4 per element, plus 2**-10 absolute below
    # the smallest normal): |out - ref| <= 2**-4 * sum_j P_ij |v_j| + 2**-10/448 * sum_j |v_j| / l
    s = (dq.transpose(1, 2) @ dk.transpose(1, 2).transpose(-1, -2)) / math.sqrt(q.shape[-1])
    p = torch.softmax(s.masked_fill(~mask, -math.inf), -1).nan_to_num(0.0)
    bound = 2.0 ** -4 * (p @ dv.transpose(1, 2).abs()) + 1e-5 * dv.abs().amax()
    err = (o.double() - ref).abs().transpose(1, 2)
    assert torch.all(err <= bound + 4e-3 * ref.abs().transpose(1, 2) + 1e-3)  # + bf16 output rounding
    assert rel_l2(o, ref) < 0.035


def test_profiler_fp8_error_is_the_kernels_error():
    """The profiler's FP8 candidate error (torch emulation off the GPU) matches the FP8 kernel's own error
    on the same sampled rows: the per-head FP8 choice is made on what the kernel does."""
    from videoaccel.kernels import BlockLayout
    from videoaccel.patterns import VideoGeometry
    from videoaccel.patterns.measure import fp8_error, sample_head

    g = VideoGeometry(3, 8, 8, block=32)
    gen = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(g.seq_len, 64, generator=gen).to(torch.bfloat16).float() for _ in range(3))
    k = (k + 2 * torch.randn(1, 64, generator=gen)).to(torch.bfloat16).float()  # channel offsets, as in real K
    s = sample_head(q, k, v, g, 64, generator=gen)
    emulated = fp8_error(q, k, v, s, g)
    lay = BlockLayout.dense(1, g.seq_len, g.seq_len, block_m=32, block_n=32)
    out = sparse_attention(*(t[None, :, None].to(torch.bfloat16) for t in (q, k, v)), lay, fp8=True, backend="triton")
    kernel = float((out[0, s.rows, 0].float() - s.out).norm() / s.out.norm())
    assert 0.01 < kernel < 0.1
    assert abs(emulated - kernel) < 0.2 * kernel
