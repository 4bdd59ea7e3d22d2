"""videoaccel stacked with diffusers' step caches on tiny real transformers (CPU, float32).

Each supported cache x {Wan, CogVideoX, HunyuanVideo}, in both orders (accelerate then enable_cache, and
enable_cache then accelerate): a 4-step loop with changing timesteps runs; with a dense plan it equals the
cached stock model; report() counts 4 steps and shows the layers the cache served; restore() leaves the
cached stock model exactly (weights, processors, hooks, outputs) and disable_cache() the plain one.
"""
import pytest
import torch

import videoaccel
from videoaccel import cache_spec
from videoaccel.pipelines import caches
from videoaccel.plans import Plan, Profile
from tiny_models import TINY

STEPS = (900.0, 700.0, 500.0, 300.0)
_now = {"t": STEPS[0]}
SPECS = {
    "fbc": cache_spec.CacheSpec("fbc", (("threshold", 0.9),)),
    "mag": cache_spec.CacheSpec("mag", (("mag_ratios", [1.0, 1.0, 1.02, 1.02]), ("max_skip_steps", 2), ("retention_ratio", 0.25),
                                        ("threshold", 0.5))),
    "taylorseer": cache_spec.CacheSpec("taylorseer", (("cache_interval", 2), ("disable_cache_before_step", 1))),
    "taylorseer-lite": cache_spec.CacheSpec("taylorseer-lite", (("cache_interval", 2), ("disable_cache_before_step", 1))),
    "faster": cache_spec.CacheSpec("faster", (("spatial_attention_block_skip_range", 2), ("spatial_attention_timestep_skip_range", (-1, 901)),
                                              ("unconditional_batch_timestep_skip_range", (-1, 901)))),
    "pab": cache_spec.CacheSpec("pab", (("spatial_attention_block_skip_range", 2), ("spatial_attention_timestep_skip_range", (-1, 1001)))),
}
MODELS = ("wan", "cogvideox", "hunyuan")
DENSE = Profile("dense-tile", block=16, order="tile")  # tile order on Wan: its hooks on proj_out etc. stack with TaylorSeer-lite


def _enable(model, name):
    model.enable_cache(caches.build(SPECS[name], model, lambda: _now["t"], steps=len(STEPS)))


def _loop(model, kw):
    """Four denoising calls with changing timesteps (batch 2 = FasterCache's [uncond, cond]), state reset after."""
    outs = []
    with torch.no_grad():
        for t in STEPS:
            _now["t"] = t
            with model.cache_context("cond"):
                outs.append(model(**dict(kw, timestep=torch.full((2,), t)))[0])
    model._reset_stateful_cache()  # what the pipeline does at its end (maybe_free_model_hooks)
    return torch.stack(outs)


def _hooks(model):
    return {n: list(m._diffusers_hook._hook_order) for n, m in model.named_modules()
            if getattr(m, "_diffusers_hook", None) is not None and m._diffusers_hook._hook_order}


def _processors(model):
    return [type(m.processor) for m in model.modules() if hasattr(m, "processor")]


def _stack(model, kw, name, first):
    """Accelerate (dense) and enable the cache in the order given; (outputs, report)."""
    if first == "cache":
        _enable(model, name)
    videoaccel.accelerate(model, DENSE)
    if first == "accelerate":
        _enable(model, name)
    out = _loop(model, kw)
    return out, videoaccel.report(model).transformers["transformer"]


def _cases():
    return [(m, c) for m in MODELS for c in SPECS if not (c == "faster" and m == "hunyuan")]


@pytest.mark.parametrize("first", ["accelerate", "cache"])
@pytest.mark.parametrize("model_name, name", _cases())
def test_cache_stacks_in_either_order(model_name, name, first):
    model, kw = TINY[model_name]()
    plain = _loop(model, kw)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    procs = _processors(model)
    _enable(model, name)
    cached, hooks = _loop(model, kw), _hooks(model)
    model.disable_cache()
    out, rep = _stack(model, kw, name, first)
    assert (out - cached).abs().max().item() <= 1e-5 * max(1.0, cached.abs().max().item())  # dense route == SDPA
    assert [s.step for s in rep.steps] == [0, 1, 2, 3] and all(s.passes == 1 for s in rep.steps)
    assert any(s.cached or s.partial for s in rep.steps), [s.calls for s in rep.steps]  # the cache served something
    assert sum(sum(s.calls) for s in rep.steps) == sum(r.calls for r in rep.layers.values())
    assert rep.cache and rep.cache.startswith(caches.describe(model._cache_config).split("(")[0])
    videoaccel.restore(model)
    assert _hooks(model) == hooks and _processors(model) == procs  # the cache's hooks, none of ours
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert torch.equal(_loop(model, kw), cached)  # restore() is exact, cache still on
    model.disable_cache()
    assert _hooks(model) == {} and torch.equal(_loop(model, kw), plain)


@pytest.mark.parametrize("model_name", MODELS)
def test_sparse_with_cache_disabled_equals_sparse_alone(model_name):
    model, kw = TINY[model_name]()
    sparse = Profile("r", default=Plan("radial", (("density", 0.3),)), block=16, order="tile")
    videoaccel.accelerate(model, sparse)
    alone = _loop(model, kw)
    _enable(model, "fbc")
    stacked = _loop(model, kw)
    rep = videoaccel.report(model).transformers["transformer"]
    model.disable_cache()
    again = _loop(model, kw)
    videoaccel.restore(model)
    assert torch.equal(again, alone) and not torch.equal(stacked, alone)
    ran = [s for s in rep.steps if s.density is not None]
    assert ran and all(s.density < 1.0 for s in ran)  # the attention that ran was sparse


def test_refused_combinations_name_the_fix():
    from diffusers.hooks import TaylorSeerCacheConfig

    model, kw = TINY["hunyuan"]()
    model.enable_cache(caches.build(SPECS["faster"], model, lambda: _now["t"]))
    with pytest.raises(ValueError, match="FasterCache cannot run HunyuanVideo.*use --cache pab"):
        videoaccel.accelerate(model, "dense")
    assert not hasattr(model, "_videoaccel")
    model.disable_cache()
    videoaccel.accelerate(model, "dense")  # enabled after accelerate: refused at the first forward, before any block
    model.enable_cache(caches.build(SPECS["faster"], model, lambda: _now["t"]))
    with pytest.raises(ValueError, match="FasterCache cannot run"):
        _loop(model, kw)
    videoaccel.restore(model)
    model.disable_cache()
    wan, _ = TINY["wan"]()
    wan.enable_cache(TaylorSeerCacheConfig())  # its default identifiers match `...attn`, Wan's modules are attn1/attn2
    with pytest.raises(ValueError, match="hooks no module.*cache_identifiers"):
        videoaccel.accelerate(wan, "dense")


def test_cache_spellings():
    assert cache_spec.parse("fbc:0.1") == cache_spec.CacheSpec("fbc", (("threshold", 0.1),))
    assert cache_spec.parse("pab").kwargs == {"spatial_attention_block_skip_range": 2}
    assert cache_spec.parse("taylorseer:4").label == "taylorseer:4" and cache_spec.parse("none") is None
    assert cache_spec.parse("mag:calibrate").kwargs == {"calibrate": True}
    for bad, fix in [("fbc:-1", "fbc:0.05"), ("pab:1", "pab:2"), ("teacache", "fbc:THRESHOLD"), ("taylorseer:x", "taylorseer:5")]:
        with pytest.raises(ValueError, match=fix):
            cache_spec.parse(bad)
    with pytest.raises(ValueError, match="unknown params"):
        cache_spec.from_json({"name": "fbc", "params": {"thresh": 0.1}})
    with pytest.raises(ValueError, match="mag:calibrate"):
        caches.build(cache_spec.parse("mag"), TINY["wan"]()[0], lambda: 0.0, steps=4)


def test_pipeline_with_cfg_two_passes_counts_steps_and_restores():
    from test_pipelines import _tiny_wan_pipeline

    pipe = _tiny_wan_pipeline()
    call = dict(prompt="a red circle moving left", height=64, width=64, num_frames=9, num_inference_steps=3, guidance_scale=5.0,
                max_sequence_length=8, output_type="np")
    run = lambda: pipe(**call, generator=torch.Generator().manual_seed(0)).frames  # noqa: E731
    with pytest.raises(ValueError, match="WanPipeline runs guidance as two calls"):
        caches.enable(pipe, cache_spec.parse("faster"), steps=3)
    assert pipe.transformer._cache_config is None  # refused: nothing left enabled
    caches.enable(pipe, SPECS["pab"], steps=3)  # through the pipeline's current_timestep
    ref = run()
    videoaccel.accelerate(pipe, DENSE)
    out = run()
    rep = videoaccel.report(pipe).transformers["transformer"]
    videoaccel.restore(pipe)
    assert abs(out - ref).max() <= 1e-4 and (run() == ref).all()
    assert [(s.step, s.passes) for s in rep.steps] == [(0, 2), (1, 2), (2, 2)]  # steps from the timestep, not block calls
    assert sum(sum(s.calls) for s in rep.steps) < 3 * 2 * 2  # PAB reused some attention outputs
    caches.disable(pipe)
    assert pipe.transformer._cache_config is None


@pytest.fixture
def no_model(monkeypatch):
    from videoaccel.cli import loading

    def load(*a, **k):
        raise AssertionError("the model was loaded before the bad input was reported")

    monkeypatch.setattr(loading, "load_pipeline", load)


@pytest.mark.parametrize("cache, fix", [("fbc:-1", "e.g. fbc:0.05"), ("pab:1", "e.g. pab:2"), ("teacache", "fbc:THRESHOLD")])
def test_cli_cache_values_are_checked_by_the_parser(cache, fix, capsys, no_model):
    from videoaccel import cli

    with pytest.raises(SystemExit) as e:
        cli.main(["generate", "x", "--cache", cache])
    assert e.value.code == 2 and fix in capsys.readouterr().err


@pytest.mark.parametrize("cache, fix", [("faster", "not WanPipeline: use --cache pab:N"), ("mag", "--cache mag:calibrate")])
def test_cli_cache_refused_for_the_pipeline_before_the_model_loads(cache, fix, tmp_path, capsys, no_model):
    from videoaccel import cli

    code = cli.main(["generate", "a red circle", "-o", str(tmp_path / "o.mp4"), "--cache", cache])  # the embedded WanPipeline
    err = capsys.readouterr().err
    assert code == 2 and fix in err and len(err.strip().splitlines()) == 1


def test_profile_recommended_cache_round_trips_and_generate_uses_it(tmp_path, capsys):
    import json

    from test_pipelines import _tiny_wan_pipeline
    from videoaccel import cli
    from videoaccel.plans import Profile

    prof = Profile("p", cache=cache_spec.CacheSpec("fbc", (("threshold", 0.5),)))
    assert "cache" not in Profile("q").to_json()  # absent unless set: older readers see the schema they know
    path = tmp_path / "p.json"
    prof.save(path)
    assert Profile.load(path).cache == prof.cache and json.loads(path.read_text())["cache"]["name"] == "fbc"
    model = tmp_path / "wan"
    _tiny_wan_pipeline().save_pretrained(model)
    base = ["generate", "a red circle", "--model", str(model), "--profile", str(path), "--steps", "3", "--height", "64",
            "--width", "64", "--frames", "9", "-o", str(tmp_path / "o.mp4")]
    assert cli.main(base) == 0
    out = capsys.readouterr().out
    assert out.count("cache fbc:0.5: the profile's recommendation") == 1 and out.rstrip().endswith("cache fbc:0.5")
    assert cli.main(base + ["--cache", "none"]) == 0 and "cache fbc" not in capsys.readouterr().out


def test_bench_stack_smoke_on_a_tiny_wan(tmp_path):
    from videoaccel.benchmarks import stack, stack_spec

    rows = stack.run(["wan-tiny"], str(tmp_path), steps=3, cache="taylorseer-lite:2", stacks=["dense", "cache", "sparse+cache"], tiny=True)
    by = {r["stack"]: r for r in rows}
    assert by["dense"]["speedup_vs_dense"] == 1.0 and by["dense"]["measured_steps"] == 3
    assert by["sparse+cache"]["attention_ran"] < 1.0 and by["cache"]["cache"] == "taylorseer-lite:2"
    assert (tmp_path / "stack-tiny-cpu.json").is_file()
    with pytest.raises(ValueError, match="e.g. sparse\\+cache\\+fp8\\+compile"):
        stack_spec.parse_stack("dense+fp8")


def test_bench_stack_fidelity_reaches_the_embedded_model(monkeypatch):
    """--fidelity loads the embedded testbed model (its imports resolve; the run itself is GPU work)."""
    from diffusers import WanPipeline

    from videoaccel.benchmarks import stack_fidelity

    def load(model, *a, **k):
        raise RuntimeError(f"loading {model}")

    monkeypatch.setattr(WanPipeline, "from_pretrained", load)
    with pytest.raises(RuntimeError, match="tiny-t2v"):
        stack_fidelity.run("", prompts_n=1, steps=2, stacks=["dense"])
