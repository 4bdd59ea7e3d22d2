"""Pattern library: geometry, token order, static patterns, draft, pyramid, compensation, measurement."""
import math

import pytest
import torch

from videoaccel.kernels import BlockLayout, block_scores, dense_attention, sparse_attention
from videoaccel.kernels.reference import layout_attention, pyramid_reference
from videoaccel.patterns import (STATIC, VideoGeometry, block_mask, build_layout, draft_masks, fit_density, mask_density,
                                 pyramid_attention, pyramid_levels, tile_major_permutation, to_frame_major, to_tile_major)
from videoaccel.patterns.measure import evaluate, sample_head
from videoaccel.patterns.synthetic import planted_qk
from helpers import rel_l2

GEOMS = [VideoGeometry(21, 30, 52, order="tile"), VideoGeometry(21, 30, 52), VideoGeometry(5, 7, 9, block=32, order="tile"),
         VideoGeometry(13, 30, 45, text=226, text_position="front", order="tile")]


@pytest.mark.parametrize("g", GEOMS, ids=str)
def test_every_pattern_gives_a_valid_layout(g):
    for name in STATIC:
        m = block_mask(name, g)
        assert m.shape == (g.num_blocks, g.num_blocks) and m.dtype == torch.bool
        if name != "skip":
            assert torch.all(m.diagonal()), f"{name} must keep the diagonal"
        lay = build_layout(g, torch.stack([m, m]))  # BlockLayout validates: sorted, unique, in range
        assert lay.num_q_blocks == g.num_blocks


def test_densities():
    g = GEOMS[0]
    assert mask_density(block_mask("dense", g), g) == pytest.approx(1.0)
    assert mask_density(block_mask("skip", g), g) == 0.0
    for name in ("diagonal", "multi_diagonal", "radial", "vertical_stripe"):
        for target in (0.25, 0.12):
            _, m = fit_density(name, g, target)
            assert abs(mask_density(m, g) - target) < 0.03, name
    # the layout's density counts text columns and dense text rows too
    gt = GEOMS[3]
    lay = build_layout(gt, block_mask("dense", gt))
    assert lay.density == pytest.approx(1.0)


def growth_exponent(name: str, geometries: list[VideoGeometry]) -> float:
    """Slope of log(computed blocks) vs log(video tokens): 2 for dense, ~1 for n log n."""
    x = torch.tensor([math.log(g.video_tokens) for g in geometries])
    y = torch.tensor([math.log(int(block_mask(name, g).sum())) for g in geometries])
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / (x * x).sum())


def test_radial_grows_as_n_log_n():
    gs = [VideoGeometry(t, 16, 16, block=64, order="tile") for t in (256, 512, 1024)]
    assert growth_exponent("radial", gs) < 1.25  # n log n over this range; dense is 2
    assert growth_exponent("dense", gs[:2]) == pytest.approx(2.0, abs=0.01)
    counts = [int(block_mask("radial", g).sum()) for g in gs]
    per = [c / (g.num_blocks * math.log2(g.num_blocks)) for c, g in zip(counts, gs)]
    assert max(per) / min(per) < 1.25


@pytest.mark.parametrize("g", [VideoGeometry(21, 30, 52, order="tile"), VideoGeometry(7, 9, 11, text=5, text_position="back", block=32, order="tile")], ids=str)
def test_tile_order_is_an_exact_permutation(g):
    perm = tile_major_permutation(g)
    assert torch.equal(perm.sort().values, torch.arange(g.video_tokens))
    x = torch.randn(2, g.seq_len, 3)
    assert torch.equal(to_frame_major(to_tile_major(x, g), g), x)
    # tile-major blocks are compact: far smaller spatial extent than frame-major strips
    ext_tile = g.block_extent
    ext_frame = g.with_order("frame").block_extent
    assert ext_tile[1] * ext_tile[2] < ext_frame[1] * ext_frame[2]


def test_dense_attention_in_tile_order_equals_frame_order():
    g = VideoGeometry(5, 6, 10, text=7, text_position="front", block=32, order="tile")
    q, k, v = (torch.randn(1, g.seq_len, 2, 64, dtype=torch.float64) for _ in range(3))
    ref = dense_attention(q, k, v)
    tiled = dense_attention(*(to_tile_major(t, g) for t in (q, k, v)))
    assert torch.allclose(to_frame_major(tiled, g), ref, atol=1e-12)


@pytest.mark.parametrize("kind, pattern, target, order", [
    ("local", "diagonal", 0.2, "tile"), ("temporal", "multi_diagonal", 0.25, "tile"), ("stripe", "vertical_stripe", 0.1, "tile"),
    ("local", "diagonal", 0.2, "frame"), ("stripe", "vertical_stripe", 0.1, "frame")])
def test_matching_pattern_recovers_planted_mass(kind, pattern, target, order):
    g = VideoGeometry(12, 16, 16, block=32, order=order)
    q, k = planted_qk(g, kind, width=0.15, sharpness=40.0)
    v = torch.randn_like(q)
    sample = sample_head(q, k, v, g, generator=torch.Generator().manual_seed(0))
    _, m = fit_density(pattern, g, target)
    assert mask_density(m, g) <= target
    err, mass = evaluate(sample, m[None])
    assert mass.item() >= 0.95
    rnd = torch.rand(1, g.num_blocks, g.num_blocks, generator=torch.Generator().manual_seed(1)) < target
    assert evaluate(sample, rnd)[1].item() < 0.5  # the structure, not the density, is what recovers the mass


def test_measure_matches_kernel_output_on_sampled_rows():
    g = VideoGeometry(4, 8, 12, text=9, text_position="back", block=32, order="tile")
    q, k, v = (torch.randn(g.seq_len, 64) for _ in range(3))
    sample = sample_head(q, k, v, g, n_rows=40, generator=torch.Generator().manual_seed(0))
    masks = torch.rand(3, g.num_blocks, g.num_blocks) < 0.5
    masks |= torch.eye(g.num_blocks, dtype=torch.bool)
    err, mass = evaluate(sample, masks)
    exact = dense_attention(q[None, :, None], k[None, :, None], v[None, :, None])[0, :, 0]
    for c in range(3):
        out = layout_attention(q[None, :, None], k[None, :, None], v[None, :, None], build_layout(g, masks[c]))[0][0, :, 0]
        want = float((out[sample.rows] - exact[sample.rows]).norm() / exact[sample.rows].norm())
        assert err[c].item() == pytest.approx(want, rel=1e-4, abs=1e-6)
    assert torch.all(mass <= 1 + 1e-6)


def test_draft_finds_planted_blocks():
    g = VideoGeometry(4, 8, 16, block=32)  # 16 blocks
    gen = torch.Generator().manual_seed(3)
    nb, bs, D = g.num_blocks, g.block, 64
    centers = torch.randn(nb, D, generator=gen) * 3
    target = torch.randperm(nb, generator=gen)
    q = centers.repeat_interleave(bs, 0) + 0.3 * torch.randn(nb * bs, D, generator=gen)
    k = centers[target.argsort()].repeat_interleave(bs, 0) + 0.3 * torch.randn(nb * bs, D, generator=gen)
    m = draft_masks(q[None, :, None], k[None, :, None], g, top_p=0.9)[0]
    assert torch.all(m[torch.arange(nb), target])
    assert mask_density(m, g) < 0.2


@pytest.mark.parametrize("text_position", ["none", "front", "back"])
@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_pyramid_and_compensation_match_reference(text_position, backend):
    text = 0 if text_position == "none" else 11
    g = VideoGeometry(4, 8, 10, text=text, text_position=text_position, block=64, order="tile")  # 5 blocks, levels 0-2
    gen = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(1, g.seq_len, 2, 64, generator=gen) for _ in range(3))
    vr = g.video_range
    levels = pyramid_levels(block_scores(q, k, 64, 64, vr, vr)[0], (0.3, 0.5, 0.7))
    assert set(levels.unique().tolist()) >= {-1, 0, 1, 2}
    for compensate in (False, True):
        out = pyramid_attention(q, k, v, g, levels, compensate=compensate, backend=backend)
        ref = pyramid_reference(q, k, v, levels, 64, vr, g.text_range, compensate=compensate)
        assert rel_l2(out, ref) < 1e-5


def test_compensation_lowers_error_at_equal_density():
    g = VideoGeometry(8, 16, 16, block=32, order="tile")
    q, k = planted_qk(g, "local", width=0.3, sharpness=8.0)
    v = torch.randn_like(q) + 1.0
    q, k, v = (t[None, :, None] for t in (q, k, v))
    vr = g.video_range
    levels = pyramid_levels(block_scores(q, k, 32, 32, vr, vr)[0], (0.7,))  # keep 70% of the mass, skip the rest
    exact = dense_attention(q, k, v)
    plain = pyramid_attention(q, k, v, g, levels)
    comp = pyramid_attention(q, k, v, g, levels, compensate=True)
    assert rel_l2(comp, exact) < 0.75 * rel_l2(plain, exact)


@pytest.mark.parametrize("fn, kw, msg", [
    (block_mask, dict(name="nope"), "unknown pattern"),
    (block_mask, dict(name="diagonal", t=2.0), "fraction"),
    (block_mask, dict(name="radial", decay=-1.0), "decay"),
    (block_mask, dict(name="radial", bogus=1), "bad parameters"),
    (fit_density, dict(name="dense", target=0.5), "no density knob"),
])
def test_bad_parameters_name_the_fix(fn, kw, msg):
    g = GEOMS[2]
    name = kw.pop("name")
    with pytest.raises(ValueError, match=msg):
        fn(name, g, **kw)


def test_bad_geometry_and_levels():
    with pytest.raises(ValueError, match="TxHxW"):
        VideoGeometry.parse("21x30")
    with pytest.raises(ValueError, match="text_position"):
        VideoGeometry(2, 4, 4, text=5)
    with pytest.raises(ValueError, match="thresholds"):
        pyramid_levels(torch.rand(2, 2), (0.9, 0.5))
    g = VideoGeometry(2, 8, 8, block=32)
    q = torch.randn(1, g.seq_len, 1, 64)
    with pytest.raises(ValueError, match="at most level 1"):
        pyramid_attention(q, q, q, g, torch.full((1, 4, 4), 2, dtype=torch.int8))
