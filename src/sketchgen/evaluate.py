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
* **Reconstructions**, for a model that encodes drawings: the share of the
  class's test drawings - never seen in training - that the classifier still
  recognises once the model has redrawn them from the mean of their latent,
  beside the same ceiling; and each term of its test loss per drawing (for
  the VAE: reconstruction NLL and KL, whose sum, the test loss, is the
  negative ELBO at the latent's mean).

Every number is given per class; "overall" is the unweighted mean over the
classes (counts are sums), so a class of 5,000 drawings does not drown one of
25. For the same reason the classifier weighs each class's loss by the inverse
of its share of the training drawings.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sketchgen import models, render, sample, strokes
from sketchgen.data import SPLITS, Prepared
from sketchgen.fileio import atomic_write
from sketchgen.training import TrainConfig, dataset_loss, usable
from sketchgen.training.batching import augment

# The classifier sees each training drawing freshly augmented every epoch, as the mixture model does.
AUGMENT_SCALE = 0.15
AUGMENT_DROP = 0.10
# Small batches: with 25 drawings in a class, an epoch must still be many steps.
CLASSIFIER_BATCH = 16
SHAPES = ("strokes", "points", "length")
# A classifier's file is a checkpoint dict like the models', told apart by its "kind".
CLASSIFIER_FILE = "classifier"


class EvaluationError(Exception):
    """A model, classifier and data that cannot be evaluated together; one line saying why."""


# --- the classifier ---------------------------------------------------------------------------


@dataclass
class ClassifierConfig:
    n_classes: int
    size: int = 28
    channels: int = 32
    dropout: float = 0.3


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
    out = [clf(_images(drawings[i : i + 1000], clf.cfg.size)).argmax(-1) for i in range(0, len(drawings), 1000)]
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
    try:
        clf = Classifier(ClassifierConfig(**ckpt["config"]))
        clf.load_state_dict(ckpt["state_dict"])
        classes = list(ckpt["classes"])
    except (TypeError, ValueError, RuntimeError, KeyError) as e:
        raise models.CheckpointError(f"{path}: classifier does not match its config ({str(e).splitlines()[0]})") from None
    clf.eval()
    return clf, classes


# --- the report -------------------------------------------------------------------------------


def shape_stats(drawings: list[list[np.ndarray]]) -> dict:
    """Mean and std of strokes, points and pen-down length (in the 0-255 frame) per drawing."""
    values = {k: [] for k in SHAPES}
    for d in drawings:
        fitted = strokes.fit(d)
        values["strokes"].append(len(fitted))
        values["points"].append(sum(len(s) for s in fitted))
        values["length"].append(sum(float(np.linalg.norm(np.diff(s, axis=0), axis=1).sum()) for s in fitted))
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
    generated = [strokes.quickdraw_strokes(s3) for s3 in sample.generate(net, labels, temperature, seed)]
    hits = predict(clf, generated) == target[labels]
    test = data.indices("test")
    real_hits = predict(clf, _real(data, test)) == target[data.labels[test]]
    loss_idx = usable(data, "test", ckpt.get("train", {}).get("max_len", TrainConfig.max_len))
    if net.latent_dim:
        redrawn = sample.reconstruct(net, [data.stroke3(i) for i in test], data.labels[test], temperature, seed)
        redrawn_hits = predict(clf, [strokes.quickdraw_strokes(s3) for s3 in redrawn]) == target[data.labels[test]]

    per_class, class_terms = {}, {}
    for c, name in enumerate(classes):
        idx = loss_idx[data.labels[loss_idx] == c]
        mine = data.labels[test] == c
        gen_shape = shape_stats(generated[c * n_per_class : (c + 1) * n_per_class])  # labels run class by class
        real_shape = shape_stats(_real(data, np.flatnonzero(data.labels == c)))
        loss, terms = dataset_loss(net, data, idx, TrainConfig.batch_size, per_drawing=net.loss_per_drawing) \
            if len(idx) else (None, {})
        per_class[name] = {
            "recognisability": float(hits[labels == c].mean()) if n_per_class else None,
            "ceiling": float(real_hits[mine].mean()) if mine.any() else None,
            "n_generated": int(n_per_class),
            "n_real_test": int(mine.sum()),
            # Per drawing, the terms are nats that add up; per counted unit, the objective is what training minimised.
            "test_loss": (sum(terms.values()) if terms else None) if net.loss_per_drawing else loss,
            "n_test_loss": len(idx),
            "shape": {k: {"generated": gen_shape[k], "real": real_shape[k]} for k in SHAPES},
        }
        class_terms[name] = terms
        if net.latent_dim:
            per_class[name]["reconstruction"] = float(redrawn_hits[mine].mean()) if mine.any() else None
    names = sorted({n for terms in class_terms.values() for n in terms})
    if len(names) > 1:  # a loss of several terms: each one per drawing (or per counted unit), beside the total
        for name, terms in class_terms.items():
            per_class[name]["test_terms"] = {n: terms.get(n) for n in names}
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


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _overall(entries: list[dict]) -> dict:
    """Unweighted means over classes of every number; sums of the counts."""
    overall = {
        **{k: _mean(e[k] for e in entries) for k in ("recognisability", "ceiling", "test_loss")},
        **{k: int(sum(e[k] for e in entries)) for k in ("n_generated", "n_real_test", "n_test_loss")},
        "shape": {k: {src: {m: _mean(e["shape"][k][src][m] for e in entries) for m in ("mean", "std")}
                      for src in ("generated", "real")} for k in SHAPES},
    }
    if "reconstruction" in entries[0]:
        overall["reconstruction"] = _mean(e["reconstruction"] for e in entries)
    if "test_terms" in entries[0]:
        overall["test_terms"] = {n: _mean(e["test_terms"][n] for e in entries) for n in entries[0]["test_terms"]}
    return overall


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
    """The report as a table: one row per class and an overall row (with reconstructions and loss terms where
    the model has them)."""
    entries = [*report["classes"].items(), ("overall", report["overall"])]
    redrawn = "reconstruction" in report["overall"]
    terms = list(report["overall"].get("test_terms", {}))
    header = ["class", "recognised", *(["reconstructions recognised"] if redrawn else []), "ceiling", "real test n",
              "test loss", *terms, "strokes gen/real", "points gen/real", "length gen/real"]
    rows = [[name, percent(e["recognisability"]), *([percent(e["reconstruction"])] if redrawn else []),
             percent(e["ceiling"]), str(e["n_real_test"]), number(e["test_loss"], 3),
             *(number(e["test_terms"][t], 3) for t in terms),
             pair(e["shape"], "strokes"), pair(e["shape"], "points"), pair(e["shape"], "length")]
            for name, e in entries]
    title = (f"{report['model']} model{' ' + report['checkpoint'] if report['checkpoint'] else ''}: "
             f"{report['n_per_class']} drawings per class at temperature {report['temperature']}, seed {report['seed']}; "
             f"test loss is {report['loss']}{' (' + ' + '.join(terms) + ')' if terms else ''}; "
             + ("reconstructions: each real test drawing redrawn from its latent's mean; " if redrawn else "")
             + "overall = mean over classes")
    return title + "\n\n" + table(header, rows, markdown)
