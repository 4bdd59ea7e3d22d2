"""A deepcopy of an accelerated model is refused with the fix (and restore / accelerate work after it); a profile
that cannot run as written is said once, in the library and on the command line (issue 32)."""
import copy
import warnings

import numpy as np
import pytest
import torch

import videoaccel
from tiny_models import TINY
from videoaccel import cli
from videoaccel.cli import loading
from videoaccel.plan_checks import ProfileNotApplied, unapplied_note
from videoaccel.plans import Plan, Profile, preset

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


@pytest.mark.parametrize("prof, steps, fix", [
    (Profile("warm", default=RADIAL.default, dense_steps=4), 4, "runs its first 4 steps dense (warm-up) and this run has 4"),
    (Profile("warm", default=RADIAL.default, dense_steps=9), 3, "give more steps, or use a profile with fewer dense_steps"),
    (Profile("all", layers={0: [[Plan()] * 2]}), None, "every head of every layer dense"),
    (Profile("dl", default=RADIAL.default, dense_layers=(0, 1)), None, "every head of every layer dense"),
])
def test_profiles_that_cannot_run_as_written_get_one_note(prof, steps, fix):
    assert fix in unapplied_note(prof, 2, steps)


@pytest.mark.parametrize("prof", [preset("dense"), preset("dense+fp8"), RADIAL, Profile("w", default=RADIAL.default, dense_steps=2),
                                  Profile("some", default=RADIAL.default, layers={0: [[Plan()] * 2]}), Profile("obs", meta={"observe": True})])
def test_profiles_that_run_as_written_get_none(prof):
    assert unapplied_note(prof, 2, 3) is None


def test_the_library_warns_once_for_an_all_dense_profile():
    model, _ = TINY["wan"]()
    prof = Profile("all-dense-once", layers={0: [[Plan()] * 2]})
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        for _ in range(3):
            videoaccel.accelerate(model, prof)
            videoaccel.restore(model)
    notes = [w for w in seen if issubclass(w.category, ProfileNotApplied)]
    assert len(notes) == 1 and "runs as the stock model" in str(notes[0].message)


def test_the_cli_says_a_warm_up_longer_than_the_run_once_before_generating(tmp_path, capsys, monkeypatch):
    prof = tmp_path / "warm.json"
    Profile("warm", default=RADIAL.default, dense_steps=5, order="tile").save(prof)
    said = []

    def generate(pipe, prompt, call, seed):
        said.append(capsys.readouterr().err)  # what stderr held when the generation started
        return np.zeros((1, 16, 16, 3), np.uint8), 0.1

    monkeypatch.setattr(loading, "generate_video", generate)
    code = cli.main(["generate", "a red circle", "--profile", str(prof), "--steps", "2", "-o", str(tmp_path / "o.mp4")])
    err = said[0] + capsys.readouterr().err
    assert code == 0 and said[0].count("warning: profile 'warm' runs its first 5 steps dense") == 1
    assert "UserWarning" not in err and "ProfileNotApplied" not in err
