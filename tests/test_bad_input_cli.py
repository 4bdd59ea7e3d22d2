"""Bad command-line input and files: values, planted pickles, unwritable outputs, file modes (issue 17)."""
import os
import pickle
import stat

import pytest

from videoaccel import cli
from videoaccel.cli import loading


class _Plant:
    """Unpickling this creates the file named by ``marker``: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if the command gets as far as loading a pipeline."""
    def load(*a, **k):
        raise AssertionError("the model was loaded before the bad input was reported")

    monkeypatch.setattr(loading, "load_pipeline", load)


def _prompts(tmp_path):
    p = tmp_path / "p.txt"
    p.write_text("a red circle\n")
    return p


def test_planted_pickle_checkpoint_is_refused_unread(tmp_path, capsys, no_model):
    out, marker = tmp_path / "X.json", tmp_path / "pwned"
    (tmp_path / "X.json.partial").write_bytes(pickle.dumps(_Plant(str(marker))))
    code = cli.main(["profile", "--model", "m", "--prompts", str(_prompts(tmp_path)), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "not a videoaccel calibration checkpoint" in err and "delete it" in err
    assert not marker.exists() and len(err.strip().splitlines()) == 1


def test_no_pickle_anywhere():
    root = os.path.join(os.path.dirname(__file__), "..")
    for d in ("videoaccel", "scripts"):
        for base, _, files in os.walk(os.path.join(root, d)):
            for f in files:
                if f.endswith(".py"):
                    text = open(os.path.join(base, f)).read()
                    assert "torch.load(" not in text and "import pickle" not in text, f


@pytest.mark.parametrize("name", ["v.mp4", "v.gif", "frames/", "m.json"])
def test_written_files_follow_the_umask(tmp_path, name):
    import numpy as np

    from videoaccel.files import write_json
    from videoaccel.video import write_video

    old = os.umask(0o027)
    try:
        path = tmp_path / name
        if name.endswith(".json"):
            write_json({"a": 1}, str(path))
        else:
            write_video(np.zeros((2, 16, 16, 3), np.uint8), str(path))
    finally:
        os.umask(old)
    p = path if path.is_file() else next(path.iterdir())
    assert stat.S_IMODE(p.stat().st_mode) == 0o640
    if path.is_dir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o750


def test_unwritable_output_fails_before_the_model(tmp_path, capsys, no_model, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.access(ro, os.W_OK):  # root ignores permission bits: refuse the write as a read-only mount would
        import tempfile

        def refuse(*a, **k):
            raise PermissionError(13, "Read-only file system")

        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    try:
        code = cli.main(["generate", "a red circle", "-o", str(ro / "o.mp4")])
    finally:
        ro.chmod(0o700)
    err = capsys.readouterr().err
    assert code == 2 and "not writable" in err and "choose another output path" in err


@pytest.mark.parametrize("cmd", [["profile", "--model", "m", "--prompts", "PROMPTS"], ["generate", "a red circle"]])
def test_missing_output_directory_fails_up_front(tmp_path, capsys, no_model, cmd):
    cmd = [str(_prompts(tmp_path)) if a == "PROMPTS" else a for a in cmd]
    code = cli.main(cmd + ["-o", str(tmp_path / "missing" / "p.json" if cmd[0] == "profile" else tmp_path / "missing" / "o.mp4")])
    err = capsys.readouterr().err
    assert code == 2 and "does not exist" in err and "mkdir -p" in err


@pytest.mark.parametrize("argv, fix", [
    (["generate", "x", "--steps", "0"], "whole number >= 1"),
    (["generate", "x", "--steps", "-1"], "whole number >= 1"),
    (["generate", "x", "--height", "-16"], "divisible by 8"),
    (["generate", "x", "--fps", "0"], "whole number >= 1"),
    (["profile", "--model", "m", "--prompts", "p", "-o", "p.json", "--steps", "0"], "whole number >= 1"),
    (["profile", "--model", "m", "--prompts", "p", "-o", "p.json", "--target-density", "5"], "in (0, 1]"),
    (["inspect", "--pattern", "radial", "--geometry", "4x8x8", "--density", "5", "-o", "x.png"], "in (0, 1]"),
])
def test_cli_values_are_checked_by_the_parser(argv, fix, capsys, no_model):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and fix in err and "e.g." in err and len(err.splitlines()) == 1 and "usage:" not in err


@pytest.mark.parametrize("extra, fix", [
    (["--profile", "radial:nan"], "finite number"),
    (["--frames", "10"], "frames = 4k + 1"),
])
def test_generate_plan_and_geometry_errors_are_one_line_before_the_model(extra, fix, tmp_path, capsys, no_model):
    code = cli.main(["generate", "a red circle", "-o", str(tmp_path / "o.mp4"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and fix in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_trailing_slash_output_is_a_png_directory(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr("videoaccel.cli.generate.write_video", lambda frames, path, fps: seen.setdefault("path", path))
    monkeypatch.setattr(loading, "generate_video", lambda *a: (__import__("numpy").zeros((1, 16, 16, 3), "uint8"), 0.1))
    monkeypatch.setattr(loading, "load_pipeline", lambda *a, **k: object())
    out = str(tmp_path / "clip.v2") + "/"
    assert cli.main(["generate", "a red circle", "--dense", "--steps", "1", "-o", out]) == 0
    assert seen["path"] == out


def test_unusual_prompts_are_noted_once():
    from test_pipelines import _tiny_wan_pipeline
    from videoaccel.prompt_check import empty_prompt_note, long_prompt_note

    pipe = _tiny_wan_pipeline()
    assert "unconditioned" in empty_prompt_note("  ")
    assert long_prompt_note(pipe, "a red circle", {"max_sequence_length": 8}) is None
    note = long_prompt_note(pipe, "a red circle moving left " * 4, {"max_sequence_length": 8})
    assert "the model reads the first 8" in note and "shorten the prompt" in note


def test_profile_checks_the_wan_geometry_before_loading(tmp_path, capsys, no_model):
    model = tmp_path / "wan"
    model.mkdir()
    (model / "model_index.json").write_text('{"_class_name": "WanPipeline"}')
    code = cli.main(["profile", "--model", str(model), "--prompts", str(_prompts(tmp_path)), "-o", str(tmp_path / "p.json"),
                     "--frames", "10", "--height", "64", "--width", "64"])
    assert code == 2 and "frames = 4k + 1" in capsys.readouterr().err


def test_inspect_checks_pattern_parameters(tmp_path, capsys):
    code = cli.main(["inspect", "--pattern", "radial", "--geometry", "4x8x8", "--param", "decay=-1", "-o", str(tmp_path / "x.png")])
    assert code == 2 and "must be > 0" in capsys.readouterr().err and not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("fps", [0, -8, float("nan")])
def test_write_video_refuses_a_non_positive_fps(tmp_path, fps):
    import numpy as np

    from videoaccel.video import write_video

    with pytest.raises(ValueError, match="must be a number > 0"):
        write_video(np.zeros((2, 16, 16, 3), np.uint8), str(tmp_path / "v.mp4"), fps=fps)
    assert not (tmp_path / "v.mp4").exists()


def test_profile_for_another_model_fails_before_any_step(tmp_path, capsys, monkeypatch):
    from videoaccel.plans import Profile

    def no_run(*a):
        raise AssertionError("a generation ran before the profile was checked against the model")

    monkeypatch.setattr(loading, "generate_video", no_run)
    prof = tmp_path / "other.json"
    Profile("other", model={"class": "CogVideoXTransformer3DModel", "config_hash": None}).save(prof)
    code = cli.main(["generate", "a red circle", "--profile", str(prof), "--compare-dense", "-o", str(tmp_path / "o.mp4")])
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # earlier lines: diffusers' loading progress bar
    assert code == 2 and "profile this model with `videoaccel profile`" in last and "Traceback" not in err
