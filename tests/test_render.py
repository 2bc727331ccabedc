"""render on real QuickDraw drawings: the pictures have the ink where the drawing is, and only there."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageSequence

import sketchgen
from sketchgen import Drawing, Grid, render
from sketchgen.errors import DrawingError
from sketchgen.strokes import fit, parse_drawing

SIMPLIFIED = Path(__file__).resolve().parents[2] / "shared" / "quickdraw" / "simplified"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def apples() -> list[list[np.ndarray]]:
    path = SIMPLIFIED / "apple.ndjson"
    if not path.exists():
        pytest.skip(f"real QuickDraw drawings not found at {path}")
    with path.open() as f:
        return [parse_drawing(json.loads(line)["drawing"]) for line in f]


def ink(image: Image.Image) -> np.ndarray:
    """Black pixels (the coloured pen dot of a GIF frame is not ink)."""
    return np.asarray(image.convert("RGB")).max(axis=2) < 100


def pen(image: Image.Image) -> np.ndarray:
    """The GIF's red pen dot."""
    rgb = np.asarray(image.convert("RGB")).astype(int)
    return (rgb[..., 0] > 150) & (rgb[..., 1] < 100)


def distance_to_strokes(point: np.ndarray, strokes: list[np.ndarray]) -> float:
    """Distance from a point to the nearest segment (or lone point) of any stroke."""
    best = np.inf
    for s in strokes:
        a, b = (s[:-1], s[1:]) if len(s) > 1 else (s, s)
        ab = b - a
        t = np.clip(np.einsum("ij,ij->i", point - a, ab) / np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-12), 0, 1)
        best = min(best, np.linalg.norm(a + t[:, None] * ab - point, axis=1).min())
    return best


def test_png_has_ink_in_the_right_size(apples, tmp_path):
    path = tmp_path / "apple.png"
    render.save_png(apples[1], path, size=128)
    image = Image.open(path)
    assert image.format == "PNG" and image.size == (128, 128)
    drawn = ink(image)
    assert 100 < drawn.sum() < 0.3 * drawn.size
    assert not drawn[0].any() and not drawn[-1].any() and not drawn[:, 0].any() and not drawn[:, -1].any()
    assert [p.name for p in tmp_path.iterdir()] == ["apple.png"]  # atomic write left no temporary file


def test_pen_up_moves_are_not_drawn(apples):
    size, width, margin = 256, 3, 20
    # A real gap: the end of one stroke and the start of the next far apart, their midpoint away from all ink.
    for strokes in apples:
        fitted = fit(strokes, size, margin, centre=True)
        for i in range(len(fitted) - 1):
            mid = (fitted[i][-1] + fitted[i + 1][0]) / 2
            if np.linalg.norm(fitted[i][-1] - fitted[i + 1][0]) > 60 and distance_to_strokes(mid, fitted) > 15:
                break
        else:
            continue
        break
    else:
        pytest.fail("no apple drawing has two strokes far apart")
    x, y = np.floor(mid).astype(int)
    assert not ink(render.to_image(strokes, size, width, margin))[y, x]
    # The same pen path with the lift removed does cross that pixel: the check above can fail.
    joined = [*strokes[:i], np.vstack([strokes[i], strokes[i + 1]]), *strokes[i + 2 :]]
    assert ink(render.to_image(joined, size, width, margin))[y - 1 : y + 2, x - 1 : x + 2].any()


def test_one_point_stroke_is_a_dot(apples):
    image = render.to_image([apples[1][0][:1]], size=64, line_width=4)
    drawn = ink(image)
    assert drawn[30:34, 30:34].any() and drawn.sum() < 40


def test_fit_one_point_and_negative_coordinates(apples):
    assert np.allclose(fit([np.array([[-7.0, 1e6]])], 100, 10, centre=True)[0], [[50, 50]])
    strokes = apples[1]
    moved = [s * 0.013 - 5000 for s in strokes]  # a generated drawing: tiny, far off, negative
    fitted = fit(moved, 200, 10, centre=True)
    for a, b in zip(fitted, fit(strokes, 200, 10, centre=True)):
        assert np.allclose(a, b)
    points = np.concatenate(fitted)
    assert points.min() >= 10 - 1e-9 and points.max() <= 190 + 1e-9
    assert np.isclose((points.max(axis=0) - points.min(axis=0)).max(), 180)  # the long side fills the box
    assert np.allclose((points.max(axis=0) + points.min(axis=0)) / 2, 100)  # centred


def test_gif_draws_stroke_by_stroke(apples, tmp_path):
    strokes = apples[22]  # the longest apple, 64 points
    path = tmp_path / "apple.gif"
    render.animate_gif(strokes, path, size=128)
    gif = Image.open(path)
    assert gif.info["loop"] == 0
    frames = [(frame.convert("RGB"), frame.info["duration"]) for frame in ImageSequence.Iterator(gif)]
    assert 15 <= len(frames) <= 60
    assert frames[-1][1] > 5 * frames[0][1]  # the finished drawing is held
    inks = [ink(frame) for frame, _ in frames]
    pens = [pen(frame) for frame, _ in frames]
    assert all(p.any() for p in pens[:-1]) and not pens[-1].any()
    for before, after, pen_after in zip(inks, inks[1:], pens[1:]):
        assert not (before & ~(after | pen_after)).any()  # frames only add ink (the pen may lie on top of it)
    assert inks[0].sum() < inks[len(inks) // 2].sum() < inks[-1].sum()
    finished = ink(render.to_image(strokes, size=128))
    assert (inks[-1] != finished).mean() < 0.005


def test_each_gif_frame_is_its_prefix_drawn_afresh(apples, tmp_path):
    """Frames add only their new points' ink to the last frame; each must equal the drawing's first n points
    drawn on a blank canvas (where the pen is not), for strokes cut mid-way, one-point strokes and a sheet."""
    rng = np.random.default_rng(1)
    dotted = [*apples[22], np.array([[3.0, 4.0]]), rng.uniform(0, 255, (7, 2))]
    for strokes, step in ((apples[22], 4), (dotted, 1), (dotted, 5)):
        render.animate_gif(strokes, tmp_path / "a.gif", size=96, points_per_frame=step)
        fitted = fit(strokes, 96, render._default_margin(96, 3), centre=True)
        total = sum(len(s) for s in fitted)
        frames = [frame.convert("RGB") for frame in ImageSequence.Iterator(Image.open(tmp_path / "a.gif"))]
        assert len(frames) == len(render._steps(total, step)) + 1
        for n, frame in zip([*render._steps(total, step), total], frames):
            afresh = Image.new("L", (96, 96), 255)
            starts = np.cumsum([0] + [len(s) for s in fitted])
            prefix = [s[:n - start] for s, start in zip(fitted, starts) if n > start]
            render._draw_strokes(ImageDraw.Draw(afresh), prefix, 3, 0)
            free = ~pen(frame)
            assert np.array_equal(ink(frame)[free], ink(afresh)[free]), n
    render.animate_many([apples[22], dotted], tmp_path / "two.gif", columns=2, cell=64, points_per_frame=2)
    sheets = list(ImageSequence.Iterator(Image.open(tmp_path / "two.gif")))
    finished = [ink(render.to_image(s, size=64)) for s in (apples[22], dotted)]
    assert np.array_equal(ink(sheets[-1]), np.hstack(finished))


def test_gif_of_two_points_has_two_frames(apples, tmp_path):
    render.animate_gif([apples[1][0][:2]], tmp_path / "short.gif", size=64)
    assert Image.open(tmp_path / "short.gif").n_frames >= 2


def test_svg_has_one_path_per_stroke(apples, tmp_path):
    strokes = apples[0]  # has degenerate strokes too
    root = ET.fromstring(render.to_svg(strokes, size=256))
    assert root.tag == f"{SVG}svg" and root.get("viewBox") == "0 0 256 256"
    group = root.find(f"{SVG}g")
    assert group.get("stroke-linecap") == "round" and group.get("stroke-linejoin") == "round"
    paths = group.findall(f"{SVG}path")
    assert len(paths) == len(strokes)
    for path, stroke in zip(paths, strokes):
        commands = path.get("d").split("L")
        assert commands[0].startswith("M") and len(commands) == max(len(stroke), 2)
    render.save_svg(strokes, tmp_path / "apple.svg")
    assert ET.parse(tmp_path / "apple.svg").getroot().tag == f"{SVG}svg"


def test_rasterize_shape_range_and_ink(apples):
    images = render.rasterize(apples, size=28)
    assert images.shape == (len(apples), 28, 28) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1
    assert (images.reshape(len(apples), -1).max(axis=1) > 0.9).all()  # every drawing has solid ink
    assert (images.mean(axis=(1, 2)) < 0.4).all()  # on a mostly empty background
    assert images[:, 0, :].max() < 0.05 and images[:, :, 0].max() < 0.05
    assert render.rasterize([], size=28).shape == (0, 28, 28)


def test_side_by_side_and_grid_sizes(apples, tmp_path):
    render.side_by_side(apples[1], apples[2], "apple", tmp_path / "pair.png", size=128)
    pair = Image.open(tmp_path / "pair.png")
    assert pair.size == (256, 128 + 2 * 16)
    drawn = ink(pair)
    assert drawn[:16].any()  # title
    assert drawn[16:144, 5:123].any() and drawn[16:144, 133:251].any()  # both drawings

    cell = 64
    render.grid([("apple", apples[:4]), ("apple again", apples[4:6])], tmp_path / "grid.png", cell=cell)
    sheet = Image.open(tmp_path / "grid.png")
    assert sheet.height == 2 * cell
    label_width = sheet.width - 4 * cell
    assert 0 < label_width < 4 * cell
    drawn = ink(sheet)
    assert drawn[:cell, :label_width].any()  # the label
    for r, c in [(0, 0), (0, 3), (1, 1)]:
        x = label_width + c * cell
        assert drawn[r * cell + 2 : (r + 1) * cell - 2, x + 2 : x + cell - 2].any()
    assert not drawn[cell + 2 :, label_width + 2 * cell + 2 :].any()  # the short row's empty cells stay empty


def test_loss_curve_writes_png(tmp_path):
    history = [{"epoch": e, "train_loss": 2 / e, "val_loss": 2.2 / e, "lr": 1e-3} for e in range(1, 6)]
    history.append({"epoch": 6, "train_loss": 0.3, "val_loss": None})
    render.loss_curve(history, tmp_path / "loss.png")
    image = Image.open(tmp_path / "loss.png")
    assert image.format == "PNG" and image.width > 300
    with pytest.raises(ValueError):
        render.loss_curve([], tmp_path / "empty.png")


# --- untrusted input: one line of DrawingError naming what is wrong, before anything is allocated ----------------


@pytest.mark.parametrize("make, says", [
    (lambda D: D.from_strokes([([1.7e308, -1.7e308], [0, 1])], "eye"), "stroke 0 point 0"),
    (lambda D: D.from_strokes([([1, 2], [3, 4]), ([5, 1e25], [0, 1])], "eye"), "stroke 1 point 1"),
    (lambda D: D.from_points([np.array([[1.0, 2.0], [np.inf, 0.0]])]), "stroke 0 point 1"),
    (lambda D: D.from_points([np.array([[16384.0, 0.0]])]), "+-16383"),
    (lambda D: D.from_stroke3(np.array([[np.nan, 1, 0]])), "row 0 is not finite"),
    (lambda D: D.from_stroke3(np.array([[1e25, 0, 1]]), fit=False), "stroke 0 point 0"),
])
def test_drawings_refuse_non_finite_and_huge_coordinates(make, says):
    with pytest.raises(DrawingError, match=r"\A[^\n]*" + says.replace("+", r"\+")):
        make(Drawing)


@pytest.mark.parametrize("make, says", [
    (lambda D: D.from_stroke3(np.zeros(3)), "must be an (n, 3) array"),
    (lambda D: D.from_stroke3([[1, 2, 3], [4]]), "must be an (n, 3) array"),
    (lambda D: D.from_points([np.zeros((0, 2))], "eye"), "stroke 0 is empty"),
    (lambda D: D.from_points([[1, 2, 3]]), "stroke 0 has 3 values"),
    (lambda D: D.from_points([[["a", "b"]]]), "stroke 0 has a non-numeric"),
    (lambda D: D.from_points(5), "strokes must be a list"),
])
def test_drawings_refuse_malformed_strokes_as_drawing_errors(make, says):
    with pytest.raises(DrawingError) as e:
        make(Drawing)
    assert type(e.value) is DrawingError and says in str(e.value)


def test_drawings_refuse_more_points_than_a_model_may_draw():
    from sketchgen.strokes import MAX_POINTS
    assert len(Drawing.from_points([np.zeros((MAX_POINTS, 2))])) == MAX_POINTS
    for make in (lambda: Drawing.from_points([np.zeros((MAX_POINTS, 2)), np.zeros((1, 2))]),
                 lambda: Drawing.from_strokes([([0] * (MAX_POINTS + 1), [0] * (MAX_POINTS + 1))]),
                 lambda: Drawing.from_stroke3(np.zeros((MAX_POINTS + 1, 3)))):
        with pytest.raises(DrawingError, match="more than the 10,000"):
            make()


@pytest.mark.parametrize("size", [2.5, -5, 0, True, float("nan"), "256", render.MAX_SIZE + 1, 100_000])
def test_picture_sizes_are_checked(size, tmp_path):
    d = Drawing.from_strokes([([1, 50, 90], [2, 60, 10])], "eye")
    for draw in (lambda: d.to_png(tmp_path / "a.png", size=size), lambda: d.to_svg(size=size),
                 lambda: d.animate(tmp_path / "a.gif", size=size), lambda: Grid([d], size=size),
                 lambda: render.rasterize([d.points], size=size)):
        with pytest.raises(DrawingError, match=r"\Asize must be a whole number from 1 to "):
            draw()
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("columns", [2.5, "x", 0, False, render.MAX_SIZE + 1])
def test_grid_and_animate_columns_are_checked(columns, tmp_path):
    d = Drawing.from_strokes([([1, 50, 90], [2, 60, 10])], "eye")
    for draw in (lambda: sketchgen.grid([d, d], columns=columns),
                 lambda: sketchgen.animate([d, d], tmp_path / "a.gif", columns=columns)):
        with pytest.raises(DrawingError, match=r"\Acolumns must be a whole number from 1 to "):
            draw()


def test_grid_labels_are_one_short_line(tmp_path):
    d = Drawing.from_strokes([([1, 50, 90], [2, 60, 10])], "\n" * 3000)
    grid = sketchgen.grid([d, d])
    grid.save(tmp_path / "g.png")
    plain = Image.open(tmp_path / "g.png")
    assert plain.height == 128 and plain.width < 2 * 128 + 1000  # the label is shortened, not 3,000 lines or 6,000 px
    assert grid._repr_png_().startswith(b"\x89PNG")


def test_gif_frames_are_capped_and_short_drawings_keep_theirs(tmp_path):
    rng = np.random.default_rng(0)
    long = [rng.uniform(0, 255, (1000, 2)), rng.uniform(0, 255, (2000, 2))]
    render.animate_gif(long, tmp_path / "long.gif", size=32)
    assert Image.open(tmp_path / "long.gif").n_frames <= render.MAX_FRAMES + 1
    short = [rng.uniform(0, 255, (3 * render.MAX_FRAMES + 1, 2))]  # the longest that keeps 3 points a frame
    assert list(render._steps(len(short[0]), 3)) == list(range(1, len(short[0]), 3))
    render.animate_gif(short, tmp_path / "short.gif", size=32)
    assert Image.open(tmp_path / "short.gif").n_frames == render.MAX_FRAMES + 1
