"""Drawing formats and the exact conversions between them.

Every other module speaks these formats; no conversion lives anywhere else.
This module imports nothing of ours.

The formats (N points, all NumPy arrays):

* **strokes** - a list of ``(n_i, 2)`` arrays of absolute (x, y), one per
  pen-down stroke. This is what QuickDraw's ndjson ``drawing`` field holds,
  transposed: ``[[xs], [ys]]`` per stroke.
* **absolute** - ``(N, 3)``: x, y, pen, where pen = 1 marks the last point of
  a stroke (the pen lifts after it). The course report's "strokes to
  absolute" representation.
* **stroke-3** - ``(N, 3)``: dx, dy, pen-lifted; the first row is offset from
  the origin (0, 0), so ``cumsum`` recovers the absolute points exactly.
  Sketch-RNN's storage format.
* **stroke-5** - ``(N + 1, 5)`` or padded: dx, dy, p_down, p_up, p_end, one
  hot in the last three; rows from the end on are (0, 0, 0, 0, 1). Sketch-RNN's
  model format.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class StrokeError(ValueError):
    """A drawing that is not a valid drawing; the message says why."""


def parse_drawing(field: object) -> list[np.ndarray]:
    """QuickDraw's ``drawing`` field -> strokes.

    Accepts simplified ``[[xs], [ys]]`` and raw ``[[xs], [ys], [ts]]`` strokes
    (the times are dropped). Raises StrokeError naming the first problem.
    """
    whole = _parse_whole(field)
    return whole if whole is not None else _parse_stroke_by_stroke(field)


def _parse_whole(field: object) -> list[np.ndarray] | None:
    """A well-formed drawing in one NumPy call rather than one per stroke (most of the cost of reading
    a 100,000-drawing file); None at the first doubt, leaving the verdict to the stroke-by-stroke parser."""
    if not isinstance(field, list) or not field:
        return None
    xs_all, ys_all, ends = [], [], []
    for stroke in field:
        if not isinstance(stroke, list) or len(stroke) not in (2, 3):
            return None
        xs, ys = stroke[0], stroke[1]
        if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys) or not xs:
            return None
        xs_all += xs
        ys_all += ys
        ends.append(len(xs_all))
    try:
        points = np.array([xs_all, ys_all])
    except (ValueError, TypeError, OverflowError):
        return None
    if points.ndim != 2 or points.dtype.kind not in "iuf" or _has_bool(xs_all, ys_all):
        return None
    if points.dtype.kind == "f" and not np.isfinite(points).all():
        return None
    points = points.T.astype(np.float64)
    return [points[a:b] for a, b in zip([0, *ends[:-1]], ends)]


def _parse_stroke_by_stroke(field: object) -> list[np.ndarray]:
    """The strict parser: checks each stroke in turn and raises on the first problem."""
    if not isinstance(field, list) or not field:
        raise StrokeError("drawing is empty" if field == [] else "drawing is not a list of strokes")
    strokes = []
    for i, stroke in enumerate(field):
        if not isinstance(stroke, list) or len(stroke) not in (2, 3):
            raise StrokeError(f"stroke {i} is not [[xs], [ys]] or [[xs], [ys], [ts]]")
        xs, ys = stroke[0], stroke[1]
        if not isinstance(xs, list) or not isinstance(ys, list):
            raise StrokeError(f"stroke {i} coordinates are not lists")
        if len(xs) != len(ys):
            raise StrokeError(f"stroke {i} has {len(xs)} x values but {len(ys)} y values")
        if not xs:
            raise StrokeError(f"stroke {i} is empty")
        # Let NumPy infer the type: forcing float64 would quietly accept "12" and null.
        try:
            points = np.array([xs, ys])
        except ValueError:  # ragged nested lists
            points = None
        if points is None or points.ndim != 2 or points.dtype.kind not in "iuf" or _has_bool(xs, ys):
            raise StrokeError(f"stroke {i} has a non-numeric coordinate")
        points = points.T.astype(np.float64)
        if not np.isfinite(points).all():
            raise StrokeError(f"stroke {i} has a non-finite coordinate")
        strokes.append(points)
    return strokes


def _has_bool(xs: list, ys: list) -> bool:
    """Whether a JSON true/false hides among the numbers, where NumPy would quietly take it as 1/0."""
    return bool in set(map(type, xs)) or bool in set(map(type, ys))


def drawing_field(strokes: Sequence[np.ndarray]) -> list[list[list[int]]]:
    """Strokes -> QuickDraw simplified ``drawing`` field (integers, ``[[xs], [ys]]``)."""
    return [[np.rint(s[:, 0]).astype(int).tolist(), np.rint(s[:, 1]).astype(int).tolist()] for s in strokes]


def strokes_to_absolute(strokes: Sequence[np.ndarray]) -> np.ndarray:
    """Strokes -> absolute (x, y, pen); pen = 1 on the last point of each stroke."""
    if not len(strokes):
        raise StrokeError("drawing is empty")
    checked = []
    for i, s in enumerate(strokes):
        s = _check_rows(s, 2, f"stroke {i}")
        if not len(s):
            raise StrokeError(f"stroke {i} is empty")
        checked.append(s)
    lengths = [len(s) for s in checked]
    out = np.zeros((sum(lengths), 3))
    out[:, :2] = np.concatenate(checked)
    out[np.cumsum(lengths) - 1, 2] = 1
    return out


def absolute_to_strokes(points: np.ndarray) -> list[np.ndarray]:
    """Absolute (x, y, pen) -> strokes. A trailing unfinished stroke is kept."""
    points = _check_rows(points, 3, "absolute")
    ends = np.flatnonzero(points[:, 2] > 0.5) + 1
    return [p[:, :2] for p in np.split(points, ends) if len(p)]


def absolute_to_stroke3(points: np.ndarray) -> np.ndarray:
    """Absolute -> stroke-3: offsets from the previous point (the first from the origin)."""
    points = _check_rows(points, 3, "absolute")
    out = points.copy()
    out[1:, :2] = np.diff(points[:, :2], axis=0)
    return out


def stroke3_to_absolute(s3: np.ndarray) -> np.ndarray:
    """Stroke-3 -> absolute: the running sum of offsets."""
    s3 = _check_rows(s3, 3, "stroke-3")
    out = s3.astype(np.float64, copy=True)
    out[:, :2] = np.cumsum(s3[:, :2], axis=0)
    return out


def strokes_to_stroke3(strokes: Sequence[np.ndarray]) -> np.ndarray:
    return absolute_to_stroke3(strokes_to_absolute(strokes))


def drawings_to_stroke3(drawings: Sequence[Sequence[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Many drawings (strokes each) -> their stroke-3 rows end to end, and each drawing's row count.

    ``strokes_to_stroke3`` of a whole batch in a few NumPy calls: for 100,000
    drawings, calls per drawing would cost more than the arithmetic.
    """
    if any(not len(d) for d in drawings):
        raise StrokeError("drawing is empty")
    points = strokes_to_absolute([s for d in drawings for s in d])
    lengths = np.array([sum(len(s) for s in d) for d in drawings], dtype=np.int64)
    out = absolute_to_stroke3(points)
    starts = np.cumsum(lengths) - lengths
    out[starts, :2] = points[starts, :2]  # each drawing's first row is its offset from the origin
    return out, lengths


def stroke3_to_strokes(s3: np.ndarray) -> list[np.ndarray]:
    return absolute_to_strokes(stroke3_to_absolute(s3))


def stroke3_to_stroke5(s3: np.ndarray, max_len: int | None = None) -> np.ndarray:
    """Stroke-3 -> stroke-5 with one end row, padded with end rows to ``max_len + 1``."""
    s3 = _check_rows(s3, 3, "stroke-3")
    n = len(s3)
    rows = n + 1 if max_len is None else max_len + 1
    if n + 1 > rows:
        raise StrokeError(f"drawing has {n} points, more than max_len {max_len}")
    out = np.zeros((rows, 5), dtype=np.float64)  # float32 would round raw screen coordinates
    out[:n, :2] = s3[:, :2]
    out[:n, 3] = s3[:, 2] > 0.5
    out[:n, 2] = 1 - out[:n, 3]
    out[n:, 4] = 1
    return out


def stroke5_to_stroke3(s5: np.ndarray) -> np.ndarray:
    """Stroke-5 -> stroke-3, stopping at the first end row.

    The pen state is whichever of (down, up, end) is largest, so model outputs
    that are one-hot or scores both work. The last point always lifts the pen.
    """
    s5 = _check_rows(s5, 5, "stroke-5")
    state = np.argmax(s5[:, 2:5], axis=1)
    n = int(np.argmax(state == 2)) if (state == 2).any() else len(s5)
    out = np.zeros((n, 3), dtype=np.float64)
    out[:, :2] = s5[:n, :2]
    out[:, 2] = state[:n] == 1
    if n:
        out[-1, 2] = 1
    return out


def _check_rows(a: np.ndarray, width: int, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2 or a.shape[1] != width:
        raise StrokeError(f"{name} array must have shape (N, {width}), got {a.shape}")
    return a
