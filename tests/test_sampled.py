"""Row-sampled masks: the rows it samples, the estimate against the exact block mass, its top-k, its
cost counted in the reported density, as a preset and as a profiler candidate."""
import pytest
import torch

import videoaccel
from videoaccel.patterns import VideoGeometry
from videoaccel.patterns.measure import evaluate, sample_head
from videoaccel.patterns.oracle import block_mass, oracle_masks
from videoaccel.patterns.sampled import estimate_cost, sample_rows, sampled_block_mass, sampled_masks
from videoaccel.patterns.synthetic import planted_qk
from videoaccel.plans import Plan, Profile, preset
from videoaccel.profiling import scoring
from tiny_models import TINY

G = VideoGeometry(5, 8, 9, text=7, text_position="back", block=32, order="tile")  # 360 video tokens: a short last block


def test_rows_lie_in_their_block_and_spread():
    rows = sample_rows(G, 4)
    lo, hi = G.video_range
    assert rows.shape == (G.num_blocks, 4)
    assert ((rows - lo) // G.block == torch.arange(G.num_blocks)[:, None]).all()
    assert (rows < hi).all() and rows[0].unique().numel() == 4
    assert sample_rows(G, 1000).shape[1] == G.block  # never more rows than a block has


def test_all_rows_give_the_exact_block_mass_and_few_rows_estimate_it():
    gen = torch.Generator().manual_seed(0)
    q, k = (torch.randn(2, G.seq_len, 3, 64, generator=gen) for _ in range(2))
    exact = block_mass(q, k, G)
    full = sampled_block_mass(q, k, G, rows=G.block, max_elements=2 * G.seq_len * 32 * 12)  # several head chunks
    # all rows of every full block are sampled; the short last block repeats rows, so compare the full ones
    full_blocks = (G.video_range[1] - G.video_range[0]) // G.block
    torch.testing.assert_close(full[:, :full_blocks], exact[:, :full_blocks], rtol=1e-4, atol=1e-5)


def test_sampled_masks_follow_planted_structure_near_the_oracle():
    q, k = planted_qk(G, "local", width=0.2, sharpness=20.0, seed=3)
    v = torch.randn_like(q)
    s = sample_head(q, k, v, G, 200, generator=torch.Generator().manual_seed(1))
    oracle = oracle_masks(q[None, :, None], k[None, :, None], G, 0.25)
    est = sampled_masks(q[None, :, None], k[None, :, None], G, 0.25, rows=4)
    assert (est.sum(-1) == oracle.sum(-1)).all()
    _, m_oracle = evaluate(s, oracle)
    _, m_est = evaluate(s, est)
    assert m_est.item() >= 0.95 * m_oracle.item()
    with pytest.raises(ValueError, match="in \\(0, 1\\]"):
        sampled_masks(q[None, :, None], k[None, :, None], G, 1.5)


def test_preset_routes_and_reports_its_estimate_in_the_density():
    model, kwargs = TINY["wan"]()
    prof = preset("sampled:0.3")
    assert prof.default == Plan("sampled", (("density", 0.3),))
    videoaccel.accelerate(model, Profile("s", default=Plan("sampled", (("density", 0.3), ("rows", 4))), block=16))
    with torch.no_grad():
        model(**kwargs)
    rep = videoaccel.report(model).transformers["transformer"]
    videoaccel.restore(model)
    assert rep.fallbacks == 0
    nb = rep.layers[0]  # the tiny model's geometry: count the estimate on top of the kept blocks
    assert all(d > estimate_cost(4, 16) for d in nb.head_density)
    assert rep.mean_density < 0.3 + estimate_cost(4, 16) + 0.15


def test_profiler_candidates_score_each_calls_own_mask():
    g = VideoGeometry(4, 8, 8, text=0, text_position="none", block=16, order="tile")
    c = scoring.build(("radial", "sampled"), (0.25, 0.5), g)
    assert [p.pattern for p in c.plans] == ["skip", "radial", "radial", "sampled", "sampled"]
    assert c.scored == [0.25, 0.5] and c.masks.shape[0] == 3
    assert c.cost[3] == pytest.approx(0.25 + estimate_cost(1, 16), abs=1e-6)
    q, k = planted_qk(g, "local", width=0.2, sharpness=20.0, seed=0)
    v = torch.randn_like(q)
    masks = scoring.call_masks(c, q[None, :, None], k[None, :, None], g)
    assert masks.shape == (1, 5, g.num_blocks, g.num_blocks)
    errs = scoring.score_call(c, q[None, :, None], k[None, :, None], v[None, :, None], g, rows=64, compensate=True, fp8=False,
                              generator=torch.Generator().manual_seed(0))
    assert errs.shape == (1, 5 + 4)
    assert errs[0, 4] < errs[0, 3] < errs[0, 0]  # more sampled blocks, less error; any beats skip


@pytest.mark.parametrize("D,block,rows,text,splits", [(64, 32, 4, 7, 3), (128, 64, 8, 0, 1), (64, 16, 1, 3, 2), (64, 16, 2, 0, 4)])
def test_kernel_matches_float64_reference(D, block, rows, text, splits):
    """The fused kernel (interpreter on CPU) against a float64 softmax: odd lengths, text joined, output poisoned,
    the pass split over key blocks (3 splits of 4 blocks: the last split is empty)."""
    from videoaccel.kernels.sampled_mass import sampled_mass_triton

    g = VideoGeometry(2, 7, 9, text=text, text_position="back" if text else "none", block=block, order="tile")
    gen = torch.Generator().manual_seed(D + block)
    q, k = (torch.randn(2, g.seq_len, 2, D, generator=gen) for _ in range(2))
    idx = sample_rows(g, rows)
    poisoned = torch.full((2, 2, g.num_blocks, g.num_blocks), float("nan"))
    out = sampled_mass_triton(q, k, idx, g.video_range, block, D ** -0.5, out=poisoned, splits=splits)
    p = torch.softmax(q.double().transpose(1, 2)[:, :, idx.flatten()] @ k.double().transpose(1, 2).transpose(-1, -2) * D ** -0.5, -1)
    lo, hi = g.video_range
    nb = g.num_blocks
    kb = torch.arange(hi - lo) // block
    ref = torch.zeros(2, 2, nb * idx.shape[1], nb, dtype=torch.float64).index_add_(3, kb, p[..., lo:hi])
    ref = ref.reshape(2, 2, nb, idx.shape[1], nb).sum(3)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.double(), ref, rtol=2e-4, atol=2e-5)


def test_unreachable_density_is_said_once_and_counted(caplog):
    """Coarse blocks: a row keeps round(density * NB) whole blocks, which can exceed the density asked."""
    from videoaccel.patterns.oracle import top_k_density

    model, kwargs = TINY["wan"]()
    videoaccel.accelerate(model, Profile("s", default=Plan("sampled", (("density", 0.03),)), block=16))  # 20 blocks a row
    with caplog.at_level("WARNING", logger="videoaccel"), torch.no_grad():
        model(**kwargs)
        model(**kwargs)
    rep = videoaccel.report(model).transformers["transformer"]
    videoaccel.restore(model)
    said = [r for r in caplog.records if "sampled cannot reach density 0.03" in r.getMessage()]
    assert len(said) == 1 and rep.density_misses > 0
    g = VideoGeometry(4, 8, 8, text=0, text_position="none", block=16, order="tile")
    assert top_k_density(g, 0.05) == pytest.approx(16 / 256)  # one whole block of 16 a row


@pytest.mark.parametrize("text_position", ["front", "back"])
def test_kernel_reads_the_chosen_heads_in_place(text_position):
    """``heads`` picks heads of q/k without copies; bf16 inputs; the output poisoned first."""
    from videoaccel.kernels.sampled_mass import sampled_mass_triton

    g = VideoGeometry(3, 5, 7, text=9, text_position=text_position, block=32, order="frame")
    gen = torch.Generator().manual_seed(5)
    q, k = (torch.randn(1, g.seq_len, 4, 64, generator=gen).to(torch.bfloat16) for _ in range(2))
    idx = sample_rows(g, 2)
    heads = torch.tensor([3, 1], dtype=torch.int32)
    out = sampled_mass_triton(q, k, idx, g.video_range, 32, 0.125, heads=heads,
                              out=torch.full((1, 2, g.num_blocks, g.num_blocks), float("nan")))
    ref = sampled_block_mass(q.float()[:, :, [3, 1]], k.float()[:, :, [3, 1]], g, rows=2, scale=0.125, fused=False)
    torch.testing.assert_close(out[0], ref, rtol=2e-2, atol=2e-3)


def test_write_rows_puts_each_heads_heaviest_blocks_in_place_ascending():
    from videoaccel.patterns.oracle import top_k_blocks
    from videoaccel.patterns.sampled import write_rows

    gen = torch.Generator().manual_seed(2)
    mass = torch.rand(2, 6, 6, generator=gen)
    lut = torch.full((3, 6, 5), -7, dtype=torch.int32)
    write_rows(lut, torch.tensor([2, 0]), torch.tensor([3, 1]), 3, mass)
    assert (lut[1] == -7).all()  # a head not estimated is untouched
    for j, (h, keep) in enumerate([(2, 3), (0, 1)]):
        want = top_k_blocks(mass[j], keep / 6).nonzero()[:, 1].reshape(6, keep)
        assert torch.equal(lut[h, :, :keep].long(), want)  # ascending, the oracle's choice on this mass
