"""The typed report (achieved densities, density misses) and the observer interface."""
import json
import logging

import torch

import videoaccel
from videoaccel.plans import Plan, Profile
from tiny_models import TINY


def test_report_shows_achieved_density_and_counts_misses(caplog):
    model, kwargs = TINY["wan"]()
    videoaccel.accelerate(model, Profile("r", default=Plan("radial", (("density", 0.05),)), block=16, order="tile"))
    with caplog.at_level(logging.WARNING, logger="videoaccel"), torch.no_grad():
        model(**kwargs)
        model(**kwargs)
    rep = videoaccel.report(model)
    videoaccel.restore(model)
    layer = rep.transformers["transformer"].layers[0]
    assert all(d > 0.05 * 1.1 for d in layer.head_density)  # this 5x8x8 grid cannot get that sparse
    assert layer.density_misses and sum(layer.density_misses.values()) == 2  # once per call
    assert sum("cannot reach density 0.05" in r.getMessage() for r in caplog.records) == 1  # warned once
    assert rep.transformers["transformer"].density_misses == 4 and rep.fallbacks == 0
    d = json.loads(json.dumps(rep.to_dict()))
    assert abs(d["transformer"]["mean_density"] - rep.mean_density) < 1e-12
    assert d["transformer"]["layers"]["0"]["head_density"] == layer.head_density
    text = str(rep)
    assert "mean density" in text and "cannot reach density 0.05" in text


def test_observers_see_every_call_and_leave():
    model, kwargs = TINY["hunyuan"]()
    videoaccel.accelerate(model, "dense")
    seen = []
    with videoaccel.observe(model, lambda call: seen.append((call.layer, call.step, call.q.shape, call.text_lengths))):
        with torch.no_grad():
            model(**kwargs)
    with torch.no_grad():
        model(**kwargs)
    videoaccel.restore(model)
    assert [s[0] for s in seen] == [0, 1] and {s[1] for s in seen} == {0}
    assert seen[0][2][2] == 2 and seen[0][3] == (8, 5)  # heads; per-sample valid text from the padding mask
