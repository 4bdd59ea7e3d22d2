"""The strict profile schema: unknown keys with the nearest name, JSON types, finite numbers, sizes, bounded
messages, and every shipped profile still loading (issue 32)."""
import json
import pathlib

import pytest

from videoaccel.plan_checks import profile_fits_model
from videoaccel.plans import Plan, Profile
from videoaccel.profile_schema import MAX_LAYERS

ROOT = pathlib.Path(__file__).resolve().parent.parent
GOOD = {**Profile("x").to_json(), "layers": {"0": [[{"pattern": "radial", "params": {"density": 0.2}}] * 2]}}


def _load(tmp_path, text):
    path = tmp_path / "p.json"
    path.write_text(text if isinstance(text, str) else json.dumps(text))
    with pytest.raises(ValueError) as e:
        Profile.load(path)
    msg = str(e.value)
    assert str(path) in msg and "\n" not in msg and len(msg) < 600, msg
    return msg


def _plan(**change):
    return {**GOOD, "layers": {"0": [[{"pattern": "radial", "params": {"density": 0.2}}, {"pattern": "radial", **change}]]}}


@pytest.mark.parametrize("doc, fix", [
    ({**GOOD, "dense_step": 5}, "unknown field 'dense_step' (did you mean dense_steps?)"),
    ({**GOOD, "calibrate": True}, "(did you mean calibrated?)"),
    ({**GOOD, "zzz": 1}, "unknown field 'zzz'"),
    (_plan(precison="fp8", params={"density": 0.2}), "unknown field layers.0[0][1].'precison' (did you mean precision?)"),
    ({**GOOD, "default": {"pattern": "dense", "compensated": True}}, "default.'compensated' (did you mean compensate?)"),
    (_plan(params={"densty": 0.2}), "no parameter 'densty' (did you mean density?)"),
    (_plan(pattern="radail", params={}), "unknown pattern 'radail' (did you mean radial?)"),
    ({**GOOD, "budget": {"bucket_step": [1]}}, "budget.'bucket_step' (did you mean bucket_steps?)"),
    ({**GOOD, "cost_model": {"source": "analytic", "nte": ""}}, "cost_model.'nte' (did you mean note?)"),
    ({**GOOD, "model": {"class": "X", "config": None}}, "model.'config' (did you mean config_hash?)"),
])
def test_unknown_keys_are_refused_with_the_nearest_name(tmp_path, doc, fix):
    assert fix in _load(tmp_path, doc)


@pytest.mark.parametrize("change, fix", [
    ({"dense_steps": 2.7}, "dense_steps=2.7 must be a whole number"),
    ({"dense_steps": True}, "dense_steps=True must be a whole number"),
    ({"dense_steps": "2"}, "dense_steps='2' must be a whole number"),
    ({"calibrated": "no"}, "calibrated='no' must be true or false"),
    ({"calibrated": 0}, "calibrated=0 must be true or false"),
    ({"block": 128.0}, "block=128.0 must be a whole number"),
    ({"steps": 20.0}, "steps=20.0 must be a whole number or null"),
    ({"name": 3}, "name=3 must be a string"),
    ({"default": {"pattern": "dense", "compensate": 1}}, "default.compensate=1 must be true or false"),
    ({"budget": {"target_density": "0.2"}}, "budget.target_density='0.2' must be a finite number or null"),
    ({"dense_steps": 10**6}, "more than 10000 steps"),
])
def test_types_are_json_types_not_coerced(tmp_path, change, fix):
    assert fix in _load(tmp_path, {**GOOD, **change})


@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "NaN", "1e999", "1" + "0" * 40])
@pytest.mark.parametrize("field", ["dense_steps", "block", "steps"])
def test_infinity_and_nan_are_one_line_value_errors_never_overflow(tmp_path, literal, field):
    text = json.dumps({**GOOD, field: 0}).replace(f'"{field}": 0', f'"{field}": {literal}')
    msg = _load(tmp_path, text)  # a ValueError, not OverflowError
    assert "finite" in msg or "too large" in msg


def test_nan_in_a_plan_parameter_and_a_key_given_twice(tmp_path):
    assert "holds NaN" in _load(tmp_path, json.dumps(_plan(params={"density": 0.2})).replace("0.2}}]]", "NaN}}]]"))
    text = json.dumps(GOOD)[:-1] + ', "dense_steps": 3}'
    assert "'dense_steps'] twice" in _load(tmp_path, text)


def test_sizes_are_bounded_and_messages_stay_short(tmp_path):
    plan = {"pattern": "radial", "params": {"density": 0.2}}
    many = {str(i): [[plan]] for i in range(5000)}
    assert f"at most {MAX_LAYERS}" in _load(tmp_path, {**GOOD, "layers": many})
    typos = {str(i): [[{**plan, "precison": "fp8"}] * 4] for i in range(500)}  # 2000 misspelt plans
    msg = _load(tmp_path, {**GOOD, "layers": typos})
    assert msg.count("did you mean precision?") == 3 and "and 1997 more" in msg
    assert "at most 63" in _load(tmp_path, {**GOOD, "bucket_edges": list(range(1000, 0, -10))})
    assert "a layer index" in _load(tmp_path, {**GOOD, "layers": {"01": [[plan]]}})
    huge = "x" * 100_000
    assert len(_load(tmp_path, {**GOOD, "order": huge})) < 300


def test_a_profile_naming_thousands_of_layers_is_refused_briefly_against_a_model():
    prof = Profile("big", layers={i: [[Plan()] * 2] for i in range(3000)})
    with pytest.raises(ValueError) as e:
        profile_fits_model(prof, 40, 2)
    assert "names layers [40, 41," in str(e.value) and len(str(e.value)) < 300


def test_saving_a_non_finite_number_is_refused_before_writing(tmp_path):
    with pytest.raises(ValueError, match="make it finite or null"):
        Profile("x", meta={"loss": float("nan")}).save(tmp_path / "p.json")
    assert not (tmp_path / "p.json").exists()


SHIPPED = sorted(ROOT.glob("profiles/*.json")) + [p for p in sorted(ROOT.glob("assets/tiny-t2v/**/*.json"))
                                                    if "schema_version" in json.loads(p.read_text())]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_profile_passes_the_schema_and_round_trips(path, tmp_path):
    prof = Profile.load(path)
    prof.save(tmp_path / "again.json")
    assert Profile.load(tmp_path / "again.json").to_json() == prof.to_json()


def test_a_profile_made_in_python_round_trips_through_the_schema(tmp_path):
    plans = [[Plan("radial", (("density", 0.2),)), Plan("draft", (("top_k", 4), ("top_p", None)), "fp8", True)]]
    prof = Profile("p", layers={0: plans, 3: plans}, bucket_edges=[500.0], dense_steps=2, dense_layers=(1,), steps=10,
                   budget={"target_density": 0.3, "error_budget": None, "bucket_steps": [8]}, calibrated=True,
                   model={"class": "WanTransformer3DModel", "config_hash": None})
    prof.save(tmp_path / "p.json")
    assert Profile.load(tmp_path / "p.json").to_json() == prof.to_json()
