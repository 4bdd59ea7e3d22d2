"""Step-sensitivity probe on a tiny Wan pipeline with CFG: the update is an exact linear mix of the
transformer outputs, the per-step contributions bound the measured final error, and a dense reference
injects nothing."""
import logging

import pytest
import torch

import videoaccel
from videoaccel.plans import Plan, Profile
from videoaccel.profiling import probe
from test_pipelines import _tiny_wan_pipeline

CALL = dict(num_inference_steps=3, height=64, width=128, num_frames=9, max_sequence_length=8, guidance_scale=5.0)


def _measure(plan: Plan):
    pipe = _tiny_wan_pipeline()
    model = pipe.transformer
    videoaccel.accelerate(pipe, Profile("dense", block=16, order="tile"))

    def switch():
        videoaccel.restore(pipe)
        videoaccel.accelerate(pipe, Profile("ref", default=plan, block=16, order="tile"))

    try:
        return probe.measure(pipe, [model], "a red circle moving left", 0, switch, CALL)
    finally:
        videoaccel.restore(pipe)
        assert "forward" not in model.__dict__ or not hasattr(model.forward, "__name__") or model.forward.__name__ != "<lambda>"


def test_probe_contributions_bound_the_final_error(caplog):
    with caplog.at_level(logging.WARNING, logger="videoaccel"):
        r = _measure(Plan("radial", (("density", 0.2),)))
    assert "not a linear mix" not in caplog.text
    assert len(r["final"]) == 3 and all(x >= 0 for x in r["final"])
    assert r["final_error"] > 0 and r["injected"][0] > 0
    # |dx_n| <= sum_s |iota_s| prod_{t>s} a_t (triangle inequality along the measured trajectory)
    assert r["final_error"] <= sum(r["final"]) * (1 + 1e-5)
    assert r["final"][-1] == pytest.approx(r["injected"][-1])


def test_probe_with_a_dense_reference_injects_nothing():
    r = _measure(Plan())
    assert max(r["injected"]) < 1e-6 and r["final_error"] < 1e-6
