"""Read and write short videos as uint8 numpy arrays [F, H, W, 3] (RGB).

Formats, chosen by the path:
  * ``*.mp4``  -- H.264 through imageio-ffmpeg (libx264, yuv420p, CRF 17). yuv420p needs even
    sizes, so an odd height or width is padded by one replicated pixel (read back one larger):
    padding instead of resizing keeps every original pixel exact for comparisons.
  * ``*.gif``  -- through imageio (Pillow). 256-colour palette, so lossy; Pillow also merges
    consecutive identical frames, so a GIF of a still scene can read back shorter.
  * no suffix, or a trailing ``/`` -- a directory of lossless ``frame_0000.png`` ... files.

Writes go to a temporary name in the target directory, are fsynced and renamed at the end
(files.atomic_path), so an interrupted or failed write never leaves a half-written video where a
reader expects one, and an existing video survives it.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
from numpy.typing import ArrayLike

from .files import atomic_path, check_writable, fsync_path, umask_mode

VIDEO_SUFFIXES = (".mp4", ".gif")
MP4_CRF = 17  # visually lossless for x264; keeps PSNR well above 35 dB on smooth content


def as_uint8_video(frames: ArrayLike, name: str = "frames") -> np.ndarray:
    """[F, H, W, 3] uint8 from uint8 or float in [0, 1] (torch tensors and lists work too)."""
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"{name} must be shaped [F, H, W, 3] (RGB), got {tuple(arr.shape)}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} has no frames")
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    raise ValueError(f"{name} must be uint8 or float in [0, 1], got dtype {arr.dtype}")


def video_kind(path: str | os.PathLike) -> str:
    """'mp4', 'gif' or 'png_dir' for an output path; ValueError for any other suffix."""
    s = os.fspath(path)
    if s.endswith(("/", os.sep)):
        return "png_dir"
    suffix = Path(s).suffix.lower()
    if suffix == "":
        return "png_dir"
    if suffix in VIDEO_SUFFIXES:
        return suffix[1:]
    raise ValueError(
        f"unsupported video suffix {suffix!r} in {s}: use .mp4, .gif, or a directory "
        f"(no suffix or a trailing '/') for PNG frames"
    )


def check_output_path(path: str | os.PathLike) -> str:
    """Fail before any work if `path` cannot be written (a real temporary write); returns its kind (see `video_kind`)."""
    kind = video_kind(path)
    target = Path(os.fspath(path).rstrip("/" + os.sep) or ".")
    if kind != "png_dir" and target.is_dir():
        raise ValueError(f"cannot write a video to {path}: it is a directory (remove it, or give another file name)")
    check_writable(path, directory_ok=kind == "png_dir")
    if kind == "png_dir" and target.exists() and not target.is_dir():
        raise OSError(f"cannot write PNG frames to {target}: it is a file (remove it or give a directory path)")
    return kind


def _pad_even(video: np.ndarray) -> np.ndarray:
    _, h, w, _ = video.shape
    return np.pad(video, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _write_mp4(video: np.ndarray, tmp: str, fps: float) -> None:
    """ffmpeg run here rather than through imageio_ffmpeg.write_frames, which ignores ffmpeg's exit status: a
    full disk would leave a truncated video that looks written."""
    video = _pad_even(video)
    _, h, w, _ = video.shape
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
           "-r", str(Fraction(fps).limit_denominator()), "-i", "-", "-an", "-vcodec", "libx264", "-pix_fmt", "yuv420p",
           "-crf", str(MP4_CRF), "-preset", "medium", "-f", "mp4", tmp]
    run = subprocess.run(cmd, input=np.ascontiguousarray(video).tobytes(), capture_output=True)
    if run.returncode != 0:
        status = f"killed by {signal.Signals(-run.returncode).name}" if run.returncode < 0 else f"exit status {run.returncode}"
        lines = run.stderr.decode(errors="replace").strip().splitlines() or [status]
        raise OSError(f"ffmpeg failed: {lines[-1][:300]}")


def _write_gif(video: np.ndarray, tmp: str, fps: float) -> None:
    iio.imwrite(tmp, video, extension=".gif", duration=1000.0 / fps, loop=0)


def write_video(frames: ArrayLike, path: str | os.PathLike, fps: float = 8) -> Path:
    """Write `frames` ([F, H, W, 3], uint8 or float in [0, 1]) to `path`; returns the written path.

    A PNG directory that already exists keeps its other files; its old frame_*.png are replaced.
    """
    video = as_uint8_video(frames)
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps < float("inf"):
        raise ValueError(f"fps={fps!r} must be a number > 0, e.g. 8")
    kind = check_output_path(path)
    target = Path(os.fspath(path).rstrip("/" + os.sep)).absolute()
    if kind == "png_dir":
        tmpdir = tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            os.chmod(tmpdir, umask_mode(directory=True))  # mkdtemp makes it 0700
            names = [f"frame_{i:04d}.png" for i in range(len(video))]
            for name, frame in zip(names, video):
                iio.imwrite(os.path.join(tmpdir, name), frame)
                fsync_path(os.path.join(tmpdir, name))
            if not target.exists():
                os.replace(tmpdir, target)
            else:  # new frames in first, then the old ones beyond them out: no frame is lost before its replacement
                for name in names:
                    os.replace(os.path.join(tmpdir, name), target / name)
                for old in set(target.glob("frame_*.png")) - {target / name for name in names}:
                    old.unlink()
            fsync_path(target)
            fsync_path(target.parent)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
        return target
    with atomic_path(target, suffix=f".tmp.{kind}") as tmp:
        (_write_mp4 if kind == "mp4" else _write_gif)(video, tmp, fps)
    return target


def read_video(path: str | os.PathLike) -> np.ndarray:
    """Read an .mp4, .gif or PNG-frame directory into uint8 [F, H, W, 3] (RGB)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"video not found: {p} (check the path; PNG frames are read from a directory)")
    if p.is_dir():
        files = sorted(p.glob("frame_*.png")) or sorted(p.glob("*.png"))
        if not files:
            raise ValueError(f"{p} is a directory but holds no .png frames")
        frames = [iio.imread(f) for f in files]
        return as_uint8_video(np.stack([_rgb(f) for f in frames]), str(p))
    suffix = p.suffix.lower()
    if suffix == ".mp4":
        gen = imageio_ffmpeg.read_frames(str(p), pix_fmt="rgb24")
        meta = gen.__next__()
        w, h = meta["size"]
        frames = [np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in gen]
        if not frames:
            raise ValueError(f"{p} holds no video frames")
        return np.stack(frames)
    if suffix == ".gif":
        arr = iio.imread(p, index=None)
        if arr.ndim == 3:  # a single-frame GIF
            arr = arr[None]
        return as_uint8_video(np.stack([_rgb(f) for f in arr]), str(p))
    raise ValueError(f"unsupported video {p}: read .mp4, .gif, or a directory of PNG frames")


def _rgb(frame: np.ndarray) -> np.ndarray:
    """Gray -> RGB, RGBA -> RGB (alpha dropped), so every format reads back as [H, W, 3]."""
    if frame.ndim == 2:
        return np.repeat(frame[..., None], 3, axis=-1)
    return frame[..., :3]
