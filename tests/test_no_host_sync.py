"""The attention call path reads nothing back from the device: no .item(), .cpu(), .tolist(), nonzero() or
tensor-to-Python conversion inside ``AttentionRouter.attend`` once a geometry's tables are built, for a mixed
profile (per-call sampled masks, static masks, dense, skipped and compensated heads; text joined or not).

On the CPU the device code path is exercised through the Triton interpreter (the same launchers and kernels
a GPU runs); the PyTorch CPU fallbacks (kernels/torch_attention.py, compensation's torch path) are
host code by design and not used here. The GPU twin of this test runs a whole generation under
``torch.cuda.set_sync_debug_mode("error")`` (python -m videoaccel.benchmarks.routing)."""
from contextlib import contextmanager

import pytest
import torch

import videoaccel
import videoaccel.patterns.sampled as sampled
from videoaccel.kernels import backends
from videoaccel.kernels.compensate import compensate_
from videoaccel.pipelines import router_of
from videoaccel.plans import Plan, Profile
from videoaccel.routing import AttentionRouter
from tiny_models import TINY

READS = ("item", "cpu", "tolist", "nonzero", "__bool__", "__int__", "__float__")


@contextmanager
def reads_forbidden(router):
    """Inside ``router.attend``, any read of a tensor's values on the host raises."""
    state = {"on": False}
    saved = {name: getattr(torch.Tensor, name) for name in READS}

    def guard(name):
        def method(self, *a, **kw):
            if state["on"]:
                raise AssertionError(f"host read Tensor.{name} on the attention call path")
            return saved[name](self, *a, **kw)
        return method

    attend = router.attend

    def guarded(*a, **kw):
        state["on"] = True
        try:
            return attend(*a, **kw)
        finally:
            state["on"] = False

    for name in READS:
        setattr(torch.Tensor, name, guard(name))
    router.attend = guarded
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(torch.Tensor, name, fn)
        router.attend = attend


def _device_path(router, monkeypatch):
    """The kernels a GPU runs (Triton launchers, fused estimate, compensation kernel), under the interpreter."""
    triton = backends.BACKENDS["triton"]
    router.runner.kernels.sparse = lambda q, k, v, lay, scale, lse, fp8, out: backends.run(triton, q, k, v, lay, scale, lse, fp8, out)
    router.runner.kernels.compensate = lambda *a, **kw: compensate_(*a, **kw, backend="triton")
    block_mass = sampled.sampled_block_mass
    monkeypatch.setattr(sampled, "sampled_block_mass", lambda *a, **kw: block_mass(*a, **{**kw, "fused": True}))


@pytest.mark.parametrize("name", ["wan", "cogvideox"])
def test_attention_calls_read_nothing_back(name, monkeypatch):
    model, kwargs = TINY[name]()
    heads = [Plan("sampled", (("density", 0.3), ("rows", 2), ("every", 1)), compensate=True),
             Plan("radial", (("density", 0.4),))]
    mixed = [Plan("sampled", (("density", 0.25), ("rows", 2))), Plan()]
    skip = [Plan("skip"), Plan("diagonal", (("density", 0.3),), compensate=True)]
    prof = Profile("mixed", layers={0: [heads, mixed], 1: [mixed, skip]}, bucket_edges=[600.0], block=32)
    videoaccel.accelerate(model, prof)
    router = router_of(model)
    _device_path(router, monkeypatch)
    kwargs["timestep"] = torch.tensor([900.0, 900.0])
    with torch.no_grad():
        model(**kwargs)  # builds the tables of this geometry and phase (host work, once)
        with reads_forbidden(router):
            for t in (900.0, 300.0):  # estimates due, another bucket
                kwargs["timestep"] = torch.tensor([t, t])
                out = model(**kwargs)[0]
    rep = videoaccel.report(model).transformers["transformer"]
    videoaccel.restore(model)
    assert torch.isfinite(out).all() and rep.fallbacks == 0
    assert 0.0 < rep.mean_density < 1.0


def test_fp8_heads_take_a_second_launch_and_merge_back(monkeypatch):
    """FP8 heads (plain, compensated, dense) beside bf16 heads: the FP8 launch's rows and lse go back into the call's,
    compensation merges over both, against a float64 reference (Triton interpreter: FP8 as on a GPU)."""
    import math

    import videoaccel.routing.compiler as compiler
    from videoaccel.kernels.reference import pyramid_reference
    from videoaccel.routing.geometry import call_geometry

    monkeypatch.setattr(compiler, "fp8_runs_on", lambda device: True)
    plans = [Plan("radial", (("density", 0.4),), "fp8", compensate=True), Plan("radial", (("density", 0.4),)),
             Plan("dense", precision="fp8"), Plan("sampled", (("density", 0.3), ("rows", 2)), "fp8")]
    r = AttentionRouter(Profile("p", layers={0: [plans]}, block=32), 1, 4, "back")
    _device_path(r, monkeypatch)
    r.begin_forward(0, 900.0, (3, 8, 8), 7, torch.device("cpu"))
    gen = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(1, 3 * 8 * 8 + 7, 4, 64, generator=gen).to(torch.bfloat16) for _ in range(3))
    out = r.attend(0, q, k, v)
    (table,) = r.compiler._tables.values()
    g = call_geometry((3, 8, 8), q.shape[1], "back", 32, "frame")
    lay = table.layout
    for h in range(4):
        kept = torch.zeros(g.num_blocks, g.num_blocks, dtype=torch.long) - 1
        for qb in range(g.num_blocks):
            kept[qb, lay.lut[h, qb, :lay.counts[h, qb]].long()] = 0
        if h == 2:
            kept[:] = 0
        ref = pyramid_reference(q[:, :, h:h + 1], k[:, :, h:h + 1], v[:, :, h:h + 1], kept[None], 32, g.video_range,
                                g.text_range, compensate=plans[h].compensate)
        err = float((out[:, :, h].double() - ref[:, :, 0]).norm() / ref.norm())
        assert err < (0.06 if plans[h].precision == "fp8" else 0.012), (h, err)
    assert not math.isnan(float(out.float().sum()))
    assert r.report().layers[0].fp8_calls == 1 and r.report().fallbacks == 0
