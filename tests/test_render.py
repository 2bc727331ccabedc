"""render on real QuickDraw drawings: the pictures have the ink where the drawing is, and only there."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

from sketchgen import render
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
