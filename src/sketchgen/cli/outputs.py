"""What a command may write over: never a checkpoint with another kind of file, never two commands' drawings mixed.

A run's ``last.pt`` and ``best.pt`` hold weeks of work: ``import``, ``export``
and ``evaluate --json`` refuse to write over a checkpoint (or over the very
file they read), and each replaces only a file of the kind it writes: an
earlier import, an earlier export (Magenta's own model file only with
``export --overwrite``), an evaluate report. A drawing
command's folder holds one command's drawings: given a folder where an
earlier ``sample`` (``reconstruct``, ``interpolate``) wrote, it refuses, or
with ``--overwrite`` replaces exactly the files that earlier command wrote
(those its ndjson lists), so no old PNG stays beside a new ndjson. Every
file it is to write is checked before anything is moved or written, and a
command that fails part way takes back the files it wrote and puts back
every file it moved aside.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from sketchgen.api import UsageError
from sketchgen.errors import counted
from sketchgen.fileio import (
    NAME_MAX,
    TEMPORARY_ADDS,
    FileRefused,
    json_values,
    open_regular,
    read_bytes,
    read_lines,
    replaceable,
    safe_name,
    temporaries,
    what_is,
)
from sketchgen.strokes import is_printable

MAX_LINE = 4 << 20  # one drawing's line, as data reads them
# The list of its drawings that each drawing command (sample, reconstruct, interpolate) writes in its folder.
LISTINGS = ("samples.ndjson", "reconstructions.ndjson", "interpolation.ndjson", "generated-samples.ndjson")
SAMPLES, RECONSTRUCTIONS, INTERPOLATION, GENERATED = LISTINGS  # GENERATED: demo's
# The fields of every report evaluate writes (evaluate.evaluate_model): a JSON file with them all is one.
REPORT_FIELDS = {"model", "checkpoint", "temperature", "n_per_class", "seed", "loss", "classes", "overall"}
MAX_JSON_VALUES = 1_000_000  # in a JSON file an output may replace: a report holds ~260 a class (345: 90,000)


def _contents(path: Path) -> str | None:
    """What ``path`` is, as far as sketchgen is concerned: None (nothing there), "checkpoint", "imported" (a
    checkpoint an import wrote), "classifier", "report" (evaluate's), "magenta" (a model file export wrote),
    "magenta-other" (one it did not: Magenta's own), "json" (any other), "npz" (a Sketch-RNN dataset convert wrote),
    "npz-other" (one it did not), or "other"."""
    from sketchgen import models
    from sketchgen.classifier import CLASSIFIER_FILE
    from sketchgen.npz import is_dataset

    if not os.path.lexists(path):
        return None
    try:
        ckpt = models.read_file(path)
    except models.CheckpointError:
        if is_dataset(path):
            return "npz" if is_dataset(path, ours=True) else "npz-other"
        try:
            text = read_bytes(path, 64 << 20)
            # Counted before parsing: a report or a model file holds thousands of values at most, and 64 MB of
            # "{}," parsed took 1.9 GB (an audit's find).
            if json_values(text) > MAX_JSON_VALUES:
                return "other"
            doc = json.loads(text)
        except (FileRefused, ValueError, UnicodeDecodeError, RecursionError):
            return "other"
        if isinstance(doc, dict) and REPORT_FIELDS <= doc.keys():
            return "report"
        return _magenta(path) or "json"
    if ckpt.get("kind") == CLASSIFIER_FILE:
        return "classifier"
    return "imported" if ckpt.get("imported") and "train" not in ckpt else "checkpoint"


def _magenta(path: Path) -> str | None:
    """"magenta" where ``path`` is a decoder-only Sketch-RNN model file that export wrote, "magenta-other" for
    another (Magenta's own, import reads them), None for any other file."""
    from sketchgen.interop.magenta import MagentaFileError, exported_by_sketchgen, read_magenta

    try:
        model = read_magenta(path)
    except MagentaFileError:
        return None
    return "magenta" if exported_by_sketchgen(model.info) else "magenta-other"


def writable(out: str | os.PathLike, writes: str, flag: str, reads: tuple = (), replaces: tuple[str, ...] = (),
             overwrite: tuple[str, ...] = (), overwriting: bool = False) -> None:
    """Refuse, in one line, to write ``writes`` at ``out`` (given as ``flag``) over any of ``reads`` (the files
    the command reads) or over an existing file unless what it holds is in ``replaces`` (``_contents``), or in
    ``overwrite`` where the command was given --overwrite (``overwriting``); without it, such a file is refused
    with a word that --overwrite would replace it."""
    out = Path(out)
    replaces = (*replaces, *overwrite) if overwriting else replaces
    if problem := _unwritable(out):  # found now, not once the work is done (an evaluation, a training)
        raise UsageError(f"{flag} {out}: {problem}")
    if _identity(out) is not None and any(_identity(r) == _identity(out) for r in reads):
        raise UsageError(f"{flag} {out} is the file this command reads: write the {writes} elsewhere")
    try:
        replaceable(out)  # a folder or a FIFO is not "another file": say what it is
    except FileRefused as e:
        raise UsageError(f"{flag} {e}") from None
    holds = _contents(out)
    if holds is not None and holds not in replaces:
        what = {"checkpoint": "a model checkpoint (a run's weights and training state)",
                "imported": "an imported model checkpoint", "classifier": "a classifier",
                "report": "an evaluate report", "magenta": "a Magenta model file",
                "npz": "a Sketch-RNN dataset", "npz-other": "a Sketch-RNN dataset convert did not write (Sketch-RNN's "
                                                          "own, or one converted before 2026-12-07)",
                "magenta-other": "a Magenta model file not marked as sketchgen's export (Magenta's own, or one "
                                 "exported before 2026-12-07)",
                "json": "another JSON file"}.get(holds, "another file")
        raise UsageError(f"{flag} {out} holds {what}; writing the {writes} there would lose it: give another {flag}"
                         + (", or pass --overwrite to replace it" if holds in overwrite else ""))


def _unwritable(out: Path) -> str | None:
    """Why no file can be made at ``out`` whatever it holds, or None: a name longer than a file system takes, or a
    folder above it that is a file (the first one there; those missing are made)."""
    if (length := len(os.fsencode(out.name))) > NAME_MAX - TEMPORARY_ADDS:  # atomic_write's temporary name must fit
        return f"a name of {length} bytes, longer than a file's may be"
    for above in out.parents:
        if os.path.lexists(above):
            return None if above.is_dir() else f"{above} is {what_is(above)}, not a folder"
    return None


def file_stem(word: str, apart: bool = False) -> str:
    """A class's own file's name less its suffix: the class itself where that is one plain file name (no folder,
    not hidden, never taken for an option: no leading '.' or '-'; printable; at most 200 bytes, so that a suffix
    and atomic_write's temporary name around it fit 255), else ``fileio.safe_name``: a 234-byte name is a class.
    ``apart``, where several classes' files share a folder: a name made safe is followed by a digest of it, so that
    no two classes share a file ('-x' was '_-x', the class '_-x''s own name)."""
    plain = Path(word).name == word and word[:1] not in ("", ".", "-") and is_printable(word) and \
        len(word.encode()) <= 200
    if plain:
        return word
    digest = hashlib.sha256(word.encode(errors="surrogatepass")).hexdigest()[:8]
    return f"{safe_name(word)}-{digest}" if apart else safe_name(word)


def drawing_stem(word: str, i: int, tag: str = "") -> str:
    """The name less its suffix of drawing ``i``'s files: its class made safe (``fileio.safe_name``: never a path,
    whatever a checkpoint holds) and its number, so that no drawing writes over another's file."""
    return f"{safe_name(word)}-{tag}{i:03d}"


def drawing_files(*suffixes: str, tag: str = "") -> Callable[[Iterable], Iterator[str]]:
    """The files of drawings of the given classes (in order; None for a line that names none): one per suffix."""
    def files(words: Iterable) -> Iterator[str]:
        for i, word in enumerate(words):
            if isinstance(word, str):
                yield from (drawing_stem(word, i, tag) + suffix for suffix in suffixes)
    return files


@contextlib.contextmanager
def replacing(out: Path, listing: str, overwrite: bool, files: Callable[[Iterable], Iterable[str]],
              words: Iterable[str], reads: dict | None = None, own: Callable[[list], Iterable[str]] | None = None
              ) -> Iterator[list]:
    """Where a drawing command writes its ``listing`` (its ndjson) and ``files(words)`` (the files of drawings of
    ``words``) in ``out``: a list for the words it writes (``taken_back``, with ``own`` where the files of what it
    lists are not ``files`` of it).

    It refuses in one line before anything is moved or written: where one of those names is not a file (a folder,
    a FIFO) or is a file the command reads (``reads``: flag -> path), and where ``out`` holds an earlier such
    command's listing, unless ``overwrite``. Then that listing, the files of the drawings it lists and any other
    file at a name the command writes are moved aside, into a hidden folder of ``out`` (renames, so no disk is
    needed): removed once the block succeeds, put back if it fails (a full disk, Ctrl-C), so that a command that
    fails leaves the folder as it was (stopped again while it puts them back, it leaves the rest in that folder).
    Where one of those other files sits beside another drawing command's listing, it is that command's: refused,
    and everything put back. One drawing command at a time in a folder (``_holding``): a second is refused; one
    that finds what a command stopped for good (kill -9) moved aside puts it back first (``_put_back``).
    """
    with _holding(out) as held:
        if held:
            _put_back(out)
        elif stopped := next((p.name for p in out.iterdir() if p.name.startswith((ASIDE, REMOVING))), None):
            # Without the lock it may be a running command's: neither put back nor left for one with the lock to
            # undo later, over this command's drawings (a review's find: a stale plan removed them all).
            raise UsageError(f"--out {out} holds {stopped}, a drawing command's that is running or was stopped, and "
                             "this filesystem cannot lock the folder to tell which: give another --out")
        with _replacing(out, listing, overwrite, files, words, reads, own) as written:
            yield written


def check_replacing(out: Path, listing: str, overwrite: bool, files: Callable[[Iterable], Iterable[str]],
                    words: Iterable[str], reads: dict | None = None) -> None:
    """``replacing``'s refusals, before anything is moved or written: said again by ``replacing`` itself, and
    here first by a command with work to do before it writes (``demo`` trains)."""
    read = {_identity(path): (flag, path) for flag, path in (reads or {}).items() if path and _identity(path)}
    for name in itertools.chain((listing,), files(words)):  # one at a time: a million drawings' names are not kept
        path = out / name
        try:
            replaceable(path)
        except FileRefused:
            raise UsageError(f"--out {out}: {name} there is {what_is(path)}, where this command writes a file: "
                             "move it, or give another --out") from None
        if read and (here := _identity(path)) in read:
            flag, given = read[here]
            raise UsageError(f"{flag} {given} is the {name} this command writes in --out {out}: give another --out")
    earlier = out / listing
    if os.path.lexists(earlier) and not overwrite:
        raise UsageError(f"{out} holds the drawings of an earlier command ({listing}): pass --overwrite to replace "
                         "them, or another --out")


@contextlib.contextmanager
def _replacing(out: Path, listing: str, overwrite: bool, files: Callable[[Iterable], Iterable[str]],
               words: Iterable[str], reads: dict | None, own: Callable[[list], Iterable[str]] | None) -> Iterator[list]:
    """``replacing`` once the folder is held and put back in order."""
    check_replacing(out, listing, overwrite, files, words, reads)
    aside = Path(tempfile.mkdtemp(dir=out, prefix=f"{ASIDE}{listing}-"))
    clear = False  # whether a listing there now would be the block's
    try:
        _move(out, aside, [listing])
        clear = True
        _move(out, aside, _listed(aside / listing, files))
        if (mine := _move(out, aside, files(words))) and \
                (others := [n for n in LISTINGS if n != listing and os.path.lexists(out / n)]):
            raise UsageError(f"--out {out} holds the drawings of another command ({others[0]}), {mine} among them, "
                             "which this command writes: give another --out")
        _plan(aside / PLAN, files(words))  # all at its names is aside: stopped sooner, it wrote nothing to remove
        with taken_back(out, own or files) as written:
            yield written
    except BaseException:
        _restore(out, aside, listing, clear)
        raise
    gone = out / f"{REMOVING}{aside.name[len(ASIDE):]}"  # stopped while it removes them, none is put back
    os.rename(aside, gone)
    shutil.rmtree(gone)


# What a drawing command moved aside while it runs (a hidden folder of --out, named after its listing), and the same
# once it has succeeded and removes them.
ASIDE, REMOVING = ".sketchgen-replaced-", ".sketchgen-removing-"
# In that folder, beside what it moved aside, the names of the files the command is to write, one JSON string a line
# (written before any of them): the files of one stopped for good, which no listing names.
PLAN = ".sketchgen-writes"


@contextlib.contextmanager
def _holding(out: Path) -> Iterator[bool]:
    """Whether this command holds an exclusive lock on the folder ``out`` for the block, refused in one line where
    another drawing command holds it: two writing the same names at once would move and remove each other's files.
    The system lets go of it when the process ends, however it ends; on a filesystem that has no such locks, the
    block runs without (False)."""
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = True
        except BlockingIOError:
            raise UsageError(f"--out {out}: another command is drawing into it now; wait until it ends, or give "
                             "another --out") from None
        except OSError:  # no flock there (some network filesystems)
            held = False
        yield held
    finally:
        os.close(fd)


def _put_back(out: Path) -> None:
    """Put back what a drawing command stopped for good part way (kill -9, or a second Ctrl-C while it put them
    back) left moved aside in ``out``, once the files it wrote there (its ``PLAN``'s) are removed, and remove what
    one stopped while removing them left: the folder as that command found it. Only under ``_holding``: no command
    that is still running has a folder there."""
    with os.scandir(out) as entries:
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                continue
            if entry.name.startswith(REMOVING):
                shutil.rmtree(entry.path)
            elif listing := next((n for n in LISTINGS if entry.name.startswith(f"{ASIDE}{n}-")), None):
                aside = Path(entry.path)
                removed = _undo(out, aside / PLAN, listing)
                with os.scandir(aside) as moved:
                    files = sum(not e.is_dir(follow_symlinks=False) for e in moved)
                # The listing is moved aside first and back last: with a file still aside, a listing in ``out`` is
                # the stopped command's (or nothing had been moved back yet).
                _restore(out, aside, listing, clear=files > 0)
                if files:
                    print(f"sketchgen: put back in {out} the earlier drawings that a command stopped part way had "
                          f"moved aside ({entry.name})", file=sys.stderr)
                elif removed:
                    print(f"sketchgen: removed from {out} the {counted(removed, 'file')} that a command stopped part "
                          "way had written", file=sys.stderr)


def _plan(path: Path, names: Iterable[str]) -> None:
    """Write the names of the files a command is to write, before it writes them, where ``_undo`` finds them. A net
    for ``kill -9`` alone: a disk too full for it is a command that fails at its first file, which says so, and
    takes back what it wrote itself (``taken_back``), so the plan is given up rather than failing the command."""
    try:
        with open(path, "x") as f:  # a fresh folder of our own: "x" would refuse anything planted
            f.writelines(json.dumps(name) + "\n" for name in names)
    except OSError:
        path.unlink(missing_ok=True)


def _undo(out: Path, plan: Path, listing: str) -> int:
    """Remove from ``out`` what a stopped command wrote, where its ``plan`` says (what was there before it is aside):
    the files it names, its ``listing`` and the temporary files being written for them; how many. A name that is not
    one plain file name is passed over (the plan is read as any file is), as is a folder."""
    removed = 0
    if not plan.is_file() or plan.is_symlink():
        return removed
    writing: dict[str, list[Path]] = {}
    for tmp, name in temporaries(out).items():
        writing.setdefault(name, []).append(tmp)
    with open_regular(plan, None, "list of files") as f:
        for name in itertools.chain(map(_string, read_lines(f, MAX_LINE)), (listing,)):
            if name is None or name != os.path.basename(name) or name in ("", ".", "..") or \
                    name.startswith(".sketchgen-"):
                continue
            for path in (out / name, *writing.pop(name, ())):
                with contextlib.suppress(OSError):  # not there; a folder, which is none of ours
                    if not stat.S_ISDIR(os.lstat(path).st_mode):
                        path.unlink()
                        removed += 1
    plan.unlink()
    return removed


def _restore(out: Path, aside: Path, listing: str, clear: bool) -> None:
    """Move every file in ``aside`` back into ``out``, over any of the same name, ``listing`` last, once the failed
    command's own listing is removed (``clear``); the folder goes only once all is back. Stopped part way, what is
    still aside is what ``_put_back`` puts back: never the earlier listing without the files it lists."""
    if clear:
        (out / listing).unlink(missing_ok=True)
    (aside / PLAN).unlink(missing_ok=True)
    with os.scandir(aside) as entries:
        names = sorted((entry.name for entry in entries), key=lambda name: name == listing)
    _move(aside, out, names)
    with contextlib.suppress(OSError):  # a folder someone put there stays, and so does what holds it
        aside.rmdir()


def _listed(listing: Path, files: Callable[[Iterable], Iterable[str]]) -> Iterator[str]:
    """The files of the drawings a listing lists; a planted link lists none (it names no file of ours), nor does
    a listing that is not there."""
    if os.path.isfile(listing) and not os.path.islink(listing):
        with open_regular(listing, None, "list of drawings") as f:
            yield from files(_string(line, "word") for line in read_lines(f, MAX_LINE))


def _move(source: Path, target: Path, names: Iterable[str]) -> str | None:
    """Rename each of ``names`` (files or links; never a folder, which is none of ours) from one folder to the
    other, where it is there; the first it moved, if any."""
    first = None
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISDIR(os.lstat(source / name).st_mode):
                os.replace(source / name, target / name)
                first = first or name
    return first


def _identity(path) -> tuple[int, int] | None:
    """The file at ``path`` (device and inode, through a link), or None where there is none."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


def _string(line: bytes | None, key: str | None = None) -> str | None:
    """The string one JSON line holds, at ``key`` where given (a listing's "word"), else whole (a ``PLAN``'s file
    name); None for a line that holds none."""
    try:
        value = json.loads(line) if line else None
        value = value if key is None else value[key]
    except (ValueError, KeyError, TypeError, RecursionError):  # a line nested too deep for the parser
        return None
    return value if isinstance(value, str) else None


@contextlib.contextmanager
def taken_back(out: Path, files: Callable[[list], Iterable[str]]) -> Iterator[list]:
    """A list for what a command writes in ``out``, each drawing's word in turn (None for one with no files), whose
    files (``files(words)``) are removed again if it fails part way (a full disk, Ctrl-C): the listing that would
    name them is never written, and a file no listing names is one no --overwrite removes. Words, not paths: a
    million drawings' paths would hold half a gigabyte."""
    words: list = []
    try:
        yield words
    except BaseException:
        for name in files(words):
            with contextlib.suppress(OSError):  # what stands there is not ours (a folder): the failure is what to say
                if not (out / name).is_dir():
                    (out / name).unlink(missing_ok=True)
        raise
