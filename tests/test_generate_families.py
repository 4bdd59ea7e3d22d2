"""`videoaccel generate --image / --video` on tiny image-to-video and VACE pipelines saved as diffusers directories:
accelerated (sparse) from the command line; the conditioning input checked before the model loads."""
import re

import numpy as np
import pytest
from PIL import Image

from videoaccel import cli
from videoaccel.plans import Plan, Profile
from videoaccel.video import read_video, write_video
from tiny_pipelines import I2V_V2V, no_ftfy

SIZE = ["--steps", "2", "--height", "64", "--width", "64", "--frames", "9"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A conditioning image and video, and a radial profile with blocks small enough to be sparse on 3x4x4 tokens."""
    root = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(root / "first.png")
    write_video(rng.integers(0, 255, (9, 64, 64, 3), dtype=np.uint8), root / "control.gif")
    Profile("radial-b16", default=Plan("radial", (("density", 0.3),)), block=16).save(root / "radial.json")
    return {"image": root / "first.png", "video": root / "control.gif", "profile": root / "radial.json"}


@pytest.mark.parametrize("name", list(I2V_V2V))
def test_generate_runs_the_pipeline_accelerated(name, inputs, tmp_path, monkeypatch, capsys):
    no_ftfy(monkeypatch)
    pipe, kind = I2V_V2V[name]()
    pipe.save_pretrained(tmp_path / "model")
    out = tmp_path / "out.gif"
    code = cli.main(["generate", "a red circle moving left", "--model", str(tmp_path / "model"), f"--{kind}", str(inputs[kind]),
                     "--profile", str(inputs["profile"]), "-o", str(out), *SIZE])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert read_video(out).shape[1:] == (64, 64, 3)
    density = float(re.search(r"attention density ([0-9.]+)", captured.out).group(1))
    assert 0 < density < 1, captured.out  # sparse attention ran


@pytest.fixture
def no_model(monkeypatch):
    from videoaccel.cli import loading

    def load(*a, **k):
        raise AssertionError("the model was loaded before the bad input was reported")

    monkeypatch.setattr(loading, "load_pipeline", load)


@pytest.fixture(scope="module")
def i2v_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("i2v") / "model"
    I2V_V2V["wan-i2v"]()[0].save_pretrained(path)
    return path


@pytest.mark.parametrize("extra, fix", [
    ([], "WanImageToVideoPipeline needs --image PATH"),
    (["--image", "missing.png"], "image not found: missing.png"),
    (["--image", "{profile}"], "cannot read image"),
    (["--image", "{image}", "--video", "{video}"], "WanImageToVideoPipeline takes no video: drop --video"),
])
def test_conditioning_errors_name_the_fix_before_the_model_loads(extra, fix, i2v_dir, inputs, tmp_path, capsys, no_model):
    extra = [a.format(**inputs) for a in extra]
    code = cli.main(["generate", "a red circle", "--model", str(i2v_dir), "-o", str(tmp_path / "o.mp4"), *SIZE, *extra])
    err = capsys.readouterr().err
    assert code == 2 and fix in err and len(err.strip().splitlines()) == 1, err


def test_a_text_to_video_model_takes_no_image(inputs, tmp_path, capsys, no_model):
    code = cli.main(["generate", "a red circle", "--image", str(inputs["image"]), "-o", str(tmp_path / "o.mp4")])  # embedded
    err = capsys.readouterr().err
    assert code == 2 and "WanPipeline takes no image: drop --image" in err
