"""Drawings -> pictures: PNG, SVG, animated GIF, comparison sheets, classifier input.

Input is the *strokes* format of ``sketchgen.strokes`` (absolute x, y with y
pointing down, as in QuickDraw). Every picture draws each stroke on its own:
the pen-up move between strokes is never a line, and a one-point stroke is a
dot. Drawings are centred and scaled to fit first (``strokes.fit``), because
generated drawings may have any coordinates. Raster work uses Pillow (fast enough to rasterise thousands of
drawings for the classifier); only the loss curve needs matplotlib. Nothing
here needs torch. Every file is written through ``fileio.atomic_write`` so a
crash never leaves half an image.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sketchgen.errors import DrawingError, one_line, whole_number
from sketchgen.fileio import atomic_write
from sketchgen.strokes import MAX_NAME, fit

Strokes = Sequence[np.ndarray]

RASTER_SCALE = 4  # rasterize draws this many times larger, then box-filters down: anti-aliasing for free
FRAME_MS = 50  # one GIF frame while drawing
HOLD_MS = 1500  # the finished drawing stays up this long before the GIF loops
PEN_COLOUR = (220, 40, 40)
GREY = (200, 200, 200)
# The largest picture side (size, cell) in pixels: four times the default 256 (the classifier's rasters, drawn
# RASTER_SCALE times larger, stay below it). A GIF's MAX_FRAMES frames at that side hold ~250 MB; twice it, ~1 GB.
MAX_SIZE = 1024
# The most frames of a GIF drawing a sketch (10 seconds of FRAME_MS): a drawing of many points (up to
# strokes.MAX_POINTS) draws more points a frame, not more frames; one of up to 601 points keeps its 3 a frame.
MAX_FRAMES = 200
# The most pixels of a sheet of several drawings (a grid, a strip): 16384 x 8192, which Pillow holds in 400 MB (RGB)
# and opens again (under its decompression-bomb error, 2 x Image.MAX_IMAGE_PIXELS). `demo --classes all`'s sheet of
# 345 classes in three rows of 6 is ~80 million; a grid of 20,000 drawings would take 1.5 GB.
MAX_PIXELS = 16384 * 8192
# The most pixels of a GIF's frame: Pillow works on each in several copies (RGB, RGBA, palette: ~25 bytes a pixel),
# so 2048 x 2048 takes ~100 MB; 113 of animate's 192-pixel cells.
MAX_GIF_FRAME = 2048 * 2048
# The most pixels of all a GIF's frames: Pillow holds each (a byte a pixel) until the file is written. As many as the
# largest GIF of one drawing holds (MAX_FRAMES + 1 frames of MAX_SIZE squares, ~210 MB).
MAX_GIF_PIXELS = (MAX_FRAMES + 1) * MAX_SIZE**2
MAX_GIF_SIDE = 65_535  # the GIF format stores each side of a picture in 16 bits
# The most points a sheet of several drawings draws: Pillow draws ~7 µs a point here, so 35 s (a grid of 8,000
# drawings of 10,000 points each took 581 s). 25 times the 345 classes' real drawings of `demo --classes all`'s sheet.
MAX_SHEET_POINTS = 5_000_000
ANIMATED_CELL = 192  # a cell of a GIF of several drawings


def whole(name: str, value: int, high: int = MAX_SIZE) -> int:
    """``value`` if a whole number from 1 to ``high``, else one line naming ``name``: a float, NaN or huge size
    would fail deep inside Pillow or allocate gigabytes."""
    return whole_number(name, value, 1, high, DrawingError)


def _check_picture(n: int, width: int, height: int, frames: int | None = None) -> None:
    """Refuse a picture of ``n`` drawings too large to hold, in one line before any of it is drawn: a still
    ``width`` x ``height`` sheet, or (``frames`` given) a GIF of that many of them."""
    if frames is None:
        shape, bounds = f"a {width:,} x {height:,} pixel sheet", [(width * height, MAX_PIXELS, "a sheet's pixels")]
    else:
        shape = f"{frames} GIF frames of {width:,} x {height:,} pixels"
        bounds = [(width * height, MAX_GIF_FRAME, "a GIF frame's pixels"),
                  (max(width, height), MAX_GIF_SIDE, "a GIF's side"),
                  (width * height * frames, MAX_GIF_PIXELS, "a GIF's pixels in all its frames")]
    for value, most, what in bounds:
        if value > most:
            raise DrawingError(f"{n:,} drawings make {shape} ({what}: {value:,}, more than {most:,}): give fewer "
                               "drawings or a smaller cell size")


def check_sheet(n: int, columns: int, cell: int, points: int, frames: int | None = None) -> None:
    """Refuse a sheet of ``n`` drawings of ``points`` in all, ``columns`` to a row, from these counts alone, before a
    drawing is copied to be drawn (copied, 10,000 drawings of 10,000 points took 1.8 GB before the refusal): its
    pixels without the labels, which only widen it, and its points. ``frames``: a GIF's, at the fewest."""
    columns = min(columns, n)
    _check_picture(n, columns * cell, -(-n // columns) * cell, frames)
    if points > MAX_SHEET_POINTS:
        raise DrawingError(f"{n:,} drawings hold {points:,} points, more than the {MAX_SHEET_POINTS:,} a sheet draws: "
                           "give fewer drawings")


def _default_margin(size: float, line_width: float) -> float:
    """A little air around the drawing, and room for half a line so nothing is clipped."""
    return size / 16 + line_width / 2


def _draw_strokes(draw: ImageDraw.ImageDraw, fitted: Strokes, line_width: float, fill) -> None:
    """Each stroke as its own polyline with a dot on every point; a one-point stroke is just the dot.

    Pillow's wide lines end square and join with gaps, so the dots make the caps
    and joins round. They also make a drawing's first n points a subset of its
    ink, which the GIF relies on to only ever add ink.
    """
    width = max(1, round(line_width))
    radius = max(line_width - 1, 1) / 2  # a pixel under the line's width, or the joins bulge
    for s in fitted:
        points = [tuple(p) for p in s]
        if len(points) > 1:
            draw.line(points, fill=fill, width=width)
        for x, y in points:
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=fill)


def to_image(strokes: Strokes, size: int = 256, line_width: float = 3, margin: float | None = None) -> Image.Image:
    """The drawing in black on a white ``size`` x ``size`` greyscale image, fitted to the box."""
    size = whole("size", size)
    margin = _default_margin(size, line_width) if margin is None else margin
    image = Image.new("L", (size, size), 255)
    _draw_strokes(ImageDraw.Draw(image), fit(strokes, size, margin, centre=True), line_width, 0)
    return image


def rasterize(drawings: Sequence[Strokes], size: int = 28, line_width: float = 1.5) -> np.ndarray:
    """Drawings -> float32 ``(n, size, size)`` in [0, 1], ink = 1: the classifier's input.

    Each drawing is drawn ``RASTER_SCALE`` times larger and box-filtered down,
    which anti-aliases the thin lines at a cost of well under a millisecond each.
    ``line_width`` is in output pixels.
    """
    big, width = whole("size", size, MAX_SIZE // RASTER_SCALE) * RASTER_SCALE, line_width * RASTER_SCALE
    out = np.empty((len(drawings), size, size), dtype=np.float32)
    for i, strokes in enumerate(drawings):
        image = to_image(strokes, big, width)
        out[i] = np.asarray(image.resize((size, size), Image.Resampling.BOX), dtype=np.float32)
    return 1 - out / 255


def save_png(strokes: Strokes, path: str | os.PathLike, size: int = 256) -> None:
    _save(to_image(strokes, size), path)


def to_svg(strokes: Strokes, size: int = 256, line_width: float = 3) -> str:
    """An SVG document: one ``<path>`` per stroke, round caps and joins (so a one-point path is a dot)."""
    size = whole("size", size)
    fitted = fit(strokes, size, _default_margin(size, line_width), centre=True)
    paths = []
    for s in fitted:
        points = s if len(s) > 1 else np.vstack([s, s])  # a zero-length segment: round caps draw the dot
        d = "M" + " L".join(f"{x:.2f} {y:.2f}" for x, y in points)
        paths.append(f'    <path d="{d}"/>')
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}">',
        f'  <rect width="{size}" height="{size}" fill="white"/>',
        f'  <g fill="none" stroke="black" stroke-width="{line_width}" '
        'stroke-linecap="round" stroke-linejoin="round">',
        *paths,
        "  </g>",
        "</svg>",
        "",
    ])


def save_svg(strokes: Strokes, path: str | os.PathLike, size: int = 256) -> None:
    with atomic_write(path) as f:
        f.write(to_svg(strokes, size).encode("utf-8"))


def _between(fitted: Strokes, start: int, end: int) -> list[np.ndarray]:
    """Points ``start`` to ``end`` (exclusive) of a drawing, still split into its strokes, each piece with the
    point before it in its stroke, so that the segment joining them is drawn too."""
    out, first = [], 0
    for s in fitted:
        lo, hi = max(start - first, 0), min(end - first, len(s))
        if lo < hi:
            out.append(s[max(lo - 1, 0):hi])
        first += len(s)
    return out


def _growing(fitted: Strokes, shown: Sequence[int], size: int, line_width: float) -> Iterator[Image.Image]:
    """One canvas with the drawing's first n points inked, for each n of ``shown`` (ascending): each frame inks
    only its new points onto the last, which is what drawing the prefix afresh draws (Pillow draws each segment
    and dot on its own, in one colour), so a 10,000-point drawing's GIF costs its points once, not each frame."""
    image = Image.new("L", (size, size), 255)
    draw, done = ImageDraw.Draw(image), 0
    for n in shown:
        _draw_strokes(draw, _between(fitted, done, n), line_width, 0)
        done = n
        yield image


def animate_gif(
    strokes: Strokes, path: str | os.PathLike, size: int = 256, points_per_frame: int = 3, line_width: float = 3
) -> None:
    """An endlessly looping GIF that draws the sketch in the order it was drawn.

    Each frame adds ``points_per_frame`` points (a 50-150 point drawing takes
    17-50 frames) with the pen shown as a red dot; the finished drawing, without
    the pen, is held for ``HOLD_MS``. Any drawing of two or more points gets
    at least two frames.
    """
    size = whole("size", size)
    fitted = fit(strokes, size, _default_margin(size, line_width), centre=True)
    total = sum(len(s) for s in fitted)
    shown = [*_steps(total, points_per_frame), total]

    def frame(n: int, ink: Image.Image) -> Image.Image:
        """The first ``n`` points with the pen on the last; the finished drawing without it."""
        image = ink.convert("RGB")
        if n < total:
            x, y = _between(fitted, n - 1, n)[-1][-1]  # the n-th point, where the pen is
            r = 1.5 * line_width
            ImageDraw.Draw(image).ellipse([x - r, y - r, x + r, y + r], fill=PEN_COLOUR)
        return image

    inked = _growing(fitted, shown, size, line_width)
    _save_gif((frame(n, ink) for n, ink in zip(shown, inked)), [FRAME_MS] * (len(shown) - 1) + [HOLD_MS], path)


def _steps(total: int, points_per_frame: int) -> range:
    """Points shown by each frame of a GIF drawing ``total`` points, but the last: ``points_per_frame`` more each,
    or more for a drawing so long that it would take over ``MAX_FRAMES`` frames."""
    return range(1, total, max(points_per_frame, -(-(total - 1) // MAX_FRAMES)))


def _save_gif(frames: Iterator[Image.Image], durations: list[int], path: str | os.PathLike) -> None:
    """Frames as an endlessly looping GIF, each made only as Pillow takes it: Pillow keeps a palette copy of every
    frame, which is all the memory a long GIF holds."""
    first = next(frames)
    with atomic_write(path) as f:
        first.save(f, format="GIF", save_all=True, append_images=frames, duration=durations, loop=0)


def _font(px: float) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(8, round(px)))


def _centred_text(draw: ImageDraw.ImageDraw, centre_x: float, top: float, height: float, text: str, font) -> None:
    """``text`` centred horizontally on ``centre_x`` and vertically in the band ``top``..``top + height``."""
    left, upper, right, lower = draw.textbbox((0, 0), text, font=font)
    draw.text((centre_x - (right - left) / 2 - left, top + (height - (lower - upper)) / 2 - upper), text,
              fill="black", font=font)


def side_by_side(left: Strokes, right: Strokes, title: str, path: str | os.PathLike, size: int = 256,
                 labels: tuple[str, str] = ("generated", "real")) -> None:
    """One PNG comparing two drawings: by default a generated one (left) with a real one (right).

    The image is ``2 * size`` wide and ``size + 2 * (size // 8)`` high: ``title``
    in a band on top, the two drawings, and ``labels`` under them.
    """
    band = whole("size", size) // 8
    sheet = Image.new("RGB", (2 * size, size + 2 * band), "white")
    draw = ImageDraw.Draw(sheet)
    _centred_text(draw, size, 0, band, title, _font(band * 0.6))
    for column, (label, strokes) in enumerate(zip(labels, (left, right))):
        sheet.paste(to_image(strokes, size), (column * size, band))
        _centred_text(draw, column * size + size / 2, band + size, band, label, _font(band * 0.45))
    draw.line([(size, band), (size, band + size)], fill=GREY, width=1)
    _save(sheet, path)


def strip(drawings: Sequence[Strokes], path: str | os.PathLike, captions: Sequence[str] = (), cell: int = 128) -> None:
    """One row of drawings, each in a ``cell`` square with its caption (if any) in a band under it."""
    if not drawings:
        raise DrawingError("strip needs at least one drawing")
    cell = whole("cell", cell)
    band = cell // 6 if captions else 0
    _check_picture(len(drawings), len(drawings) * cell, cell + band)
    sheet = Image.new("RGB", (len(drawings) * cell, cell + band), "white")
    draw = ImageDraw.Draw(sheet)
    for c, strokes in enumerate(drawings):
        sheet.paste(to_image(strokes, cell, line_width=2), (c * cell, 0))
        if c:
            draw.line([(c * cell, 0), (c * cell, cell + band)], fill=GREY, width=1)
    for c, caption in enumerate(captions):
        _centred_text(draw, c * cell + cell / 2, cell, band, caption, _font(band * 0.7))
    _save(sheet, path)


def morph_gif(drawings: Sequence[Strokes], path: str | os.PathLike, size: int = 256, frame_ms: int = 4 * FRAME_MS,
              line_width: float = 3) -> None:
    """An endlessly looping GIF showing each finished drawing in turn: one frame each, the first and last held
    for ``HOLD_MS``, so that a sequence of drawings (an interpolation) morphs from its first to its last."""
    if not drawings:
        raise DrawingError("morph_gif needs at least one drawing")
    _check_picture(len(drawings), whole("size", size), size, len(drawings))
    durations = [frame_ms] * len(drawings)
    durations[0] = durations[-1] = HOLD_MS
    _save_gif((to_image(strokes, size, line_width).convert("RGB") for strokes in drawings), durations, path)


def grid_image(rows: Sequence[tuple[str, Sequence[Strokes]]], cell: int = 96) -> Image.Image:
    """A grid for reports: one row per (label, drawings), the label on the left, one ``cell`` square per drawing.

    The image is ``len(rows) * cell`` high; it is as wide as the longest label
    plus the longest row of cells.
    """
    cell = whole("cell", cell)
    rows, font, label_width, size = _grid_layout(rows, cell)
    sheet = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(sheet)
    for r, (label, drawings) in enumerate(rows):
        top = r * cell
        _centred_text(draw, label_width / 2, top, cell, label, font)
        for c, strokes in enumerate(drawings):
            sheet.paste(to_image(strokes, cell, line_width=2), (label_width + c * cell, top))
        if r:
            draw.line([(0, top), (sheet.width, top)], fill=GREY, width=1)
    return sheet


def grid_size(rows: Sequence[tuple[str, Sequence[Strokes]]], cell: int = 96) -> tuple[int, int]:
    """``grid_image``'s width and height, or one line if it would be too large: a ``Grid`` is refused when it is
    made, not when a notebook shows it."""
    return _grid_layout(rows, whole("cell", cell))[-1]


def _grid_layout(rows: Sequence[tuple[str, Sequence[Strokes]]], cell: int) -> tuple:
    """A grid's rows (each label one short line), the labels' font, their column's width and the picture's size,
    checked against ``MAX_PIXELS`` before anything is drawn."""
    if not rows:
        raise DrawingError("grid needs at least one row")
    rows = [(_label(label), drawings) for label, drawings in rows]
    font = _font(cell / 6)
    pad = cell // 8
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_width = round(max(measure.textlength(label, font=font) for label, _ in rows)) + 2 * pad
    columns = max(1, max(len(drawings) for _, drawings in rows))
    size = (label_width + columns * cell, len(rows) * cell)
    _check_picture(sum(len(drawings) for _, drawings in rows), *size)
    return rows, font, label_width, size


def _label(text: str) -> str:
    """``text`` on one line of at most ``MAX_NAME`` characters (a class name's longest): Pillow cannot measure several
    lines, and a long one would widen the sheet without bound."""
    text = one_line(text)
    return text if len(text) <= MAX_NAME else text[: MAX_NAME - 3] + "..."


def grid(rows: Sequence[tuple[str, Sequence[Strokes]]], path: str | os.PathLike, cell: int = 96) -> None:
    """``grid_image`` as a PNG file."""
    _save(grid_image(rows, cell), path)


def grid_png(rows: Sequence[tuple[str, Sequence[Strokes]]], cell: int = 96) -> bytes:
    """``grid_image`` as PNG bytes (what a notebook displays)."""
    buffer = io.BytesIO()
    grid_image(rows, cell).save(buffer, format="PNG")
    return buffer.getvalue()


def animate_many(drawings: Sequence[Strokes], path: str | os.PathLike, columns: int = 4, cell: int = ANIMATED_CELL,
                 points_per_frame: int = 3, line_width: float = 3) -> None:
    """One looping GIF of several drawings side by side, ``columns`` to a row, all drawn at once stroke by stroke
    (each at its own pace, ``points_per_frame`` a frame), the finished sheet held for ``HOLD_MS``."""
    if not drawings:
        raise DrawingError("animate needs at least one drawing")
    columns, cell = min(whole("columns", columns), len(drawings)), whole("cell", cell)
    longest = max(sum(len(s) for s in d) for d in drawings)
    rows = -(-len(drawings) // columns)
    shown = [*_steps(longest, points_per_frame), longest]
    _check_picture(len(drawings), columns * cell, rows * cell, len(shown))
    fitted = [fit(d, cell, _default_margin(cell, line_width), centre=True) for d in drawings]

    def frame(inks: tuple[Image.Image, ...]) -> Image.Image:
        sheet = Image.new("RGB", (columns * cell, rows * cell), "white")
        for i, ink in enumerate(inks):
            sheet.paste(ink.convert("RGB"), ((i % columns) * cell, (i // columns) * cell))
        return sheet

    inked = zip(*(_growing(f, shown, cell, line_width) for f in fitted))
    _save_gif((frame(inks) for inks in inked), [FRAME_MS] * (len(shown) - 1) + [HOLD_MS], path)


def loss_curve(history: Sequence[dict], path: str | os.PathLike) -> None:
    """Train and validation loss per epoch (per step for a step budget) as a PNG, with a panel beside it for each
    term of a loss of several.

    Terms are the ``train_<name>`` / ``val_<name>`` entries the training log
    has for a loss of more than one term; each gets its own panel and scale
    (a reconstruction NLL and a KL per dimension differ by orders of
    magnitude). Epochs without a value are left out of that line.
    """
    if not history:
        raise ValueError("loss_curve needs at least one epoch of history")
    from matplotlib.figure import (
        Figure,  # slow to import and only this plot needs it; Figure alone renders with Agg
    )

    terms = sorted({k[4:] for h in history for k in h if k.startswith("val_") and k != "val_loss"})
    # A step budget logs fractional epochs and validates every so many steps: its axis is the step.
    axis = "step" if any(type(h["epoch"]) is float for h in history) and all("step" in h for h in history) else "epoch"
    panels = [("loss", "Training and validation loss")] + [(t, f"term: {t}") for t in terms]
    fig = Figure(figsize=(6 + 4.5 * len(terms), 4), dpi=100)
    for i, (name, title) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for split, label in (("train", "train"), ("val", "validation")):
            key = f"{split}_{name}"
            at = [h[axis] for h in history if h.get(key) is not None]
            ax.plot(at, [h[key] for h in history if h.get(key) is not None], marker="o", markersize=3, label=label)
        ax.set_xlabel(axis)
        ax.set_ylabel("loss" if name == "loss" else name)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format="png")


def _save(image: Image.Image, path: str | os.PathLike) -> None:
    with atomic_write(path) as f:
        image.save(f, format="PNG")
