"""How close a set of generated drawings is to real ones, as papers measure it: the maths, in NumPy.

Every function takes sets of vectors, one row per drawing (the classifier's features, or a drawing's pixels), and
knows nothing of models or files; ``evaluate`` decides which vectors to compare and reports the numbers.

* **Fréchet distance** (Heusel et al. 2017, "FID" when the vectors are a classifier's features): fit a Gaussian
  to each set and take |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)). It compares means and spreads at once,
  so a generator that draws only one kind of eye scores worse than one that draws all kinds.
* **Improved precision and recall** (Kynkäänniemi et al. 2019): each set's manifold is the union of balls
  around its points reaching their k-th nearest neighbour. Precision is the share of generated drawings inside
  the real manifold (are they realistic?), recall the share of real drawings inside the generated one (is all
  of the variety drawn?). One number can hide what the other shows: a model that repeats a few training
  drawings has high precision and low recall.
* **Nearest neighbours**, for telling copying from drawing: each generated drawing's distance to the closest
  training drawing, read against the same distance for held-out real drawings (see ``copying``).

Distances are computed a block of rows at a time (at most ``CHUNK`` matrix entries), so memory stays bounded
whatever the set sizes; everything is float64.
"""

from __future__ import annotations

import numpy as np

# Kynkäänniemi et al.'s choice of neighbour for the manifold radius.
K = 3
# Entries of a distance matrix held at once: 2**22 float64 values are 32 MiB.
CHUNK = 2**22


# --- Fréchet distance -------------------------------------------------------------------------


def gaussian(x: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Mean and unbiased covariance of the rows of ``x``, each weighted by ``weights`` (default: equally).

    Unbiased for reliability weights: divided by 1 - sum(w^2) with w summing to 1, which for equal weights is
    numpy's ``np.cov`` (n - 1). None when fewer than two rows carry weight: no spread to measure.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.full(len(x), 1.0) if weights is None else np.asarray(weights, dtype=np.float64)
    if x.ndim != 2 or len(w) != len(x) or w.sum() <= 0:
        return None
    w = w / w.sum()
    correction = 1 - float(np.sum(w * w))
    if correction <= 1e-12:
        return None
    mu = w @ x
    centred = x - mu
    return mu, (centred * w[:, None]).T @ centred / correction


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    """The symmetric square root of a positive semi-definite matrix (rounding's negative eigenvalues as 0)."""
    values, vectors = np.linalg.eigh((m + m.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_from_moments(mu1, s1, mu2, s2) -> float:
    """|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) for covariances S1, S2 (positive semi-definite).

    Tr((S1 S2)^(1/2)) is computed as the sum of the square roots of the eigenvalues of S1^(1/2) S2 S1^(1/2),
    which is symmetric PSD and has the eigenvalues of S1 S2: two ``eigh`` calls, stable where S1 S2 is
    singular (fewer drawings than dimensions), and no complex parts to discard as a general ``sqrtm`` has.
    """
    root = _sqrt_psd(np.asarray(s1, dtype=np.float64))
    middle = root @ np.asarray(s2, dtype=np.float64) @ root
    trace_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum())
    diff = np.asarray(mu1, dtype=np.float64) - np.asarray(mu2, dtype=np.float64)
    # A squared distance; rounding can take an exact 0 a hair below.
    return max(0.0, float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt))


def frechet_distance(a: np.ndarray, b: np.ndarray, weights_a=None, weights_b=None) -> float | None:
    """The Fréchet distance between Gaussians fitted to two sets of rows; None if either has under two rows.

    Weights let a set count each class equally however many drawings each has (see ``pooled_frechet``).
    A covariance of lower rank than the dimension (fewer rows than columns) is fine for the formula, though a
    distance from few rows is mostly sample noise.
    """
    first, second = gaussian(a, weights_a), gaussian(b, weights_b)
    if first is None or second is None:
        return None
    return frechet_from_moments(*first, *second)


def pooled_frechet(sets_a: list[np.ndarray], sets_b: list[np.ndarray]) -> float | None:
    """The Fréchet distance between two pools of per-class sets, every class weighing the same on each side.

    Pooling as it comes would weigh a class by its drawing count, so a balanced generator compared with test
    drawings that are 30% eyes would be charged for the mix rather than for its drawings.
    """
    pools = []
    for sets in (sets_a, sets_b):
        counts = np.array([len(s) for s in sets])
        weights = np.repeat(1.0 / (max(1, np.count_nonzero(counts)) * np.maximum(counts, 1)), counts)
        pools += [np.concatenate(sets), weights]
    return frechet_distance(pools[0], pools[2], pools[1], pools[3])


def halves(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Alternate rows, for a real-against-real floor: (rows 0, 2, 4, ...), (rows 1, 3, 5, ...)."""
    return x[0::2], x[1::2]


# --- neighbours -------------------------------------------------------------------------------


def _distance_blocks(queries: np.ndarray, points: np.ndarray):
    """(first row, block of the queries x points Euclidean distance matrix), at most CHUNK entries a block."""
    queries, points = np.asarray(queries, dtype=np.float64), np.asarray(points, dtype=np.float64)
    origin = points.mean(axis=0) if len(points) else 0.0  # centring keeps |q|^2 + |p|^2 - 2 q.p from cancelling
    queries, points = queries - origin, points - origin
    squared = np.einsum("ij,ij->i", points, points)
    rows = max(1, CHUNK // max(1, len(points)))
    for start in range(0, len(queries), rows):
        q = queries[start : start + rows]
        d2 = np.einsum("ij,ij->i", q, q)[:, None] + squared[None, :] - 2 * q @ points.T
        yield start, np.sqrt(np.clip(d2, 0, None))


def nearest(queries: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each query row, the distance to its nearest row of ``points`` and that row's index."""
    distances, indices = np.empty(len(queries)), np.empty(len(queries), dtype=np.int64)
    for start, d in _distance_blocks(queries, points):
        idx = d.argmin(axis=1)
        indices[start : start + len(d)] = idx
        distances[start : start + len(d)] = d[np.arange(len(d)), idx]
    return distances, indices


def radii(x: np.ndarray, k: int = K) -> np.ndarray:
    """Each row's distance to its k-th nearest other row (needs more than k rows)."""
    out = np.empty(len(x))
    for start, d in _distance_blocks(x, x):
        out[start : start + len(d)] = np.partition(d, k, axis=1)[:, k]  # position 0 is the row itself
    return out


def inside(queries: np.ndarray, points: np.ndarray, point_radii: np.ndarray) -> np.ndarray:
    """Whether each query lies within some point's ball (the k-NN manifold of ``points``)."""
    found = np.zeros(len(queries), dtype=bool)
    for start, d in _distance_blocks(queries, points):
        found[start : start + len(d)] = (d <= point_radii[None, :]).any(axis=1)
    return found


def precision_recall(real: np.ndarray, generated: np.ndarray, k: int = K) -> tuple[float | None, float | None, int]:
    """(precision, recall, k used): improved precision and recall with k-NN manifolds.

    A set of n rows has no k-th neighbour when n <= k, so k is lowered to n - 1 for small sets (the k used is
    returned: with 4 real drawings and k = 3 each ball reaches the farthest other drawing, a generous manifold).
    None for both when either set has under two rows.
    """
    k = min(k, len(real) - 1, len(generated) - 1)
    if k < 1:
        return None, None, 0
    precision = float(inside(generated, real, radii(real, k)).mean())
    recall = float(inside(real, generated, radii(generated, k)).mean())
    return precision, recall, k


# --- copying ----------------------------------------------------------------------------------


def copying(generated: np.ndarray, test: np.ndarray, train: np.ndarray) -> dict:
    """Copying against drawing: each generated drawing's distance to its nearest training drawing, beside the
    same distance for real test drawings, which the model never saw.

    A distance alone means little (how far apart are two different eyes?); held-out real drawings say what an
    honest drawer's distance looks like. ``closer_than_test`` is the share of generated drawings nearer a
    training drawing than the median real test drawing is: about 50% for drawings as novel as real ones (real
    test drawings score 50% by construction), near 100% for a model that reproduces its training drawings.
    ``per_drawing`` lists the generated drawings' distances in order. None where a set is empty.
    """
    if not len(train):
        return {"nearest_train": None, "test_nearest_train": None, "closer_than_test": None, "per_drawing": []}
    gen = nearest(generated, train)[0] if len(generated) else np.zeros(0)
    real = nearest(test, train)[0] if len(test) else np.zeros(0)
    return {
        "nearest_train": float(gen.mean()) if len(gen) else None,
        "test_nearest_train": float(real.mean()) if len(real) else None,
        "closer_than_test": float(np.mean(gen < np.median(real))) if len(gen) and len(real) else None,
        "per_drawing": gen.tolist(),
    }
