"""Measuring how good generated sketches are: numbers instead of impressions.

* **Recognisability.** A small CNN, trained on real drawings rasterised to
  28 x 28, judges generated ones: the share it assigns to the requested class,
  read against its accuracy on real test drawings of that class - the ceiling,
  since to this judge a generator cannot look more like a class than real
  drawings of it do.
* **Test loss.** The model's own loss on the test split: negative
  log-likelihood in nats per drawing for the mixture model (summed over a
  drawing's steps, offsets in the model's normalised units), MSE per value
  for the seed model.
* **Shape statistics** of generated vs real drawings - strokes, points and
  pen-down length in QuickDraw's 0-255 frame - which catch what a classifier
  forgives (a circle of 200 points, a drawing that never lifts the pen).

Every number is given per class; "overall" is the unweighted mean over the
classes (counts are sums), so a class of 5,000 drawings does not drown one of
25. For the same reason the classifier weighs each class's loss by the inverse
of its share of the training drawings.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import MISSING, asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sketchgen import models, render, sample, strokes
from sketchgen.data import SPLITS, Prepared
from sketchgen.fileio import atomic_write
from sketchgen.models.base import setting
from sketchgen.models.checkpoint import check_class_names, check_settings, check_weights
from sketchgen.models.registry import MAX_CLASSES
from sketchgen.training import TrainConfig, dataset_loss, usable
from sketchgen.training.batching import augment

# The classifier sees each training drawing freshly augmented every epoch, as the mixture model does.
AUGMENT_SCALE = 0.15
AUGMENT_DROP = 0.10
# Small batches: with 25 drawings in a class, an epoch must still be many steps.
CLASSIFIER_BATCH = 16
PREDICT_BATCH = 1000  # drawings rasterised and judged at once (and generated at once by evaluate)
SHAPES = ("strokes", "points", "length")
# A classifier's file is a checkpoint dict like the models', told apart by its "kind".
CLASSIFIER_FILE = "classifier"


class EvaluationError(Exception):
    """A model, classifier and data that cannot be evaluated together; one line saying why."""


# --- the classifier ---------------------------------------------------------------------------


@dataclass
class ClassifierConfig:
    n_classes: int = setting(MISSING, low=1, high=MAX_CLASSES)
    size: int = setting(28, low=8, high=256)  # pixels a side
    channels: int = setting(32, low=1, high=512)
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
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(16 * c, 128), nn.ReLU(), nn.Linear(128, cfg.n_classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images[:, None]))


def _images(drawings, size: int) -> torch.Tensor:
    return torch.from_numpy(render.rasterize(drawings, size))


def _real(data: Prepared, idx) -> list[list[np.ndarray]]:
    return [strokes.stroke3_to_strokes(data.stroke3(i)) for i in idx]


def _balanced_accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean([np.mean(predicted[labels == c] == c) for c in np.unique(labels)]))


def train_classifier(data: Prepared, epochs: int = 20, seed: int = 0, size: int = 28,
                     log=print) -> tuple[Classifier, float]:
    """Train on the train split, keep the epoch best on validation (balanced accuracy, then loss).

    Returns the classifier and its accuracy on the test split.
    """
    if epochs < 1:
        raise EvaluationError(f"the classifier needs at least 1 epoch, not {epochs}")
    splits = {s: data.indices(s) for s in SPLITS}
    empty = [s for s, idx in splits.items() if not len(idx)]
    if empty:
        raise EvaluationError(f"no {', '.join(empty)} drawings to train the classifier on: use more data")
    n = len(data.classes)
    counts = np.bincount(data.labels[splits["train"]], minlength=n)
    if not counts.all():
        missing = [data.classes[c] for c in np.flatnonzero(counts == 0)]
        raise EvaluationError(f"no training drawings of {', '.join(missing)}: use more data")
    torch.manual_seed(seed)
    clf = Classifier(ClassifierConfig(n_classes=n, size=size))
    opt = torch.optim.Adam(clf.parameters(), lr=1e-3)
    weights = torch.tensor(counts.sum() / (n * counts), dtype=torch.float32)
    train_idx, train_labels = splits["train"], torch.from_numpy(data.labels[splits["train"]])
    valid_images = _images(_real(data, splits["valid"]), size)
    valid_labels = torch.from_numpy(data.labels[splits["valid"]])
    best, best_state = (-1.0, 0.0), None
    for epoch in range(epochs):
        rng = np.random.default_rng([seed, epoch])
        augmented = [strokes.stroke3_to_strokes(augment(data.stroke3(i), rng, AUGMENT_SCALE, AUGMENT_DROP))
                     for i in train_idx]
        images = _images(augmented, size)
        clf.train()
        total = 0.0
        for b in np.array_split(rng.permutation(len(train_idx)), max(1, len(train_idx) // CLASSIFIER_BATCH)):
            loss = F.cross_entropy(clf(images[b]), train_labels[b], weight=weights)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        clf.eval()
        with torch.no_grad():
            logits = clf(valid_images)
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
    accuracy = float(np.mean(predict(clf, _real(data, splits["test"])) == data.labels[splits["test"]]))
    log(f"classifier test accuracy {accuracy:.3f} on {len(splits['test'])} real drawings")
    return clf, accuracy


@torch.no_grad()
def predict(clf: Classifier, drawings: list[list[np.ndarray]]) -> np.ndarray:
    """Class index per drawing (strokes format, any coordinate frame; an empty drawing is a blank image)."""
    clf.eval()
    out = [clf(_images(drawings[i : i + PREDICT_BATCH], clf.cfg.size)).argmax(-1)
           for i in range(0, len(drawings), PREDICT_BATCH)]
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


def recognisability(clf: Classifier, drawings: list[list[np.ndarray]], labels) -> float:
    """The share of drawings the classifier assigns to their label."""
    return float(np.mean(predict(clf, drawings) == np.asarray(labels)))


def save_classifier(clf: Classifier, classes: list[str], path: str | os.PathLike) -> None:
    models.save(path, {"kind": CLASSIFIER_FILE, "config": asdict(clf.cfg), "classes": list(classes),
                       "state_dict": clf.state_dict()})


def load_classifier(path: str | os.PathLike) -> tuple[Classifier, list[str]]:
    """The classifier and its class names, read without executing anything in the file."""
    if not os.path.exists(path):
        raise models.CheckpointError(f"{path}: no such classifier; train one with `sketchgen classifier train`")
    ckpt = models.read_file(path, "classifier")
    if ckpt.get("kind") != CLASSIFIER_FILE:
        raise models.CheckpointError(f"{path}: not a sketchgen classifier (a model checkpoint? pass it as --checkpoint)")

    def fail(message: str):
        raise models.CheckpointError(f"{path}: {message}")

    for key, t in (("config", dict), ("classes", list), ("state_dict", dict)):
        if not isinstance(ckpt.get(key), t):
            fail(f"no {key} (a {t.__name__}): not a complete classifier")
    config = check_settings(ClassifierConfig, ckpt["config"], fail, "config")
    check_class_names(ckpt["classes"], config["n_classes"], fail)
    check_weights(lambda: Classifier(ClassifierConfig(**config)), ckpt["state_dict"], fail)
    if any(float(v.min()) < 0 for k, v in ckpt["state_dict"].items() if k.endswith("running_var")):
        fail("a batch norm's running variance is negative")
    clf = Classifier(ClassifierConfig(**config))
    clf.load_state_dict(ckpt["state_dict"])
    return clf.eval(), list(ckpt["classes"])


# --- the report -------------------------------------------------------------------------------


def shape_stats(drawings: list[list[np.ndarray]]) -> dict:
    """Mean and std of strokes, points and pen-down length (in the 0-255 frame) per drawing."""
    values = {k: [] for k in SHAPES}
    for d in drawings:
        _add_shape(values, d)
    return _summary(values)


def _add_shape(values: dict[str, list], drawing: list[np.ndarray]) -> None:
    fitted = strokes.fit(drawing)
    values["strokes"].append(len(fitted))
    values["points"].append(sum(len(s) for s in fitted))
    values["length"].append(sum(float(np.linalg.norm(np.diff(s, axis=0), axis=1).sum()) for s in fitted))


def _summary(values: dict[str, list]) -> dict:
    return {k: {"mean": float(np.mean(v)), "std": float(np.std(v))} if v else {"mean": None, "std": None}
            for k, v in values.items()}


def _classifier(classifier, classes: list[str]) -> tuple[Classifier, list[str]]:
    if isinstance(classifier, (str, os.PathLike)):
        return load_classifier(classifier)
    if isinstance(classifier, tuple):
        return classifier
    return classifier, classes


def evaluate_model(model, classifier, data: Prepared, n_per_class: int = 500, temperature: float = 0.4,
                   seed: int = 0) -> dict:
    """The report for one model: per class and overall, recognisability vs ceiling, test loss, shapes.

    ``model`` is a checkpoint path or a model; ``classifier`` a path, a
    ``(classifier, classes)`` pair, or a classifier over ``data.classes``.
    ``data`` must hold the model's classes with the split it was trained on.
    """
    net, ckpt = models.load(model) if isinstance(model, (str, os.PathLike)) else (model, {})
    classes = ckpt.get("classes", data.classes)
    if classes != data.classes:
        raise EvaluationError(f"the model was trained on {classes}, the data holds {data.classes}")
    clf, clf_classes = _classifier(classifier, data.classes)
    unknown = [c for c in classes if c not in clf_classes]
    if unknown:
        raise EvaluationError(f"the classifier does not know {', '.join(unknown)}; "
                              f"it was trained on {', '.join(clf_classes)}")
    target = np.array([clf_classes.index(c) for c in classes])

    labels = np.repeat(np.arange(len(classes)), n_per_class)
    hits, shapes = _judge(net, clf, labels, target, temperature, seed)
    test = data.indices("test")
    real_hits = predict(clf, _real(data, test)) == target[data.labels[test]]
    loss_idx = usable(data, "test", ckpt.get("train", {}).get("max_len", TrainConfig.max_len))

    per_class = {}
    for c, name in enumerate(classes):
        idx = loss_idx[data.labels[loss_idx] == c]
        mine = data.labels[test] == c
        gen_shape = _summary(shapes[c])
        real_shape = shape_stats(_real(data, np.flatnonzero(data.labels == c)))
        per_class[name] = {
            "recognisability": float(hits[labels == c].mean()) if n_per_class else None,
            "ceiling": float(real_hits[mine].mean()) if mine.any() else None,
            "n_generated": int(n_per_class),
            "n_real_test": int(mine.sum()),
            "test_loss": dataset_loss(net, data, idx, TrainConfig.batch_size, per_drawing=net.loss_per_drawing)[0]
                         if len(idx) else None,
            "n_test_loss": len(idx),
            "shape": {k: {"generated": gen_shape[k], "real": real_shape[k]} for k in SHAPES},
        }
    return {
        "model": net.name,
        "checkpoint": str(model) if isinstance(model, (str, os.PathLike)) else None,
        "temperature": temperature,
        "n_per_class": n_per_class,
        "seed": seed,
        "loss": net.loss_description,
        "classes": per_class,
        "overall": _overall(list(per_class.values())),
    }


def _judge(net, clf: Classifier, labels: np.ndarray, target: np.ndarray, temperature: float, seed: int):
    """Whether the classifier recognises each generated drawing, and each class's shape values.

    Generated PREDICT_BATCH at a time and then let go, so memory is one batch's whatever ``n_per_class`` is;
    drawing i has the seed it has in one call of ``generate`` for all labels, and the classifier sees the
    batches ``predict`` would.
    """
    hits, shapes = [], [{k: [] for k in SHAPES} for _ in range(len(target))]
    for a in range(0, len(labels), PREDICT_BATCH):
        part = labels[a : a + PREDICT_BATCH]
        drawn = [strokes.quickdraw_strokes(s3)
                 for s3 in sample.generate(net, part, temperature, seed + a * sample.DRAWING_STRIDE)]
        hits.append(predict(clf, drawn) == target[part])
        for label, drawing in zip(part, drawn):
            _add_shape(shapes[label], drawing)
    return (np.concatenate(hits) if hits else np.zeros(0, dtype=bool)), shapes


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _overall(entries: list[dict]) -> dict:
    """Unweighted means over classes of every number; sums of the counts."""
    return {
        **{k: _mean(e[k] for e in entries) for k in ("recognisability", "ceiling", "test_loss")},
        **{k: int(sum(e[k] for e in entries)) for k in ("n_generated", "n_real_test", "n_test_loss")},
        "shape": {k: {src: {m: _mean(e["shape"][k][src][m] for e in entries) for m in ("mean", "std")}
                      for src in ("generated", "real")} for k in SHAPES},
    }


def write_report(report: dict, path: str | os.PathLike) -> None:
    with atomic_write(path) as f:
        f.write((json.dumps(report, indent=2) + "\n").encode())


# --- tables -----------------------------------------------------------------------------------


def table(header: list[str], rows: list[list[str]], markdown: bool = False) -> str:
    """Rows as an aligned text table (first column left, the rest right) or a Markdown table."""
    if markdown:
        lines = [header, [":--"] + ["--:"] * (len(header) - 1), *rows]
        return "\n".join("| " + " | ".join(r) + " |" for r in lines)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in [header, *rows])


def percent(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def number(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def pair(shape: dict, key: str) -> str:
    """'generated / real' means of one shape statistic."""
    return f"{number(shape[key]['generated']['mean'])} / {number(shape[key]['real']['mean'])}"


def format_report(report: dict, markdown: bool = False) -> str:
    """The report as a table: one row per class and an overall row."""
    header = ["class", "recognised", "ceiling", "real test n", "test loss", "strokes gen/real", "points gen/real",
              "length gen/real"]
    rows = [[name, percent(e["recognisability"]), percent(e["ceiling"]), str(e["n_real_test"]), number(e["test_loss"], 3),
             pair(e["shape"], "strokes"), pair(e["shape"], "points"), pair(e["shape"], "length")]
            for name, e in [*report["classes"].items(), ("overall", report["overall"])]]
    title = (f"{report['model']} model{' ' + report['checkpoint'] if report['checkpoint'] else ''}: "
             f"{report['n_per_class']} drawings per class at temperature {report['temperature']}, seed {report['seed']}; "
             f"test loss is {report['loss']}; overall = mean over classes")
    return title + "\n\n" + table(header, rows, markdown)
