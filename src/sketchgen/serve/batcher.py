"""Each served model's batcher: the requests that arrive together are generated together, one bad one spared.

A batch of 20 drawings costs about as much as 3 made one at a time (the LSTM
step is one matrix product whatever the batch), so a burst of requests takes a
few batches' time instead of one drawing's time each. Each drawing draws from
its own seed (``sample.generate``'s per-drawing streams), and each drawing sent
is encoded on its own (``sample.encode``), so a request gets the same answer
alone or in any batch, and a batch that fails can be split and retried without
changing anyone's drawing.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np
import torch

from sketchgen import sample

BATCH = 64  # the most requests generated together: a burst of 200 takes a few batches (docs/performance.md)
BATCH_WAIT = 0.005  # seconds a batch's first request waits for others (a burst's requests arrive within milliseconds)


class DrawingFailed(Exception):
    """The model failed on one request's drawing (an error, or numbers gone NaN or infinite): a 500 for it alone."""


@dataclass
class Job:
    """One request's drawing (or, with ``encode``, one drawing to encode), waiting for a batch."""

    label: int | np.ndarray  # a class index, or a row of class weights that mixes classes
    temperature: float | None = None  # None for an encoding, which samples nothing
    seed: int = 0
    max_len: int | None = None
    prefix: np.ndarray | None = None  # stroke-3: complete this drawing
    latent: np.ndarray | None = None  # decode this latent (a model that has one)
    encode: np.ndarray | None = None  # stroke-3: the answer is this drawing's latent (its mean), not a drawing
    answer: Future = field(default_factory=Future)

    def group(self) -> tuple:
        """What jobs share to be made in one call: what ``sample.generate`` takes once per call, and the kind.
        Not the temperature or max_len, which it takes per drawing: requests that each name their own are still one
        batch, so varying them cannot make a flood of requests into a batch each."""
        if self.encode is not None:
            return ("encode",)
        return self.prefix is None, self.latent is None, np.ndim(self.label)


class Batcher:
    """Generates the drawings of all requests to one model, those that arrive together as one batch.

    A request queues its job and waits for the answer. A worker thread takes
    the first job waiting, then whatever else arrives within ``wait`` seconds
    (while it generates, the next batch queues up), at most ``size``, and runs
    one ``sample.generate`` (or ``sample.encode``, which encodes drawing by
    drawing) for each group of jobs that share what it takes once per call
    (``Job.group``). Completions batch too: ``generate`` primes each prefix on
    its own, then continues them together.
    A job without a ``max_len`` draws to the model's own limit, held to ``most``
    (a server's bound on what one request may cost: a checkpoint's class caps
    may run to 10,000 steps).
    A call that fails is split in halves, down to the job that fails alone, so
    one request's bad numbers cost the others a retry, never their drawing.
    """

    def __init__(self, net, workers: int = 1, size: int = BATCH, wait: float = BATCH_WAIT, most: int | None = None):
        self.net, self.size, self.wait, self.most = net, size, wait, most
        self.sizes: Counter[int] = Counter()  # jobs in a generate call -> how many calls: what batching achieved
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        for i in range(workers):
            threading.Thread(target=self._work, name=f"sketchgen-batcher-{i}", daemon=True).start()

    def submit(self, job: Job) -> Future:
        self._jobs.put(job)
        return job.answer

    def draw(self, label, temperature: float, seed: int, max_len: int | None = None, prefix: np.ndarray | None = None,
             latent: np.ndarray | None = None) -> np.ndarray:
        """One drawing (stroke-3, or the completion of the stroke-3 ``prefix``), the same in whatever batch."""
        return self.submit(Job(label, temperature, seed, max_len, prefix, latent)).result()

    def _work(self) -> None:
        while True:
            self.work_once()

    def work_once(self) -> None:
        """Take the next batch and make it, one ``generate`` (or encoding) per group."""
        groups = defaultdict(list)
        for job in self._take():
            groups[job.group()].append(job)
        for group in groups.values():
            # A job whose request was cancelled meanwhile (its client gone, the server stopping) is dropped here, as
            # late as can be; the others can no longer be cancelled: answering them cannot fail.
            live = [job for job in group if job.answer.set_running_or_notify_cancel()]
            if live:
                self._run(live)

    def _take(self) -> list[Job]:
        """The jobs of the next batch."""
        jobs = [self._jobs.get()]
        deadline = time.monotonic() + self.wait
        while len(jobs) < self.size:
            try:
                jobs.append(self._jobs.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return jobs

    def _run(self, group: list[Job]) -> None:
        self.sizes[len(group)] += 1
        try:
            results = self._make(group)
        except Exception as e:  # a bug or bad numbers: find whose, and spare the rest
            if len(group) == 1:
                group[0].answer.set_exception(e)
            else:
                self._run(group[: len(group) // 2])
                self._run(group[len(group) // 2 :])
            return
        for job, result in zip(group, results):
            # cumsum: the absolute points of a drawing must be finite too, not only its offsets
            if np.isfinite(np.cumsum(result, axis=0)).all():
                job.answer.set_result(result)
            else:
                job.answer.set_exception(DrawingFailed(
                    "the model's numbers went NaN or infinite on this drawing (other requests are unaffected); "
                    "try another seed or temperature"))

    @torch.no_grad()
    def _make(self, group: list[Job]) -> list[np.ndarray]:
        first = group[0]
        labels = np.array([j.label for j in group])
        if first.encode is not None:  # drawing by drawing: a latent must not depend on the requests beside it
            mean, _ = sample.encode(self.net, [j.encode for j in group], labels)
            return list(mean.numpy())
        return sample.generate(self.net, labels, [j.temperature for j in group], max_len=[j.max_len for j in group],
                               most=self.most, prefixes=None if first.prefix is None else [j.prefix for j in group],
                               seeds=[j.seed for j in group],
                               latents=None if first.latent is None else torch.from_numpy(
                                   np.stack([j.latent for j in group])).float())
