"""metrics: FID, precision/recall and copying against closed forms, on synthetic sets and on real drawings."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from sketchgen import classifier as C
from sketchgen import evaluate as E
from sketchgen import metrics as M
from sketchgen.cli import SEED_CLASSES
from sketchgen.data import prepare
from sketchgen.strokes import stroke3_to_strokes


@pytest.fixture(scope="module")
def classifier(seed_data):
    torch.set_num_threads(1)
    return C.train_classifier(seed_data, epochs=8, seed=0, log=lambda msg: None)[0]


def drawings(data, split, c):
    idx = data.indices(split)
    return [stroke3_to_strokes(data.stroke3(i)) for i in idx[data.labels[idx] == c]]


def with_moments(mu, cov, n=50, seed=0):
    """n rows whose sample mean and (n - 1) covariance are exactly mu and cov."""
    z = np.random.default_rng(seed).normal(size=(n, len(mu)))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # identity sample covariance
    return z @ np.linalg.cholesky(cov).T + mu


def random_cov(dim, seed):
    a = np.random.default_rng(seed).normal(size=(dim, dim))
    return a @ a.T + 0.1 * np.eye(dim)


def test_frechet_distance_of_a_set_with_itself_is_zero(classifier, seed_data):
    eyes = C.features(classifier, drawings(seed_data, "train", SEED_CLASSES.index("eye")))
    assert eyes.shape == (42, C.FEATURES) and eyes.dtype == np.float32
    for rows in (eyes, eyes[:5], with_moments(np.zeros(6), random_cov(6, 1))):  # 5 drawings: rank 4 of 128
        scale = np.trace(np.cov(rows, rowvar=False))
        assert M.frechet_distance(rows, rows) == pytest.approx(0, abs=1e-6 * scale)


def test_frechet_distance_matches_closed_forms():
    cov, shift = random_cov(5, 2), np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    a = with_moments(np.zeros(5), cov)
    # Shifted: equal covariances cancel, leaving the squared shift.
    assert M.frechet_distance(a, a + shift) == pytest.approx(shift @ shift, rel=1e-9)
    # Diagonal covariances commute: sum of (sqrt(s1) - sqrt(s2))^2.
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    fid = M.frechet_distance(with_moments(np.zeros(3), np.diag(s1)), with_moments(np.ones(3), np.diag(s2), seed=1))
    assert fid == pytest.approx(3 + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2), rel=1e-9)
    # 2 x 2, not commuting: Tr (S1 S2)^(1/2) = sqrt(Tr S1 S2 + 2 sqrt(det S1 det S2)).
    c1, c2 = random_cov(2, 3), random_cov(2, 4)
    assert not np.allclose(c1 @ c2, c2 @ c1)
    trace_sqrt = np.sqrt(np.trace(c1 @ c2) + 2 * np.sqrt(np.linalg.det(c1) * np.linalg.det(c2)))
    expected = np.trace(c1) + np.trace(c2) - 2 * trace_sqrt
    b1, b2 = with_moments(np.zeros(2), c1), with_moments(np.zeros(2), c2, n=7, seed=5)
    assert M.frechet_distance(b1, b2) == pytest.approx(expected, rel=1e-9)
    assert M.frechet_from_moments(np.zeros(2), c1, np.zeros(2), c2) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_is_symmetric_and_refuses_too_few_drawings(classifier, seed_data):
    apples, circles = (C.features(classifier, drawings(seed_data, "test", SEED_CLASSES.index(c)))
                       for c in ("apple", "circle"))
    forward = M.frechet_distance(apples, circles)
    # Each order takes its own matrix square root: they agree to a few parts in a billion, not bit for bit.
    assert forward > 1 and M.frechet_distance(circles, apples) == pytest.approx(forward, rel=1e-8)
    assert M.frechet_distance(apples[:1], circles) is None and M.frechet_distance(circles, apples[:0]) is None
    assert M.frechet_distance(apples[:2], circles[:2]) > 0  # two drawings: a rank-1 covariance is fine


def test_pooled_frechet_weighs_classes_equally():
    """Test drawings 10 parts one class to 1 part another, generated ones balanced, drawn alike: pooled charges
    nothing for the mix, plain pooling a lot."""
    rng = np.random.default_rng(0)
    gen = [rng.normal(0, 1, (300, 4)), rng.normal(5, 1, (300, 4))]
    real = [rng.normal(0, 1, (3000, 4)), rng.normal(5, 1, (300, 4))]
    balanced, plain = M.pooled_frechet(gen, real), M.frechet_distance(np.concatenate(gen), np.concatenate(real))
    assert balanced < 0.2 and plain > 10
    assert M.pooled_frechet(gen, [real[0], real[1][:0]]) > 20  # a class with no drawings is left out, not counted
    assert M.pooled_frechet([gen[0][:0]], [real[0]]) is None


def test_precision_and_recall_on_synthetic_manifolds():
    real = np.random.default_rng(0).normal(size=(200, 8))
    assert M.precision_recall(real, real.copy()) == (1.0, 1.0, M.K)
    collapsed = np.repeat(real[:3], 100, axis=0)  # a generator that draws three real drawings over and over
    precision, recall, _ = M.precision_recall(real, collapsed)
    assert precision == 1.0 and recall < 0.05
    assert M.precision_recall(real, real + 100) == (0.0, 0.0, M.K)  # disjoint
    wide = np.random.default_rng(1).normal(scale=3, size=(200, 8))  # spread too wide: realistic only sometimes
    precision, recall, _ = M.precision_recall(real, wide)
    assert precision < 0.5 < recall


def test_precision_and_recall_on_real_drawings(classifier, seed_data):
    eye, circle = SEED_CLASSES.index("eye"), SEED_CLASSES.index("circle")
    eyes = C.features(classifier, drawings(seed_data, "train", eye))
    circles = C.features(classifier, drawings(seed_data, "train", circle))
    assert M.precision_recall(eyes, eyes) == (1.0, 1.0, M.K)
    precision, recall, _ = M.precision_recall(eyes, np.repeat(eyes[:2], 20, axis=0))
    assert precision == 1.0 and recall < 0.2
    precision, recall, _ = M.precision_recall(eyes, circles)
    assert precision < 0.2 and recall < 0.2  # another class: almost nothing of either in the other's manifold


def test_precision_and_recall_with_few_drawings():
    rows = np.random.default_rng(0).normal(size=(6, 3))
    assert M.precision_recall(rows[:3], rows)[2] == 2  # no 3rd neighbour among 3: k lowered to 2
    precision, recall, k = M.precision_recall(rows[:2], rows)
    assert k == 1 and recall == 1.0 and 2 / 6 <= precision <= 1  # each real row is among the generated
    assert M.precision_recall(rows[:1], rows) == (None, None, 0)
    assert M.precision_recall(rows, rows[:0]) == (None, None, 0)


def test_distances_are_the_same_in_small_chunks(monkeypatch):
    rng = np.random.default_rng(0)
    queries, points = rng.normal(size=(37, 5)), rng.normal(size=(23, 5))
    whole = M.nearest(queries, points), M.radii(points), M.precision_recall(points, queries)
    exact = np.linalg.norm(queries[:, None] - points[None], axis=-1)
    assert np.allclose(whole[0][0], exact.min(axis=1)) and np.array_equal(whole[0][1], exact.argmin(axis=1))
    monkeypatch.setattr(M, "CHUNK", 7)  # blocks of one row
    chunked = M.nearest(queries, points), M.radii(points), M.precision_recall(points, queries)
    assert np.allclose(chunked[0][0], whole[0][0]) and np.array_equal(chunked[0][1], whole[0][1])
    assert np.allclose(chunked[1], whole[1]) and chunked[2] == whole[2]


def test_copying_flags_a_model_that_returns_its_training_drawings(classifier, seed_data):
    """Training drawings passed off as generated sit at distance 0 from the training set, all nearer than the
    test drawings are; test drawings passed off as generated are the baseline, about half."""
    n = 16  # apple has 16 training drawings
    train = [d for c in range(len(SEED_CLASSES)) for d in drawings(seed_data, "train", c)[:n]]
    copied, _ = E.against_real(classifier, seed_data, train, n)
    for c, entry in enumerate(copied):
        copy = entry["copying"]
        assert copy["nearest_train"] == pytest.approx(0, abs=1e-3) and max(copy["per_drawing"]) < 1e-3
        assert copy["closer_than_test"] == 1.0 and copy["test_nearest_train"] > 3
        assert copy["n_train"] == len(drawings(seed_data, "train", c)) and copy["n_test"] == entry["fid"]["n_real"]
    n = 3  # square and triangle have 3 test drawings
    test = [d for c in range(len(SEED_CLASSES)) for d in drawings(seed_data, "test", c)[:n]]
    baseline, _ = E.against_real(classifier, seed_data, test, n)
    shares = [e["copying"]["closer_than_test"] for e in baseline]
    assert all(s < 1 for s in shares) and np.mean(shares) < 0.6
    assert all(min(e["copying"]["per_drawing"]) > 1 for e in baseline)


def test_a_model_that_memorises_has_high_precision_and_low_recall(classifier, seed_data):
    """The issue's case: drawing two training drawings of each class over and over."""
    n = 16
    repeated = [d for c in range(len(SEED_CLASSES)) for d in drawings(seed_data, "train", c)[:2] * (n // 2)]
    entries, _ = E.against_real(classifier, seed_data, repeated, n)
    eye = entries[SEED_CLASSES.index("eye")]["precision_recall"]  # 9 test eyes
    assert eye["precision"] >= 0.5 and eye["recall"] <= 0.25 and eye["n_real"] == 9 and eye["k"] == M.K
    assert np.mean([e["precision_recall"]["recall"] for e in entries]) <= 0.25


def test_few_test_drawings_give_none_not_a_crash(classifier, quickdraw):
    for cap, n_test in ((4, 0), (6, 1)):
        data = prepare(SEED_CLASSES, quickdraw / "simplified", max_per_class=cap, seed=0)
        assert np.all(np.bincount(data.labels[data.indices("test")], minlength=5) == n_test)
        generated = [d for c in range(len(SEED_CLASSES)) for d in drawings(data, "train", c)[:2]]
        entries, pooled = E.against_real(classifier, data, generated, 2)
        for entry in entries:
            assert entry["fid"]["value"] is None and entry["fid"]["floor"] is None
            assert entry["fid"]["n_real"] == n_test and entry["fid"]["n_floor"] == [n_test, 0]
            assert entry["precision_recall"]["precision"] is None and entry["precision_recall"]["recall"] is None
            assert entry["copying"]["nearest_train"] == pytest.approx(0, abs=1e-3)
            assert (entry["copying"]["closer_than_test"] is None) == (n_test == 0)
        assert pooled["pooled_floor"] is None and (pooled["pooled"] is None) == (n_test == 0)


def test_metrics_is_numpy_only():
    tree = ast.parse(Path(M.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported == {"__future__", "numpy"}
