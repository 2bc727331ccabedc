"""From ndjson lines to validated drawings and back, and from drawings to training arrays.

Reading streams one line at a time, so a 100,000-drawing class never sits in
memory as JSON text. A bad line is reported once with its file and line number
and skipped; the good lines of the same file are all kept. Preparation follows
the course report - recognized drawings only, at most N per class, a seeded
shuffle, a 70/15/15 split - and caches each class on its own as int16 stroke-3
arrays (see ``cache``), keyed by everything that could change it; classes not
yet cached are prepared by a pool of processes, and a class list is assembled
from the caches' memory maps without copying them. Sketch-RNN's ``.npz`` files
(see ``npz``) are accepted beside ndjson and keep their own split. Which names are classes, and where their
files are, is ``classfiles``'s.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sketchgen import cache, download, npz, strokes
from sketchgen.classfiles import ClassFile, DataError, Names, canonical, check_classes, find_class_file
from sketchgen.drawing import MAX_LINE, MAX_LINE_VALUES, RECORD_FIELDS, Drawing, check_fields
from sketchgen.errors import DrawingError, counted, whole_lines
from sketchgen.fileio import (
    FileChanged,
    FileRefused,
    atomic_write,
    json_values,
    locked,
    open_regular,
    read_lines,
    unchanged,
)
from sketchgen.launch import launch
from sketchgen.strokes import MAX_COORD, MAX_NAME, MAX_POINTS

# Our splits are Sketch-RNN's, by name and order: an .npz file's arrays map onto them one to one.
SPLITS = npz.NPZ_ARRAYS
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)
# How an .npz class over the cap shares it among its splits (``_shares``), in its cache's identity: caches made while
# each share was rounded down (before 2026-12-07, night) hold fewer drawings than asked, and are rebuilt, not read.
NPZ_SHARES = "largest remainder"
# Bad lines printed per file before the rest are only counted.
SHOWN_PER_FILE = 20
# Seconds a local rank other than 0 waits under torchrun for local rank 0 to finish its next class: the largest
# class (340,000 drawings) takes about 45 s to prepare on a loaded core (docs/performance.md: 8,000 drawings/s),
# so 30 minutes without one means local rank 0 is preparing something else, or nothing.
WAIT_S = 30 * 60


class BadLine(ValueError):
    """Why a line is no drawing, where its message quotes what the line says: ``kind``, what ``Problems`` counts it
    by, never does (a word of its own on each of a million lines made a million kinds, and a 44 MB summary)."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


# --- reading -----------------------------------------------------------------------------


@dataclass
class Problems:
    """Bad lines seen while reading: each printed once as ``file:line: reason``, then counted.

    At most ``SHOWN_PER_FILE`` are printed per file: a file that is not ndjson at all (UTF-16, gzip,
    a binary) would otherwise print a line for each of its lines.
    """

    counts: Counter = field(default_factory=Counter)
    quiet: bool = False
    shown: Counter = field(default_factory=Counter)

    def report(self, path: Path, line: int, reason: str, kind: str | None = None) -> None:
        # Counted by kind (``BadLine``'s), else by the reason's words: "stroke 3 is empty" and "stroke 7 is empty" are
        # one reason (the 8 of UTF-8 stays).
        self.counts[kind or re.sub(r"(?<![\w-])\d+", "N", reason.split(":")[0])] += 1
        self.shown[path] += 1
        if self.quiet or self.shown[path] > SHOWN_PER_FILE + 1:
            return
        if self.shown[path] > SHOWN_PER_FILE:
            print(f"{path}: more than {SHOWN_PER_FILE} bad lines; the rest are counted, not shown", file=sys.stderr)
        else:
            print(f"{path}:{line}: {reason} (skipped)", file=sys.stderr)

    def summary(self) -> str:
        total = sum(self.counts.values())
        if not total:
            return "no bad lines"
        return f"{total} bad lines skipped: " + ", ".join(f"{n} {r}" for r, n in self.counts.most_common())


def parse_line(text: str | bytes, word: str | None = None, simplify_raw: bool = True) -> Drawing:
    """One ndjson line -> Drawing. Raises ValueError (StrokeError included) with the reason.

    Simplified coordinates are integers by the format; any others are rounded to the nearest
    (np.rint), so that the int16 cache stores the drawing rather than truncated offsets of it.
    """
    line = text if isinstance(text, bytes) else text.encode(errors="surrogatepass")
    if (values := json_values(line)) > MAX_LINE_VALUES:
        raise BadLine(f"{values:,} values, more than the {MAX_LINE_VALUES:,} a drawing's line may have",
                      f"more than {MAX_LINE_VALUES:,} values")
    try:
        # UTF-8 (a BOM allowed): json.loads would guess UTF-16/32 from bytes, which no split on b"\n" survives.
        text = text.decode("utf-8-sig") if isinstance(text, bytes) else text
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 text: byte {e.object[e.start]:#04x} at {e.start}") from None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):  # bad syntax, a 5000-digit number, [[[[... nested too deep
        raise ValueError("not JSON (corrupt or truncated line)") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    if "drawing" not in obj:
        raise ValueError("no 'drawing' field")
    got = obj.get("word")
    if got is not None and not isinstance(got, str):
        raise BadLine(f"word is {download.shown(got)}, not a string", "word is not a string")
    if word is not None and got is not None and canonical(got) != canonical(word):  # without a word: its file's
        raise BadLine(f"word is {download.shown(got)}, expected {word!r}", f"word is not {word!r}")
    # Only JSON's true counts: "false", 0 or {} are no answer, and a guess could let unrecognized drawings in.
    recognized = obj.get("recognized", True)
    if not isinstance(recognized, bool):
        raise BadLine(f"recognized is {download.shown(recognized)}, not true or false",
                      "recognized is not true or false")
    parsed = strokes.parse_drawing(obj["drawing"])
    every = np.concatenate(parsed)
    if len(every) > MAX_POINTS:  # as a Drawing may hold and write_ndjson write: what is read can be written back
        raise ValueError(f"drawing has {len(every)} points, more than the {MAX_POINTS} a drawing may have")
    if np.abs(every).max() > MAX_COORD:
        raise ValueError(f"coordinate out of range (beyond +-{MAX_COORD})")
    raw = any(isinstance(s, list) and len(s) == 3 for s in obj["drawing"])
    if raw and simplify_raw:
        parsed = strokes.simplify(_scalable(parsed))
    elif not raw:
        parsed = [np.rint(s, out=s) for s in parsed]
    own = {name: _text(obj.get(name)) for name in ("key_id", "countrycode")}
    try:
        check_fields(own)  # as the writer does
    except DrawingError as e:  # names the field, and quotes its value
        raise BadLine(str(e), f"key_id or countrycode is not a string of at most {MAX_NAME} characters") from None
    # Whatever else the line says (QuickDraw's timestamp, the model, seed and temperature that drew it) is kept,
    # so that a file read and written again says what it said.
    info = {k: v for k, v in obj.items() if k not in RECORD_FIELDS}
    drawing = Drawing(got or "", parsed, recognized, **own, info=info)
    if info and (len(line) > MAX_LINE // 10 or b"NaN" in line or b"Infinity" in line):
        _check_written_back(drawing)
    return drawing


def _check_written_back(drawing: Drawing) -> None:
    """BadLine if the writer would refuse ``drawing`` for what its line says beside it (NaN, which Python's json reads
    and JSON has not; a line of more than MAX_LINE bytes): a drawing read is one that can be written back, and holds
    no more than a line written does. Looked at only where it could be: JSON written back takes at most 5 bytes for
    each byte read (1e15 is written 1000000000000000.0, an emoji \\ud83d\\ude00), so a line of a tenth of MAX_LINE says
    under half of it; and the rest of a line written (MAX_POINTS points, ~220 kB, and its own fields) takes under the
    other half. What says more is written to know."""
    try:
        said = json.dumps(drawing.info, allow_nan=False)
    except (ValueError, RecursionError):  # named by the writer, below
        said = None
    if said is None or len(said) > MAX_LINE // 2:
        try:
            drawing.to_ndjson()
        except DrawingError as e:
            raise BadLine(str(e), "what it says beside its drawing could not be written back") from None


def _text(value: object) -> object:
    """A text field as written: a number (other tools write key_ids as numbers) as its digits, none as empty; any
    other value as it is, for ``check_fields`` to refuse."""
    if value is None:
        return ""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _scalable(raw: list[np.ndarray]) -> list[np.ndarray]:
    """The raw strokes, if they span enough to be scaled into 0-255: no real drawing is one point (none of
    the 9,354 in ../shared/quickdraw spans under 5 units), and a subnormal span would overflow the scale."""
    points = np.concatenate(raw)
    extent = float((points.max(axis=0) - points.min(axis=0)).max())
    if not (extent > 0 and math.isfinite(255.0 / extent)):
        raise ValueError(f"raw drawing has no extent to scale: it spans {extent:.2g} units")
    return raw


def read_ndjson(
    path: str | os.PathLike, word: str | None = None, problems: Problems | None = None, simplify_raw: bool = True,
    own: bool = False,
) -> Iterator[Drawing]:
    """Stream the valid drawings of a simplified or raw ndjson file, reporting bad lines.

    Lines are read with bounded memory (``download.MAX_LINE_BYTES``): a longer one is no drawing. Only a
    regular file is read (``open_regular``): a FIFO would block for ever, ``/dev/zero`` never end; ``own``: one of
    sketchgen's own (``ClassFile``), never through a link.
    """
    path = Path(path)
    alone = problems is None  # a file read on its own says at its end what it skipped; preparation sums up its own
    problems = problems if problems is not None else Problems()
    try:
        with open_regular(path, own=own) as f:
            for lineno, line in enumerate(read_lines(f, download.MAX_LINE_BYTES), 1):
                if line is None:
                    problems.report(path, lineno, f"longer than {download.MAX_LINE_BYTES} bytes, not a drawing")
                    continue
                if not line.strip():
                    continue
                try:
                    yield parse_line(line, word, simplify_raw)
                except ValueError as e:
                    problems.report(path, lineno, str(e), e.kind if isinstance(e, BadLine) else None)
        if alone and problems.counts:
            print(f"{path}: {problems.summary()}", file=sys.stderr)
    except FileRefused as e:
        raise DataError(str(e)) from None
    except OSError as e:  # a failing disk: a read error names no file of its own
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from None


def write_ndjson(drawings: Iterable[Drawing], path: str | os.PathLike) -> None:
    """Drawings as QuickDraw's simplified ndjson, one line each, written atomically (``drawings`` may be lazy)."""
    with atomic_write(path) as f:
        for i, d in enumerate(drawings):
            if not isinstance(d, Drawing):  # refused before the file is replaced: the write is atomic
                raise DrawingError(f"drawing {i + 1} to write is a {type(d).__name__}, not a sketchgen.Drawing")
            f.write((d.to_ndjson() + "\n").encode())


def read_stroke3(path: str | os.PathLike, n_strokes: int | None = None) -> list[np.ndarray]:
    """The drawings of an ndjson file as stroke-3, optionally cut to their first ``n_strokes`` strokes."""
    return [strokes.strokes_to_stroke3(d.points[:n_strokes] if n_strokes else d.points) for d in read_ndjson(path)]


# --- preparation ----------------------------------------------------------------------------


class Prepared:
    """Drawings of several classes, each class's stroke-3 rows mapped from its own cache and never copied.

    Drawing ``i`` is of class ``labels[i]``; the classes' drawings follow one another in class
    order. Views returned by ``stroke3`` and ``gather`` are read-only: they are the cache's pages,
    shared by every process of the machine.
    """

    def __init__(self, classes: list[str], parts: list[cache.ClassArrays], settings: dict):
        self.classes = list(classes)
        self.parts = parts
        self.settings = settings
        counts = np.array([len(part) for part in parts], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(counts)])  # each class's first drawing
        self.labels = np.repeat(np.arange(len(parts), dtype=np.int64), counts)
        self.split = np.concatenate([part.split for part in parts])
        self._lengths = None

    def __len__(self) -> int:
        return len(self.labels)

    def stroke3(self, i: int) -> np.ndarray:
        label = self.labels[i]
        part, j = self.parts[label], i - self.starts[label]
        return part.points[part.offsets[j] : part.offsets[j + 1]]

    def gather(self, idx) -> list[np.ndarray]:
        """The stroke-3 views of drawings ``idx``, in that order: offsets looked up a class at a time."""
        idx = np.asarray(idx, dtype=np.int64)
        labels = self.labels[idx]
        local = idx - self.starts[labels]
        out: list[np.ndarray] = [None] * len(idx)
        for label in np.unique(labels).tolist():
            where = np.flatnonzero(labels == label)
            part = self.parts[label]
            begins, ends = part.offsets[local[where]], part.offsets[local[where] + 1]
            for k, a, b in zip(where.tolist(), begins.tolist(), ends.tolist()):
                out[k] = part.points[a:b]
        return out

    def indices(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == SPLITS.index(split))

    def missing(self, idx) -> list[str]:
        """The classes with no drawing among ``idx``: a class of a few drawings keeps none to validate or test."""
        return [self.classes[c] for c in np.flatnonzero(np.bincount(self.labels[idx], minlength=len(self.classes)) == 0)]

    def lengths(self) -> np.ndarray:
        """Points per drawing, int32 (half of int64's 8 bytes a drawing, in every process), computed once."""
        if self._lengths is None:
            self._lengths = np.concatenate([np.diff(part.offsets).astype(np.int32) for part in self.parts])
        return self._lengths


def class_rng(seed: int, name: str) -> np.random.Generator:
    """The randomness of one class's sample, shuffle and split: from the seed and the class's name, never its
    place in a class list, so that one cache of the class serves every list that holds it."""
    return np.random.default_rng([seed, int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")])


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


def _class_stroke3(source: ClassFile, name: str, problems: Problems, chunk: int = 32) -> Iterator[np.ndarray]:
    """The recognized drawings of a class file as int16 stroke-3, converted ``chunk`` drawings at a time."""
    pending = []
    for d in read_ndjson(source.path, name, problems, own=source.own):
        if d.recognized:
            pending.append(d.points)
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


def _ndjson_split(source: ClassFile, name: str, max_per_class: int, rng,
                  problems: Problems) -> tuple[npz.Drawings, np.ndarray]:
    """A uniform sample of the class's recognized drawings, shuffled, and its 70/15/15 split."""
    kept = _reservoir(_class_stroke3(source, name, problems), max_per_class, rng)
    if not kept:
        bad = sum(problems.counts.values())
        raise DataError(f"{source.path}: no recognized drawings of {name!r}"
                        + (f" ({bad} bad lines skipped)" if bad else ""))
    order = rng.permutation(len(kept))
    n_train = int(round(SPLIT_FRACTIONS[0] * len(kept)))
    n_valid = int(round(SPLIT_FRACTIONS[1] * len(kept)))
    which = np.full(len(kept), 2, dtype=np.int8)
    which[:n_train] = 0
    which[n_train : n_train + n_valid] = 1
    return npz.Drawings.of([kept[j] for j in order]), which


def _npz_split(source: ClassFile, max_per_class: int, rng) -> tuple[npz.Drawings, np.ndarray]:
    """A Sketch-RNN file's drawings in its own split; over the cap, each split keeps its share of it."""
    try:
        splits = npz.read_npz(source.path, source.own)
    except npz.NpzError as e:
        raise DataError(str(e)) from None
    sizes = [len(items) for items in splits.values()]
    shares = _shares(sizes, max_per_class) if sum(sizes) > max_per_class else sizes
    kept, which = [], []
    for (name, items), share in zip(splits.items(), shares):
        if share < len(items):
            items = items.take(np.sort(rng.choice(len(items), share, replace=False)))
        kept.append(items)
        which.append(np.full(len(items), SPLITS.index(name), dtype=np.int8))
    drawings = npz.Drawings.join(kept)
    if not len(drawings):
        raise DataError(f"{source.path}: no drawings in train, valid or test")
    return drawings, np.concatenate(which)


def _shares(sizes: list[int], cap: int) -> list[int]:
    """``cap`` shared among splits of ``sizes`` in proportion to them, by largest remainder (a tie to the earlier
    split): each share rounded down, a cap of 1 kept no drawing of three splits, and a cap of 10 kept 8."""
    total = sum(sizes)
    shares = [cap * n // total for n in sizes]
    by_remainder = sorted(range(len(sizes)), key=lambda i: -(cap * sizes[i] % total))
    for i in by_remainder[: cap - sum(shares)]:
        shares[i] += 1
    return shares


@dataclass(frozen=True)
class _Job:
    """One class to make sure of: everything a worker process needs, and nothing it cannot pickle."""

    name: str
    source: ClassFile
    folder: Path
    identity: dict
    max_per_class: int
    seed: int
    full_check: bool
    quiet: bool

    @property
    def busy(self) -> str:
        """What is said where another process holds the class's lock: the wait has no bound (``locked``)."""
        return "" if self.quiet else f"{self.name!r}: another sketchgen process or thread is preparing it"


def _ensure(job: _Job) -> Counter:
    """The class's cache, built (or rebuilt) unless a whole one is there; returns the bad lines it skipped.

    Runs in a worker process, holding the class's lock: another process preparing the same class
    waits, then finds the cache made.
    """
    problems = Problems(quiet=job.quiet)
    with locked(job.folder, job.busy):
        if cache.open_class(job.folder, job.source, job.max_per_class, job.identity, full=job.full_check) is not None:
            return problems.counts
        rng = class_rng(job.seed, job.name)
        try:
            with unchanged(job.source.path):  # the digest a run records is of the very drawings it was given
                if job.source.path.suffix == ".npz":
                    drawings, which = _npz_split(job.source, job.max_per_class, rng)
                else:
                    drawings, which = _ndjson_split(job.source, job.name, job.max_per_class, rng, problems)
                digest = cache.sha256(*job.source)
        except FileChanged as e:
            raise DataError(str(e)) from None
        cache.write(job.folder, {"points": drawings.points, "offsets": drawings.offsets, "split": which}, job.identity,
                    digest)
    return problems.counts


def _pool_context() -> multiprocessing.context.BaseContext:
    """How to start worker processes. Forking is fast, and safe while no other Python thread could hold a
    lock the workers need (stderr's, say); otherwise a forkserver, a clean process to fork from, whose
    preload makes each worker cost milliseconds rather than a fresh interpreter's imports."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if context.get_start_method() == "forkserver":
        context.set_forkserver_preload([__name__])
    return context


def _run(jobs: list[_Job], workers: int, context) -> Iterator[Counter]:
    """Each job's result as it finishes, from a pool of ``workers`` processes (or this one, for one)."""
    if workers <= 1:
        yield from map(_ensure, jobs)
        return
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # as a background job's is: so is each worker's
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(ignored,)) as pool:
        futures = [pool.submit(_ensure, job) for job in jobs]
        try:
            for done in as_completed(futures):
                yield done.result()
        except BrokenProcessPool:
            raise DataError("a process preparing the classes was killed (out of memory? or a script that runs "
                            "sketchgen without `if __name__ == \"__main__\":`, which each such process runs again): "
                            "run again, or with --workers 1") from None
        finally:
            for f in futures:
                f.cancel()


def _start_worker(ignored: bool) -> None:
    """Each worker's start. Its notes (a class it waits for, a line it skips) go to the stderr every process of the
    pool shares: each line one write (``errors.whole_lines``).

    Ctrl-C reaches every process of the terminal's group, and the parent alone says so; a worker ends at once,
    without a traceback of its own (ignoring it, the pool would wait for each class under way). What it was writing
    is removed when the class is prepared again. Where the parent ignores it (a background job, nohup), so does the
    worker: it would die of a signal the parent lives through, and the prepare would fail."""
    whole_lines()
    signal.signal(signal.SIGINT, signal.SIG_IGN if ignored else signal.SIG_DFL)


def cores() -> int:
    """The cores this process may run on (its affinity, as taskset or a container sets it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _pool_size(workers: int, classes: int) -> int:
    """The processes that prepare ``classes``: ``workers``, but no more than the classes or the cores this process
    may use, with a note when the cores cap it: each holds a class's drawings in memory, and more only queue."""
    most = cores()
    if min(workers, classes) > most:
        print(f"workers {workers}: this process may use {most} cores, so {most} processes prepare the {classes} "
              "classes", file=sys.stderr)
    return min(workers, classes, most)


def prepared_cache_dir() -> Path:
    """``$SKETCHGEN_PREPARED``, else ``prepared/`` beside the download cache."""
    if (path := download.env_path("SKETCHGEN_PREPARED")) is not None:
        return download.env_folder(path, "SKETCHGEN_PREPARED")
    downloads, variable = download.cache_home()
    return download.env_folder(downloads.parent / "prepared", variable)


def prepare(
    classes: list[str],
    data_dir: str | os.PathLike | None = None,
    max_per_class: int = 100_000,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    problems: Problems | None = None,
    workers: int | None = None,
    verify: bool = False,
) -> Prepared:
    """Recognized drawings, at most ``max_per_class`` each, shuffled with ``seed``, split 70/15/15.

    Each class is cached on its own (see ``cache``), keyed by its source file (path, size, mtime),
    the settings and the format version, and its randomness comes from ``class_rng(seed, name)``:
    a class's cache serves any class list, and adding a class prepares that class only. Missing
    classes are prepared by ``workers`` processes (default, and at most: the cores this process may use).
    A class read from a Sketch-RNN ``.npz`` keeps the file's own train/valid/test split; over the
    cap, each split keeps its share (a seeded uniform sample).

    A cache is checked cheaply when opened (sizes and sampled digests) and fully with ``verify``;
    one that fails is rebuilt with a note. The settings returned record each class file's SHA-256
    (``digests``), which a run keeps in its checkpoints (``changed_files``). Under torchrun
    (``WORLD_SIZE`` > 1) only local rank 0 prepares; the other processes of the machine wait for its
    caches and map them.
    """
    place = launch()
    classes = check_classes(classes, data_dir)
    if not classes:
        raise DataError("no classes to prepare")
    cache_dir = Path(cache_dir or prepared_cache_dir())
    problems = problems if problems is not None else Problems()
    files = [find_class_file(c, data_dir) for c in classes]
    jobs = [_job(name, file, cache_dir, max_per_class, seed, verify, problems.quiet) for name, file in zip(classes, files)]
    waiting = place.world > 1 and place.local_rank != 0
    parts = {job.name: _open(job, quiet=True, waits=waiting) for job in jobs} if not verify or waiting else {}
    missing = [job for job in jobs if parts.get(job.name) is None]
    if missing and waiting:
        parts.update(_wait_for(missing, place.local_rank, cache_dir))
    elif missing:
        _note_old_caches(cache_dir)
        _build(missing, workers or cores(), problems)
        for job in missing:
            parts[job.name] = _open(job)
            if parts[job.name] is None:
                raise DataError(f"{job.folder}: the prepared cache just written does not open; check the disk")
    settings = {"data_dir": None if data_dir is None else str(data_dir), "max_per_class": max_per_class, "seed": seed,
                "sources": {name: str(file.path.resolve()) for name, file in zip(classes, files)},
                "digests": {name: parts[name].source_sha256 for name in classes}}
    return Prepared(classes, [parts[c] for c in classes], settings)


def changed_files(recorded: dict | None, prepared: Prepared) -> list[tuple[str, str]]:
    """The class files of ``prepared`` that hold other bytes than those ``recorded`` (a checkpoint's data settings)
    was made from, by SHA-256: (the file here, the file there) for each. A class either lacks a digest for (a run
    from before them) is not compared."""
    theirs = (recorded or {}).get("digests", {})
    named = Names(theirs)  # a class named here in another Unicode form than when it trained
    return [(prepared.settings["sources"][c], recorded["sources"][named.written(c)]) for c in prepared.classes
            if named.find(c) is not None and theirs[named.written(c)] != prepared.settings["digests"][c]]


def more_files(changed: list) -> str:
    """" (and 2 more class files)" for the ``changed_files`` past the first, which a message names; else nothing."""
    return f" (and {len(changed) - 1} more class files)" if len(changed) > 1 else ""


def _build(jobs: list[_Job], workers: int, problems: Problems) -> None:
    """Make sure of each class's cache in a pool of ``workers``, with a progress bar on a terminal."""
    # The biggest files first, so that no worker is left with a big class while the others idle.
    jobs = sorted(jobs, key=lambda job: job.identity["size"], reverse=True)  # as _job found it
    context = _pool_context()  # before the progress bar starts tqdm's monitor thread
    pool = _pool_size(workers, len(jobs))
    with tqdm(total=len(jobs), desc="preparing classes", unit="class", file=sys.stderr, disable=None,
              leave=False) as bar:
        for counts in _run(jobs, pool, context):
            problems.counts.update(counts)
            bar.update()
    if sum(problems.counts.values()):
        print(problems.summary(), file=sys.stderr)


def _job(name: str, source: ClassFile, cache_dir: Path, max_per_class: int, seed: int, verify: bool, quiet: bool
         ) -> _Job:
    st = source.path.stat()
    identity = {"source": str(source.path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                "max_per_class": max_per_class, "seed": seed}
    if source.path.suffix == ".npz":
        identity["shares"] = NPZ_SHARES
    return _Job(name, source, cache.folder(cache_dir, name, identity), identity, max_per_class, seed, verify, quiet)


def _open(job: _Job, quiet: bool = False, waits: bool = False) -> cache.ClassArrays | None:
    """The class's cache if a whole one is there; ``waits``: a wait for another process is expected, not said."""
    with locked(job.folder, "" if waits else job.busy):
        return cache.open_class(job.folder, job.source, job.max_per_class, job.identity, quiet=quiet)


def _wait_for(jobs: list[_Job], local_rank: int, cache_dir: Path, poll_s: float = 0.5) -> dict[str, cache.ClassArrays]:
    """Under torchrun, on local ranks other than 0: the caches local rank 0 is making, as each is done.

    A lock held by rank 0's worker makes ``_open`` wait for that class; a class it has not yet
    started is polled for. Should rank 0 fail, torchrun stops this process with it; should it prepare
    no class for ``WAIT_S`` (other classes, data or cache folder, or no rank 0 at all), this one gives up.
    """
    print(f"local rank {local_rank}: waiting for local rank 0 to prepare {counted(len(jobs), 'class')}",
          file=sys.stderr)
    found = {}
    since = time.monotonic()
    while len(found) < len(jobs):
        for job in jobs:
            if job.name not in found and (part := _open(job, quiet=True, waits=True)) is not None:
                found[job.name] = part
                since = time.monotonic()
        if len(found) < len(jobs):
            if time.monotonic() - since > WAIT_S:
                left = [job.name for job in jobs if job.name not in found]
                named = repr(left[0]) + (f" and {len(left) - 1} more classes" if len(left) > 1 else "")
                raise DataError(f"local rank {local_rank}: waited {WAIT_S} s for local rank 0 to prepare {named} in "
                                f"{cache_dir}, in vain: run local rank 0 with the same classes, data and "
                                "SKETCHGEN_PREPARED")
            time.sleep(poll_s)
    return found


def _note_old_caches(cache_dir: Path) -> None:
    """One line about the single-file caches of sketchgen 0.1 (one .npz per class list), which are not read. Files
    alone: a link there is none of ours, and may lead nowhere or to itself (its stat an error that stopped prepare)."""
    old = [p for p in cache_dir.glob("prepared-*.npz") if not p.is_symlink() and p.is_file()]
    if old:
        size = sum(p.stat().st_size for p in old) / 2**20
        print(f"{cache_dir}: {counted(len(old), 'prepared cache')} of an older sketchgen (prepared-*.npz, "
              f"{size:,.0f} MiB), no longer read: each class is prepared again into a cache of its own (delete the "
              "old to free the space)", file=sys.stderr)


# --- statistics models are built from ------------------------------------------------------


def _lengths_by_class(data: Prepared, idx: np.ndarray) -> list[np.ndarray]:
    """The point counts of the drawings at ``idx``, class by class: one sort, not a pass over all per class."""
    lengths, labels = data.lengths()[idx], data.labels[idx]
    order = np.argsort(labels, kind="stable")
    return np.split(lengths[order], np.searchsorted(labels[order], np.arange(1, len(data.classes))))


def median_lengths(data: Prepared, idx: np.ndarray) -> list[int]:
    """The median point count of each class's drawings among ``idx``."""
    return [int(np.median(lengths)) for lengths in _lengths_by_class(data, idx)]


def length_percentiles(data: Prepared, idx: np.ndarray, q: float, most: int) -> list[int]:
    """The ``q``-th percentile point count of each class's drawings among ``idx``, at most ``most``."""
    return [int(min(most, np.ceil(np.percentile(lengths, q)))) for lengths in _lengths_by_class(data, idx)]


def offset_std(data: Prepared, idx: np.ndarray, most: int = 20_000) -> float:
    """Std of all dx, dy in the drawings at ``idx`` (at most ``most`` of them, evenly spaced): Sketch-RNN's scale."""
    if len(idx) > most:
        idx = idx[np.linspace(0, len(idx) - 1, most).astype(np.int64)]
    offsets = np.concatenate([d[:, :2] for d in data.gather(idx)]).astype(np.float64)
    return float(offsets.std()) or 1.0
