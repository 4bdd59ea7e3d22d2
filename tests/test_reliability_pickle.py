"""No pickle when loading models: a directory whose weights are pickle files only is refused before anything
loads (nothing in it runs), unless --allow-pickle; safetensors are asked of diffusers (issue 32)."""
import pickle

import pytest

from test_bad_input_cli import _Plant
from videoaccel import cli
from videoaccel.cli import loading, session


@pytest.fixture
def pickled_model(tmp_path):
    """A diffusers-shaped directory whose transformer weights are a planted pickle."""
    model, marker = tmp_path / "wan", tmp_path / "pwned"
    (model / "transformer").mkdir(parents=True)
    (model / "model_index.json").write_text('{"_class_name": "WanPipeline"}')
    (model / "transformer" / "config.json").write_text("{}")
    (model / "transformer" / "diffusion_pytorch_model.bin").write_bytes(pickle.dumps(_Plant(str(marker))))
    return model, marker


@pytest.fixture
def loads(monkeypatch):
    """Record load_pipeline's arguments instead of loading."""
    seen = []

    def load(model, *a, **k):
        seen.append(k)
        raise ValueError("stop: the model would load here")

    monkeypatch.setattr(loading, "load_pipeline", load)
    return seen


@pytest.mark.parametrize("cmd", [["generate", "a red circle", "-o", "OUT/o.mp4"], ["profile", "--prompts", "PROMPTS", "-o", "OUT/p.json"]])
def test_pickle_only_weights_are_refused_before_loading(pickled_model, tmp_path, capsys, loads, cmd):
    model, marker = pickled_model
    (tmp_path / "p.txt").write_text("a red circle\n")
    argv = [a.replace("OUT", str(tmp_path)).replace("PROMPTS", str(tmp_path / "p.txt")) for a in cmd] + ["--model", str(model)]
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "transformer/diffusion_pytorch_model.bin" in err and "save_pretrained" in err and "--allow-pickle" in err
    assert loads == [] and not marker.exists()
    code = cli.main(argv + ["--allow-pickle"])  # asked for: the check passes and the loader is told
    assert "stop: the model would load here" in capsys.readouterr().err and [k["allow_pickle"] for k in loads] == [True]
    assert not marker.exists()


def test_safetensors_beside_a_pickle_are_fine(pickled_model):
    model, _ = pickled_model
    assert session.pickle_only_weights(str(model)) == ["transformer/diffusion_pytorch_model.bin"]
    (model / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    assert session.pickle_only_weights(str(model)) == [] and session.pickle_only_weights("org/hub-id") == []


def test_the_help_says_that_allow_pickle_unpickles(capsys):
    for command in ("generate", "profile"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        assert "UNPICKLES" in " ".join(capsys.readouterr().out.split())


def test_diffusers_is_asked_for_safetensors(tmp_path):
    """A real pickle-saved pipeline: refused by diffusers under use_safetensors=True even past the up-front check,
    loaded with allow_pickle (our own file: trusted)."""
    from test_pipelines import _tiny_wan_pipeline

    _tiny_wan_pipeline().save_pretrained(tmp_path / "wan", safe_serialization=False)
    with pytest.raises(ValueError) as e:
        loading.load_pipeline(str(tmp_path / "wan"))
    assert "safetensors" in str(e.value) and "--allow-pickle" in str(e.value)
    pipe = loading.load_pipeline(str(tmp_path / "wan"), allow_pickle=True)
    assert type(pipe).__name__ == "WanPipeline"
