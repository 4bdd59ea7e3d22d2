"""Out-of-range plan values and malformed profiles stop when the plan or profile is made (issue 17)."""
import json

import pytest

import videoaccel
from tiny_models import TINY
from videoaccel.plans import Plan, Profile, preset


@pytest.mark.parametrize("spec, fix", [
    ("radial:-1", "in (0, 1]"), ("radial:0", "in (0, 1]"), ("radial:nan", "finite number"), ("radial:inf", "finite number"),
    ("radial:2.0", "in (0, 1]"), ("draft:5", "in (0, 1]"), ("dense:0.5", "dense+fp8"), ("radial:x", "must be a number"),
])
def test_out_of_range_presets_are_refused_when_parsed(spec, fix):
    with pytest.raises(ValueError, match="e.g.") as e:
        preset(spec)
    assert spec in str(e.value) and fix in str(e.value)


@pytest.mark.parametrize("params, fix", [
    ({"density": 5.0}, "in (0, 1]"), ({"density": -0.5}, "in (0, 1]"), ({"density": "abc"}, "finite number"),
    ({"decay": 0}, "> 0"), ({"sink_frames": 1.5}, "whole number"), ({"t": 2}, "[0, 1]"), ({"speed": 1}, "takes density"),
])
def test_plan_parameters_are_checked_per_kind(params, fix):
    pattern = "diagonal" if "t" in params else "radial"
    with pytest.raises(ValueError, match="e.g.|takes") as e:
        Plan(pattern, tuple(params.items()))
    assert fix in str(e.value)


def test_draft_takes_top_p_or_top_k():
    assert Plan("draft", (("top_k", 4), ("top_p", None))).kwargs == {"top_k": 4, "top_p": None}
    with pytest.raises(ValueError, match="set top_p to null"):
        Plan("draft", (("top_k", 4),))
    assert Plan("pyramid", (("thresholds", [0.5, 0.8]),)) == Plan("pyramid", (("thresholds", (0.5, 0.8)),))  # hashable


def test_fit_density_checks_its_target():
    from videoaccel.patterns import VideoGeometry, fit_density

    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        fit_density("radial", VideoGeometry(4, 8, 8, block=16), 5.0)


def _layer(heads, **plan):
    return [[{"pattern": "radial", "params": {"density": 0.2}, **plan}] * heads]


@pytest.mark.parametrize("change, fix", [
    ({"schema_version": "1"}, "schema_version='1' must be a whole number"),
    ({"model": "x"}, "must be null or"),
    ({"layers": {"0": []}}, "one non-empty list of head plans"),
    ({"layers": {"0": [[]]}}, "one non-empty list of head plans"),
    ({"layers": {"0": _layer(2, params={"density": "abc"})}}, "finite number"),
    ({"layers": {"0": _layer(2, params={"density": 5})}}, "in (0, 1]"),
    ({"layers": {"0": _layer(2, pattern="spiral")}}, "use one of"),
    ({"layers": {"0": _layer(2) + [_layer(3)[0]]}}, "every bucket one plan per head"),
    ({"dense_steps": -1}, "whole number >= 0"),
    ({"bucket_edges": [1.0, 900.0]}, "descending"),
    ({"block": 100}, "use 16, 32, 64 or 128"),
])
def test_profiles_are_validated_fully_at_load(tmp_path, change, fix):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({**Profile("x").to_json(), **change}))
    with pytest.raises(ValueError) as e:
        Profile.load(path)
    assert fix in str(e.value) and str(path) in str(e.value)


@pytest.mark.parametrize("layers, fix", [({7: _layer(2)}, "names layers [7]"), ({0: _layer(3)}, "has 3 head plans")])
def test_accelerate_checks_the_profile_against_the_model(layers, fix):
    model, _ = TINY["wan"]()  # 2 layers x 2 heads
    prof = Profile.from_json({**Profile("x").to_json(), "layers": {str(k): v for k, v in layers.items()}})
    with pytest.raises(ValueError, match="videoaccel profile") as e:
        videoaccel.accelerate(model, prof)
    assert fix in str(e.value) and not hasattr(model, "_videoaccel")  # nothing installed, no step ran


@pytest.mark.parametrize("kw, fix", [({"error_budget": -0.1}, "> 0"), ({"target_density": 2.0}, "in (0, 1]"),
                                     ({"buckets": 0}, "whole number >= 1")])
def test_profile_config_is_checked_when_made(kw, fix):
    from videoaccel.profiling import ProfileConfig

    with pytest.raises(ValueError, match="e.g.") as e:
        ProfileConfig(**kw)
    assert fix in str(e.value)
