"""A deepcopy of an accelerated model is refused with the fix (and restore / accelerate work after it) (issue 32)."""
import copy

import pytest
import torch

import videoaccel
from tiny_models import TINY
from videoaccel.plans import Plan, Profile

RADIAL = Profile("r", default=Plan("radial", (("density", 0.3),)), block=16)


def _run(model, kwargs):
    with torch.no_grad():
        return model(**kwargs)[0]


def _calls(model):
    return sum(r.calls for r in videoaccel.report(model).transformers["transformer"].layers.values())


def test_deepcopy_of_an_accelerated_model_is_refused_before_copying(monkeypatch):
    model, kwargs = TINY["wan"]()
    ref = _run(model, kwargs)
    videoaccel.accelerate(model, RADIAL)
    sparse = _run(model, kwargs)
    copied = []
    monkeypatch.setattr(torch.Tensor, "__deepcopy__", lambda *a: copied.append(1))  # no weight is copied first
    with pytest.raises(ValueError, match=r"restore first \(videoaccel.restore\(pipe\)\), copy, then accelerate the copy"):
        copy.deepcopy(model)
    monkeypatch.undo()
    assert copied == []
    assert torch.equal(_run(model, kwargs), sparse) and _calls(model) == 4  # 2 layers, 2 runs
    videoaccel.restore(model)
    assert torch.equal(_run(model, kwargs), ref) and "__deepcopy__" not in model.__dict__


def test_after_restore_a_copy_and_the_original_accelerate_and_restore_independently():
    model, kwargs = TINY["wan"]()
    ref = _run(model, kwargs)
    videoaccel.accelerate(model, RADIAL)
    with pytest.raises(ValueError):
        copy.deepcopy(model)
    videoaccel.restore(model)
    twin = copy.deepcopy(model)
    for m in (model, twin):
        videoaccel.accelerate(m, RADIAL)
    _run(twin, kwargs)
    assert _calls(model) == 0 and _calls(twin) == 2  # the copy has its own router
    videoaccel.restore(twin)
    videoaccel.restore(model)
    assert torch.equal(_run(model, kwargs), ref) and torch.equal(_run(twin, kwargs), ref)
    videoaccel.accelerate(model, RADIAL)  # later accelerate() calls in the process still route
    _run(model, kwargs)
    assert _calls(model) == 2
    videoaccel.restore(model)


def test_deepcopy_of_an_accelerated_pipeline_is_refused():
    from test_pipelines import _tiny_wan_pipeline

    pipe = _tiny_wan_pipeline()
    videoaccel.accelerate(pipe, RADIAL)
    with pytest.raises(ValueError, match="accelerate the copy"):
        copy.deepcopy(pipe)
    videoaccel.restore(pipe)
    assert copy.deepcopy(pipe).transformer is not pipe.transformer
