"""Every file videoaccel writes is atomic: a write that fails part way (a file-size limit, an exception in
the writer) leaves the old file byte for byte and no temporary file (issue 32)."""
import json
import resource
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from videoaccel import files
from videoaccel.plans import Plan, Profile

OLD = b"the old file\n"


@contextmanager
def file_size_limit(nbytes):
    """RLIMIT_FSIZE for this process and its children (ffmpeg): a write beyond it fails with EFBIG (Python
    ignores SIGXFSZ), as a full disk would."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def _old(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(OLD)
    return path


def _intact(tmp_path, path):
    assert path.read_bytes() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left


def _big_profile():
    plans = [[Plan("radial", (("density", 0.2),))] * 8] * 3
    return Profile("big", layers={i: plans for i in range(40)}, bucket_edges=[800.0, 400.0])


def _calibration():
    from videoaccel.profiling.calibration import Calibration

    return Calibration([], [0], torch.Generator(), err={(0, 0): torch.zeros(4096)}, count={(0, 0): 1}, step_err={}, heads=2)


def _write_png(path):
    from videoaccel.patterns.geometry import VideoGeometry
    from videoaccel.pictures import layout_png

    g = VideoGeometry(4, 16, 16, block=16)
    layout_png(str(path), (torch.rand(g.num_blocks, g.num_blocks) > 0.5).to(torch.int8), g, "radial")


def _write_record(path):
    from videoaccel.benchmarks.record import write_record

    write_record("suite", "cmd", [{"x": "y" * 100}] * 200, str(path.parent), name="rec", device="cpu (2 cores)")


WRITERS = {
    "profile.json": lambda p: _big_profile().save(p),
    "report.json": lambda p: files.write_json({"rows": list(range(5000))}, p),
    "clip.mp4": lambda p: __import__("videoaccel.video", fromlist=["x"]).write_video(
        np.random.default_rng(0).integers(0, 255, (8, 64, 64, 3), dtype=np.uint8), p),
    "clip.gif": lambda p: __import__("videoaccel.video", fromlist=["x"]).write_video(
        np.random.default_rng(0).integers(0, 255, (8, 64, 64, 3), dtype=np.uint8), p),
    "layout.png": _write_png,
    "rec-cpu.json": _write_record,
    "run.json.partial": lambda p: __import__("videoaccel.profiling.checkpoint", fromlist=["x"]).Checkpoint(
        str(p), {"k": 1}).save(_calibration(), 1),
}


@pytest.mark.parametrize("name", list(WRITERS))
def test_a_write_over_the_size_limit_keeps_the_old_file(tmp_path, name):
    path = _old(tmp_path, name)
    with file_size_limit(200), pytest.raises(Exception) as e:
        WRITERS[name](path)
    assert "Traceback" not in str(e.value)
    _intact(tmp_path, path)
    WRITERS[name](path)  # without the limit the same write succeeds, and leaves only its file
    assert path.read_bytes() != OLD and sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_a_failed_write_says_what_is_left_and_the_fix(tmp_path):
    path = _old(tmp_path, "p.json")
    with file_size_limit(200), pytest.raises(OSError) as e:
        _big_profile().save(path)
    msg = str(e.value)
    assert msg.startswith(f"cannot write {path}: File too large") and "old file is unchanged" in msg and "free space" in msg
    assert "\n" not in msg


def test_a_writer_that_raises_part_way_leaves_the_old_file(tmp_path):
    path = _old(tmp_path, "v.bin")

    with pytest.raises(RuntimeError, match="interrupted"):
        with files.atomic_path(path) as tmp, open(tmp, "wb") as f:
            f.write(b"half of the new")
            raise RuntimeError("interrupted")
    _intact(tmp_path, path)


def test_an_interrupted_profile_save_keeps_the_old_profile(tmp_path, monkeypatch):
    path = tmp_path / "p.json"
    Profile("old", dense_steps=1).save(path)
    before = path.read_bytes()

    def half(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(files, "fsync_path", half)  # after the bytes went to the temporary file, before the rename
    with pytest.raises(KeyboardInterrupt):
        Profile("new", dense_steps=2).save(path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["p.json"]


def test_png_frame_directory_keeps_its_frames_when_a_rewrite_fails(tmp_path, monkeypatch):
    from videoaccel import video

    frames = np.zeros((3, 16, 16, 3), np.uint8)
    out = video.write_video(frames, tmp_path / "frames")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    calls = []

    def fail_second(path):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(video, "fsync_path", fail_second)
    with pytest.raises(OSError):
        video.write_video(frames + 255, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["frames"]
    monkeypatch.undo()
    video.write_video(frames[:2] + 255, out)  # a shorter rewrite leaves no frame of the old one behind
    assert sorted(p.name for p in out.iterdir()) == ["frame_0000.png", "frame_0001.png"]


def test_writes_go_through_a_symlink_and_refuse_a_directory(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("{}")
    (tmp_path / "link.json").symlink_to(real)
    files.write_json({"a": 1}, tmp_path / "link.json")
    assert json.loads(real.read_text()) == {"a": 1} and (tmp_path / "link.json").is_symlink()
    (tmp_path / "d.json").mkdir()
    with pytest.raises(ValueError, match="it is a directory"):
        files.write_json({"a": 1}, tmp_path / "d.json")
    with pytest.raises(OSError, match="mkdir -p"):
        files.write_json({"a": 1}, tmp_path / "missing" / "x.json")


def test_every_write_in_the_package_goes_through_files():
    """No module writes a file by itself: the atomic helpers are the one way out."""
    import pathlib
    import re

    root = pathlib.Path(files.__file__).parent
    direct = re.compile(r"\.write_text\(|\.write_bytes\(|open\([^)]*['\"][wa]b?['\"]|cv2\.imwrite|json\.dump\(|torch\.save")
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py") if p.name != "files.py" and direct.search(p.read_text())]
    assert offenders == []
