"""From prepared drawings to training batches: which drawings go together, augmented, padded, built ahead.

A *plan* is a list of index arrays, one per batch, into the training drawings;
it is a pure function of the seed and the round (an epoch, or a stretch of
steps between validations), so a resumed run replays it exactly. Batches hold
drawings of similar length, so little of each is padding. Plans and batches are
built from NumPy arrays of the whole training split (lengths, labels), never
from Python lists per drawing, and each batch gathers only its own drawings.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

import numpy as np
import torch

from sketchgen import strokes
from sketchgen.models import Batch, Encodes, SketchModel, capable, collate
from sketchgen.training.distributed import share

WINDOW = 50  # batches whose drawings are sorted by length together: mixing within, similar lengths in each
# Keeps a batch's latent noise stream, seeded [seed, round, step, NOISE_STREAM], apart from its drawings'
# augmentation streams, seeded [seed, round, step, place]: no batch holds 2^31 drawings.
NOISE_STREAM = 2**31


def augment(s3: np.ndarray, rng: np.random.Generator, scale: float, drop: float) -> np.ndarray:
    """Sketch-RNN's augmentation: scale x and y independently, drop interior pen-down points."""
    pts = strokes.stroke3_to_absolute(s3)
    if drop > 0 and len(pts) > 2:
        interior = np.zeros(len(pts), dtype=bool)
        interior[1:] = (pts[1:, 2] == 0) & (pts[:-1, 2] == 0)  # neither first nor last of a stroke
        pts = pts[~(interior & (rng.random(len(pts)) < drop))]
    if scale > 0:
        pts[:, :2] *= rng.uniform(1 - scale, 1 + scale, size=2)
    return strokes.absolute_to_stroke3(pts)


def bucketed(positions: np.ndarray, lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``positions`` shuffled into batches of similar length: shuffle, sort by length within windows of
    ``WINDOW`` batches, cut, shuffle the batches."""
    order = positions[rng.permutation(len(positions))]
    window = batch_size * WINDOW
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        order[start : start + window] = chunk[np.argsort(lengths[chunk], kind="stable")]
    cut = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [cut[i] for i in rng.permutation(len(cut))]


def epoch_plan(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One pass over all training drawings."""
    return bucketed(np.arange(len(lengths)), lengths, batch_size, rng)


def class_shares(labels: np.ndarray, n_classes: int, balance: str) -> np.ndarray:
    """The share of drawn drawings each class gets: as in the data ("none"), equal ("classes"), or in proportion
    to the square root of its count ("sqrt": a class of 16 drawings is not seen as often as one of 3,400, which
    would learn it by heart, nor 200 times less often, which would never learn it)."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    shares = {"classes": (counts > 0).astype(np.float64), "sqrt": np.sqrt(counts)}.get(balance, counts)
    return shares / shares.sum()


def sampled_plan(labels: np.ndarray, lengths: np.ndarray, shares: np.ndarray, n_batches: int, batch_size: int,
                 rng: np.random.Generator) -> list[np.ndarray]:
    """``n_batches`` batches drawn at random: a class by ``shares``, then one of its drawings uniformly."""
    by_class = np.argsort(labels, kind="stable")
    counts = np.bincount(labels, minlength=len(shares))
    starts = np.cumsum(counts) - counts
    n = n_batches * batch_size
    cls = rng.choice(len(shares), size=n, p=shares)
    positions = by_class[starts[cls] + (rng.random(n) * counts[cls]).astype(np.int64)]
    return bucketed(positions, lengths, batch_size, rng)


def builder(net: SketchModel, data, train_idx: np.ndarray, plan: list[np.ndarray], cfg, round_: int, rank: int = 0,
            world: int = 1, pin: bool = False) -> Callable[[int], tuple[Batch, float]]:
    """``build(i)``: batch ``i`` of a round's plan as this rank trains on it - its share of the drawings,
    augmented as ``cfg`` says from (seed, round, step, place in the global batch), padded, with a latent
    model's noise drawn for the whole global batch from (seed, round, step) - and its weight."""
    def build(i: int) -> tuple[Batch, float]:
        mine, weight = share(np.arange(len(plan[i])), rank, world)
        idx = train_idx[plan[i][mine]]
        drawings = data.gather(idx)
        if cfg.augment_scale or cfg.augment_drop:
            drawings = [augment(d, np.random.default_rng([cfg.seed, round_, i, int(k)]), cfg.augment_scale,
                                cfg.augment_drop) for d, k in zip(drawings, mine)]
        batch = collate(net, drawings, data.labels[idx])
        if capable(net, Encodes):
            noise = np.random.default_rng([cfg.seed, round_, i, NOISE_STREAM]).standard_normal(
                (len(plan[i]), net.latent_dim), dtype=np.float32)
            batch.noise = torch.from_numpy(noise[mine])
        return (batch.pin_memory() if pin else batch), weight

    return build


class Prefetcher:
    """Yields ``build(i)`` for i in ``range(start, stop)``, built ``depth`` ahead on a background thread.

    The training step then never waits for batch building (NumPy and the
    padding release the GIL for much of it). ``depth`` 0 builds each batch when
    it is asked for. Exceptions in ``build`` reach the consumer; ``close`` (or
    leaving a ``with`` block) stops the thread.
    """

    def __init__(self, build: Callable[[int], object], start: int, stop: int, depth: int = 2):
        self.build, self.start, self.stop, self.depth = build, start, stop, depth
        self._queue: queue.Queue = queue.Queue(maxsize=max(depth, 1))
        self._closed = threading.Event()
        self._thread = None
        if depth:
            self._thread = threading.Thread(target=self._produce, name="sketchgen-batches", daemon=True)
            self._thread.start()

    def _produce(self) -> None:
        for i in range(self.start, self.stop):
            try:
                item = (self.build(i), None)
            except BaseException as e:  # handed to the consumer, which raises it where it can be reported
                item = (None, e)
            while not self._closed.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if self._closed.is_set() or item[1] is not None:
                return

    def __iter__(self) -> Iterator:
        for i in range(self.start, self.stop):
            if self._thread is None:
                yield self.build(i)
                continue
            item, error = self._queue.get()
            if error is not None:
                raise error
            yield item

    def close(self) -> None:
        self._closed.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
