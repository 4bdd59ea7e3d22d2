"""Profiler: candidate scoring and choice on planted structure, budgets, the end-to-end CLI path."""
import json
import subprocess
import sys

from dataclasses import replace

import pytest
import torch

from videoaccel.patterns import VideoGeometry
from videoaccel.patterns.measure import evaluate, sample_head
from videoaccel.patterns.synthetic import planted_qk
from videoaccel.plans import Profile
from videoaccel.profiling import ProfileConfig, Profiler, calibrate, profile_pipeline
from videoaccel.profile_summary import summary

G = VideoGeometry(12, 16, 16, block=32, order="tile")


def _heads(seed):
    """4 heads: local, temporal, stripe, and unstructured (random) attention."""
    qs, ks = [], []
    for kind in ("local", "temporal", "stripe"):
        q, k = planted_qk(G, kind, width=0.15, sharpness=40.0, seed=seed)
        qs.append(q)
        ks.append(k)
    gen = torch.Generator().manual_seed(seed + 100)
    qs.append(torch.randn(G.seq_len, 64, generator=gen))
    ks.append(torch.randn(G.seq_len, 64, generator=gen))
    q = torch.stack(qs, 1)[None]
    k = torch.stack(ks, 1)[None]
    return q, k, torch.randn(1, G.seq_len, 4, 64, generator=gen)


def _profiler(**kw):
    profiler = Profiler(ProfileConfig(block=32, buckets=1, rows=96, **kw), timesteps=[900.0, 500.0])
    for step, seed in enumerate((0, 1)):
        q, k, v = _heads(seed)
        profiler.observe(0, step, 900.0 - 400 * step, q, k, v, G)
    return profiler


def test_profiler_picks_the_structure_each_head_has():
    profile = _profiler(error_budget=0.05, compensate=False).choose(4, 1, G, "t")
    plans = profile.layers[0][0]
    assert plans[0].pattern in ("diagonal", "radial")
    assert plans[1].pattern == "multi_diagonal"
    assert plans[2].pattern in ("vertical_stripe", "skip") or plans[2].kwargs.get("density", 1) <= 0.1
    assert plans[3].pattern == "dense"  # nothing cheap is faithful for unstructured attention
    assert profile.calibrated and profile.budget["expected_error"] <= 0.05
    assert profile.budget["error_units"] == "mean per-head attention error"  # no probe: every step weighs the same


def test_chosen_plans_hold_their_budget_on_held_out_inputs():
    """Without a probe the budget bounds the RMS head error; each structured head's plan also holds on inputs
    it never saw (no over-fitting to the sampled rows)."""
    budget = 0.05
    profile = _profiler(error_budget=budget, compensate=False).choose(4, 1, G, "t")
    from videoaccel.patterns import fit_density

    q, k, v = _heads(seed=7)  # inputs the profiler never saw
    for h, plan in enumerate(profile.layers[0][0]):
        if plan.pattern == "dense":
            continue
        mask = torch.zeros(G.num_blocks, G.num_blocks, dtype=torch.bool) if plan.pattern == "skip" else \
            fit_density(plan.pattern, G, plan.kwargs["density"])[1]
        s = sample_head(q[0, :, h], k[0, :, h], v[0, :, h], G, 96, generator=torch.Generator().manual_seed(3))
        err, _ = evaluate(s, mask[None])
        assert err.item() <= 2 * budget, (h, plan, err)


def test_target_density_allocation_and_compensation():
    profiler = _profiler(target_density=0.3, compensate=True)
    chosen = profiler.choose(4, 1, G, "t")
    assert chosen.budget["expected_density"] <= 0.3 + 1e-6  # a target is computed density, time beside it
    # expected: the exact masks at this geometry (+ estimates, + one pooled key per block when compensated);
    # total_density: the plans' nominal densities
    built = profiler.scorer.candidates(G)
    exact = [built.cost[built.plans.index(replace(plan, compensate=False))] +
             (1 / G.block if plan.compensate else 0) for plan in chosen.layers[0][0]]
    assert chosen.budget["expected_density"] == pytest.approx(float(sum(exact)) / len(exact), abs=1e-6)
    assert chosen.budget["expected_cost"] <= chosen.budget["expected_density"] + 1e-6  # analytic: FP8 at 0.7, else equal
    assert chosen.steps == 2 and chosen.cost_model["source"] == "analytic"
    assert any(p.compensate for p in chosen.layers[0][0])  # compensation is worth its pooled keys on planted heads
    # a probe's per-step final errors become the step weights (warm-up choice: test_allocate.py)
    profiler = _profiler(target_density=0.6, compensate=True)
    profiler.probe = {"final": [1.0, 1e-3]}
    warm = profiler.choose(4, 1, G, "t")
    w = warm.meta["step_weights"]
    assert w[0] / w[1] == pytest.approx(1e6, rel=0.5) and warm.budget["expected_density"] <= 0.6 + 1e-6
    assert warm.budget["error_units"] == "relative L2 of the final latent"
    # deterministic for a seed
    assert _profiler(error_budget=0.05).choose(4, 1, G, "t").to_json() == _profiler(error_budget=0.05).choose(4, 1, G, "t").to_json()


def test_profile_end_to_end_cli(tmp_path):
    from test_pipelines import _tiny_wan_pipeline

    pipe = _tiny_wan_pipeline()
    model_dir = tmp_path / "tiny-wan"
    pipe.save_pretrained(model_dir)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle moving left\na circle moving left\n")
    outs = []
    for i in range(2):
        out = tmp_path / f"p{i}.json"
        cmd = [sys.executable, "-m", "videoaccel.cli", "profile", "--model", str(model_dir), "--prompts", str(prompts), "-o", str(out),
               "--steps", "3", "--height", "64", "--width", "128", "--frames", "9", "--block", "16", "--error-budget", "0.6",
               "--buckets", "2", "--name", "tiny"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        outs.append(json.loads(out.read_text()))
    assert outs[0] == outs[1]  # same seed, same profile
    profile = Profile.load(tmp_path / "p0.json")
    assert profile.calibrated and profile.model["class"] == "WanTransformer3DModel"
    assert len(profile.layers) == 2 and len(profile.layers[0]) == 2
    assert "layer   0" in summary(profile)
    png = tmp_path / "p.png"
    r = subprocess.run([sys.executable, "-m", "videoaccel.cli", "inspect", str(tmp_path / "p0.json"), "-o", str(png)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and png.stat().st_size > 0, r.stderr
    # the profile drives the same model family it was made for
    import videoaccel
    from diffusers import WanPipeline

    pipe2 = WanPipeline.from_pretrained(model_dir)
    videoaccel.accelerate(pipe2, str(tmp_path / "p0.json"))
    pipe2("a red circle moving left", height=64, width=128, num_frames=9, num_inference_steps=3, max_sequence_length=8,
          output_type="latent")
    assert videoaccel.report(pipe2).fallbacks == 0
    videoaccel.restore(pipe2)


def test_profile_cli_errors(tmp_path):
    r = subprocess.run([sys.executable, "-m", "videoaccel.cli", "profile", "--model", str(tmp_path / "nope"), "--prompts",
                        str(tmp_path / "none.txt"), "-o", str(tmp_path / "p.json")], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "cannot read prompts file" in r.stderr
    (tmp_path / "p.txt").write_text("a prompt\n")
    r = subprocess.run([sys.executable, "-m", "videoaccel.cli", "profile", "--model", str(tmp_path / "nope"), "--prompts",
                        str(tmp_path / "p.txt"), "-o", str(tmp_path / "p.json")], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "cannot load a diffusers pipeline" in r.stderr
    assert not (tmp_path / "p.json").exists()


def test_profiling_resumes_from_a_checkpoint(tmp_path):
    """An interrupted calibration resumes after its last finished prompt and gives the same profile."""
    from test_pipelines import _tiny_wan_pipeline
    from videoaccel.profiling import profile_pipeline

    kw = dict(height=64, width=128, num_frames=9, num_inference_steps=2, max_sequence_length=8, progress=False)
    cfg = ProfileConfig(error_budget=0.6, block=16, buckets=1)
    prompts = ["a red circle moving left", "a circle moving left"]
    full = profile_pipeline(_tiny_wan_pipeline(), prompts, cfg, name="p", **kw).to_json()
    ck = str(tmp_path / "ck")
    profile_pipeline(_tiny_wan_pipeline(), prompts[:1], cfg, name="p", checkpoint=ck, **kw)  # a run with other prompts
    import pytest

    with pytest.raises(ValueError, match="other settings or prompts"):
        profile_pipeline(_tiny_wan_pipeline(), prompts, cfg, name="p", checkpoint=ck, **kw)
    (tmp_path / "ck").unlink()
    from videoaccel.profiling.checkpoint import Checkpoint

    calls = []
    orig = Checkpoint.save

    def crash_after_first(self, calibration, done):
        orig(self, calibration, done)
        calls.append(done)
        if done == 1:
            raise KeyboardInterrupt

    Checkpoint.save = crash_after_first
    try:
        with pytest.raises(KeyboardInterrupt):
            profile_pipeline(_tiny_wan_pipeline(), prompts, cfg, name="p", checkpoint=ck, **kw)
    finally:
        Checkpoint.save = orig
    resumed = profile_pipeline(_tiny_wan_pipeline(), prompts, cfg, name="p", checkpoint=ck, **kw).to_json()
    assert resumed == full


def test_sampled_rows_exclude_padded_text_keys():
    g = VideoGeometry(4, 8, 8, text=8, text_position="back", block=32)
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(g.seq_len, 64, generator=gen) for _ in range(3))
    lo, hi = g.video_range
    valid = 5
    padded = sample_head(q, k, v, g, 32, generator=torch.Generator().manual_seed(1), valid_text=valid)
    keep = torch.cat([torch.arange(0, hi + valid)])
    g5 = VideoGeometry(4, 8, 8, text=valid, text_position="back", block=32)
    trimmed = sample_head(q[keep], k[keep], v[keep], g5, 32, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(padded.out, trimmed.out)
    torch.testing.assert_close(padded.text_mass, trimmed.text_mass)


def test_one_calibration_serves_several_budgets():
    """calibrate() once, then profiles for several budgets: a looser budget never costs more, and
    profile_pipeline is exactly calibrate().profile()."""
    from test_pipelines import _tiny_wan_pipeline

    pipe = _tiny_wan_pipeline()
    call = dict(num_inference_steps=2, height=64, width=128, num_frames=9, max_sequence_length=8)
    cfg = ProfileConfig(block=16, buckets=2)
    cal = calibrate(pipe, ["a red circle moving left"], cfg, progress=False, **call)
    dens = [cal.profile("t", error_budget=b).budget["expected_cost"] for b in (1e-4, 1e-3, 0.1)]
    assert dens[0] >= dens[1] >= dens[2] and dens[0] > dens[2]
    assert cal.profile("t", target_density=0.3).budget["expected_density"] <= 0.3 + 1e-6
    assert cal.profiler.config.error_budget == cfg.error_budget  # overrides do not leak into the calibration
    direct = profile_pipeline(pipe, ["a red circle moving left"], cfg, name="t", progress=False, **call)
    assert direct.to_json() == cal.profile("t").to_json()


def test_fp8_candidate_scores_are_the_per_head_fp8_error():
    """With FP8 candidates each head's last score is its FP8 error on the same sampled rows (one host copy a call)."""
    from videoaccel.patterns.measure import fp8_error

    g = VideoGeometry(3, 8, 8, block=32)
    gen = torch.Generator().manual_seed(5)
    q, k, v = (torch.randn(1, g.seq_len, 2, 64, generator=gen) for _ in range(3))
    profiler = Profiler(ProfileConfig(block=32, fp8=True, rows=32, compensate=False), [900.0, 500.0])
    profiler.observe(0, 0, 900.0, q, k, v, g)
    errs = profiler.calibration.step_calls(0)[0][1]
    assert errs.device.type == "cpu" and errs.shape == (2, len(profiler.scorer.candidates(g).plans) + 1)
    for h in range(2):  # the one-head path, from the same generator state: the rows of the observed call
        replay = Profiler(ProfileConfig(block=32, fp8=True, rows=32, compensate=False), [900.0, 500.0])
        one = sample_head(q[0, :, h], k[0, :, h], v[0, :, h], g, 32, generator=replay.calibration.generator)
        assert torch.allclose(errs[h, -1], fp8_error(q[0, :, h], k[0, :, h], v[0, :, h], one, g), atol=1e-6)
        assert 0 < float(errs[h, -1]) < 0.2


def test_static_candidates_ask_the_density_they_run():
    """A static candidate's density is its fitted mask's own (asking 0.4 may give 0.35 on a small grid), so the
    router fits the same mask again and reports no density miss; candidates with the same mask are one."""
    from videoaccel.patterns import fit_density, mask_density
    from videoaccel.profiling.scoring import build

    g = VideoGeometry(7, 12, 20, block=64)
    c = build(("diagonal", "multi_diagonal", "radial"), (0.05, 0.1, 0.15, 0.25, 0.4, 0.5), g)
    static = [p for p in c.plans[1:] if p.pattern != "sampled"]
    assert len(static) == len(c.masks) - 1
    for plan, mask in zip(static, c.masks[1:]):
        asked = plan.kwargs["density"]
        assert torch.equal(fit_density(plan.pattern, g, asked)[1], mask)
        assert 0 < asked - mask_density(mask, g) < 1 / g.num_blocks ** 2
    assert len({(p.pattern, tuple(m.flatten().tolist())) for p, m in zip(static, c.masks[1:])}) == len(static)


def test_sampled_candidates_ask_the_density_their_rows_keep():
    """0.05 and 0.1 both keep one block a row on a 14-block grid: one candidate, asking what one block a row runs
    (within the router's miss tolerance), with the same count of blocks a row as the value asked before."""
    from videoaccel.patterns.oracle import top_k_density
    from videoaccel.profiling.scoring import build

    g = VideoGeometry(7, 12, 20, block=128)
    c = build(("sampled",), (0.05, 0.1, 0.25), g)
    asked = [p.kwargs["density"] for p in c.plans if p.pattern == "sampled"]
    assert asked == c.scored and len(asked) == 2
    for a, d in zip(asked, (0.05, 0.25)):
        assert round(a * g.num_blocks) == round(d * g.num_blocks)
        assert abs(top_k_density(g, a) - a) <= 0.1 * a


def test_estimate_parameters_reach_the_candidates_and_their_cost():
    """``estimate_rows`` / ``estimate_every``: the per-call candidates carry them (the router runs what was scored) and
    pay for them: 8 rows of 64 every step cost 8 / 128 of a dense attention, 4 rows every 2 steps 4 / 256."""
    from videoaccel.patterns.oracle import top_k_density
    from videoaccel.profiling.scoring import build

    g = VideoGeometry(7, 12, 20, block=64)
    plain, finer = build(("sampled",), (0.25,), g), build(("sampled",), (0.25,), g, (("every", 1), ("rows", 8)))
    assert finer.plans[-1].kwargs == {"density": plain.plans[-1].kwargs["density"], "every": 1, "rows": 8}
    d = top_k_density(g, plain.scored[0])
    assert plain.cost[-1].item() == pytest.approx(d + 4 / 256) and finer.cost[-1].item() == pytest.approx(d + 8 / 128)
    with pytest.raises(ValueError, match="estimate_rows"):
        ProfileConfig(estimate_rows=0)


@pytest.mark.parametrize("buckets", [1, 2])
def test_two_transformer_pipeline_profiles_as_one_and_runs_by_it(buckets):
    """Wan2.2 A14B's shape: transformer for the high-noise steps, transformer_2 below the boundary. One calibration
    observes both; the buckets split at the boundary (no plan mixes the stages); the profile then routes both."""
    import videoaccel
    from diffusers import WanPipeline, WanTransformer3DModel
    from test_pipelines import _tiny_wan_pipeline

    one = _tiny_wan_pipeline()
    torch.manual_seed(1)
    second = WanTransformer3DModel.from_config(one.transformer.config).eval()
    pipe = WanPipeline(tokenizer=one.tokenizer, text_encoder=one.text_encoder, vae=one.vae, scheduler=one.scheduler,
                       transformer=one.transformer, transformer_2=second, boundary_ratio=0.9)
    kw = dict(height=64, width=64, num_frames=9, num_inference_steps=4, guidance_scale=1.0, max_sequence_length=8)
    cal = calibrate(pipe, ["a red circle moving left"], ProfileConfig(block=16, buckets=buckets, rows=32), progress=False, **kw)
    profile = cal.profile("two-stage", error_budget=0.3)
    assert profile.bucket_edges == [900.0] and profile.meta["stage_boundary"] == 900.0
    assert all(len(buckets_of_layer) == 2 for buckets_of_layer in profile.layers.values())  # a plan per stage
    assert len(profile.budget["bucket_steps"]) == 2
    assert {b for _, b in cal.profiler.calibration.err} == {0, 1}  # both stages observed
    videoaccel.accelerate(pipe, profile)
    pipe("a red circle moving left", output_type="latent", **kw)
    rep = videoaccel.report(pipe)
    videoaccel.restore(pipe)
    assert set(rep.transformers) == {"transformer", "transformer_2"} and rep.fallbacks == 0
    assert all(sum(s.calls for s in t.layers.values()) > 0 for t in rep.transformers.values())


def test_score_every_scores_one_step_in_n_and_still_weighs_every_step():
    """``score_every=2``: prompt 0 scores steps 0, 2; prompt 1 steps 1, 3; a step no prompt scored takes its bucket's
    errors in the probe's step weights (all finite); the probe reuses prompt 0's dense run (the resume test checks the
    profile is the same as with a probe that runs its own)."""
    from test_pipelines import _tiny_wan_pipeline

    pipe = _tiny_wan_pipeline()
    call = dict(num_inference_steps=4, height=64, width=128, num_frames=9, max_sequence_length=8)
    cal = calibrate(pipe, ["a red circle moving left"], ProfileConfig(block=16, buckets=2, score_every=2), progress=False, **call)
    assert sorted(cal.profiler.calibration.step_err) == [0, 2]
    prof = cal.profile("t", target_density=0.5)
    w = prof.meta["step_weights"]
    assert len(w) == 4 and all(x == x and x < 1e6 for x in w)  # steps 1 and 3 weighed from their buckets
    cal = calibrate(pipe, ["a red circle moving left", "a blue square"], ProfileConfig(block=16, buckets=2, score_every=2,
                                                                                      probe=False), progress=False, **call)
    assert sorted(cal.profiler.calibration.step_err) == [0, 1, 2, 3]
    # 3 buckets over 4 steps ([0], [1], [2, 3]): step 1's bucket has no step the rule picks, so it scores step 1
    cal = calibrate(pipe, ["a red circle moving left"], ProfileConfig(block=16, buckets=3, score_every=2, probe=False),
                    progress=False, **call)
    assert cal.profiler.calibration.step_bucket == [0, 1, 2, 2] and sorted(cal.profiler.calibration.step_err) == [0, 1, 2]


def test_probe_size_runs_the_probe_at_that_size_and_is_checked_up_front(monkeypatch):
    """``probe_size``: the probe's runs (its own dense run too) at that size, the calibration at its own; a size that
    is not FxHxW stops in the config, before any model runs."""
    from test_pipelines import _tiny_wan_pipeline
    from videoaccel.profiling import probe

    with pytest.raises(ValueError, match="FRAMESxHEIGHTxWIDTH"):
        ProfileConfig(probe_size="9x64")
    sizes = []
    real = probe.latent_run
    monkeypatch.setattr(probe, "latent_run", lambda pipe, prompt, seed, on_step, call: (
        sizes.append((call["num_frames"], call["height"], call["width"], on_step is not None)),
        real(pipe, prompt, seed, on_step, call))[1])
    pipe = _tiny_wan_pipeline()
    call = dict(num_inference_steps=3, height=64, width=128, num_frames=9, max_sequence_length=8)
    cal = calibrate(pipe, ["a red circle moving left"], ProfileConfig(block=16, buckets=2, probe_size="5x32x64"),
                    progress=False, **call)
    # the calibration run keeps no latents; the probe's dense run and its perturbed run at 5x32x64
    assert sizes == [(9, 64, 128, False), (5, 32, 64, True), (5, 32, 64, True)]
    assert cal.profiler.probe["size"] == "5x32x64" and len(cal.profile("t", target_density=0.5).meta["step_weights"]) == 3


def test_calibration_spec_names_prompts_period_and_probe():
    from videoaccel.benchmarks.calibration_time import calib_spec

    assert calib_spec("1:4") == (1, 4, True, None)
    assert calib_spec("2:1:noprobe") == (2, 1, False, None)
    assert calib_spec("4:1:probe17x128x224") == (4, 1, True, "17x128x224")
    for bad in ("1", "1:0", "1:4:probe3x4", "1:4:fast"):
        with pytest.raises(ValueError, match="PROMPTS:SCORE_EVERY"):
            calib_spec(bad, "--fast-calib")


def test_a_measured_table_prices_the_graph_copies_of_short_cuda_calls_only():
    """Calls the router replays as CUDA graphs (a GPU, q within routing.call_graphs.MAX_BYTES) pay the table's copy
    row scaled to their length; a CPU calibration, or a sequence over the cap, pays none."""
    from videoaccel.profiling.costs import CostModel
    from videoaccel.routing.call_graphs import MAX_BYTES

    row = lambda pattern, d, ms, **kw: {"pattern": pattern, "precision": "bf16", "head_dim": 64, "block": 32,  # noqa: E731
                                        "density": d, "ms": ms, "dense_ms": 1.0, **kw}
    costs = CostModel("measured", "x", [row("radial", 0.05, 0.05), row("radial", 1.0, 1.0),
                                        row("graph", 0.25, 0.05, tokens=G.seq_len)])
    profiler = _profiler(target_density=0.3, compensate=False)
    cal = profiler.calibration
    cal.heads = 4  # what the router's observer records (observe() alone does not)
    base = profiler.chooser().candidates(G, costs)[1]
    cal.device = torch.device("cuda")  # only read, never used for work here
    graphed = profiler.chooser().candidates(G, costs)[1]
    assert torch.allclose(graphed[:-1], base[:-1] + 0.05) and graphed[-1] == base[-1] == 1.0  # dense: cuDNN, no graph
    cal.batch = MAX_BYTES // (G.seq_len * cal.heads * cal.head_dim * 2) + 1  # q over the cap: no graph
    assert torch.equal(profiler.chooser().candidates(G, costs)[1], base)
