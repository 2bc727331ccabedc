"""A drawing: its class word and its strokes, as QuickDraw holds them - and as a notebook shows it.

``strokes`` is a list of ``(xs, ys)`` pairs of coordinates, one pair per
pen-down stroke, in the drawing's own frame: QuickDraw's simplified drawings
and every generated one are in the 0-255 frame, top-left aligned. A drawing
converts to the formats the models see (``stroke3``), to SVG, PNG and a line
of QuickDraw's ndjson, and a notebook displays it (``_repr_svg_``); ``Grid``
shows several. Drawings read from files are made by ``data.read_ndjson``.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

import numpy as np

from sketchgen import render, strokes
from sketchgen.errors import DrawingError, counted
from sketchgen.fileio import json_values
from sketchgen.strokes import MAX_COORD, MAX_NAME, MAX_POINTS, StrokeError, parse_drawing

# A record's own fields: ``info`` (or ``to_record``'s extra) naming one would be written over it, a "drawing" over
# the drawing's strokes.
RECORD_FIELDS = ("word", "countrycode", "recognized", "key_id", "drawing")
# Bytes of one drawing's ndjson line (ASCII: json.dumps escapes the rest). Its strokes take at most ~220 kB
# (MAX_POINTS points within +-MAX_COORD), its own fields under 2 kB (MAX_NAME), so only what ``info`` says can reach
# this: a quarter of the 4 MiB line the reader reads (download.MAX_LINE_BYTES), so every line written is read back.
MAX_LINE = 1 << 20
# Values in one drawing's line, as ``fileio.json_values`` counts them: its strokes hold at most ~70,000 (MAX_POINTS raw
# points, a stroke each: 7 brackets and commas a point), the rest is what ``info`` may say. Counted before a line read
# is parsed, they bound what parsing builds: 4 MiB of "{}," is 1.4 million dicts, 100 MB.
MAX_LINE_VALUES = 100_000


@dataclass(eq=False)
class Drawing:
    """A drawing of ``word``: ``strokes`` are ``(xs, ys)`` pairs, one per pen-down stroke; a notebook shows it.

    It holds them as ``points``, one ``(n, 2)`` array of (x, y) rows per stroke, the form every conversion
    takes; ``strokes`` are views of those. ``recognized``, ``key_id`` and ``countrycode`` are QuickDraw's
    fields; ``info`` what else a file or a model says of it (the model and temperature that drew it, and the seed
    of the call: drawing i of a call has its own, that seed + i * ``sample.DRAWING_STRIDE``).
    """

    word: str
    points: list[np.ndarray]
    recognized: bool = True
    key_id: str = ""
    countrycode: str = ""
    info: dict = field(default_factory=dict)  # what else a file or a model says of it (model, seed, temperature)

    def __post_init__(self):
        """The containers checked at once (their contents are checked by every conversion): a ``Drawing(...)``
        with ``info=None`` or points of 5 failed later with a TypeError."""
        if not isinstance(self.points, (list, tuple)):
            raise DrawingError(f"a drawing's points are a list of (n, 2) arrays, one a stroke, not "
                               f"{self.points!r:.40}")
        if not isinstance(self.info, dict):
            raise DrawingError(f"a drawing's info is a dict, not {self.info!r:.40}")

    @classmethod
    def from_strokes(cls, strokes: Sequence, word: str = "", **info: object) -> Drawing:
        """A drawing from ``[(xs, ys), ...]`` (lists or arrays; QuickDraw's ``drawing`` field, whose raw form's
        third list of times is ignored), checked: a bad one is a ``DrawingError`` saying why."""
        try:
            points = parse_drawing([[_axis(axis) for axis in s] for s in strokes])
        except (StrokeError, TypeError, ValueError) as e:
            raise DrawingError(f"not a drawing: {e}") from None
        return cls.from_points(points, word, **info)

    @classmethod
    def from_points(cls, points: Sequence[np.ndarray], word: str = "", **info: object) -> Drawing:
        """A drawing from strokes as ``(n, 2)`` arrays of (x, y) rows, checked as ``from_strokes`` checks, except
        that it may have none (a model's drawing that ended before its first point, kept so that drawing i of a
        file is still the i-th drawn); ``recognized``, ``key_id`` and ``countrycode`` among ``info`` are its
        fields, the rest its ``info``."""
        own = {"word": word, **{k: info.pop(k) for k in ("recognized", "key_id", "countrycode") if k in info}}
        if isinstance(own.get("recognized"), np.bool_):  # NumPy's True is True
            own["recognized"] = bool(own["recognized"])
        check_fields(own, info)
        return cls(**own, points=checked_points(points), info=info)

    @classmethod
    def from_stroke3(cls, s3: np.ndarray, word: str = "", *, fit: bool = True, **info: object) -> Drawing:
        """A generated drawing (stroke-3, any scale), fitted into QuickDraw's 0-255 frame with integer points; with
        ``fit=False``, where its offsets put it (a completion stays in the frame of the start it was given)."""
        if not isinstance(fit, (bool, np.bool_)):
            raise DrawingError(f"fit must be True or False, not {fit!r:.40}")
        s3 = _array(s3)
        if s3.ndim != 2 or s3.shape[1] != 3 or s3.dtype.kind not in "iuf":
            raise DrawingError(f"stroke-3 must be an (n, 3) array of numbers, not {s3.dtype} of shape {s3.shape}")
        if len(s3) > MAX_POINTS:
            raise DrawingError(f"stroke-3 has {len(s3):,} points, more than the {MAX_POINTS:,} a drawing may have")
        if not np.isfinite(s3).all():
            raise DrawingError(f"stroke-3 row {np.flatnonzero(~np.isfinite(s3).all(axis=1))[0]} is not finite")
        if (odd := strokes.odd_pen(s3)) is not None:  # 7 was a lift, 0.5 or -1 none
            raise DrawingError(f"stroke-3 row {odd}'s pen is {s3[odd, 2]:g}, not 0 (down) or 1 (lifted after the "
                               "point)")
        if not fit:
            return cls.from_points(strokes.stroke3_to_strokes(s3) if len(s3) else [], word, **info)
        return cls.from_points(strokes.quickdraw_strokes(s3), word, **info)

    # --- views ---------------------------------------------------------------------------------

    @property
    def strokes(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(xs, ys)`` per stroke (views of ``points``)."""
        return [(p[:, 0], p[:, 1]) for p in self.points]

    @property
    def stroke3(self) -> np.ndarray:
        """Stroke-3 (dx, dy, pen lifted): the format the models learn from."""
        points = checked_points(self.points)  # a drawing made with Drawing(...) or changed since skipped the door
        return strokes.strokes_to_stroke3(points) if points else np.zeros((0, 3))

    def __len__(self) -> int:
        """Points in all its strokes."""
        return sum(len(p) for p in self.points)

    def __repr__(self) -> str:
        return f"Drawing({self.word!r}, {counted(len(self.points), 'stroke')}, {counted(len(self), 'point')})"

    # --- output --------------------------------------------------------------------------------

    def to_record(self, **extra: object) -> dict:
        """The drawing as a line of QuickDraw's simplified ndjson holds it (integer coordinates)."""
        own = {"word": self.word, "countrycode": self.countrycode, "recognized": self.recognized, "key_id": self.key_id}
        said = {**self.info, **extra}  # added to its own fields, never written over them
        check_fields(own, said)
        # checked again: a drawing made with Drawing(...) or changed since skipped from_points' door
        return {**own, "drawing": strokes.drawing_field(checked_points(self.points)), **said}

    def to_ndjson(self, **extra: object) -> str:
        """One line of QuickDraw's simplified ndjson, without its newline."""
        record = self.to_record(**extra)
        try:  # strict JSON (no NaN), that the reader reads back; else one line naming the first field it fails on
            line = json.dumps(record, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as e:
            key = next(k for k, v in record.items() if not _is_json(k, v))
            raise DrawingError(f"field {key!r:.40} of a {self.word!r:.40} drawing cannot be written as JSON: {e}") \
                from None
        if len(line) > MAX_LINE:
            key = max(record, key=lambda k: len(json.dumps(record[k])))
            what = f"its field {key!r:.40} says" if 2 * len(json.dumps(record[key])) > len(line) else \
                f"its {len(record):,} fields say"  # many small fields: no one of them is the cause
            raise DrawingError(f"a {self.word!r:.40} drawing's line would be {len(line):,} bytes, more than the "
                               f"{MAX_LINE:,} a line may have: {what} too much")
        if (values := json_values(line.encode())) > MAX_LINE_VALUES:
            raise DrawingError(f"a {self.word!r:.40} drawing's line would hold {values:,} values, more than the "
                               f"{MAX_LINE_VALUES:,} a line may have: its fields say too much")
        return line

    def to_svg(self, size: int = 256) -> str:
        """An SVG document of the drawing fitted to a ``size`` square."""
        return render.to_svg(checked_points(self.points), size)

    def to_png(self, path: str | os.PathLike, size: int = 256) -> None:
        """A PNG file of the drawing fitted to a ``size`` square."""
        render.save_png(checked_points(self.points), path, size)

    def animate(self, path: str | os.PathLike, size: int = 256) -> None:
        """A GIF drawing it stroke by stroke, as it was drawn."""
        render.animate_gif(checked_points(self.points), path, size)

    def _repr_svg_(self) -> str:
        return self.to_svg(160)


def check_fields(own: dict, said: dict | None = None) -> None:
    """Refuse a drawing's own fields (``own``) that would write a line its reader refuses, and anything else said of
    it (``said``) that would be written over them: the line would say what the drawing does not. The reader holds
    what it reads to the same rule, so every drawing read can be written back."""
    for name, value in own.items():
        if name == "recognized":
            if not isinstance(value, bool):
                raise DrawingError(f"a drawing's recognized must be True or False, not {value!r:.40}")
        elif not isinstance(value, str):
            raise DrawingError(f"a drawing's {name} must be a string, not {value!r:.40}")
        elif len(value) > MAX_NAME:  # a class name's longest; QuickDraw's key_ids have 16 digits
            raise DrawingError(f"a drawing's {name} is {len(value):,} characters, more than the {MAX_NAME} it may have")
    named = next((k for k in said or () if not isinstance(k, str)), None)
    if named is not None:  # 5 and "5" would both be written as "5": one of them lost on reading
        raise DrawingError(f"what is said of a drawing is named by strings, as JSON names it, not {named!r:.40}")
    taken = next((k for k in said or () if k in RECORD_FIELDS), None)
    if taken is not None:
        raise DrawingError(f"{taken!r} is a drawing's own field, not something else to say of it: give it as the "
                           f"drawing's {'strokes' if taken == 'drawing' else taken}")


def _is_json(key: object, value: object) -> bool:
    """Whether ``{key: value}`` is strict JSON."""
    try:
        json.dumps({key: value}, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


def _axis(axis: object) -> object:
    """One stroke's xs (or ys) as a list: from a list, a tuple, an iterable or an array (a tensor too), refused
    before conversion when it holds more than a drawing may (a list of 10 million zeros cost a gigabyte before the
    refusal). Bytes, a dict or a set are iterable but no coordinates (their codes, keys or order were taken for
    them), and a True or False among numbers would be taken as 1 or 0."""
    if isinstance(axis, (str, bytes, bytearray, Mapping, AbstractSet)) or \
            not (isinstance(axis, Iterable) or hasattr(axis, "__array__")):
        raise DrawingError(f"a stroke's xs and ys are each a list or an array of numbers, not a "
                           f"{type(axis).__name__}")
    if hasattr(axis, "__array__") and not isinstance(axis, (list, tuple)):
        try:
            values = np.asarray(axis)
        except (RuntimeError, TypeError, ValueError) as e:  # a tensor that needs grad, or on another device
            raise DrawingError(f"a stroke's xs or ys cannot be read as numbers ({str(e)[:80]})") from None
        n = values.size
    else:
        values = list(itertools.islice(axis, MAX_POINTS + 1))
        n = len(axis) if isinstance(axis, (list, tuple)) else len(values)
    if n > MAX_POINTS:
        raise DrawingError(f"a stroke of {n:,} points, more than the {MAX_POINTS:,} a drawing may have")
    if isinstance(values, list) and any(isinstance(v, (bool, np.bool_)) for v in values):
        raise DrawingError("a stroke's coordinate is True or False, not a number")
    return np.asarray(values).tolist()


def _array(a: object) -> np.ndarray:
    """``a`` as an array; ragged rows as an array of no numbers, for the caller to refuse."""
    try:
        return np.asarray(a)
    except (TypeError, ValueError):
        return np.asarray(None)


def _number(v: object) -> bool:
    return isinstance(v, (int, float, np.number)) and not isinstance(v, bool)


def _shape_refusal(i: int, shape: tuple) -> str:
    return f"stroke {i} is of shape {shape}, not (n, 2) rows of (x, y): from_strokes takes (xs, ys) pairs"


def _rows_problem(i: int, p: list | tuple) -> str | None:
    """Why a stroke given as a list is no rows of (x, y) numbers, found a row at a time before anything converts it
    (a row of a million numbers, a tensor or a range, 5,000 times by reference, was scanned and built into an array
    of gigabytes before its shape was refused), or None: rows of pairs of numbers, or numbers alone (a flat list,
    which the shape check then refuses)."""
    lengths = set()
    for row in p:
        if isinstance(row, (bool, np.bool_)):
            return f"stroke {i} has a coordinate that is True or False, not a number"
        if not _number(row):
            try:
                lengths.add(len(row))
            except (TypeError, OverflowError):  # no length, or one past what Python counts (range(10**20))
                return f"stroke {i} has a non-numeric coordinate"
    if len(lengths) > 1 or (lengths and any(map(_number, p))):  # rows of different lengths: no (n, 2) array
        return f"stroke {i} has a non-numeric coordinate"
    if lengths and (width := lengths.pop()) != 2:
        return _shape_refusal(i, (len(p), width))
    for row in p:
        if not _number(row) and not all(map(_number, row)):
            if any(isinstance(v, (bool, np.bool_)) for v in row):
                return f"stroke {i} has a coordinate that is True or False, not a number"
            return f"stroke {i} has a non-numeric coordinate"
    return None


def checked_points(points: Sequence) -> list[np.ndarray]:
    """Strokes as ``(n, 2)`` float arrays, checked at the door: a NaN or a huge coordinate let in here would come out
    later as garbage ndjson or an error deep inside a model."""
    if not isinstance(points, Iterable) or getattr(points, "ndim", 1) == 0:  # a 0-d array or tensor: no strokes
        raise DrawingError(f"strokes must be a list of (n, 2) arrays of points, not {points!r:.40}")
    out, total = [], 0
    for i, p in enumerate(points):
        try:  # counted before any copy: a stroke of 50 million points took 800 MB as floats before its refusal
            total += len(p)
        except OverflowError:  # more than Python counts: range(10**20)
            total = MAX_POINTS + 1
        except TypeError:  # no length (a number, a 0-d array, what only converts to an array): counted as converted
            p = _array(p)
            total += len(p) if p.ndim else 0
        if total > MAX_POINTS:
            raise DrawingError(f"more than the {MAX_POINTS:,} points a drawing may have (stroke {i})")
        if isinstance(p, (list, tuple)) and (problem := _rows_problem(i, p)):
            raise DrawingError(problem)
        p = _array(p)
        if p.dtype.kind not in "iuf":
            raise DrawingError(f"stroke {i} has a non-numeric coordinate")
        if p.size == 0:
            raise DrawingError(f"stroke {i} is empty")
        if p.ndim != 2 or p.shape[1] != 2:  # (xs, ys) pairs or a flat list would be read as other points
            raise DrawingError(_shape_refusal(i, p.shape))
        p = p.astype(np.float64)
        bad = np.flatnonzero(~(np.abs(p) <= MAX_COORD).all(axis=1))  # NaN too
        if len(bad):
            raise DrawingError(f"stroke {i} point {bad[0]} is ({p[bad[0], 0]:g}, {p[bad[0], 1]:g}): coordinates must "
                               f"be finite and within +-{MAX_COORD}")
        out.append(p)
    return out


def as_drawings(drawings: Drawing | Iterable[Drawing]) -> list[Drawing]:
    """One drawing or several, as a list; anything else, or none, is one line (``Drawing.from_strokes`` makes one)."""
    if isinstance(drawings, Drawing):
        return [drawings]
    listed = list(drawings) if isinstance(drawings, Iterable) and not isinstance(drawings, (str, bytes)) else [drawings]
    if not all(isinstance(d, Drawing) for d in listed):
        raise DrawingError(f"expected a sketchgen.Drawing or a list of them (Drawing.from_strokes makes one), not "
                           f"{drawings!r:.40}")
    if not listed:
        raise DrawingError("no drawings given")
    return listed


def points_in(drawings: Sequence[Drawing]) -> int:
    """How many points the drawings say they hold, counted without copying them (a drawing whose strokes are not
    sequences counts none here: ``checked_points`` refuses it)."""
    try:
        return sum(len(s) for d in drawings for s in d.points)
    except TypeError:
        return 0


class Grid:
    """Several drawings side by side, ``columns`` to a row, each row captioned with its words: a notebook shows it
    (as a PNG), ``save`` writes it."""

    def __init__(self, drawings: Iterable[Drawing], columns: int = 8, size: int = 128):
        self.drawings = as_drawings(drawings)
        self.columns, self.size = render.whole("columns", columns), render.whole("size", size)
        # Too large a grid is refused here, not when a notebook shows it; from its counts first, then as drawn.
        render.check_sheet(len(self.drawings), self.columns, self.size, points_in(self.drawings))
        render.grid_size(self._rows(), self.size)

    def __repr__(self) -> str:
        return f"Grid of {counted(len(self.drawings), 'drawing')}"

    def _rows(self) -> list[tuple[str, list[list[np.ndarray]]]]:
        """Each row's caption and drawings, checked as ``to_png`` checks one (a ``Drawing(...)`` skipped the door)."""
        for d in self.drawings:
            check_fields({"word": d.word})
        rows = [self.drawings[i : i + self.columns] for i in range(0, len(self.drawings), self.columns)]
        return [(", ".join(dict.fromkeys(d.word for d in row)), [checked_points(d.points) for d in row])
                for row in rows]

    def save(self, path: str | os.PathLike) -> None:
        """The grid as a PNG file."""
        render.grid(self._rows(), path, self.size)

    def _repr_png_(self) -> bytes:
        return render.grid_png(self._rows(), self.size)
