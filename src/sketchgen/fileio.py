"""Writing files so that nothing is ever half-written or lost, and reading lines with bounded memory.

Every artefact sketchgen writes (downloads, prepared caches, checkpoints) goes
through ``atomic_write``: the bytes land in a temporary file beside the target,
are flushed to disk, and only then renamed over it. A crash or a full disk
leaves the previous file intact; a reader never sees a partial one.
``locked`` serialises two processes building the same artefact. ``read_lines``
reads a file line by line without ever holding more than one bounded line.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_SKIP_CHUNK = 1 << 20


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temporary binary file that replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes files 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename is None:  # a full disk names no file: say which, and that it is safe
            message = f"{e.strerror or e}: could not write {path}; any earlier version of it is intact"
            raise OSError(e.errno, message) from None
        raise


def _read_umask() -> int:
    """The process umask; reading it means setting it, so do that once, before any threads write."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


@contextlib.contextmanager
def locked(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path + '.lock'`` for the block."""
    lock = Path(f"{path}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_lines(f: BinaryIO, max_bytes: int) -> Iterator[bytes | None]:
    """The lines of a binary file, each with its newline; None for a line of more than ``max_bytes``.

    A longer line is passed over a megabyte at a time, so a file without newlines (or a 4 GB
    line) costs ``max_bytes`` of memory, not its size, and the lines after it are still read.
    """
    while line := f.readline(max_bytes + 1):
        if len(line) > max_bytes and not line.endswith(b"\n"):
            while (rest := f.readline(_SKIP_CHUNK)) and not rest.endswith(b"\n"):
                pass
            yield None
        else:
            yield line


def safe_name(text: str, most: int = 80) -> str:
    """``text`` as one file name: letters, digits, '-', '_' and '.' kept, anything else '_', never a path.

    Class names come from checkpoints and data files, which are untrusted: 'wine bottle' becomes
    'wine_bottle', and '../../etc/x' cannot leave the folder it is written in.
    """
    name = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in text[:most])
    return "_" + name if not name or name[0] == "." else name
