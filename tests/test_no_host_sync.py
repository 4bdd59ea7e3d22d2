"""The attention call path reads nothing back from the device: no .item(), .cpu(), .tolist(), nonzero() or
tensor-to-Python conversion inside ``AttentionRouter.attend`` once a geometry's tables are built, for a mixed
profile (per-call sampled masks, static masks, dense, skipped and compensated heads; text joined or not).

On the CPU the device code path is exercised through the Triton interpreter (the same launchers and kernels
a GPU runs); the PyTorch CPU fallbacks (kernels/torch_attention.py, compensation's torch path) are
host code by design and not used here. The GPU twin of this test runs a whole generation under
``torch.cuda.set_sync_debug_mode("error")`` (scripts/gpu_check.py)."""
from contextlib import contextmanager

import pytest
import torch

import videoaccel
import videoaccel.patterns.sampled as sampled
from videoaccel.kernels import backends
from videoaccel.kernels.compensate import compensate_
from videoaccel.pipelines import router_of
from videoaccel.plans import Plan, Profile
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
