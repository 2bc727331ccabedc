"""Class names, and where a class's drawings are.

A class is any safe, non-empty name the data provides: one of Quick, Draw!'s 345, or a user's own
``<name>.ndjson`` (or Sketch-RNN ``.npz``). A name is checked before it names a file (``name_problem``), compared
in one Unicode form (``canonical``), and found by one rule (``find_class_file``): the folder asked for, else the
download cache, ``../shared/quickdraw`` and a slice fetched from Google's bucket. ``data`` reads what it finds.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from sketchgen import download, npz, strokes
from sketchgen.errors import SketchgenError, one_line
from sketchgen.fileio import NAME_MAX, TEMPORARY_ADDS, linked
from sketchgen.strokes import MAX_NAME


class DataError(SketchgenError):
    """A problem with the data as a whole (no file for a class, unknown class); one line for the user."""


ALL = "all"  # as a class list on its own (--classes all, classes="all"): the 345 Quick, Draw! classes


def categories() -> list[str]:
    """The 345 QuickDraw class names."""
    text = (Path(__file__).parent / "assets" / "categories.txt").read_text()
    return [line for line in text.splitlines() if line]


def name_problem(name) -> str | None:
    """Why ``name`` cannot name a class, or None. A class is found by its file, ``<name>.ndjson``, and names
    files it is written to: any non-empty printable name that is not a path."""
    if not isinstance(name, str) or not strokes.visible(name).strip():  # nothing that shows: joiners alone
        return "an empty name"
    if len(name) > MAX_NAME:
        return f"longer than {MAX_NAME} characters"
    if not strokes.is_printable(name):
        hidden = next(c for c in name if not strokes.is_printable(c))
        return f"it holds U+{ord(hidden):04X}, a control or format character"
    if "/" in name or "\\" in name or name in (".", ".."):
        return "a path, not a name"
    if name.startswith("."):
        return "a hidden name (it starts with '.')"
    if (length := _longest_file_name(name)) > NAME_MAX:  # 70 emoji are 280 bytes: the file system would refuse it
        return f"its file names would run to {length} bytes, more than the {NAME_MAX} a file system takes"
    return None


def _longest_file_name(name: str) -> int:
    """The bytes of the longest file name class ``name`` gives, in whichever Unicode form it is found (``_other_forms``)
    or stored (macOS decomposes): the temporary file a download writes ``<name>.ndjson`` through (``atomic_write``),
    longer than its ``.part``, its ``.lock`` and Sketch-RNN's ``sketchrnn_<name>.npz``. Cache folders and output files
    are named by ``safe_name`` where a name is long, and never reach it."""
    forms = {name, unicodedata.normalize("NFC", name), unicodedata.normalize("NFD", name)}
    return max(len(os.fsencode(form)) for form in forms) + len(".ndjson") + TEMPORARY_ADDS


def canonical(name: str) -> str:
    """A class name in Unicode's composed form (NFC), which names are compared in: "café" typed is the "café" a
    macOS file name gives decomposed (NFD). A name is kept as it is written, and found so first."""
    return unicodedata.normalize("NFC", name)


def same_names(a: Iterable[str], b: Iterable[str]) -> bool:
    """Whether two lists name the same classes in the same order, each in either Unicode form."""
    return [canonical(c) for c in a] == [canonical(c) for c in b]


class Names(dict):
    """Class names to their places in ``names``: each found as it is written, else by its composed form
    (``canonical``), so that a model trained on a name in one form draws it asked in the other."""

    def __init__(self, names: Iterable[str]):
        self.names = list(names)
        super().__init__((canonical(c), i) for i, c in enumerate(self.names))
        self.update((c, i) for i, c in enumerate(self.names))

    def find(self, name: str) -> int | None:
        place = self.get(name)
        return place if place is not None else self.get(canonical(name))

    def written(self, name: str) -> str | None:
        """``name`` as ``names`` writes it, or None."""
        place = self.find(name)
        return None if place is None else self.names[place]


def named_twice(names: list[str]) -> str | None:
    """The first name given a second time (in either Unicode form), or None: a model's classes are its rows, one
    each."""
    seen = set()
    return next((name for name in names if canonical(name) in seen or seen.add(canonical(name))), None)


def check_classes(names: list[str], data_dir: str | os.PathLike | None = None) -> list[str]:
    """Refuse names that cannot name a class, and names that are neither one of Quick, Draw!'s 345 classes nor a
    class the data provides (a ``<name>.ndjson`` where ``find_class_file`` looks): one line, with close matches."""
    known = set(categories())
    for name in names:
        problem = name_problem(name)
        if problem:
            raise DataError(f"{str(name)[:40]!r} is not a class name ({problem})")
        if name in known:
            continue
        try:
            find_class_file(name, data_dir, fetch=False)
        except DataError:
            raise DataError(f"unknown class {name!r}.{did_you_mean(name, known)} `sketchgen classes` lists all {len(known)} Quick, Draw! "
                            f"classes; a class of your own needs a {name}.ndjson where --data-dir points.") from None
    return list(names)


def did_you_mean(name: str, known) -> str:
    """" Did you mean 'hat', 'cat', 'bat'?" for the names of ``known`` closest to ``name``, or nothing."""
    close = difflib.get_close_matches(name, known, n=3)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def folder_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` is no folder to read drawings from, or None: said apart from a folder without the class."""
    p = Path(path)
    return None if p.is_dir() else "not a folder" if p.exists() else "no such folder"


def own_classes(data_dir: str | os.PathLike) -> tuple[list[str], list[str]]:
    """The classes a folder of ``<class>.ndjson`` or ``.npz`` files provides (its simplified/ folder too), and a
    line for each file passed over (its name cannot name a class) or for names that differ only in their Unicode
    form (they look the same: each is read under its own form alone)."""
    root = Path(data_dir)
    names, skipped, forms = set(), [], {}
    for folder in (root, root / "simplified"):
        for p in sorted(folder.iterdir()) if folder.is_dir() else ():
            if p.suffix not in (".ndjson", ".npz") or not p.is_file():
                continue
            name = p.stem.removeprefix(npz.NPZ_PREFIX) if p.suffix == ".npz" else p.stem  # only Sketch-RNN's so named
            if problem := name_problem(name):
                skipped.append(f"{one_line(str(p))}: passed over: {problem}")
            elif name not in names:
                names.add(name)
                forms.setdefault(canonical(name), []).append(name)
    for twins in (t for t in forms.values() if len(t) > 1):
        skipped.append(f"{' and '.join(_form(n) for n in twins)}: one name in {len(twins)} Unicode forms, each a "
                       "class read under its own form alone: rename all but one")
    return sorted(names), skipped


def _form(name: str) -> str:
    """``name`` quoted, and the Unicode form it is in (which does not show)."""
    forms = [form for form in ("NFC", "NFD") if unicodedata.normalize(form, name) == name]
    return f"{name!r} ({'/'.join(forms) or 'neither NFC nor NFD'})"


# --- where a class's file is ----------------------------------------------------------------


def shared_quickdraw() -> Path | None:
    """``../shared/quickdraw`` beside the checkout (or beside the working directory), if present."""
    for base in (Path(__file__).resolve().parents[3], Path.cwd().resolve().parent):
        candidate = base / "shared" / "quickdraw"
        if candidate.is_dir():
            return candidate
    return None


def _class_file_in(root: Path, name: str, own: bool = False) -> Path | None:
    """QuickDraw's ndjson first, then Sketch-RNN's npz, in ``root`` or (ndjson) its simplified/ folder; under the
    name as given, else under another Unicode form of it (``canonical``: macOS writes file names decomposed).
    ``own``: ``root`` is sketchgen's download cache, whose files are never read through a link (``fileio.linked``)."""
    for candidate in (path for form in dict.fromkeys((name, *_other_forms(root, name)))
                      for path in _candidates(root, form)):
        if own and candidate.is_symlink():
            raise DataError(str(linked(candidate, "file")))
        if candidate.is_file():
            return candidate
        if candidate.exists():  # a directory, or a FIFO that would block the reader for ever
            raise DataError(f"{candidate} is a {'directory' if candidate.is_dir() else 'special file'}, "
                            "not a file of drawings")
        if candidate.is_symlink():
            raise DataError(f"{candidate} is a link that leads to no file (it dangles or loops), not a file of "
                            "drawings")
    return None


def _candidates(root: Path, name: str) -> tuple[Path, ...]:
    """Where a class's file may be, in the order looked in."""
    return (root / f"{name}.ndjson", root / "simplified" / f"{name}.ndjson", root / f"{name}.npz",
            root / f"{npz.NPZ_PREFIX}{name}.npz")


def _other_forms(root: Path, name: str) -> Iterator[str]:
    """The names of ``root``'s class files (and its simplified/ folder's) that are ``name`` in another Unicode form,
    looked for only where none has the name as given."""
    if any(os.path.lexists(p) for p in _candidates(root, name)):
        return
    wanted = canonical(name)
    for folder in (root, root / "simplified"):
        with contextlib.suppress(OSError):  # no such folder, or not one
            for entry in sorted(os.listdir(folder)):
                stem, dot, suffix = entry.rpartition(".")
                stem = stem.removeprefix(npz.NPZ_PREFIX) if suffix == "npz" else stem
                if dot and suffix in ("ndjson", "npz") and stem != name and canonical(stem) == wanted:
                    yield stem


class ClassFile(NamedTuple):
    """Where a class's drawings are, and whether that is sketchgen's own file (in its download cache), which its
    readers open without following a link (``fileio.open_regular``'s ``own``): a link planted there after the file
    was found is refused when it is read, not followed."""

    path: Path
    own: bool = False


def find_class_file(name: str, data_dir: str | os.PathLike | None = None, fetch: bool = True) -> ClassFile:
    """The one resolution rule for where a class's drawings come from.

    ``--data-dir`` / ``$SKETCHGEN_DATA`` if given (and only it), else the
    download cache, else ``../shared/quickdraw`` beside the checkout, else a
    small slice downloaded from the QuickDraw bucket (``$SKETCHGEN_BASE_URL``
    serves instead, e.g. a mirror or a test server), else a DataError saying
    how to get data.
    """
    explicit = data_dir or download.env_path("SKETCHGEN_DATA")
    if explicit:
        told = "" if data_dir else f"SKETCHGEN_DATA={os.environ['SKETCHGEN_DATA']!r}: "  # else a ~ seemed unread
        if problem := folder_problem(explicit):
            raise DataError(f"{told}data folder {explicit}: {problem}")
        found = _class_file_in(Path(explicit), name)
        if found is None:
            raise DataError(f"{told}no {name}.ndjson or {name}.npz in {explicit} (looked in it and its simplified/ "
                            "folder)")
        return ClassFile(found)
    cache = download.default_cache_dir()
    slices = cache / "slices"
    for root, own in ((cache, True), (shared_quickdraw(), False), (slices, True)):
        if root is not None and (found := _class_file_in(root, name, own)) is not None:
            return ClassFile(found, own)
    if fetch and name in set(categories()):  # only Quick, Draw!'s own classes are in its bucket
        try:
            # Slices live apart so that a later `sketchgen download` still fetches the whole file.
            base_url = os.environ.get("SKETCHGEN_BASE_URL") or download.DEFAULT_BASE_URL
            return ClassFile(download.download_slice(name, slices, base_url, progress=False, retries=0, timeout=10),
                             own=True)
        except download.DownloadError as e:
            raise DataError(
                f"no drawings for {name!r}: none local and the download failed ({e}). "
                f"Run `sketchgen download {name!r}` where the internet is reachable, "
                "or pass --data-dir DIR holding <class>.ndjson files."
            ) from None
    raise DataError(f"no drawings for {name!r}: pass --data-dir or run `sketchgen download {name!r}`")
