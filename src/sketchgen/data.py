"""From ndjson lines to validated drawings and back, and from drawings to training arrays.

Reading streams one line at a time, so a 100,000-drawing class never sits in
memory as JSON text. A bad line is reported once with its file and line number
and skipped; the good lines of the same file are all kept. Preparation follows
the course report - recognized drawings only, at most N per class, a seeded
shuffle, a 70/15/15 split - and caches the result as compact int16 stroke-3
arrays keyed by everything that could change it. Sketch-RNN's ``.npz`` files
(see ``interop.npz``) are accepted beside ndjson and keep their own split.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sketchgen import download, strokes
from sketchgen.fileio import atomic_write, locked
from sketchgen.interop import npz

# Our splits are Sketch-RNN's, by name and order: an .npz file's arrays map onto them one to one.
SPLITS = npz.NPZ_ARRAYS
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)
CACHE_VERSION = 1
# Stroke-3 offsets are cached as int16, so absolute coordinates must stay within half its range.
MAX_COORD = 2**14 - 1


class DataError(Exception):
    """A problem with the data as a whole (no file for a class, unknown class); one line for the user."""


def categories() -> list[str]:
    """The 345 QuickDraw class names."""
    text = (Path(__file__).parent / "assets" / "categories.txt").read_text()
    return [line for line in text.splitlines() if line]


def check_classes(names: list[str]) -> list[str]:
    """Refuse unknown class names, listing close matches and where the full list is."""
    known = set(categories())
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise DataError(f"unknown class {name!r}.{hint} `sketchgen classes` lists all {len(known)} valid names.")
    return list(names)


# --- reading -----------------------------------------------------------------------------


@dataclass
class Drawing:
    word: str
    strokes: list[np.ndarray]
    recognized: bool = True
    key_id: str = ""
    countrycode: str = ""


@dataclass
class Problems:
    """Bad lines seen while reading: each printed once as ``file:line: reason``, then counted."""

    counts: Counter = field(default_factory=Counter)
    quiet: bool = False

    def report(self, path: Path, line: int, reason: str) -> None:
        # Counted by kind: "stroke 3 is empty" and "stroke 7 is empty" are one reason.
        self.counts[re.sub(r"\d+", "N", reason.split(":")[0])] += 1
        if not self.quiet:
            print(f"{path}:{line}: {reason} (skipped)", file=sys.stderr)

    def summary(self) -> str:
        total = sum(self.counts.values())
        if not total:
            return "no bad lines"
        return f"{total} bad lines skipped: " + ", ".join(f"{n} {r}" for r, n in self.counts.most_common())


def parse_line(text: str | bytes, word: str | None = None, simplify_raw: bool = True) -> Drawing:
    """One ndjson line -> Drawing. Raises ValueError (StrokeError included) with the reason."""
    try:
        # UTF-8 (a BOM allowed): json.loads would guess UTF-16/32 from bytes, which no split on b"\n" survives.
        obj = json.loads(text.decode("utf-8-sig") if isinstance(text, bytes) else text)
    except (ValueError, RecursionError):  # bad syntax or encoding, a 5000-digit number, [[[[... nested too deep
        raise ValueError("not JSON (corrupt or truncated line)") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    if "drawing" not in obj:
        raise ValueError("no 'drawing' field")
    got = obj.get("word")
    if word is not None and got != word:
        raise ValueError(f"word is {got!r}, expected {word!r}")
    parsed = strokes.parse_drawing(obj["drawing"])
    if np.abs(np.concatenate(parsed)).max() > MAX_COORD:
        raise ValueError(f"coordinate out of range (beyond +-{MAX_COORD})")
    raw = any(isinstance(s, list) and len(s) == 3 for s in obj["drawing"])
    if raw and simplify_raw:
        parsed = strokes.simplify(parsed)
    return Drawing(
        word=str(got),
        strokes=parsed,
        recognized=bool(obj.get("recognized", True)),
        key_id=str(obj.get("key_id", "")),
        countrycode=str(obj.get("countrycode", "")),
    )


def read_ndjson(
    path: str | os.PathLike, word: str | None = None, problems: Problems | None = None, simplify_raw: bool = True
) -> Iterator[Drawing]:
    """Stream the valid drawings of a simplified or raw ndjson file, reporting bad lines."""
    path = Path(path)
    problems = problems if problems is not None else Problems()
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield parse_line(line, word, simplify_raw)
            except ValueError as e:
                problems.report(path, lineno, str(e))


def ndjson_record(word: str, drawing: list[np.ndarray], key_id: str, **info) -> dict:
    """A drawing (strokes in the 0-255 frame) as a line of QuickDraw's simplified ndjson, with any extra fields."""
    return {"word": word, "countrycode": "", "recognized": True, "key_id": key_id,
            "drawing": strokes.drawing_field(drawing), **info}


def write_ndjson(records: list[dict], path: str | os.PathLike) -> None:
    with atomic_write(path) as f:
        for r in records:
            f.write((json.dumps(r) + "\n").encode())


def read_stroke3(path: str | os.PathLike, n_strokes: int | None = None) -> list[np.ndarray]:
    """The drawings of an ndjson file as stroke-3, optionally cut to their first ``n_strokes`` strokes."""
    return [strokes.strokes_to_stroke3(d.strokes[:n_strokes] if n_strokes else d.strokes) for d in read_ndjson(path)]


# --- where the data is ----------------------------------------------------------------------


def shared_quickdraw() -> Path | None:
    """``../shared/quickdraw`` beside the checkout (or beside the working directory), if present."""
    for base in (Path(__file__).resolve().parents[3], Path.cwd().resolve().parent):
        candidate = base / "shared" / "quickdraw"
        if candidate.is_dir():
            return candidate
    return None


def _class_file_in(root: Path, name: str) -> Path | None:
    """QuickDraw's ndjson first, then Sketch-RNN's npz, in ``root`` or (ndjson) its simplified/ folder."""
    for candidate in (root / f"{name}.ndjson", root / "simplified" / f"{name}.ndjson", root / f"{name}.npz",
                      root / f"{npz.NPZ_PREFIX}{name}.npz"):
        if candidate.is_file():
            return candidate
    return None


def find_class_file(name: str, data_dir: str | os.PathLike | None = None, fetch: bool = True) -> Path:
    """The one resolution rule for where a class's drawings come from.

    ``--data-dir`` / ``$SKETCHGEN_DATA`` if given (and only it), else the
    download cache, else ``../shared/quickdraw`` beside the checkout, else a
    small slice downloaded from the QuickDraw bucket (``$SKETCHGEN_BASE_URL``
    serves instead, e.g. a mirror or a test server), else a DataError saying
    how to get data.
    """
    explicit = data_dir or os.environ.get("SKETCHGEN_DATA")
    if explicit:
        found = _class_file_in(Path(explicit), name)
        if found is None:
            raise DataError(f"no {name}.ndjson or {name}.npz in {explicit} (looked in it and its simplified/ folder)")
        return found
    cache = download.default_cache_dir()
    slices = cache / "slices"
    for root in (cache, shared_quickdraw(), slices):
        if root is not None and (found := _class_file_in(root, name)) is not None:
            return found
    if fetch:
        try:
            # Slices live apart so that a later `sketchgen download` still fetches the whole file.
            base_url = os.environ.get("SKETCHGEN_BASE_URL") or download.DEFAULT_BASE_URL
            return download.download_slice(name, slices, base_url, progress=False, retries=0, timeout=10)
        except download.DownloadError as e:
            raise DataError(
                f"no drawings for {name!r}: none local and the download failed ({e}). "
                f"Run `sketchgen download {name!r}` where the internet is reachable, "
                "or pass --data-dir DIR holding <class>.ndjson files."
            ) from None
    raise DataError(f"no drawings for {name!r}: pass --data-dir or run `sketchgen download {name!r}`")


# --- preparation ----------------------------------------------------------------------------


@dataclass
class Prepared:
    """Drawings of several classes as stroke-3 int16 arrays, concatenated, with labels and splits."""

    classes: list[str]
    points: np.ndarray  # (total_points, 3) int16 stroke-3
    offsets: np.ndarray  # (n + 1,) int64: drawing i is points[offsets[i]:offsets[i+1]]
    labels: np.ndarray  # (n,) int64 class index
    split: np.ndarray  # (n,) int8 index into SPLITS
    # How these drawings were chosen, as checkpoints record it: data_dir (as given), max_per_class, seed, sources.
    settings: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def stroke3(self, i: int) -> np.ndarray:
        return self.points[self.offsets[i] : self.offsets[i + 1]]

    def indices(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == SPLITS.index(split))

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def gather(self, idx: np.ndarray) -> list[np.ndarray]:
        """The stroke-3 drawings at ``idx`` (views of the arrays, no copies)."""
        return [self.points[a:b] for a, b in zip(self.offsets[idx].tolist(), self.offsets[np.asarray(idx) + 1].tolist())]


def _reservoir(items: Iterator[np.ndarray], k: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A uniform sample of at most k items from a stream of unknown length (Algorithm R)."""
    kept: list[np.ndarray] = []
    for seen, item in enumerate(items):
        if seen < k:
            kept.append(item)
        else:
            j = int(rng.integers(0, seen + 1))
            if j < k:
                kept[j] = item
    return kept


def _class_stroke3(path: Path, name: str, problems: Problems, chunk: int = 32) -> Iterator[np.ndarray]:
    """The recognized drawings of a class file as int16 stroke-3, converted ``chunk`` drawings at a time."""
    pending = []
    for d in read_ndjson(path, name, problems):
        if d.recognized:
            pending.append(d.strokes)
        if len(pending) == chunk:
            yield from _int16_stroke3(pending)
            pending = []
    if pending:
        yield from _int16_stroke3(pending)


def _int16_stroke3(drawings: list[list[np.ndarray]]) -> list[np.ndarray]:
    rows, lengths = strokes.drawings_to_stroke3(drawings)
    rows = rows.astype(np.int16)
    ends = np.cumsum(lengths)
    # Copies, not views: a view would keep its whole chunk alive after the reservoir drops the drawing.
    return [rows[a:b].copy() for a, b in zip((ends - lengths).tolist(), ends.tolist())]


def _ndjson_split(path: Path, name: str, max_per_class: int, rng, problems: Problems) -> tuple[list[np.ndarray], np.ndarray]:
    """A uniform sample of the class's recognized drawings, shuffled, and its 70/15/15 split."""
    kept = _reservoir(_class_stroke3(path, name, problems), max_per_class, rng)
    if not kept:
        raise DataError(f"{path}: no recognized drawings of {name!r}")
    order = rng.permutation(len(kept))
    n_train = int(round(SPLIT_FRACTIONS[0] * len(kept)))
    n_valid = int(round(SPLIT_FRACTIONS[1] * len(kept)))
    which = np.full(len(kept), 2, dtype=np.int8)
    which[:n_train] = 0
    which[n_train : n_train + n_valid] = 1
    return [kept[j] for j in order], which


def _npz_split(path: Path, max_per_class: int, rng) -> tuple[list[np.ndarray], np.ndarray]:
    """A Sketch-RNN file's drawings in its own split; over the cap, each split keeps its share of it."""
    try:
        splits = npz.read_npz(path)
    except npz.NpzError as e:
        raise DataError(str(e)) from None
    total = sum(len(items) for items in splits.values())
    drawings, which = [], []
    for name, items in splits.items():
        if total > max_per_class:
            keep = np.sort(rng.choice(len(items), max_per_class * len(items) // total, replace=False))
            items = [items[i] for i in keep]
        drawings += items
        which += [SPLITS.index(name)] * len(items)
    if not drawings:
        raise DataError(f"{path}: no drawings in train, valid or test")
    return drawings, np.array(which, dtype=np.int8)


def _cache_key(files: list[Path], classes: list[str], max_per_class: int, seed: int) -> str:
    h = hashlib.sha256(json.dumps([CACHE_VERSION, classes, max_per_class, seed]).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in sorted(arrays):
        h.update(k.encode())
        h.update(np.ascontiguousarray(arrays[k]))  # the buffer itself: no copy of a 100 MB array
    return h.hexdigest()


def prepared_cache_dir() -> Path:
    return Path(os.environ.get("SKETCHGEN_PREPARED") or download.default_cache_dir().parent / "prepared")


def prepare(
    classes: list[str],
    data_dir: str | os.PathLike | None = None,
    max_per_class: int = 100_000,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    problems: Problems | None = None,
) -> Prepared:
    """Recognized drawings, at most ``max_per_class`` each, shuffled with ``seed``, split 70/15/15.

    A class read from a Sketch-RNN ``.npz`` keeps the file's own train/valid/test
    split; over the cap, each split keeps its share (a seeded uniform sample).
    Cached by class files (path, size, mtime), settings and format version; a
    cache that fails its checksum is rebuilt. Two processes preparing the same
    cache take turns on a lock.
    """
    classes = check_classes(classes)  # a list, as the cache's meta reads back: a tuple would never match it
    files = [find_class_file(c, data_dir) for c in classes]
    cache = Path(cache_dir or prepared_cache_dir()) / f"prepared-{_cache_key(files, classes, max_per_class, seed)}.npz"
    settings = {"data_dir": None if data_dir is None else str(data_dir), "max_per_class": max_per_class, "seed": seed,
                "sources": {c: str(f.resolve()) for c, f in zip(classes, files)}}
    with locked(cache):
        loaded = _load_cache(cache, classes, settings)
        if loaded is not None:
            return loaded
        problems = problems if problems is not None else Problems()
        points, lengths, labels, split = [], [], [], []
        for ci, (name, path) in enumerate(zip(classes, files)):
            rng = np.random.default_rng([seed, ci])
            if path.suffix == ".npz":
                drawings, which = _npz_split(path, max_per_class, rng)
            else:
                drawings, which = _ndjson_split(path, name, max_per_class, rng, problems)
            points += drawings
            lengths += [len(d) for d in drawings]
            labels.append(np.full(len(drawings), ci, dtype=np.int64))
            split.append(which)
        if sum(problems.counts.values()):
            print(problems.summary(), file=sys.stderr)
        arrays = {
            "points": np.concatenate(points).astype(np.int16, copy=False),
            "offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            "labels": np.concatenate(labels),
            "split": np.concatenate(split),
        }
        meta = json.dumps({"version": CACHE_VERSION, "classes": classes, "checksum": _checksum(arrays)})
        with atomic_write(cache) as f:
            np.savez(f, meta=np.array(meta), **arrays)
        return Prepared(classes=list(classes), **arrays, settings=settings)


def _load_cache(path: Path, classes: list[str], settings: dict) -> Prepared | None:
    """The cached arrays, or None (with a note) if missing, from another version, or corrupt."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in ("points", "offsets", "labels", "split")}
    except Exception as e:  # a truncated or foreign file: any reader error means "rebuild"
        print(f"{path}: unreadable prepared cache ({type(e).__name__}); rebuilding", file=sys.stderr)
        return None
    if not isinstance(meta, dict) or meta.get("version") != CACHE_VERSION or meta.get("classes") != classes:
        print(f"{path}: prepared cache from another version; rebuilding", file=sys.stderr)
        return None
    if meta.get("checksum") != _checksum(arrays):
        print(f"{path}: prepared cache fails its checksum; rebuilding", file=sys.stderr)
        return None
    return Prepared(classes=list(classes), **arrays, settings=settings)


# --- statistics models are built from ------------------------------------------------------


def median_lengths(data: Prepared, idx: np.ndarray) -> list[int]:
    """The median point count of each class's drawings among ``idx``."""
    lengths, labels = data.lengths()[idx], data.labels[idx]
    return [int(np.median(lengths[labels == c])) for c in range(len(data.classes))]


def length_percentiles(data: Prepared, idx: np.ndarray, q: float, most: int) -> list[int]:
    """The ``q``-th percentile point count of each class's drawings among ``idx``, at most ``most``."""
    lengths, labels = data.lengths()[idx], data.labels[idx]
    return [int(min(most, np.ceil(np.percentile(lengths[labels == c], q)))) for c in range(len(data.classes))]


def offset_std(data: Prepared, idx: np.ndarray, most: int = 20_000) -> float:
    """Std of all dx, dy in the drawings at ``idx`` (at most ``most`` of them, evenly spaced): Sketch-RNN's scale."""
    if len(idx) > most:
        idx = idx[np.linspace(0, len(idx) - 1, most).astype(np.int64)]
    offsets = np.concatenate([d[:, :2] for d in data.gather(idx)]).astype(np.float64)
    return float(offsets.std()) or 1.0
