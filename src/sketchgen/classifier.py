"""The judge: a small CNN trained on real drawings, which says what class a drawing looks like.

It sees drawings rasterised to 28 x 28 (``render.rasterize``), each training
drawing freshly augmented every epoch as the mixture model's are, and weighs
each class's loss by the inverse of its share of the training drawings, so a
class of 5,000 drawings does not drown one of 25. Its penultimate layer (128
ReLU units) is where ``evaluate`` measures FID and precision/recall: the role
Inception's pool layer plays for images. Its file is a checkpoint dict like
the models' (``kind`` "classifier"), read with the same bounded, complete checks.
"""

from __future__ import annotations

import copy
import os
from dataclasses import MISSING, asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sketchgen import models, render, strokes
from sketchgen.data import SPLITS, Prepared
from sketchgen.errors import SketchgenError
from sketchgen.models.base import setting
from sketchgen.models.checkpoint import check_module, check_settings
from sketchgen.models.registry import MAX_CLASSES
from sketchgen.training.batching import augment

# The classifier sees each training drawing freshly augmented every epoch, as the mixture model does.
AUGMENT_SCALE = 0.15
AUGMENT_DROP = 0.10
# Small batches: with 25 drawings in a class, an epoch must still be many steps.
CLASSIFIER_BATCH = 16
# The classifier's penultimate layer: the features FID and precision/recall are measured in.
FEATURES = 128
# What one batch of drawings judged at once may cost: drawings x channels x size², the first block's output (the
# largest). 25 million values, ~100 MB a layer: 1,000 drawings of the classifier `classifier train` makes (28 x 28,
# 32 channels), and about 50 of the largest a file may declare, so memory stays bounded whatever the file says.
BATCH_VALUES = 25_000_000
# A classifier's file is a checkpoint dict like the models', told apart by its "kind".
CLASSIFIER_FILE = "classifier"


class EvaluationError(SketchgenError):
    """A model, classifier and data that cannot be evaluated together; one line saying why."""


@dataclass
class ClassifierConfig:
    n_classes: int = setting(MISSING, low=1, high=MAX_CLASSES)
    # `classifier train` makes 28 pixels a side and 32 channels; a file may declare a few times either, no more: the
    # cost of judging a drawing (and of copying's renderings) grows with both.
    size: int = setting(28, low=8, high=64)  # pixels a side
    channels: int = setting(32, low=1, high=128)
    dropout: float = setting(0.3, low=0.0, high=0.99)


class Classifier(nn.Module):
    """Three conv-ReLU-pool blocks and a small linear head: enough for 28 x 28 sketches."""


    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        blocks = []
        for c_in, c_out in [(1, c), (c, 2 * c), (2 * c, 4 * c)]:
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(16 * c, FEATURES), nn.ReLU(),
                                  nn.Linear(FEATURES, cfg.n_classes))

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The penultimate layer: the ReLU output the class logits are a linear function of."""
        return self.head[:-1](self.features(images[:, None]))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head[-1](self.embed(images))


def _images(drawings, size: int) -> torch.Tensor:
    return torch.from_numpy(render.rasterize(drawings, size))


def real_drawings(data: Prepared, idx) -> list[list[np.ndarray]]:
    """The drawings at ``idx`` in the strokes format the judge takes."""
    return [strokes.stroke3_to_strokes(data.stroke3(i)) for i in idx]


class _Real:
    """The real drawings at ``idx``, made a slice at a time as ``_outputs`` takes them: the drawings a training
    validates and tests on are never all held at once, however many there are."""

    def __init__(self, data: Prepared, idx: np.ndarray):
        self.data, self.idx = data, idx

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, part: slice) -> list[list[np.ndarray]]:
        return real_drawings(self.data, self.idx[part])


def _balanced_accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean([np.mean(predicted[labels == c] == c) for c in np.unique(labels)]))


def check_classes(classes: list[str]) -> None:
    """Refuse fewer than 2 classes: a classifier of one could only ever answer it (every drawing "recognised",
    100% accuracy). Called before the data is prepared too, so that nothing is read for it."""
    if len(classes) < 2:
        raise EvaluationError(f"a classifier tells classes apart: give at least 2 classes, not only "
                              f"{classes[0]!r:.60}")


def train_classifier(data: Prepared, epochs: int = 20, seed: int = 0, size: int = 28,
                     log=print) -> tuple[Classifier, float]:
    """Train on the train split, keep the epoch best on validation (balanced accuracy, then loss).

    Returns the classifier and its accuracy on the test split. Classes with no validation or test drawing are
    learnt all the same, and named in a note: the accuracies are the other classes'.
    """
    if epochs < 1:
        raise EvaluationError(f"the classifier needs at least 1 epoch, not {epochs}")
    check_classes(data.classes)
    splits = {s: data.indices(s) for s in SPLITS}
    empty = [s for s, idx in splits.items() if not len(idx)]
    if empty:
        raise EvaluationError(f"no {', '.join(empty)} drawings to train the classifier on: use more data")
    missing = data.missing(splits["train"])
    if missing:
        raise EvaluationError(f"no training drawings of {', '.join(missing)}: use more data")
    # A class of a few drawings keeps none to validate or test: it is still learnt, but the accuracies printed are
    # the other classes' (an audit's find: said nothing), so say so, as `sketchgen train` does.
    notes = []
    for split, what, effect in (
            ("valid", "validation", "the accuracy that picks the weights kept leaves them out"),
            ("test", "test", "the test accuracy leaves them out and evaluate gives them no ceiling")):
        names = data.missing(splits[split])
        if names:
            notes.append(f"no {what} drawing of {models.listing([repr(c) for c in names])}: {effect}")
    if notes:
        log(f"note: {'; '.join(notes)}; give them more drawings (a class's split keeps 15% each to validate and to "
            "test)")
    n = len(data.classes)
    counts = np.bincount(data.labels[splits["train"]], minlength=n)
    torch.manual_seed(seed)
    clf = Classifier(ClassifierConfig(**check_settings(ClassifierConfig, {"n_classes": n, "size": size},
                                                       _refuse, "the classifier's")))
    opt = torch.optim.Adam(clf.parameters(), lr=1e-3)
    weights = torch.tensor(counts.sum() / (n * counts), dtype=torch.float32)
    train_idx, train_labels = splits["train"], torch.from_numpy(data.labels[splits["train"]])
    valid_drawings = _Real(data, splits["valid"])
    valid_labels = torch.from_numpy(data.labels[splits["valid"]])
    best, best_state = (-1.0, 0.0), None
    for epoch in range(epochs):
        rng = np.random.default_rng([seed, epoch])
        # Augmented first, in the order (and with the random numbers) they always were, so that a seed trains the
        # same classifier as before; rendered a batch at a time: the images were most of the memory.
        augmented = [strokes.stroke3_to_strokes(augment(data.stroke3(i), rng, AUGMENT_SCALE, AUGMENT_DROP))
                     for i in train_idx]
        clf.train()
        total = 0.0
        for b in np.array_split(rng.permutation(len(train_idx)), max(1, len(train_idx) // CLASSIFIER_BATCH)):
            images = _images([augmented[j] for j in b], size)
            loss = F.cross_entropy(clf(images), train_labels[b], weight=weights)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        logits = _outputs(clf, valid_drawings, clf)  # in batches too
        # A small validation split ties on accuracy often; the (class-weighted) loss breaks the tie.
        score = (_balanced_accuracy(logits.argmax(-1).numpy(), valid_labels.numpy()),
                 -F.cross_entropy(logits, valid_labels, weight=weights).item())
        improved = score > best
        if improved:
            best, best_state = score, copy.deepcopy(clf.state_dict())
        log(f"classifier epoch {epoch + 1}/{epochs}: train loss {total / len(train_idx):.3f}  valid balanced "
            f"accuracy {score[0]:.3f}, loss {-score[1]:.3f}" + ("  (best)" if improved else ""))
    clf.load_state_dict(best_state)
    clf.eval()
    accuracy = float(np.mean(predict(clf, _Real(data, splits["test"])) == data.labels[splits["test"]]))
    log(f"classifier test accuracy {accuracy:.3f} on {len(splits['test'])} real drawings")
    return clf, accuracy


def _refuse(message: str):
    """``check_settings``'s way to fail for a training's own settings: as the classifier's refusals do."""
    raise EvaluationError(message)


@torch.no_grad()
def _outputs(clf: Classifier, drawings: list[list[np.ndarray]], layer) -> torch.Tensor:
    """``layer`` (the classifier or a part of it) on the drawings, rasterised a batch at a time, in eval mode."""
    clf.eval()
    batch = max(1, BATCH_VALUES // (clf.cfg.channels * clf.cfg.size**2))
    return torch.cat([layer(_images(drawings[i : i + batch], clf.cfg.size))
                      for i in range(0, max(1, len(drawings)), batch)])


def predict(clf: Classifier, drawings: list[list[np.ndarray]]) -> np.ndarray:
    """Class index per drawing (strokes format, any coordinate frame; an empty drawing is a blank image)."""
    return _outputs(clf, drawings, clf).argmax(-1).numpy()


def features(clf: Classifier, drawings: list[list[np.ndarray]]) -> np.ndarray:
    """The classifier's penultimate-layer features, ``(n, FEATURES)`` float32: this project's Inception pool3."""
    return _outputs(clf, drawings, clf.embed).numpy()


def recognisability(clf: Classifier, drawings: list[list[np.ndarray]], labels) -> float:
    """The share of drawings the classifier assigns to their label."""
    return float(np.mean(predict(clf, drawings) == np.asarray(labels)))


def save_classifier(clf: Classifier, classes: list[str], path: str | os.PathLike) -> None:
    models.save(path, {"kind": CLASSIFIER_FILE, "config": asdict(clf.cfg), "classes": list(classes),
                       "state_dict": clf.state_dict()})


def load_classifier(path: str | os.PathLike) -> tuple[Classifier, list[str]]:
    """The classifier and its class names, read without executing anything in the file."""
    if not os.path.lexists(path):
        raise models.CheckpointError(f"{path}: no such classifier; train one with `sketchgen classifier train`")
    ckpt = models.read_file(path, "classifier")
    if ckpt.get("kind") != CLASSIFIER_FILE:
        raise models.CheckpointError(f"{path}: not a sketchgen classifier (a model checkpoint? pass it as --checkpoint)")

    def fail(message: str):
        raise models.CheckpointError(f"{path}: {message}")

    config = check_module(ckpt, ClassifierConfig, lambda cfg: Classifier(ClassifierConfig(**cfg)), fail, "classifier")
    if any(float(v.min()) < 0 for k, v in ckpt["state_dict"].items() if k.endswith("running_var")):
        fail("a batch norm's running variance is negative")
    clf = Classifier(ClassifierConfig(**config))
    clf.load_state_dict(ckpt["state_dict"])
    return clf.eval(), list(ckpt["classes"])
