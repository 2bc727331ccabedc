"""Opening, reading and writing files so that nothing hangs, grows without bound, is half-written or lost.

Every artefact sketchgen writes (downloads, prepared caches, checkpoints) goes
through ``atomic_write``: the bytes land in a temporary file beside the target,
are flushed to disk, and only then renamed over it. A crash or a full disk
leaves the previous file intact; a reader never sees a partial one.
``locked`` serialises two processes building the same artefact. ``read_lines``
reads a file line by line without ever holding more than one bounded line;
``unchanged`` tells whether a file read twice was the same file both times.

Every file sketchgen reads is opened by ``open_regular`` (or ``read_bytes``):
a FIFO, a device such as ``/dev/zero`` or a folder is refused before a byte is
read, as is a file over the reader's bound, and none is read past the size it
had when opened (/proc's files never end). sketchgen's own files and folders
(locks, logs, partial downloads, a class's cache folder) are opened by
``open_own`` and ``own_folder``, which never follow a symbolic link: a link
planted there would have us truncate or write whatever it points at.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import os
import re
import stat
import sys
import tempfile
from collections.abc import Container, Iterator
from pathlib import Path
from typing import BinaryIO

from sketchgen.errors import SketchgenError

_SKIP_CHUNK = 1 << 20
# What open() with O_CREAT and O_NONBLOCK met instead of a file: a folder, or a FIFO (writing) with no reader.
_NOT_FILES = {errno.EISDIR: "a folder", errno.ENXIO: "not a regular file (a FIFO)"}
_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device", stat.S_IFSOCK: "a socket"}


class FileRefused(SketchgenError, OSError):
    """A file sketchgen will not read or write as asked; the message is one line naming it and saying why."""


class WriteFailed(OSError):
    """A write the system refused (a full disk), said by ``atomic_write`` once, naming the file it was writing."""


def open_regular(path: str | os.PathLike, most: int | None = None, what: str = "file", own: bool = False) -> BinaryIO:
    """``path`` opened for reading if it is a regular file of at most ``most`` bytes; FileRefused if not.

    It is opened with O_NONBLOCK, so that a FIFO without a writer answers at once rather than
    blocking for ever, and then checked with ``fstat`` on what was opened (not on the name, which
    could change in between): a FIFO, a device (``/dev/zero`` never ends, and says its size is 0)
    or a folder is refused, and so is a file larger than the reader allows, before a byte is read.
    It is read no further than the size ``fstat`` gave (``_UpTo``). ``own``: one of sketchgen's own
    files (a downloaded class file), never read through a symbolic link (as ``open_own``).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_NOFOLLOW if own else 0))
    except FileNotFoundError:
        raise FileRefused(f"{path}: no such {what}") from None
    except OSError as e:  # no permission; a socket (ENXIO); a name too long
        if own and e.errno == errno.ELOOP:
            raise linked(path, "file") from None
        raise FileRefused(f"{path}: cannot be read ({e.strerror})") from None
    except ValueError:  # a NUL in the name, which no file system takes
        raise FileRefused(f"{str(path)!r:.60}: not a file name (it holds a NUL)") from None
    try:
        size = _regular_size(fd, path, what)
        if most is not None and size > most:
            raise FileRefused(f"{path}: {size:,} bytes, more than any {what} ({_amount(most)} at most); refused unread")
        os.set_blocking(fd, True)
        return io.BufferedReader(_UpTo(fd, size))
    except BaseException:
        os.close(fd)
        raise


class _UpTo(io.RawIOBase):
    """A file read no further than ``end``, its size when opened. A regular file of /proc or /sys says it has 0 bytes
    (or 4096) and reads on for ever: /proc/self/pagemap holds 256 GiB, /proc/kmsg blocks until the kernel logs.
    Refusing such file systems would need statfs, which Python lacks (and would miss the next pseudo file system);
    the size the file gave covers them all, and a file written meanwhile is ``unchanged``'s to find."""

    def __init__(self, fd: int, end: int):
        super().__init__()
        self.file, self.end = io.FileIO(fd, "rb"), end

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self.end - self.file.tell()
        return self.file.readinto(memoryview(buffer)[:left]) if left > 0 else 0

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_END:  # from the end it had
            return self.file.seek(self.end + offset)
        return self.file.seek(offset, whence)

    def tell(self) -> int:
        return self.file.tell()

    def fileno(self) -> int:
        return self.file.fileno()

    def close(self) -> None:
        self.file.close()
        super().close()


def read_bytes(path: str | os.PathLike, most: int, what: str = "file", own: bool = False) -> bytes:
    """The whole of a regular file of at most ``most`` bytes (``open_regular``: no further than its size at opening,
    and not through a link where it is one of sketchgen's ``own``)."""
    with open_regular(path, most, what, own) as f:
        return f.read(os.fstat(f.fileno()).st_size)  # into one buffer of its size: read() grows one, copying it


def open_own(path: str | os.PathLike, flags: int = os.O_RDWR) -> int:
    """A file descriptor on one of sketchgen's own files (a lock, a log, a partial download), made if missing.

    Never through a symbolic link (O_NOFOLLOW): one planted there would have us truncate, append to
    or overwrite the file it points at, wherever that is; nor, to write, a file with another name (a hard
    link), for the same reason (a lock only read may have one: ``cp -al`` copies a cache so). Never blocking, and a
    regular file only.
    """
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise linked(path, "file") from None
        if e.errno in _NOT_FILES:
            raise FileRefused(f"{path}: {_NOT_FILES[e.errno]} where sketchgen keeps its own file; remove it") from None
        raise
    try:
        _regular_size(fd, path, "file")
        if flags & (os.O_WRONLY | os.O_RDWR) and os.fstat(fd).st_nlink > 1:  # writing would change a file elsewhere
            raise FileRefused(f"{path}: a file with other names (hard links) where sketchgen keeps its own file; "
                              "refused: remove it")
        os.set_blocking(fd, True)
        return fd
    except BaseException:
        os.close(fd)
        raise


def own_folder(path: str | os.PathLike, create: bool = True) -> bool:
    """Whether sketchgen's own folder ``path`` is there (made, with its parents, if ``create``); FileRefused if it
    is a symbolic link or not a folder: writing into a link would write wherever it points."""
    path = Path(path)
    if create:
        with contextlib.suppress(FileExistsError):
            path.mkdir(parents=True)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(info.st_mode):
        raise linked(path, "folder")
    if not stat.S_ISDIR(info.st_mode):
        raise FileRefused(f"{path}: not a folder, where sketchgen keeps its own folder; remove it")
    return True


def linked(path, what: str) -> FileRefused:
    """The refusal of a symbolic link where sketchgen keeps its own file or folder."""
    return FileRefused(f"{path}: a symbolic link where sketchgen keeps its own {what}; refused: remove the link")


def _regular_size(fd: int, path, what: str) -> int:
    """The size of the open file ``fd``; FileRefused if it is not a regular file."""
    info = os.fstat(fd)
    if stat.S_ISDIR(info.st_mode):
        raise FileRefused(f"{path}: a folder, not a {what}")
    if not stat.S_ISREG(info.st_mode):
        raise FileRefused(f"{path}: not a regular file ({_KINDS.get(stat.S_IFMT(info.st_mode), 'special')})")
    return info.st_size


def _amount(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 and not n % (1 << 20) else f"{n:,} bytes"


class FileChanged(SketchgenError, OSError):
    """A file written or replaced while ``unchanged`` watched it: what was read of it is no one version."""


@contextlib.contextmanager
def unchanged(path: str | os.PathLike) -> Iterator[None]:
    """Raise FileChanged after the block if the file at ``path`` was written (its size, modification or change time
    moved) or replaced (another file took its name) meanwhile: a file read twice, once for its contents and once for its
    digest, is then known to be one file both times. A block that fails on a file that changed meanwhile (cut short
    as it was read) raises FileChanged too: the change, not what the block made of it, is the cause."""
    before = _version(path)
    changed = FileChanged(f"{path}: changed while it was read (written or replaced meanwhile); try again once it is "
                          "whole")
    try:
        yield
    except Exception:
        if _version(path) != before:
            raise changed from None
        raise
    if _version(path) != before:
        raise changed


def _version(path) -> tuple[int, ...] | None:
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns  # ctime: no utime sets it


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, own: bool = False) -> Iterator[BinaryIO]:
    """Open a temporary binary file that replaces ``path`` only if the block succeeds.

    Only a file is replaced: a folder, FIFO, device or socket there is refused first, since renaming over
    it would put a regular file in the place of ``/dev/full`` or a pipe a reader waits on, and so is a link to
    one. (A link to a file, or to nothing, is replaced itself; what it points at is left alone.) ``own``: a file
    in one of sketchgen's own cache folders, where whatever is in its place is damage to repair, so it is replaced.
    """
    if not isinstance(path, (str, os.PathLike)) or "\0" in str(path):  # bytes, a number, a NUL: a library slip
        raise FileRefused(f"a file to write is named by a str or os.PathLike without NUL, not {path!r:.40}")
    path = Path(path)
    if not own:
        replaceable(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TEMPORARY)
    except OSError as e:  # a file where a folder goes, a name too long: said of the path, not the temporary file's
        above = next((p for p in path.parents if os.path.lexists(p)), None)
        reason = f"{above} is not a folder" if above is not None and not above.is_dir() else e.strerror or str(e)
        raise WriteFailed(e.errno, f"{reason}: could not write {path}") from None
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
        # A full disk names no file: say which, and that it is safe. Not for what the block raised of another
        # file's (a drawing's PNG written while its ndjson line is, a refusal naming it): that says its own.
        if isinstance(e, OSError) and e.filename is None and not isinstance(e, (WriteFailed, SketchgenError)):
            message = f"{e.strerror or e}: could not write {path}; any earlier version of it is intact"
            raise WriteFailed(e.errno, message) from None
        raise


_TEMPORARY = ".tmp"  # atomic_write's temporary file is ".NAME.<mkstemp's random characters>.tmp", beside NAME
# The longest file name, in bytes, that Linux's file systems take, and the bytes atomic_write's temporary name adds
# to the name of the file it writes: '.', then '.', mkstemp's 8 random characters and '.tmp'.
NAME_MAX = 255
TEMPORARY_ADDS = 2 + 8 + len(_TEMPORARY)


_TEMPORARY_NAME = re.compile(rf"\.(.+)\.[a-z0-9_]+{re.escape(_TEMPORARY)}")  # and the name of the file it is for


def temporaries(folder: Path, names: Container[str] | None = None) -> dict[Path, str]:
    """The temporary files ``atomic_write`` left in ``folder`` (a process killed while it wrote them), each with the
    name of the file it was for, one of ``names`` (any, where None): files or links only, so that nothing else of
    the folder is taken for one."""
    with os.scandir(folder) as entries:
        found = {Path(e.path): m[1] for e in entries if (m := _TEMPORARY_NAME.fullmatch(e.name))
                 and not e.is_dir(follow_symlinks=False)}
    return {path: name for path, name in found.items() if names is None or name in names}


def json_values(text: bytes) -> int:
    """At most how many values a JSON text holds: each past the first follows a comma or an opening bracket. Counted
    before parsing, it bounds what parsing would build (a 64-byte dict from the 3 bytes of "{},")."""
    return text.count(b",") + text.count(b"[") + text.count(b"{")


def what_is(path: str | os.PathLike) -> str:
    """What is at ``path``, for a message: "a folder", "a file", "a FIFO", "a device", "a socket", "a broken link"
    or "nothing"."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a broken link" if os.path.islink(path) else "nothing"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "a file" if stat.S_ISREG(mode) else _KINDS.get(stat.S_IFMT(mode), "not a file")


def replaceable(path: str | os.PathLike) -> None:
    """FileRefused if something other than a file, or a link to something other than a file, is at ``path``.

    A link is replaced itself, but one to a FIFO or a device stands for it (``/dev/stdout`` is a link to
    /proc/self/fd/1): replacing it would take the pipe or device away from whoever uses it by that name.
    """
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError, ValueError):  # nothing there, a file above it, a NUL: the
        return  # writing says why (any other error, a folder not to be entered, is said now, before any work)
    except OSError as e:  # a name too long is the writing's to say; a whole path too long, now
        if e.errno != errno.ENAMETOOLONG or len(os.fsencode(os.path.basename(path))) <= 255:
            raise
        return
    link = ""
    if stat.S_ISLNK(mode):
        try:
            mode, link = os.stat(path).st_mode, "a link to "
        except OSError:  # a link leading nowhere (or to itself) stands for nothing: replaced, as one to a file is
            return
    if stat.S_ISDIR(mode):
        raise FileRefused(f"{str(path)!r}: {link}a folder, not a file; give the file's name")
    if not stat.S_ISREG(mode):
        raise FileRefused(f"{path}: not a regular file ({link}{_KINDS.get(stat.S_IFMT(mode), 'special')}); refused: "
                          "writing would replace it")


def _read_umask() -> int:
    """The process umask; reading it means setting it, so do that once, before any threads write."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


@contextlib.contextmanager
def locked(path: str | os.PathLike, waiting: str = "") -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path + '.lock'`` (``open_own``: never a link's target) for the block.
    Where another process holds it, ``waiting`` (what that process is doing) is said on stderr first: a wait of
    unknown length is never silent."""
    lock = Path(f"{path}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(open_own(lock, os.O_RDONLY), "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                print(f"{waiting} (it holds {lock}): waiting for it to finish", file=sys.stderr, flush=True)
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
    'wine_bottle', and '../../etc/x' cannot leave the folder it is written in. A name never starts with '.'
    (hidden) nor with '-', which a command given the file (``rm *``) would read as an option: '--help' is '_--help'.
    """
    name = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in text[:most])
    return "_" + name if not name or name[0] in ".-" else name
