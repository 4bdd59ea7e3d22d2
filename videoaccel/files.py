"""Files the user gives or asks for: read with errors that name the file and the fix, checked with a real
write before any work, and written atomically with their umask.

Every file videoaccel writes goes through ``atomic_path`` (or the ``write_*`` helpers on top of it): a
temporary file in the target's directory, fsync, rename. A write that fails part way (disk full, a
file-size limit, an exception) leaves the old file as it was and no temporary file behind.
``tempfile.mkstemp`` creates 0600 files; renaming one into place would keep that mode, so the finished
file is given the mode ``open()`` would have: 0666 minus the umask.
"""
from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

READ_LIMIT = 64 << 20  # a profile or prompt file larger than this is not one
FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)  # a write failed for want of space


class MissingFileError(FileNotFoundError, ValueError):
    """A file the user named does not exist: a FileNotFoundError, and a ValueError like every other bad input."""


def umask_mode(directory: bool = False) -> int:
    """The mode a new file (0666) or directory (0777) gets under the process umask."""
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def check_writable(path: str | os.PathLike, directory_ok: bool = False) -> None:
    """OSError naming the fix unless a file can be created where ``path`` goes (a real temporary
    write: permission bits miss read-only mounts and ACLs); ValueError when ``path`` is an existing
    directory, unless ``directory_ok`` (PNG frames), then that directory is checked too."""
    target = Path(os.fspath(path).rstrip("/" + os.sep) or ".").absolute()
    _check_target(path, target, directory_ok)
    for d in [target.parent] + ([target] if target.is_dir() else []):
        fd, tmp = _mkstemp(path, d, ".videoaccel-write-check.", "")
        os.close(fd)
        os.unlink(tmp)


def _check_target(path: str | os.PathLike, target: Path, directory_ok: bool = False) -> None:
    if target.is_dir() and not directory_ok:
        raise ValueError(f"cannot write {path}: it is a directory (give a file name, or remove the directory)")
    if not target.parent.is_dir():
        raise OSError(f"cannot write {path}: directory {target.parent} does not exist (create it first: mkdir -p {target.parent})")


def _mkstemp(path: str | os.PathLike, d: Path, prefix: str, suffix: str) -> tuple[int, str]:
    try:
        return tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=d)
    except OSError as e:
        raise OSError(f"cannot write {path}: {d} is not writable ({e.strerror}): choose another output path "
                      "or fix its permissions") from None


def check_json_path(path: str | os.PathLike) -> None:
    """check_writable: a JSON report is one file, not a directory."""
    check_writable(path)


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a file (or a directory's entries) to the disk, so a crash after a rename cannot leave it empty."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[str]:
    """A temporary name next to ``path`` to write to (by any writer: ffmpeg, safetensors, ...); fsynced and
    renamed onto ``path`` (umask mode) when the block succeeds, removed when it fails, so readers never see
    a half-written file and the old one survives. A symlink to a file is written through."""
    target = Path(path)
    if target.is_symlink() and target.is_file():
        target = Path(os.path.realpath(target))
    _check_target(path, target.absolute())
    fd, tmp = _mkstemp(path, target.parent, f".{target.name}.", suffix)
    os.close(fd)
    try:
        yield tmp
        fsync_path(tmp)
        os.chmod(tmp, umask_mode())
        os.replace(tmp, target)
    except BaseException as e:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError):  # disk full, a size limit, a failed encoder: say what is left as it was
            what = "the old file is unchanged" if target.exists() else "nothing was written"
            fix = ": free space or choose another output path" if e.errno in FULL else ""
            raise OSError(f"cannot write {path}: {e.strerror or e} ({what}){fix}") from e
        raise
    fsync_path(target.parent)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(obj: Any, path: str | os.PathLike, indent: int = 2, allow_nan: bool = False) -> None:
    """JSON through atomic_path, so a failed write leaves no partial file (no NaN/inf unless ``allow_nan``: JSON has none)."""
    write_text(path, json.dumps(obj, indent=indent, allow_nan=allow_nan))


def write_image(path: str | os.PathLike, image: Any) -> None:
    """A BGR uint8 image (OpenCV's order) as PNG, encoded in memory and written atomically."""
    import cv2

    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"could not encode the image for {path} as PNG")
    write_bytes(path, data.tobytes())


def read_text(path: str | os.PathLike, what: str, example: str) -> str:
    """The UTF-8 text of a file the user named; one-line errors naming it and the fix (``what``: 'profile
    file'; ``example``: what a good one is) instead of an errno or a codec error."""
    p = os.fspath(path)
    cannot = f"cannot read {what} {p}"
    try:
        with open(p, "rb") as f:
            data = f.read(READ_LIMIT + 1)
    except FileNotFoundError:
        raise MissingFileError(f"{cannot}: it does not exist (check the path)") from None
    except IsADirectoryError:
        raise ValueError(f"{cannot}: it is a directory (give {example})") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ValueError(f"{cannot}: it is a symlink loop (point the link at a real file)") from None
        raise ValueError(f"{cannot}: {e.strerror} (fix its permissions or give another file)") from None
    if len(data) > READ_LIMIT:
        raise ValueError(f"{cannot}: it is larger than {READ_LIMIT >> 20} MiB (give {example})")
    if b"\0" in data:
        raise ValueError(f"{cannot}: it is a binary file, not text (give {example})")
    try:
        return data.decode("utf-8-sig")  # a byte-order mark (some editors write one) is not part of the text
    except UnicodeDecodeError as e:
        raise ValueError(f"{cannot}: it is not UTF-8 text (byte {e.start}; save it as UTF-8)") from None
