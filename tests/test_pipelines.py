"""diffusers integration on tiny real model classes (CPU, float32)."""
import json

import pytest
import torch

import videoaccel
from videoaccel.pipelines import router_of
from videoaccel.pipelines.models import spec_for
from videoaccel.plans import SCHEMA_VERSION, Plan, Profile, config_hash, preset
from reference_executors import REFERENCE
from tiny_models import TINY

SPARSE = {
    "radial": Plan("radial", (("density", 0.3),)),
    "draft": Plan("draft", (("top_p", 0.8),)),
    "pyramid": Plan("pyramid", (("thresholds", (0.5, 0.8)),)),
    "diagonal+compensation": Plan("diagonal", (("density", 0.3),), compensate=True),
}


def _run(model, kwargs):
    with torch.no_grad():
        return model(**kwargs)[0]


@pytest.mark.parametrize("name", list(TINY))
def test_dense_preset_equals_unwrapped(name):
    model, kwargs = TINY[name]()
    ref = _run(model, kwargs)
    videoaccel.accelerate(model, Profile("dense", block=32))
    out = _run(model, kwargs)
    rep = videoaccel.report(model).transformers["transformer"]
    videoaccel.restore(model)
    assert (out - ref).abs().max().item() <= 1e-6
    assert rep.fallbacks == 0 and all(v.calls >= 1 for v in rep.layers.values())
    assert (_run(model, kwargs) - ref).abs().max().item() == 0.0  # restore() is exact


def test_accelerated_restores_when_the_block_ends():
    model, kwargs = TINY["wan"]()
    ref = _run(model, kwargs)
    with videoaccel.accelerated(model, "radial:0.3") as acc:
        _run(model, kwargs)
        assert acc.report().transformers["transformer"].mean_density < 1.0
    assert not hasattr(model, "_videoaccel")
    assert (_run(model, kwargs) - ref).abs().max().item() == 0.0
    acc.restore()  # a second undo does nothing
    assert videoaccel.accelerate(model, "dense") is None
    videoaccel.restore(model)


def sparse_and_reference(model, kwargs, profile):
    """Accelerated by ``profile``: its output, the float64 reference of the same plans through the same processors
    (``router.runner.kernels = REFERENCE``), and the report; restored after."""
    videoaccel.accelerate(model, profile)
    out = _run(model, kwargs)
    router = router_of(model)
    router.runner.kernels = REFERENCE
    router.reset()
    ref = _run(model, kwargs)
    rep = videoaccel.report(model).transformers["transformer"]
    videoaccel.restore(model)
    return out, ref, rep


@pytest.mark.parametrize("plan", list(SPARSE))
@pytest.mark.parametrize("name", list(TINY))
def test_sparse_plans_equal_reference_of_the_same_plan(name, plan):
    """The kernels (torch path on CPU) through the real processors equal a float64 reference of the
    same plan through the same plumbing; and the plan really is sparse."""
    model, kwargs = TINY[name]()
    block = 32 if plan == "pyramid" else 16
    out, ref, rep = sparse_and_reference(model, kwargs, Profile(plan, default=SPARSE[plan], block=block, order="tile"))
    assert (out - ref).abs().max().item() <= 2e-5 * max(1.0, ref.abs().max().item())
    assert rep.fallbacks == 0, rep
    assert rep.mean_density < 1.0


def test_tile_order_with_dense_plans_is_exact():
    model, kwargs = TINY["wan"]()
    ref = _run(model, kwargs)
    videoaccel.accelerate(model, Profile("dense-tile", block=16, order="tile"))
    assert router_of(model).order == "tile"
    out = _run(model, kwargs)
    videoaccel.restore(model)
    assert (out - ref).abs().max().item() <= 1e-5


def _tiny_wan_pipeline():
    from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel

    from tiny_pipelines import text_and_vae

    parts = text_and_vae()
    model, _ = TINY["wan"]()
    tr = WanTransformer3DModel.from_config({**model.config, "in_channels": 16, "out_channels": 16}).eval()
    return WanPipeline(**parts, scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0), transformer=tr)


def test_pipeline_call_with_cfg_sees_steps_and_resets():
    pipe = _tiny_wan_pipeline()
    videoaccel.accelerate(pipe, Profile("r", default=SPARSE["radial"], block=16, order="tile", dense_steps=1))
    for _ in range(2):  # a second call starts again at step 0
        frames = pipe("a red circle moving left", height=64, width=64, num_frames=9, num_inference_steps=3, guidance_scale=5.0,
                      max_sequence_length=8, output_type="np").frames
        assert frames.shape == (1, 9, 64, 64, 3)
        router = router_of(pipe.transformer)
        assert router.context is None  # reset at the end of the pipeline call
        for layer in range(2):
            assert router.stats[layer].steps[-6:] == [0, 0, 1, 1, 2, 2]  # CFG as two passes per step
        plans = videoaccel.report(pipe).transformers["transformer"].layers[0].plans
        assert plans == ["radial(density=0.3)"] * 2
    videoaccel.restore(pipe)
    assert not hasattr(pipe.transformer, "_videoaccel")
    assert all(not h.hooks for h in [getattr(m, "_diffusers_hook", None) for m in pipe.transformer.modules()] if h is not None)
    assert all(type(b.attn1.processor).__name__ == "WanAttnProcessor" for b in pipe.transformer.blocks)


def test_second_accelerate_errors_and_unsupported_pipeline():
    model, _ = TINY["wan"]()
    videoaccel.accelerate(model, "dense")
    with pytest.raises(ValueError, match="already accelerated"):
        videoaccel.accelerate(model, "dense")
    videoaccel.restore(model)
    with pytest.raises(ValueError, match="is not supported; videoaccel supports WanTransformer3DModel"):
        videoaccel.accelerate(torch.nn.Linear(2, 2), "dense")

    class NotAPipeline:
        pass

    with pytest.raises(ValueError, match="WanPipeline"):
        videoaccel.accelerate(NotAPipeline(), "dense")


def test_profile_errors_name_the_fix(tmp_path):
    model, kwargs = TINY["wan"]()
    with pytest.raises(ValueError, match="unknown preset"):
        videoaccel.accelerate(model, "nonsense")
    other = Profile("p", model={"class": "WanTransformer3DModel", "config_hash": "0000"})
    with pytest.raises(ValueError, match="videoaccel profile"):
        videoaccel.accelerate(model, other)
    path = tmp_path / "p.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="corrupt"):
        videoaccel.accelerate(model, str(path))
    path.write_text(json.dumps({**Profile("x").to_json(), "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(ValueError, match="upgrade videoaccel"):
        videoaccel.accelerate(model, str(path))
    # a matching fingerprint loads and round-trips
    good = Profile("g", default=SPARSE["radial"], model={"class": "WanTransformer3DModel", "config_hash": config_hash(model.config)}, block=16)
    good.save(path)
    assert Profile.load(path).to_json() == good.to_json()
    videoaccel.accelerate(model, str(path))
    _run(model, kwargs)
    videoaccel.restore(model)


def test_presets_parse():
    assert preset("radial").default == Plan("radial", (("density", 0.25),))
    assert preset("draft:0.8+fp8").default == Plan("draft", (("top_p", 0.8),), "fp8")
    assert preset("dense").order == "frame"
    with pytest.raises(ValueError, match="number"):
        preset("radial:abc")


def test_explicit_fallbacks_are_counted():
    model, kwargs = TINY["wan"]()
    videoaccel.accelerate(model, Profile("f", default=Plan("radial", (("density", 0.3),), precision="fp8"), block=16))
    _run(model, kwargs)
    rep = videoaccel.report(model).transformers["transformer"]
    videoaccel.restore(model)
    assert rep.layers[0].fallbacks == {"fp8 attention needs a CUDA GPU: ran bf16": 1}


def test_fp8_linear_needs_a_capable_gpu():
    model, _ = TINY["wan"]()
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="compute capability"):
            videoaccel.accelerate(model, "dense", fp8_linear=True)
        assert not hasattr(model, "_videoaccel")


@pytest.mark.parametrize("family, tiny", [("wan2.1-t2v", "wan"), ("hunyuanvideo", "hunyuan"), ("cogvideox", "cogvideox"),
                                          ("ltx-video", "ltx"), ("mochi", "mochi")])
def test_shipped_preset_profiles_load_for_their_model_only(family, tiny):
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "profiles" / f"{family}.json"
    prof = Profile.load(path)
    assert not prof.calibrated and prof.meta["uncalibrated"]
    model, kwargs = TINY[tiny]()
    videoaccel.accelerate(model, str(path))
    _run(model, kwargs)
    videoaccel.restore(model)
    other, _ = TINY["wan" if tiny != "wan" else "mochi"]()
    with pytest.raises(ValueError, match="was made for"):
        videoaccel.accelerate(other, str(path))


def _router(plans, text_position="back", grid=(5, 8, 8), block=16):
    from videoaccel.routing import AttentionRouter

    r = AttentionRouter(Profile("p", layers={0: [plans]}, block=block), 1, len(plans), text_position)
    r.begin_forward(0, 900.0, grid, 0, torch.device("cpu"))
    return r


def test_dense_heads_of_a_mixed_plan_keep_the_padding_mask():
    torch.manual_seed(0)
    B, S, H, D = 2, 5 * 8 * 8 + 8, 2, 64
    q, k, v = (torch.randn(B, S, H, D) for _ in range(3))
    mask = torch.ones(B, S, dtype=torch.bool)
    mask[1, -3:] = False  # sample 1: its last 3 text tokens are padding
    out = _router([Plan(), SPARSE["radial"]]).attend(0, q, k, v, attn_mask=mask)
    ref = torch.nn.functional.scaled_dot_product_attention(*(t.transpose(1, 2) for t in (q, k, v)),
                                                           attn_mask=mask[:, None, None, :]).transpose(1, 2)
    assert (out[:, :, 0] - ref[:, :, 0]).abs().max().item() < 1e-5


def test_draft_heads_get_their_own_masks_written_in_the_lut():
    from videoaccel.patterns import draft_masks
    from videoaccel.routing.geometry import call_geometry

    torch.manual_seed(0)
    S = 5 * 8 * 8
    q, k, v = (torch.randn(1, S, 2, 64) for _ in range(3))
    q[..., 1, :] = torch.randn(1, S, 64) * 3
    draft = (("top_p", 0.5),)
    r = _router([Plan("draft", draft), Plan("draft", draft, compensate=True)], text_position="none")
    r.attend(0, q, k, v)
    g = call_geometry(r.context.grid, S, "none", 16, "frame")
    (table,) = [t for t in r.compiler._tables.values() if t.selections]
    for h in range(2):
        want = draft_masks(q[:, :, h:h + 1], k[:, :, h:h + 1], g, top_p=0.5)[0]
        got = torch.zeros_like(want)
        for qb in range(g.num_blocks):
            got[qb, table.layout.lut[h, qb, :table.layout.counts[h, qb]].long()] = True
        assert torch.equal(got, want), h


def test_pyramid_levels_respect_small_blocks():
    torch.manual_seed(0)
    S = 5 * 16 * 16
    q, k, v = (torch.randn(1, S, 2, 64) for _ in range(3))
    r = _router([Plan("pyramid"), Plan("pyramid")], text_position="none", grid=(5, 16, 16), block=64)
    r.attend(0, q, k, v)
    assert r.report().fallbacks == 0


@pytest.mark.parametrize("name", ["mochi", "cogvideox"])
def test_step_hook_finds_the_timestep_of_positional_calls(name):
    model, kw = TINY[name]()
    videoaccel.accelerate(model, "dense")
    r = router_of(model)
    args = (kw.pop("hidden_states"), kw.pop("encoder_hidden_states"), kw.pop("timestep"))
    with torch.no_grad():
        model(*args, **kw)
        first = (r.context.timestep, r.context.step)
        model(args[0], args[1] * 0, args[2], **kw)  # the unconditional pass of the same step
    videoaccel.restore(model)
    assert first == (float(args[2].max()), 0) and (r.context.step, r.context.passes) == (0, 1)


def test_accelerated_model_deepcopy_is_refused_with_the_fix():
    import copy

    model, kwargs = TINY["wan"]()
    videoaccel.accelerate(model, Profile("r", default=SPARSE["radial"], block=16))
    with pytest.raises(ValueError, match="restore first"):  # a copy would share the router (issue 32)
        copy.deepcopy(model)
    videoaccel.restore(model)
    copy.deepcopy(model)


def test_a_profile_at_another_size_than_calibrated_is_said_once(caplog):
    """Plans refit to any size, but the calibrated fidelity belongs to the calibration's grid: said once per size."""
    model, kwargs = TINY["wan"]()
    at = Profile("elsewhere", default=SPARSE["radial"], block=16, calibrated=True, meta={"geometry": [9, 9, 9, 0]})
    with caplog.at_level("WARNING", logger="videoaccel"):
        videoaccel.accelerate(model, at)
        _run(model, kwargs)
        _run(model, kwargs)
        videoaccel.restore(model)
    said = [r.message for r in caplog.records if "was calibrated at 9x9x9 video tokens" in r.message]
    assert len(said) == 1 and "profile at this size" in said[0]
    caplog.clear()
    grid = spec_for(model).grid(model, (), kwargs)
    with caplog.at_level("WARNING", logger="videoaccel"):
        videoaccel.accelerate(model, Profile("here", default=SPARSE["radial"], block=16, calibrated=True,
                                             meta={"geometry": [*grid, 0]}))
        _run(model, kwargs)
        videoaccel.restore(model)
    assert not [r for r in caplog.records if "was calibrated at" in r.message]


def test_a_profile_at_another_step_count_keeps_its_warm_up_share(caplog):
    """Allocated for 4 steps with 2 dense: 8 steps run 4 dense (said once); 4 steps run it as made (nothing said)."""
    pipe = _tiny_wan_pipeline()
    profile = Profile("four", default=SPARSE["radial"], block=16, order="tile", dense_steps=2, steps=4, calibrated=True)
    call = dict(height=64, width=64, num_frames=9, guidance_scale=1.0, max_sequence_length=8, output_type="latent")
    videoaccel.accelerate(pipe, profile)
    router = router_of(pipe.transformer)
    with caplog.at_level("WARNING", logger="videoaccel"):
        pipe("a red circle moving left", num_inference_steps=8, **call)
        dense = [s.density == 1.0 for s in router.steps.report()]
        assert router.profile.dense_steps == 4 and dense == [True] * 4 + [False] * 4
        pipe("a red circle moving left", num_inference_steps=4, **call)
        assert router.profile.dense_steps == 2
    said = [r.message for r in caplog.records if "allocated for 4 steps" in r.message]
    assert len(said) == 1 and "become 4" in said[0], said
    videoaccel.restore(pipe)
