"""Profile schema 2: migration from schema-1 files, round trip, the step budget and its summary."""
import json

from videoaccel.plans import SCHEMA_VERSION, Plan, Profile, migrate
from videoaccel.profile_summary import summary

V1 = {"schema_version": 1, "name": "old", "default": {"pattern": "dense"},
      "layers": {"0": [[{"pattern": "radial", "params": {"density": 0.2}}, {"pattern": "skip"}]]},
      "dense_steps": 2, "meta": {"target_density": 0.25, "expected_density": 0.24, "cost_model": "analytic (...)"}}


def test_schema_1_migrates_with_its_budget_and_the_analytic_cost_model(tmp_path):
    assert SCHEMA_VERSION == 2
    path = tmp_path / "old.json"
    path.write_text(json.dumps(V1))
    prof = Profile.load(path)
    assert prof.steps is None and prof.total_density() is None
    assert prof.budget == {"target_density": 0.25, "expected_density": 0.24}
    assert prof.cost_model["source"] == "analytic"
    assert prof.bucket_density() == [0.1]
    assert prof.to_json()["schema_version"] == 2
    assert migrate(prof.to_json()) == prof.to_json()  # schema 2 passes through
    assert "total density n/a" in summary(prof)


def test_step_budget_total_counts_warm_up_steps_at_one(tmp_path):
    plans = [[Plan("radial", (("density", 0.2),))] * 2, [Plan("skip"), Plan("dense")]]
    prof = Profile("p", layers={0: plans}, bucket_edges=[500.0], dense_steps=4, steps=20,
                   budget={"target_density": 0.5, "bucket_steps": [6, 10]},
                   cost_model={"source": "measured", "device": "NVIDIA H100", "table": []})
    assert prof.bucket_density() == [0.2, 0.5]
    assert abs(prof.total_density() - (4 + 6 * 0.2 + 10 * 0.5) / 20) < 1e-12
    prof.save(tmp_path / "p.json")
    again = Profile.load(tmp_path / "p.json")
    assert again.to_json() == prof.to_json()
    text = summary(again)
    assert "dense warm-up steps 4" in text and "b1: 0.500 x 10 steps" in text and "total density 0.510" in text
    assert "cost model measured (NVIDIA H100)" in text


def test_schema_2_fields_are_checked():
    import pytest

    with pytest.raises(ValueError, match="steps=0"):
        Profile("p", steps=0)
    with pytest.raises(ValueError, match="exceed steps=4"):
        Profile("p", steps=4, dense_steps=2, budget={"bucket_steps": [2, 1]})
    with pytest.raises(ValueError, match="source 'analytic' or 'measured'"):
        Profile("p", cost_model={"source": "guess"})
