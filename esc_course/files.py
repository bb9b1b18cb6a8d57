"""atomic_write: the one way the package writes a file (results, figures, reports, checkpoints, weights, bundles).

Write to a temporary file in the same folder, fsync it, rename it over the target, fsync the folder: a reader sees
the old file or the new one, never half of one, and a crash or power cut leaves the previous version loadable.
Every file gets the mode a plain ``open()`` would give it (0o666 less the umask; mkstemp's own is 0o600), so the
organisers can read what a student's run wrote. Two processes writing the same path both succeed (the last rename
wins); neither touches the other's temporary file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def file_mode() -> int:
    """The mode a plain open() would give a new file: 0o666 less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def fsync_dir(folder: Path | str) -> None:
    """Make a rename in ``folder`` durable (skipped where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: Path | str) -> Iterator[Path]:
    """``with atomic_write(path) as tmp: write(tmp)``: whatever is written to ``tmp`` becomes ``path`` at once when
    the block ends, durably and with the usual file mode; if the block raises, ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # the bytes are on disk before the name points at them
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_dir(path.parent)  # and the rename itself survives a power cut
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: Path | str, data: bytes) -> Path:
    """``data`` as the file ``path``, atomically (see :func:`atomic_write`)."""
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: Path | str, text: str) -> Path:
    """``text`` (UTF-8) as the file ``path``, atomically (see :func:`atomic_write`)."""
    return write_bytes(path, text.encode("utf-8"))
