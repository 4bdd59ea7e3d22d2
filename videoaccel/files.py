"""Files the user asked for: checked with a real write before any work, written atomically with their umask.

``tempfile.mkstemp`` creates 0600 files; renaming one into place would keep that mode, so the
finished file is given the mode ``open()`` would have: 0666 minus the umask.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def umask_mode(directory: bool = False) -> int:
    """The mode a new file (0666) or directory (0777) gets under the process umask."""
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def check_writable(path: str | os.PathLike) -> None:
    """OSError naming the fix unless a file can be created where ``path`` goes (a real temporary
    write: permission bits miss read-only mounts and ACLs). An existing directory is checked too."""
    target = Path(os.fspath(path).rstrip("/" + os.sep) or ".").absolute()
    if not target.parent.is_dir():
        raise OSError(f"cannot write {path}: directory {target.parent} does not exist (create it first: mkdir -p {target.parent})")
    for d in [target.parent] + ([target] if target.is_dir() else []):
        try:
            fd, tmp = tempfile.mkstemp(prefix=".videoaccel-write-check.", dir=d)
        except OSError as e:
            raise OSError(f"cannot write {path}: {d} is not writable ({e.strerror}): choose another output path "
                          "or fix its permissions") from None
        os.close(fd)
        os.unlink(tmp)


def check_json_path(path: str | os.PathLike) -> None:
    """check_writable, and not an existing directory (a JSON report is one file)."""
    if os.path.isdir(path):
        raise OSError(f"cannot write JSON to {path}: it is a directory (give a file name)")
    check_writable(path)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[str]:
    """A temporary name next to ``path`` to write to; renamed onto ``path`` (umask mode) when the block
    succeeds, removed when it fails, so readers never see a half-written file."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, umask_mode())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """JSON through atomic_path, so a failed write leaves no partial file (no NaN/inf: JSON has none)."""
    import json

    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=2, allow_nan=False)
