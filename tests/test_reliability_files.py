"""Output paths, prompt files, profile files and cost tables are checked before any model loads: a directory,
a missing, binary or non-UTF-8 file, a symlink loop gets one line naming the file and the fix (issue 32)."""
import os

import numpy as np
import pytest

from test_bad_input_cli import no_model  # noqa: F401 (a fixture: fails the test if the model loads)
from videoaccel import cli
from videoaccel.files import MissingFileError
from videoaccel.plans import Profile, load_profile
from videoaccel.prompt_check import read_prompts

BAD_TEXT = {"binary": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "latin-1": "caf\xe9 au lait\n".encode("latin-1")}


def _prompts(tmp_path):
    p = tmp_path / "p.txt"
    p.write_text("a red circle\n")
    return str(p)


def _one_line(capsys, code, *needles):
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    return err


def _bad_files(tmp_path, suffix):
    """name -> path of: a directory, a binary file, a latin-1 file, a symlink loop, a missing file."""
    out = {}
    for kind, data in BAD_TEXT.items():
        out[kind] = tmp_path / f"{kind}{suffix}"
        out[kind].write_bytes(data)
    out["directory"] = tmp_path / f"dir{suffix}"
    out["directory"].mkdir()
    out["loop"] = tmp_path / f"loop{suffix}"
    os.symlink(out["loop"], out["loop"])
    out["missing"] = tmp_path / f"missing{suffix}"
    return out


WHY = {"directory": "it is a directory", "binary": "binary file", "latin-1": "not UTF-8", "loop": "symlink loop",
       "missing": "does not exist"}


@pytest.mark.parametrize("kind", list(WHY))
def test_bad_prompt_files_name_the_file_before_the_model(tmp_path, capsys, no_model, kind):
    path = _bad_files(tmp_path, ".txt")[kind]
    code = cli.main(["profile", "--model", "m", "--prompts", str(path), "-o", str(tmp_path / "p.json")])
    _one_line(capsys, code, f"cannot read prompts file {path}", WHY[kind])
    assert not (tmp_path / "p.json").exists()


@pytest.mark.parametrize("suffix", [".json", ""])
@pytest.mark.parametrize("kind", list(WHY))
def test_bad_profile_files_name_the_file_before_the_model(tmp_path, capsys, no_model, kind, suffix):
    if kind == "missing" and suffix == "":
        pytest.skip("a name that is no file is read as a preset (unknown preset: tested elsewhere)")
    path = _bad_files(tmp_path, suffix)[kind]
    code = cli.main(["generate", "a red circle", "--profile", str(path), "-o", str(tmp_path / "o.mp4")])
    _one_line(capsys, code, f"cannot read profile file {path}", WHY[kind])


@pytest.mark.parametrize("kind", list(WHY))
def test_the_library_raises_value_errors_naming_the_file(tmp_path, kind):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    profile, prompts = _bad_files(tmp_path / "a", ".json")[kind], _bad_files(tmp_path / "b", ".txt")[kind]
    for call, path in ((Profile.load, profile), (load_profile, profile), (read_prompts, prompts)):
        with pytest.raises(ValueError) as e:
            call(path)
        assert str(path) in str(e.value) and WHY[kind] in str(e.value) and "\n" not in str(e.value)
        assert not isinstance(e.value, UnicodeDecodeError)
        if kind == "missing":
            assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, MissingFileError)


def test_output_paths_that_are_directories_fail_before_the_model(tmp_path, capsys, no_model):
    (tmp_path / "x.mp4").mkdir()
    code = cli.main(["generate", "a red circle", "-o", str(tmp_path / "x.mp4")])
    _one_line(capsys, code, "x.mp4: it is a directory")
    (tmp_path / "p.json").mkdir()
    code = cli.main(["profile", "--prompts", _prompts(tmp_path), "-o", str(tmp_path / "p.json")])
    _one_line(capsys, code, "p.json: it is a directory")
    (tmp_path / "q.json.partial").mkdir()
    code = cli.main(["profile", "--prompts", _prompts(tmp_path), "-o", str(tmp_path / "q.json")])
    _one_line(capsys, code, "q.json.partial: it is a directory")
    code = cli.main(["inspect", "--attention", "--prompts", _prompts(tmp_path), "--json", str(tmp_path / "p.json")])
    _one_line(capsys, code, "p.json: it is a directory")


def test_library_writers_refuse_a_directory_before_writing(tmp_path):
    from videoaccel.video import write_video

    (tmp_path / "x.mp4").mkdir()
    with pytest.raises(ValueError, match="it is a directory"):
        write_video(np.zeros((2, 16, 16, 3), np.uint8), tmp_path / "x.mp4")
    (tmp_path / "p.json").mkdir()
    with pytest.raises(ValueError, match="it is a directory"):
        Profile("x").save(tmp_path / "p.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json", "x.mp4"]


def test_a_bad_cost_table_stops_before_the_model_not_after_the_calibration(tmp_path, capsys, no_model):
    from videoaccel.profiling import ProfileConfig

    table = tmp_path / "costs.json"
    table.write_bytes(BAD_TEXT["binary"])
    with pytest.raises(ValueError, match="binary file"):
        ProfileConfig(cost_table=str(table))
    code = cli.main(["profile", "--prompts", _prompts(tmp_path), "-o", str(tmp_path / "p.json"), "--cost-table", str(table)])
    _one_line(capsys, code, f"cannot read cost table {table}")


def test_bad_call_defaults_and_model_index_are_one_line(tmp_path, capsys, no_model):
    model = tmp_path / "m"
    model.mkdir()
    (model / "videoaccel.json").write_bytes(BAD_TEXT["latin-1"])
    code = cli.main(["generate", "a red circle", "--model", str(model), "-o", str(tmp_path / "o.mp4")])
    _one_line(capsys, code, "cannot read call defaults", "not UTF-8")
    (model / "videoaccel.json").unlink()
    (model / "model_index.json").write_text("{not json")
    code = cli.main(["generate", "a red circle", "--model", str(model), "--frames", "9", "-o", str(tmp_path / "o.mp4")])
    _one_line(capsys, code, "cannot read model index", "damaged")


def test_a_utf8_byte_order_mark_is_read_as_text(tmp_path):
    p = tmp_path / "p.txt"
    p.write_bytes("\ufeffa red circle\n".encode("utf-8"))
    assert read_prompts(p) == ["a red circle"]
