"""The families added after the first five, on tiny real diffusers classes (CPU, float32): dense equals the
stock model, a sparse plan is sparse and equals the float64 reference of the same plan through the same
processors, restore() is exact, and diffusers' step caches stack in either order; the families videoaccel
cannot route are refused up front with the reason."""
import functools
from pathlib import Path

import diffusers
import pytest
import torch
from torch._dynamo.utils import counters

import videoaccel
from videoaccel.benchmarks.cases import E2E_CASES, BenchCase
from videoaccel.benchmarks.e2e import build_case
from videoaccel.cache_spec import CacheSpec
from videoaccel.pipelines.caches import build
from videoaccel.pipelines.compile import compile_transformer, uncompile
from videoaccel.pipelines.families import REFUSED, SPECS
from videoaccel.pipelines.models import spec_for
from videoaccel.plans import Profile
from test_pipelines import SPARSE, _run, sparse_and_reference
from tiny_models import TINY
from tiny_models_more import TINY_MORE


def test_every_family_has_a_tiny_model():
    tested = {type(make()[0]).__name__ for make in [*TINY.values(), *TINY_MORE.values()]}
    assert set(SPECS) == tested


# radial on every family; per-call estimated masks (draft) where padded text sits in the sequence (the other
# plans are the router's, covered on the first five families by test_pipelines; here the plumbing is the question)
CASES = [(n, "radial") for n in TINY_MORE] + [(n, "draft") for n in ("hunyuan15", "motif")]


@pytest.mark.parametrize("name, plan", CASES)
def test_dense_sparse_reference_and_restore(name, plan):
    model, kwargs = TINY_MORE[name]()
    stock = _run(model, kwargs)
    videoaccel.accelerate(model, "dense")
    joined = set()
    with videoaccel.observe(model, lambda call: joined.add(call.geometry.text)):
        dense = _run(model, kwargs)
    assert joined == {spec_for(model).text(model, (), kwargs)}  # the spec's joint-token hint is what the calls see
    rep = videoaccel.report(model).transformers["transformer"]
    videoaccel.restore(model)
    assert (dense - stock).abs().max().item() <= 1e-5 * max(1.0, stock.abs().max().item())
    assert rep.fallbacks == 0 and all(v.calls >= 1 for v in rep.layers.values())
    sparse, ref, rep = sparse_and_reference(model, kwargs, Profile(plan, default=SPARSE[plan], block=16))
    assert torch.isfinite(sparse).all() and not torch.allclose(sparse, stock, atol=1e-4)
    assert (sparse - ref).abs().max().item() <= 2e-5 * max(1.0, ref.abs().max().item())
    assert rep.fallbacks == 0, rep
    assert rep.mean_density < 1.0
    assert torch.equal(_run(model, kwargs), stock)  # restore() is exact


@pytest.mark.parametrize("name", ["hunyuan15", "cosmos", "easyanimate", "kandinsky5", "helios"])
def test_regional_compile_has_no_graph_breaks(name):
    """The replacement processors, and dispatch families with their own layouts, compile without graph breaks
    (aot_eager: dynamo is the question, as in test_compile)."""
    model, kwargs = TINY_MORE[name]()
    videoaccel.accelerate(model, Profile("radial", default=SPARSE["radial"], block=16))
    eager = _run(model, kwargs)
    torch._dynamo.reset()
    counters.clear()
    compile_transformer(model, backend="aot_eager")
    try:
        compiled = _run(model, kwargs)
    finally:
        uncompile(model)
        videoaccel.restore(model)
        torch._dynamo.reset()
    assert sum(counters["graph_break"].values()) == 0, dict(counters["graph_break"])
    assert (compiled - eager).abs().max().item() <= 1e-5


STEPS = (900.0, 600.0, 300.0)


def _loop(model, kw, now):
    outs = []
    with torch.no_grad():
        for t in STEPS:
            now["t"] = t
            with model.cache_context("cond"):
                outs.append(model(**dict(kw, timestep=torch.full_like(kw["timestep"], t)))[0])
    model._reset_stateful_cache()
    return torch.stack(outs)


@pytest.mark.parametrize("name", list(TINY_MORE))
def test_a_step_cache_stacks_before_and_after(name):
    model, kw = TINY_MORE[name]()
    if not hasattr(model, "enable_cache"):
        pytest.skip(f"diffusers' caches do not take {type(model).__name__} (no CacheMixin)")
    now = {"t": STEPS[0]}
    spec = CacheSpec("pab", (("spatial_attention_block_skip_range", 2), ("spatial_attention_timestep_skip_range", (-1, 1001))))
    model.enable_cache(build(spec, model, lambda: now["t"]))
    cached = _loop(model, kw, now)
    for first in ("cache", "accelerate"):
        if first == "accelerate":
            model.disable_cache()
        videoaccel.accelerate(model, "dense")
        if first == "accelerate":
            model.enable_cache(build(spec, model, lambda: now["t"]))
        out = _loop(model, kw, now)
        rep = videoaccel.report(model).transformers["transformer"]
        videoaccel.restore(model)
        assert (out - cached).abs().max().item() <= 1e-5 * max(1.0, cached.abs().max().item()), first
        assert any(s.cached or s.partial for s in rep.steps), first  # the cache served some attention
        assert torch.equal(_loop(model, kw, now), cached)  # restored: the cached stock model exactly
    model.disable_cache()


@pytest.mark.parametrize("cls_name", list(REFUSED))
def test_refused_families_say_why_before_installing(cls_name):
    cls = getattr(diffusers, cls_name)
    model = torch.nn.Module.__new__(cls)  # the class is what is refused: no weights needed
    torch.nn.Module.__init__(model)
    with pytest.raises(ValueError, match=f"{cls_name} cannot be accelerated: {REFUSED[cls_name][:20]}"):
        videoaccel.accelerate(model, "dense")


def test_refused_configurations_say_why():
    model = TINY_MORE["skyreels"]()[0]
    model.register_to_config(num_frame_per_block=2)
    with pytest.raises(ValueError, match="num_frame_per_block=2 makes its attention block-causal"):
        videoaccel.accelerate(model, "dense")
    assert not hasattr(model, "_videoaccel")
    kandinsky = TINY_MORE["kandinsky5"]()[0]
    kandinsky.register_to_config(attention_type="nabla")
    with pytest.raises(ValueError, match="attention_type='nabla' computes its own sparse attention mask"):
        spec_for(kandinsky)


@functools.cache
def _tiny_configs() -> dict:
    """Class name -> the config of its tiny model (built once, when a test asks)."""
    models = (make()[0] for make in [*TINY.values(), *TINY_MORE.values()])
    return {type(m).__name__: {k: v for k, v in m.config.items() if not k.startswith("_")} for m in models}


@pytest.mark.parametrize("case", list(E2E_CASES))
def test_bench_case_inputs_run_a_tiny_model_of_its_class(case):
    """bench e2e builds each family's step inputs from the model's config: the same code on a tiny config of the
    class runs a forward in bfloat16 as on the GPU (dtype mismatches show), and the spec reads the case's token grid
    off those inputs."""
    c = E2E_CASES[case]
    small = BenchCase(case, c.model, _tiny_configs()[c.model], (5, 16, 16))
    model, kw = build_case(small, "cpu", torch.bfloat16)
    assert spec_for(model).grid(model, (), kw) == small.grid
    assert torch.isfinite(_run(model, kw)).all()


@pytest.mark.parametrize("case", list(E2E_CASES))
def test_bench_case_config_builds_its_class(case):
    """The published config itself (not only the class's tiny one) constructs: built on the meta device, no memory."""
    c = E2E_CASES[case]
    with torch.device("meta"):
        model = getattr(diffusers, c.model)(**c.config)
    assert sum(p.numel() for p in model.parameters()) > 1e9 or "1.3b" in case or "lite" in case


def test_diffusion_forcing_pipelines_are_refused_with_the_reason():
    from diffusers import SkyReelsV2DiffusionForcingPipeline

    pipe = SkyReelsV2DiffusionForcingPipeline.__new__(SkyReelsV2DiffusionForcingPipeline)  # the class is what is refused
    with pytest.raises(ValueError, match="its own copy of the scheduler.*SkyReelsV2Pipeline and SkyReelsV2ImageToVideo"):
        videoaccel.accelerate(pipe, "dense")


PROFILES = Path(__file__).resolve().parent.parent / "profiles"


def test_every_family_ships_a_preset_profile_that_loads_for_its_model_only():
    by_class = {}
    for path in PROFILES.glob("*.json"):
        prof = Profile.load(path)
        if prof.model and not prof.calibrated:
            by_class.setdefault(prof.model["class"], path)
    assert set(SPECS) <= set(by_class), set(SPECS) - set(by_class)
    for name, make in TINY_MORE.items():
        model, kwargs = make()
        path = by_class[type(model).__name__]
        videoaccel.accelerate(model, str(path))
        _run(model, kwargs)
        videoaccel.restore(model)
    with pytest.raises(ValueError, match="was made for"):
        videoaccel.accelerate(TINY_MORE["cosmos"]()[0], str(by_class["WanTransformer3DModel"]))


def test_readme_lists_every_family_with_its_pipelines():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| ") and "Transformer3DModel`" in line]
    for spec in SPECS.values():
        (row,) = [r for r in rows if f"`{spec.class_name}`" in r]
        assert all(f"`{p}`" in row for p in spec.pipelines), (spec.class_name, row)
        assert ("| dispatch |" in row) == (spec.processor == "dispatch"), row
