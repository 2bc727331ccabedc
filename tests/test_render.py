"""render on real QuickDraw drawings: the pictures have the ink where the drawing is, and only there."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageSequence

import sketchgen
from sketchgen import Drawing, Grid, render
from sketchgen.drawing import MAX_LINE
from sketchgen.errors import DrawingError
from sketchgen.strokes import MAX_NAME, fit, parse_drawing

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
        shown = [*range(1, total, step), total]  # step more points a frame: these drawings are short of MAX_FRAMES
        assert len(frames) == len(shown)
        for n, frame in zip(shown, frames):
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
    (lambda D: D.from_points([[1, 2, 3]]), "stroke 0 is of shape (3,), not (n, 2) rows"),
    # Another layout is refused, not read as other points: (xs, ys) of three points, a flat list, a cube.
    (lambda D: D.from_points([[[1, 2, 3], [10, 20, 30]]]), "stroke 0 is of shape (2, 3), not (n, 2) rows"),
    (lambda D: D.from_points([[1, 2, 3, 4]]), "stroke 0 is of shape (4,), not (n, 2) rows"),
    (lambda D: D.from_points([np.zeros((2, 2, 2))]), "stroke 0 is of shape (2, 2, 2), not (n, 2) rows"),
    (lambda D: D.from_points([[["a", "b"]]]), "stroke 0 has a non-numeric"),
    (lambda D: D.from_points(5), "strokes must be a list"),
    # Rows of a million numbers each (one list, range or tensor by reference: cheap to make), or pairs of them: they
    # were scanned for True and False, then built into an array, before the shape was refused (an audit's and a
    # review's finds: over 100 s, then gigabytes); a range past what Python counts was an OverflowError.
    (lambda D: D.from_points([[[0] * 10**6] * 5000]), "stroke 0 is of shape (5000, 1000000), not (n, 2) rows"),
    (lambda D: D.from_points([[range(10**6)] * 5000]), "stroke 0 is of shape (5000, 1000000), not (n, 2) rows"),
    (lambda D: D.from_points([[torch.zeros(10**6)] * 5000]), "stroke 0 is of shape (5000, 1000000), not (n, 2) rows"),
    (lambda D: D.from_points([[[[0] * 10**6] * 2] * 5000]), "stroke 0 has a non-numeric coordinate"),
    (lambda D: D.from_points([[[torch.zeros(10**6)] * 2] * 5000]), "stroke 0 has a non-numeric coordinate"),
    (lambda D: D.from_points([range(10**20)]), "more than the 10,000 points a drawing may have"),
    (lambda D: D.from_points([[[1, 2], [3, 4, 5]]]), "stroke 0 has a non-numeric coordinate"),
    (lambda D: D.from_points([[[1, 2], 3]]), "stroke 0 has a non-numeric coordinate"),
    (lambda D: D.from_points([[[1, True]]]), "stroke 0 has a coordinate that is True or False"),
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
    d = Drawing.from_strokes([([1, 50, 90], [2, 60, 10])], "\n" * MAX_NAME)  # the longest word a drawing may have
    grid = sketchgen.grid([d, d])
    grid.save(tmp_path / "g.png")
    plain = Image.open(tmp_path / "g.png")
    assert plain.height == 128 and plain.width < 2 * 128 + 1000  # the label is shortened, not 100 lines or 2,000 px
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


# --- ndjson written is what the drawing is, and what the reader reads back ----------------------------------------


@pytest.fixture(scope="module")
def apple_lines() -> list[str]:
    path = SIMPLIFIED / "apple.ndjson"
    if not path.exists():
        pytest.skip(f"real QuickDraw drawings not found at {path}")
    with path.open() as f:
        return [line for line, _ in zip(f, range(50))]


def test_real_drawings_write_back_their_own_lines(apple_lines, tmp_path):
    """Every field a QuickDraw line has is written back as it was (its own fields first, then the rest: the
    timestamp, which the reader dropped until it kept whatever else a line says), and what else is said of a
    drawing follows; the reader reads it all back."""
    (tmp_path / "in.ndjson").write_text("".join(apple_lines))
    drawings = list(sketchgen.read_ndjson(tmp_path / "in.ndjson"))
    assert len(drawings) == len(apple_lines) and {d.recognized for d in drawings} == {True, False}
    for d in drawings[:2]:
        d.info.update(model="mdn", seed=3, temperature=0.5)
    sketchgen.write_ndjson(drawings, tmp_path / "out.ndjson")
    written = (tmp_path / "out.ndjson").read_text().splitlines()
    for i, (line, out) in enumerate(zip(apple_lines, written)):
        record = json.loads(line)
        said = {"model": "mdn", "seed": 3, "temperature": 0.5} if i < 2 else {}
        own = {k: record.pop(k) for k in ("word", "countrycode", "recognized", "key_id", "drawing")}
        assert out == json.dumps({**own, **record, **said})
    back = list(sketchgen.read_ndjson(tmp_path / "out.ndjson"))
    assert [d.to_ndjson() for d in back] == written  # what a drawing says, read back too (it was dropped)


def test_info_never_replaces_a_drawings_own_fields(apple_lines, tmp_path):
    strokes = json.loads(apple_lines[1])["drawing"]
    fake = [[[1], [1]]]
    for make in (lambda: Drawing.from_strokes(strokes, "apple", drawing=fake),
                 lambda: Drawing.from_points(parse_drawing(strokes), "apple", drawing=fake),
                 lambda: Drawing.from_stroke3(Drawing.from_strokes(strokes).stroke3, "apple", drawing=fake)):
        with pytest.raises(DrawingError, match=r"\A'drawing' is a drawing's own field, [^\n]*strokes\Z"):
            make()
    d = Drawing.from_strokes(strokes, "apple")
    for field, value in (("drawing", fake), ("word", "cat"), ("recognized", False), ("key_id", "1"),
                         ("countrycode", "XX")):
        for write in (d.to_record, d.to_ndjson):
            with pytest.raises(DrawingError, match=rf"\A'{field}' is a drawing's own field"):
                write(**{field: value})
    d.info["drawing"] = fake  # put there by hand: never written over the strokes
    with pytest.raises(DrawingError, match=r"\A'drawing' is a drawing's own field"):
        sketchgen.write_ndjson([d], tmp_path / "d.ndjson")
    assert not (tmp_path / "d.ndjson").exists()


@pytest.mark.parametrize("fields, says", [
    ({"recognized": "no"}, r"recognized must be True or False, not 'no'"),
    ({"recognized": 1}, r"recognized must be True or False, not 1"),
    ({"key_id": {"a": 1}}, r"key_id must be a string, not \{'a': 1\}"),
    ({"countrycode": [1, 2]}, r"countrycode must be a string, not \[1, 2\]"),
    ({"word": 5}, r"word must be a string, not 5"),
    ({"word": "x" * 5_000_000}, r"word is 5,000,000 characters, more than the 100"),
    ({"key_id": "1" * (MAX_NAME + 1)}, r"key_id is 101 characters, more than the 100"),
])
def test_fields_the_reader_would_refuse_are_refused(fields, says, apple_lines, tmp_path):
    strokes = json.loads(apple_lines[1])["drawing"]
    with pytest.raises(DrawingError, match=r"\Aa drawing's " + says):
        Drawing.from_strokes(strokes, **{"word": "apple", **fields})
    d = Drawing.from_strokes(strokes, "apple")
    for name, value in fields.items():  # set by hand, after the checks: refused when written
        setattr(d, name, value)
    with pytest.raises(DrawingError, match=r"\Aa drawing's " + says):
        sketchgen.write_ndjson([d], tmp_path / "bad.ndjson")
    assert not (tmp_path / "bad.ndjson").exists()


def test_the_longest_fields_allowed_are_read_back(apple_lines, tmp_path):
    text = "\n\u00e9" + "x" * (MAX_NAME - 2)
    d = Drawing.from_strokes(json.loads(apple_lines[1])["drawing"], text, key_id=text, countrycode="", recognized=False,
                             note="y" * (MAX_LINE // 2))
    sketchgen.write_ndjson([d], tmp_path / "long.ndjson")
    (back,) = sketchgen.read_ndjson(tmp_path / "long.ndjson")  # the reader keeps QuickDraw's fields, not the note
    assert (back.word, back.key_id, back.recognized) == (text, text, False)
    assert [p.tolist() for p in back.points] == [p.tolist() for p in d.points]


@pytest.mark.parametrize("value, says", [
    (float("nan"), "Out of range float"),
    (float("-inf"), "Out of range float"),
    ([1.0, float("inf")], "Out of range float"),
    (np.arange(3), "ndarray is not JSON serializable"),
    ({1, 2}, "set is not JSON serializable"),
    ({(1, 2): 3}, "keys must be str"),
])
def test_ndjson_is_strict_json_or_one_line_naming_the_field(value, says, tmp_path):
    d = Drawing.from_strokes([([1, 50, 90], [2, 60, 10])], "eye", model="mdn")
    with pytest.raises(DrawingError, match=r"\Afield 'x' of a 'eye' drawing cannot be written as JSON: [^\n]*" + says):
        d.to_ndjson(x=value)
    d.info["x"] = value
    with pytest.raises(DrawingError, match=r"\Afield 'x' "):
        sketchgen.write_ndjson([d], tmp_path / "nan.ndjson")
    assert not (tmp_path / "nan.ndjson").exists()


def test_a_line_the_reader_would_skip_is_refused(tmp_path):
    d = Drawing.from_strokes([([1, 50, 90], [2, 60, 10])], "eye", note="x" * 5_000_000)
    with pytest.raises(DrawingError, match=r"\Aa 'eye' drawing's line would be 5,000,\d+ bytes, more than the "
                                           r"1,048,576 [^\n]*'note'"):
        sketchgen.write_ndjson([d], tmp_path / "big.ndjson")
    assert not (tmp_path / "big.ndjson").exists()


# --- pictures of many drawings: bounded, refused before any is drawn -------------------------------------------


@pytest.fixture(scope="module")
def apple(apple_lines) -> Drawing:
    return Drawing.from_strokes(json.loads(apple_lines[1])["drawing"], "apple")


@pytest.mark.parametrize("n", [20_000, 200_000])
def test_a_grid_of_too_many_drawings_is_refused_when_made(apple, n, tmp_path):
    for make in (lambda: sketchgen.grid([apple] * n), lambda: Grid([apple] * n, columns=8, size=128),
                 lambda: render.grid([("apple", [apple.points] * 8)] * (n // 8), tmp_path / "g.png")):
        with pytest.raises(DrawingError, match=rf"\A{n:,} drawings make a [\d,]+ x [\d,]+ pixel sheet "
                                               rf"\(a sheet's pixels: [\d,]+, more than {render.MAX_PIXELS:,}\)"):
            make()
    with pytest.raises(DrawingError, match=rf"\A{n:,} drawings make a {n * 128:,} x 128 pixel sheet"):
        render.strip([apple.points] * n, tmp_path / "s.png", cell=128)
    assert not list(tmp_path.iterdir())


def test_a_sheet_of_too_many_points_is_refused_from_its_counts_before_any_is_copied(tmp_path):
    """A grid within the pixels but of 8,000 drawings of 10,000 points took 581 s to draw; one past them, and a GIF
    of 10,000 such drawings, copied every drawing's points first (1.8 GB, 15.5 GB for 100,000) to be refused after
    (found by an audit). Now both are refused from the counts, at once."""
    import tracemalloc

    big = Drawing.from_strokes([[list(range(10_000)), [0, 50] * 5_000]], "zigzag")
    tracemalloc.start()
    try:
        with pytest.raises(DrawingError, match=r"\A600 drawings hold 6,000,000 points, more than the 5,000,000 a sheet "
                                               r"draws: give fewer drawings\Z"):
            Grid([big] * 600, columns=40, size=16)
        for make in (lambda: sketchgen.grid([big] * 100_000), lambda: sketchgen.animate([big] * 10_000,
                                                                                        tmp_path / "a.gif")):
            with pytest.raises(DrawingError, match=r"pixel"):
                make()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20e6 and not list(tmp_path.iterdir())


@pytest.mark.parametrize("n", [5_000, 100_000])
def test_a_gif_of_too_many_drawings_is_refused_before_it_is_drawn(apple, n, tmp_path):
    with pytest.raises(DrawingError, match=rf"\A{n:,} drawings make \d+ GIF frames of 768 x {-(-n // 4) * 192:,} "
                                           rf"pixels \(a GIF frame's pixels: [\d,]+, more than "
                                           rf"{render.MAX_GIF_FRAME:,}\)"):
        sketchgen.animate([apple] * n, tmp_path / "a.gif")
    assert not list(tmp_path.iterdir())


def test_gif_bounds_its_side_and_all_its_frames(apple, tmp_path):
    dot = [np.array([[0.0, 0.0], [1.0, 1.0]])]  # two frames
    with pytest.raises(DrawingError, match=r"\A2,048 drawings make 2 GIF frames of 32 x 65,536 pixels \(a GIF's side: "
                                           r"65,536, more than 65,535\)"):
        render.animate_many([dot] * 2048, tmp_path / "tall.gif", columns=1, cell=32)
    with pytest.raises(DrawingError, match=rf"\A29 drawings make 201 GIF frames of 768 x 1,536 pixels \(a GIF's pixels "
                                           rf"in all its frames: [\d,]+, more than {render.MAX_GIF_PIXELS:,}\)"):
        render.animate_many([[np.zeros((600, 2))]] * 29, tmp_path / "long.gif")
    with pytest.raises(DrawingError, match=r"\A202 drawings make 202 GIF frames of 1,024 x 1,024 pixels"):
        render.morph_gif([apple.points] * 202, tmp_path / "morph.gif", size=1024)
    assert not list(tmp_path.iterdir())
    render.animate_many([dot] * 256, tmp_path / "largest.gif", columns=16, cell=128)  # as large a frame as may be
    gif = Image.open(tmp_path / "largest.gif")
    assert gif.size == (2048, 2048) and gif.n_frames == 2
    with pytest.raises(DrawingError, match=r"\A257 drawings make 2 GIF frames of 2,048 x 2,176 pixels"):
        render.animate_many([dot] * 257, tmp_path / "larger.gif", columns=16, cell=128)
