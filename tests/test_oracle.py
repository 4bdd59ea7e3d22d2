"""Oracle plans: exact block mass against a brute-force softmax, top-k per query block, the upper bound
over static patterns at equal density, and routing as a benchmark profile."""
import pytest
import torch

import videoaccel
import videoaccel.patterns.oracle as oracle_module
from videoaccel.patterns import VideoGeometry, fit_density, mask_density
from videoaccel.patterns.measure import evaluate, sample_head
from videoaccel.patterns.oracle import block_mass, oracle_masks
from videoaccel.patterns.synthetic import planted_qk
from videoaccel.plans import Plan, Profile
from videoaccel.profiling.oracle import oracle_for_total, oracle_profile
from tiny_models import TINY

G = VideoGeometry(6, 8, 10, text=5, text_position="back", block=32, order="tile")


def test_block_mass_equals_brute_force_softmax():
    gen = torch.Generator().manual_seed(0)
    q, k = (torch.randn(2, G.seq_len, 3, 64, generator=gen) for _ in range(2))
    mass = block_mass(q, k, G, max_elements=2 * 3 * G.seq_len * 40)  # several row chunks
    p = torch.softmax(q.double().transpose(1, 2) @ k.double().transpose(1, 2).transpose(-1, -2) / 8, -1)  # [B, H, S, S]
    lo, hi = G.video_range
    blk = torch.arange(hi - lo) // G.block
    ref = torch.zeros(3, G.num_blocks, G.num_blocks, dtype=torch.float64)
    for i in range(G.num_blocks):
        for j in range(G.num_blocks):
            ref[:, i, j] = p[:, :, lo:hi][:, :, blk == i][..., lo:hi][..., blk == j].sum((0, 2, 3))
    torch.testing.assert_close(mass.double(), ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("D,block,text,position", [(64, 32, 5, "back"), (128, 64, 7, "front"), (64, 16, 0, "none")])
def test_fused_block_mass_equals_float64_softmax(D, block, text, position, monkeypatch):
    """The GPU path (the sampled-mass kernel over every row; interpreter here) against float64: a short last block,
    text joined in front or behind, head dims 64 and 128, batch 2, the kernel's output poisoned first."""
    g = VideoGeometry(3, 5, 7, text=text, text_position=position, block=block, order="tile")
    gen = torch.Generator().manual_seed(D + block)
    q, k = (torch.randn(2, g.seq_len, 2, D, generator=gen) for _ in range(2))
    assert (g.video_range[1] - g.video_range[0]) % block  # the last block is short
    real, calls = oracle_module.sampled_mass_triton, []

    def poisoned(*a, **kw):  # the kernel writes every element of its output
        calls.append(1)
        return real(*a, out=torch.full((2, 2, g.num_blocks, g.num_blocks), float("nan")), **kw)
    monkeypatch.setattr(oracle_module, "sampled_mass_triton", poisoned)
    fused = block_mass(q, k, g, fused=True)
    p = torch.softmax(q.double().transpose(1, 2) @ k.double().transpose(1, 2).transpose(-1, -2) * D ** -0.5, -1)
    lo, hi = g.video_range
    blk = torch.arange(hi - lo) // block
    ref = torch.zeros(2, g.num_blocks, g.num_blocks, dtype=torch.float64)
    for i in range(g.num_blocks):
        for j in range(g.num_blocks):
            ref[:, i, j] = p[:, :, lo:hi][:, :, blk == i][..., lo:hi][..., blk == j].sum((0, 2, 3))
    assert calls and torch.isfinite(fused).all()
    torch.testing.assert_close(fused.double(), ref, rtol=2e-4, atol=2e-5)


def test_oracle_keeps_top_k_and_beats_static_patterns_at_equal_density():
    q, k = planted_qk(G, "local", width=0.2, sharpness=20.0, seed=3)
    v = torch.randn_like(q)
    masks = oracle_masks(q[None, :, None], k[None, :, None], G, 0.25)
    assert masks.shape == (1, G.num_blocks, G.num_blocks)
    assert (masks.sum(-1) == round(0.25 * G.num_blocks)).all()
    s = sample_head(q, k, v, G, 200, generator=torch.Generator().manual_seed(1))
    oracle_err, oracle_mass = evaluate(s, masks)
    d = mask_density(masks[0], G)
    for name in ("radial", "diagonal", "multi_diagonal"):
        _, m = fit_density(name, G, d)
        _, mass = evaluate(s, m[None])
        assert oracle_mass.item() >= mass.item() - 1e-6, name
    with pytest.raises(ValueError, match="in \\(0, 1\\]"):
        oracle_masks(q[None, :, None], k[None, :, None], G, 0.0)


def test_oracle_profile_routes_and_full_density_equals_dense():
    model, kwargs = TINY["wan"]()
    with torch.no_grad():
        ref = model(**kwargs)[0]
    for density, exact in ((1.0, True), (0.3, False)):
        videoaccel.accelerate(model, oracle_profile(density, block=16))
        with torch.no_grad():
            out = model(**kwargs)[0]
        rep = videoaccel.report(model).transformers["transformer"]
        videoaccel.restore(model)
        assert rep.fallbacks == 0
        if exact:
            torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
        else:
            assert rep.mean_density < 0.5 and not torch.allclose(out, ref, atol=1e-4)


def test_oracle_total_density_counts_warm_up_steps():
    prof = oracle_for_total(0.44, steps=20, dense_steps=5, block=64)
    assert prof.dense_steps == 5 and prof.default.kwargs["density"] == pytest.approx((0.44 * 20 - 5) / 15)
    with pytest.raises(ValueError, match="exceed the total density"):
        oracle_for_total(0.1, steps=20, dense_steps=5)
    comp = oracle_for_total(0.44, steps=20, dense_steps=5, block=64, compensate=True)  # its pooled keys in the total
    assert comp.default.compensate and comp.default.kwargs["density"] == pytest.approx((0.44 * 20 - 5) / 15 - 1 / 64)


def test_layer_oracle_moves_blocks_to_the_heads_that_need_them():
    """Across the heads of a layer: a sharp head keeps few blocks, a diffuse one many, the total as asked; every row
    keeps at least its heaviest block; it routes as a per-call mask (no host read) and reports its density."""
    from videoaccel.patterns.oracle import layer_oracle_masks
    from videoaccel.patterns.synthetic import planted_qk

    sharp_q, sharp_k = planted_qk(G, "local", width=0.1, sharpness=40.0, seed=1)
    gen = torch.Generator().manual_seed(2)
    q = torch.stack([sharp_q, torch.randn(sharp_q.shape, generator=gen) * 0.01], 1)[None]
    k = torch.stack([sharp_k, torch.randn(sharp_k.shape, generator=gen) * 0.01], 1)[None]
    masks = layer_oracle_masks(q, k, G, 0.3)
    kept = masks.sum((-1, -2)).tolist()
    assert kept[0] < kept[1]  # the diffuse head gets the blocks the sharp one does not need
    assert masks.any(-1).all()
    n = G.num_blocks ** 2 * 2
    assert masks.sum().item() == round(0.3 * n)  # exactly the share asked, rows' heaviest blocks among it
    model, kwargs = TINY["wan"]()
    videoaccel.accelerate(model, Profile("o", default=Plan("oracle_layer", (("density", 0.3),)), block=16))
    with torch.no_grad():
        out = model(**kwargs)[0]
    rep = videoaccel.report(model).transformers["transformer"]
    videoaccel.restore(model)
    assert torch.isfinite(out).all() and rep.fallbacks == 0 and 0.2 < rep.mean_density < 0.45
    # a per-call mask serving two steps: the call between estimates reports the mask's density too (not 0)
    densities = []
    for every in (1, 2):
        videoaccel.accelerate(model, Profile("d", default=Plan("draft", (("top_p", 0.5), ("every", every))), block=16))
        with torch.no_grad():
            model(**kwargs)
            model(**kwargs)
        densities.append(videoaccel.report(model).transformers["transformer"].mean_density)
        videoaccel.restore(model)
    assert densities[1] == pytest.approx(densities[0], rel=1e-5) and densities[0] > 0.05


def test_oracle_like_spends_what_the_profile_spends_where_it_spends_it():
    """Per (layer, bucket): the heads' mean computed density (a sampled plan's estimate and compensation's pooled keys
    counted), across the layer's heads; warm-up steps, dense layers, buckets, order and block as the profile's."""
    from videoaccel.patterns.registry import estimate_share
    from videoaccel.profiling.oracle import oracle_like

    sampled = Plan("sampled", (("density", 0.1),))
    radial = Plan("radial", (("density", 0.2),), compensate=True)
    prof = Profile("p", layers={0: [[sampled, radial], [Plan(), Plan()]], 1: [[radial, radial], [sampled, Plan()]]},
                   bucket_edges=[500.0], dense_steps=2, dense_layers=(3,), order="tile", block=64, calibrated=True,
                   steps=10, budget={"target_density": 0.3})
    like = oracle_like(prof)
    est = estimate_share("sampled", sampled.kwargs, 64)
    assert (like.dense_steps, like.dense_layers, like.bucket_edges, like.order, like.block) == (2, (3,), [500.0], "tile", 64)
    assert like.meta["oracle"] and like.meta["like"] == "p" and like.meta["total_density"] == 0.3
    l0, l1 = like.layers[0], like.layers[1]
    assert l0[1] == [Plan(), Plan()]  # a dense (layer, bucket) stays dense
    assert {p.pattern for b in (l0[0], l1[0], l1[1]) for p in b} == {"oracle_layer"}
    assert l0[0][0].density == pytest.approx((0.1 + est + 0.2 + 1 / 64) / 2)
    assert l1[0][1].density == pytest.approx(0.2 + 1 / 64) and l1[1][0].density == pytest.approx((0.1 + est + 1.0) / 2)
    comp = oracle_like(prof, compensate=True)  # its pooled keys are paid from the same density
    assert comp.layers[1][0][0].compensate and comp.layers[1][0][0].density == pytest.approx(0.2)
    head = oracle_like(prof, per_layer=False)  # each head its own density, exact top blocks per row
    assert [p.pattern for p in head.layers[0][0]] == ["oracle", "oracle"] and head.layers[0][1] == [Plan(), Plan()]
    assert head.layers[0][0][0].density == pytest.approx(0.1 + est) and head.layers[1][1][1] == Plan()
    assert head.layers[0][0][1].density == pytest.approx(0.2 + 1 / 64) and head.name == "oracle-like-p-per-head"
    with pytest.raises(ValueError, match="without a fixed density"):
        oracle_like(Profile("d", layers={0: [[Plan("draft", (("top_p", 0.9),))]]}))
