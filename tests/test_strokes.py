"""strokes: every conversion round-trips exactly on real drawings and on the degenerate ones; bad drawings are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sketchgen import strokes as S
from sketchgen.strokes import StrokeError

# Whole files: a few hundred drawings. Simplified files have repeated points; only raw ones have
# one-point strokes, and their screen coordinates are floats such as 261.1999969482422.
SIMPLIFIED_CLASSES = ["circle", "zigzag", "apple", "The Eiffel Tower"]
RAW_CLASSES = ["barn", "bandage", "The Great Wall of China"]


def load_fields(path) -> list:
    with open(path) as f:
        return [json.loads(line)["drawing"] for line in f]


@pytest.fixture(scope="module")
def real_drawings(quickdraw) -> list[list[np.ndarray]]:
    fields = [f for c in SIMPLIFIED_CLASSES for f in load_fields(quickdraw / "simplified" / f"{c}.ndjson")]
    fields += [f for c in RAW_CLASSES for f in load_fields(quickdraw / "raw" / f"{c}.ndjson")]
    return [S.parse_drawing(f) for f in fields]


def assert_same_strokes(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


EDGE_CASES = {
    "one point": [np.array([[5.0, 7.0]])],
    "one-point strokes between others": [np.array([[0.0, 0.0], [3.0, 4.0]]), np.array([[9.0, 9.0]]),
                                         np.array([[1.0, 2.0]]), np.array([[255.0, 0.0], [0.0, 255.0]])],
    "repeated points": [np.array([[10.0, 10.0], [10.0, 10.0], [10.0, 10.0]]), np.array([[10.0, 10.0], [10.0, 10.0]])],
    "stroke starting where the last ended": [np.array([[1.0, 1.0], [2.0, 2.0]]), np.array([[2.0, 2.0], [3.0, 1.0]])],
    "negative and fractional": [np.array([[-3.5, 2.25], [100.125, -0.5]])],
}


def test_real_drawings_have_the_degenerate_cases(real_drawings):
    """The round-trip tests below would prove little without single points, repeated points and fractions."""
    singles = sum(len(s) == 1 for d in real_drawings for s in d)
    repeats = sum(bool((np.diff(s, axis=0) == 0).all(axis=1).any()) for d in real_drawings for s in d if len(s) > 1)
    fractional = sum(bool((np.vstack(d) % 1 != 0).any()) for d in real_drawings)
    assert len(real_drawings) > 450 and singles > 0 and repeats > 0 and fractional > 0


def round_trips(drawing: list[np.ndarray]) -> None:
    absolute = S.strokes_to_absolute(drawing)
    assert absolute.shape == (sum(map(len, drawing)), 3)
    assert absolute[:, 2].sum() == len(drawing) and absolute[-1, 2] == 1
    assert_same_strokes(S.absolute_to_strokes(absolute), drawing)

    s3 = S.absolute_to_stroke3(absolute)
    np.testing.assert_array_equal(s3[0, :2], absolute[0, :2])  # the first row is an offset from the origin
    np.testing.assert_array_equal(S.stroke3_to_absolute(s3), absolute)
    np.testing.assert_array_equal(S.strokes_to_stroke3(drawing), s3)
    assert_same_strokes(S.stroke3_to_strokes(s3), drawing)

    s5 = S.stroke3_to_stroke5(s3)
    assert s5.shape == (len(s3) + 1, 5)
    np.testing.assert_array_equal(s5[:, 2:].sum(axis=1), 1)  # one-hot pen state
    np.testing.assert_array_equal(s5[-1], [0, 0, 0, 0, 1])
    np.testing.assert_array_equal(S.stroke5_to_stroke3(s5), s3)

    padded = S.stroke3_to_stroke5(s3, max_len=len(s3) + 7)
    assert padded.shape == (len(s3) + 8, 5)
    np.testing.assert_array_equal(padded[len(s3):], np.tile([0, 0, 0, 0, 1], (8, 1)))
    np.testing.assert_array_equal(S.stroke5_to_stroke3(padded), s3)


def test_round_trips_on_real_drawings(real_drawings):
    for drawing in real_drawings:
        round_trips(drawing)


@pytest.mark.parametrize("name", EDGE_CASES)
def test_round_trips_on_edge_cases(name):
    round_trips(EDGE_CASES[name])


def test_drawing_field_round_trip(real_drawings, quickdraw):
    """Back to QuickDraw's own ``drawing`` field, integer for integer."""
    fields = load_fields(quickdraw / "simplified" / "circle.ndjson")
    for field in fields:
        assert S.drawing_field(S.parse_drawing(field)) == field


def test_raw_strokes_drop_the_times(quickdraw):
    with open(quickdraw / "raw" / "cat.ndjson") as f:
        field = json.loads(f.readline())["drawing"]
    parsed = S.parse_drawing(field)
    assert [s.shape for s in parsed] == [(len(xs), 2) for xs, _, _ in field]
    np.testing.assert_array_equal(parsed[0][:, 0], field[0][0])


def test_stroke5_scores_and_missing_end_row():
    """Model outputs are scores, not one-hot; a sequence cut off before its end row still ends with a lift."""
    s5 = np.array([[1, 2, 0.9, 0.05, 0.05], [3, 4, 0.2, 0.7, 0.1], [5, 6, 0.6, 0.3, 0.1]])
    np.testing.assert_array_equal(S.stroke5_to_stroke3(s5), [[1, 2, 0], [3, 4, 1], [5, 6, 1]])
    ended = np.vstack([s5, [[7, 8, 0.1, 0.1, 0.8]], s5])
    assert len(S.stroke5_to_stroke3(ended)) == 3


def test_stroke5_refuses_a_drawing_longer_than_max_len():
    with pytest.raises(StrokeError, match="more than max_len 2"):
        S.stroke3_to_stroke5(np.zeros((3, 3)), max_len=2)


@pytest.mark.parametrize(
    "field, message",
    [
        ([], "drawing is empty"),
        ("not a list", "not a list of strokes"),
        ([[[1, 2], [3, 4]], [[5, 6, 7], [8, 9]]], "stroke 1 has 3 x values but 2 y values"),
        ([[[], []]], "stroke 0 is empty"),
        ([[[1, 2]]], r"stroke 0 is not \[\[xs\], \[ys\]\]"),
        ([[[1, "2"], [3, 4]]], "stroke 0 has a non-numeric coordinate"),
        ([[[1, 2], [3, None]]], "stroke 0 has a non-numeric coordinate"),
        ([[[True, False], [False, True]]], "stroke 0 has a non-numeric coordinate"),
        ([[[1, 2], [3, 4]], [[5, True], [6, 7]]], "stroke 1 has a non-numeric coordinate"),  # not quietly 1
        ([[[[1], [2]], [[3], [4]]]], "stroke 0 has a non-numeric coordinate"),
        ([[[1, 2], 7]], "stroke 0 coordinates are not lists"),
        ([[[1, float("nan")], [3, 4]]], "stroke 0 has a non-finite coordinate"),
        ([[[1, 2], [3, float("inf")]]], "stroke 0 has a non-finite coordinate"),
        ([[[1, 2], [3, 4]], [[1, 10**30], [3, 4]]], r"stroke 1 has a coordinate beyond \+-16383"),  # not "non-numeric"
    ],
)
def test_invalid_drawings_are_refused_with_the_reason(field, message):
    with pytest.raises(StrokeError, match=message):
        S.parse_drawing(field)


def test_nan_as_written_in_json_is_refused():
    """Python's json module reads the non-standard literal NaN; the drawing must still be refused."""
    with pytest.raises(StrokeError, match="non-finite"):
        S.parse_drawing(json.loads('[[[1, NaN], [2, 3]]]'))


@pytest.mark.parametrize("convert", [S.absolute_to_strokes, S.absolute_to_stroke3, S.stroke3_to_absolute])
def test_wrong_array_shapes_are_refused(convert):
    with pytest.raises(StrokeError, match=r"must have shape \(N, 3\)"):
        convert(np.zeros((4, 2)))


def test_empty_strokes_list_is_refused():
    with pytest.raises(StrokeError, match="drawing is empty"):
        S.strokes_to_absolute([])
