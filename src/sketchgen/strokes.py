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

Fitting a drawing into a box (QuickDraw's 0-255 frame, a picture, the web
page's canvas) is one rule, ``fitting``, and Google's raw-to-simplified step
(``simplify``) is built on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Google's simplification: Ramer-Douglas-Peucker with epsilon 2.0 after scaling into 0-255.
RDP_EPSILON = 2.0
# Stroke-3 offsets are cached as int16, so absolute coordinates must stay within half its range.
MAX_COORD = 2**14 - 1
# The most points in one drawing a model may be built for or asked to generate, or a Drawing hold: ten times the
# longest QuickDraw drawing.
MAX_POINTS = 10_000
# Characters in a class name, a drawing's word: the file it is read from (<name>.ndjson), a checkpoint's class rows,
# a grid's labels and the ndjson lines written all hold it, and all take this one bound.
MAX_NAME = 100
# Zero-width (non-)joiners are how Persian and Indic words and emoji sequences are written, though Python counts
# them unprintable; every other format character (a bidi override among them) is still held to be unprintable.
_JOINERS = str.maketrans("", "", "\u200c\u200d")


def is_printable(text: str) -> bool:
    """Whether ``text`` holds no control or format character other than a zero-width (non-)joiner."""
    return visible(text).isprintable()


def visible(text: str) -> str:
    """``text`` without its zero-width (non-)joiners: what shows of it."""
    return text.translate(_JOINERS)


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
        if points is not None and points.dtype == object and all(type(v) is int for v in (*xs, *ys)):
            raise StrokeError(f"stroke {i} has a coordinate beyond +-{MAX_COORD}")  # an integer past int64's range
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
    out[:, :2] = np.cumsum(out[:, :2], axis=0)  # in float64: integer offsets would wrap around
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


def odd_pen(s3: np.ndarray) -> int | None:
    """The first row (of stroke-3, or of drawings of it, flattened) whose pen is neither 0 (down) nor 1 (lifted after
    the point), or None: the conversions take any pen above 0.5 for a lift, so a 7 would be read as one."""
    odd = np.flatnonzero((s3[..., 2] != 0) & (s3[..., 2] != 1))
    return int(odd[0]) if len(odd) else None


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


# --- fitting into a box ----------------------------------------------------------------------


@dataclass(frozen=True)
class Fit:
    """A uniform scaling that maps a drawing into a box: ``(p - low) * scale + offset``, and back."""

    low: np.ndarray
    scale: float
    offset: np.ndarray

    def apply(self, drawing: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [(s - self.low) * self.scale + self.offset for s in drawing]

    def invert(self, drawing: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [(s - self.offset) / self.scale + self.low for s in drawing]


def fitting(drawing: Sequence[np.ndarray], size: float = 255.0, margin: float = 0.0, centre: bool = False,
            min_extent: float = 0.0) -> Fit:
    """The fit of a drawing's larger side to ``size - 2 * margin``, keeping its aspect.

    Aligned to the top-left corner (``margin`` from it), as QuickDraw's simplified
    frame is, or centred in the box. ``min_extent`` treats a smaller drawing as
    a part of one that large, so it is not blown up to fill the box. A drawing
    with no extent (one point, all points equal) keeps its scale, so nothing is
    divided by zero.
    """
    points = np.concatenate([np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in drawing])
    low, high = points.min(axis=0), points.max(axis=0)
    extent = max(float((high - low).max()), min_extent)
    scale = (size - 2 * margin) / extent if extent > 0 else 1.0
    if not np.isfinite(scale):  # a subnormal extent: 255 / 1e-320 overflows
        scale = 1.0
    offset = size / 2 - (high - low) / 2 * scale if centre else np.full(2, float(margin))
    return Fit(low, scale, offset)


def fit(drawing: Sequence[np.ndarray], size: float = 255.0, margin: float = 0.0, centre: bool = False,
        min_extent: float = 0.0) -> list[np.ndarray]:
    """The drawing fitted into the box (see ``fitting``); empty strokes are dropped, and no strokes give none."""
    drawing = [np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in drawing if len(s)]
    return fitting(drawing, size, margin, centre, min_extent).apply(drawing) if drawing else []


def quickdraw_strokes(s3: np.ndarray) -> list[np.ndarray]:
    """A stroke-3 drawing (any scale, e.g. generated) -> integer strokes in QuickDraw's 0-255 frame."""
    return [np.rint(s) for s in fit(stroke3_to_strokes(s3))] if len(s3) else []


def simplify(raw: Sequence[np.ndarray], epsilon: float = RDP_EPSILON, min_extent: float = 0.0) -> list[np.ndarray]:
    """Raw screen strokes -> QuickDraw's simplified form.

    Google's steps: align to the top-left corner, scale uniformly so the
    largest side is 255, simplify each stroke with Ramer-Douglas-Peucker at
    epsilon 2.0, round to integers. (Google also resamples at 1 px spacing
    first; that only adds collinear points, which RDP removes again.)
    ``min_extent`` as in ``fitting``: a small start of a drawing stays small.
    """
    return [np.rint(s[_rdp_keep(s, epsilon)]) for s in fit(raw, min_extent=min_extent)]


def _rdp_keep(points: np.ndarray, epsilon: float) -> np.ndarray:
    """Indices RDP keeps, found with an explicit stack (no recursion limit)."""
    n = len(points)
    keep = np.zeros(n, dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, n - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        seg = points[b] - points[a]
        rel = points[a + 1 : b] - points[a]
        norm = float(np.hypot(*seg))
        if norm == 0:
            dist = np.hypot(rel[:, 0], rel[:, 1])
        else:
            dist = np.abs(seg[0] * rel[:, 1] - seg[1] * rel[:, 0]) / norm
        i = int(np.argmax(dist))
        if dist[i] > epsilon:
            mid = a + 1 + i
            keep[mid] = True
            stack += [(a, mid), (mid, b)]
    return np.flatnonzero(keep)


def _check_rows(a: np.ndarray, width: int, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2 or a.shape[1] != width:
        raise StrokeError(f"{name} array must have shape (N, {width}), got {a.shape}")
    return a
