"""Video I/O round trips, PSNR/SSIM behaviour, and the `compare` subcommand (CPU, small clips)."""
import argparse
import json
import math

import numpy as np
import pytest

from videoaccel.cli.parsers import add_compare as add_compare_parser
from videoaccel.metrics import lpips_or_none, psnr, side_by_side, ssim
from videoaccel.video import read_video, write_video


def gradient_clip(frames=12, h=64, w=96, seed=0):
    """A smooth moving colour gradient: easy for H.264, so PSNR after a round trip stays high."""
    t = np.arange(frames)[:, None, None]
    y = np.arange(h)[None, :, None]
    x = np.arange(w)[None, None, :]
    r = 128 + 100 * np.sin(2 * np.pi * (x + 2 * t) / w)
    g = 128 + 100 * np.cos(2 * np.pi * (y + t) / h)
    b = 60 + 120 * (x + y) / (w + h) + 0 * t
    return np.clip(np.stack(np.broadcast_arrays(r, g, b), -1), 0, 255).round().astype(np.uint8)


def textured_clip(frames=4, h=64, w=96, seed=0):
    """Gradient plus fixed fine texture: structure that SSIM notices when it moves."""
    tex = np.random.default_rng(seed).random((h, w)) * 255
    return np.clip(0.6 * gradient_clip(frames, h, w) + 1.5 * (tex - 127.5)[None, ..., None] + 50, 0, 255).astype(np.uint8)


def _parser():
    parser = argparse.ArgumentParser(prog="videoaccel")
    add_compare_parser(parser.add_subparsers(dest="command"))
    return parser


def test_mp4_round_trip(tmp_path):
    clip = gradient_clip()
    out = write_video(clip, tmp_path / "clip.mp4", fps=8)
    back = read_video(out)
    assert back.shape == clip.shape and back.dtype == np.uint8
    assert psnr(clip, back)[1] > 35
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]  # no temp file left


def test_mp4_odd_size_is_padded(tmp_path):
    clip = gradient_clip(frames=3, h=65, w=95)
    back = read_video(write_video(clip, tmp_path / "odd.mp4"))
    assert back.shape == (3, 66, 96, 3)
    assert psnr(clip, back[:, :65, :95])[1] > 35


def test_gif_round_trip(tmp_path):
    clip = gradient_clip(frames=6)
    back = read_video(write_video(clip, tmp_path / "clip.gif"))
    assert back.shape == clip.shape


@pytest.mark.parametrize("name", ["frames", "frames_slash/"])
def test_png_dir_round_trip_is_lossless(tmp_path, name):
    clip = gradient_clip(frames=5)
    out = write_video(clip.astype(np.float32) / 255.0, str(tmp_path / name))  # float input accepted
    assert sorted(p.name for p in out.iterdir())[0] == "frame_0000.png"
    assert np.array_equal(read_video(out), clip)
    write_video(clip[:2], out)  # rewriting replaces the old frames
    assert read_video(out).shape[0] == 2


def test_identical_videos():
    clip = gradient_clip(frames=4)
    per, mean = psnr(clip, clip)
    assert all(math.isinf(p) for p in per) and math.isinf(mean)
    per, mean = ssim(clip, clip)
    assert mean == pytest.approx(1.0) and all(s == pytest.approx(1.0) for s in per)


def test_shift_and_noise_lower_metrics_monotonically():
    clip = textured_clip()
    shifted = np.roll(clip, 2, axis=2)
    assert psnr(clip, shifted)[1] < 25 and ssim(clip, shifted)[1] < 0.5
    clip = gradient_clip(frames=4)
    noise = np.random.default_rng(0).standard_normal(clip.shape)
    ps, ss = [], []
    for sigma in (2, 8, 24):
        noisy = np.clip(clip + sigma * noise, 0, 255).round().astype(np.uint8)
        ps.append(psnr(clip, noisy)[1])
        ss.append(ssim(clip, noisy)[1])
    assert ps[0] > ps[1] > ps[2] and ss[0] > ss[1] > ss[2]
    assert ps[0] > 40 and ps[2] < 25 and ss[0] > 0.95 and ss[2] < 0.6


def test_partial_identity_mean_is_finite():
    clip = gradient_clip(frames=2)
    other = clip.copy()
    other[1] ^= 1
    per, mean = psnr(clip, other)
    assert math.isinf(per[0]) and math.isfinite(mean) and mean == per[1]


def test_mismatched_shapes_raise():
    clip = gradient_clip(frames=4)
    with pytest.raises(ValueError, match="frame count"):
        psnr(clip, clip[:3])
    with pytest.raises(ValueError, match="frame size"):
        ssim(clip, clip[:, :32])
    with pytest.raises(ValueError, match="frame count"):
        side_by_side(clip, clip[:2])


def test_side_by_side_and_lpips_message():
    clip = gradient_clip(frames=2)
    sbs = side_by_side(clip, clip, labels=("dense", "fast"))
    assert sbs.shape == (2, 64, 2 * 96 + 2, 3) and sbs.dtype == np.uint8
    assert (sbs[:, :, 96:98] == 255).all()  # separator
    assert not np.array_equal(sbs[:, :, :96], clip)  # the label was drawn
    value, msg = lpips_or_none(clip, clip)
    assert (value is None and msg.startswith("LPIPS not computed")) or value == pytest.approx(0.0, abs=1e-3)


def test_write_errors_leave_nothing(tmp_path):
    clip = gradient_clip(frames=2)
    with pytest.raises(OSError, match="does not exist"):
        write_video(clip, tmp_path / "missing" / "clip.mp4")
    with pytest.raises(ValueError, match="unsupported"):
        write_video(clip, tmp_path / "clip.avi")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError):
        read_video(tmp_path / "nope.mp4")


def test_run_compare(tmp_path, capsys):
    clip = gradient_clip(frames=4)
    rng = np.random.default_rng(1)
    noisy = np.clip(clip + 4 * rng.standard_normal(clip.shape), 0, 255).astype(np.uint8)
    a, b = write_video(clip, tmp_path / "a"), write_video(noisy, tmp_path / "b")
    args = _parser().parse_args(
        ["compare", str(a), str(b), "--json", str(tmp_path / "m.json"), "--side-by-side", str(tmp_path / "sbs.mp4")]
    )
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "mean" in out and "LPIPS" in out
    report = json.loads((tmp_path / "m.json").read_text())
    assert len(report["per_frame"]) == 4 and 25 < report["psnr_mean"] < 45
    assert read_video(tmp_path / "sbs.mp4").shape == (4, 64, 2 * 96 + 2, 3)


def test_run_compare_bad_input(tmp_path, capsys):
    a = write_video(gradient_clip(frames=2), tmp_path / "a.gif")
    parser = _parser()
    args = parser.parse_args(["compare", str(a), str(tmp_path / "missing.mp4"), "--json", str(tmp_path / "m.json")])
    assert args.func(args) == 2
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()
    args = parser.parse_args(["compare"])
    assert args.func(args) == 2
    assert "two videos" in capsys.readouterr().err
    b = write_video(gradient_clip(frames=3), tmp_path / "b.gif")
    args = parser.parse_args(["compare", str(a), str(b), "--side-by-side", str(tmp_path / "s.mp4")])
    assert args.func(args) == 2
    assert "frame count" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif", "b.gif"]
