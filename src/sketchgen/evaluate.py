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
* **As papers measure it** (``against_real``; the maths is in ``metrics``),
  in the classifier's penultimate-layer features (``features``: 128 ReLU
  units, the role Inception's pool layer plays for images), generated
  against real test drawings:

  - ``fid``: ``value``, the Fréchet distance (Heusel et al. 2017), and
    ``floor``, the same between two halves of the test drawings: what real
    drawings score against real ones with this many of them. Lower is
    better; a model near its floor is as close to the test drawings as
    sample noise lets anyone measure. ``n_real`` (test drawings),
    ``n_generated`` and ``n_floor`` (the two halves) say what each rests
    on. FID is biased upwards by few drawings (roughly in proportion to
    1/n): with the 3-4 test drawings of most classes in the shared data (25
    drawings each), a class's FID is mostly sample noise, and the floor, on
    half as many a side, is noisier still (a model can score below it).
    None under 2 drawings. Overall: ``value`` and ``floor`` are means over
    classes, as everywhere in the report; ``pooled`` and ``pooled_floor``
    are one FID over all classes' drawings together, each class weighing
    the same on both sides. The pooled one rests on every test drawing, so
    it is the steadier number. Neither can be set beside papers' FIDs
    (Inception features of images, 10,000+ samples): compare models
    measured with the same classifier, data and ``--n``.
  - ``precision_recall`` (Kynkäänniemi et al. 2019, k-NN manifolds with
    ``k`` = 3): ``precision``, the share of generated drawings that fall
    within the real drawings' manifold (realistic), and ``recall``, the
    share of real drawings within the generated ones' (the variety
    covered). A model that memorises a few training drawings has high
    recognisability and precision but low recall. With n test drawings,
    ``k`` is lowered to n - 1 where n <= 3 (the k used is given); None
    under 2 drawings.
  - ``copying``: every generated drawing's distance to the nearest
    training drawing of its class (``per_drawing``, in order; their mean
    ``nearest_train``), beside the same for the real test drawings
    (``test_nearest_train``), and ``closer_than_test``, the share of
    generated drawings nearer a training drawing than the median test
    drawing is: about 50% means as novel as real drawings, near 100%
    copying. Measured as the L2 distance between the 28 x 28 renderings
    (ink in [0, 1], so from 0 to 28), not in the classifier's features:
    those are trained to put every eye in one place, so a new eye and a
    copied one look alike there, while pixels tell a stroke-for-stroke
    copy (distance ~0) from another drawing of the class. Rendering fits
    each drawing to the frame, so a copy moved or scaled is still a copy.
    ``n_train`` and ``n_test`` are the drawings compared with.

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

from sketchgen import metrics, models, render, sample, strokes
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
SHAPES = ("strokes", "points", "length")
# The classifier's penultimate layer: the features FID and precision/recall are measured in.
FEATURES = 128
# Drawings rasterised and classified at once: memory stays bounded however many are judged.
BATCH = 1000
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
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(16 * c, FEATURES), nn.ReLU(),
                                  nn.Linear(FEATURES, cfg.n_classes))

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The penultimate layer: the ReLU output the class logits are a linear function of."""
        return self.head[:-1](self.features(images[:, None]))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head[-1](self.embed(images))


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
def _outputs(clf: Classifier, drawings: list[list[np.ndarray]], layer) -> torch.Tensor:
    """``layer`` (the classifier or a part of it) on the drawings, rasterised a batch at a time, in eval mode."""
    clf.eval()
    return torch.cat([layer(_images(drawings[i : i + BATCH], clf.cfg.size))
                      for i in range(0, max(1, len(drawings)), BATCH)])


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
        fitted = strokes.fit(d)
        values["strokes"].append(len(fitted))
        values["points"].append(sum(len(s) for s in fitted))
        values["length"].append(sum(float(np.linalg.norm(np.diff(s, axis=0), axis=1).sum()) for s in fitted))
    return {k: {"mean": float(np.mean(v)), "std": float(np.std(v))} if v else {"mean": None, "std": None}
            for k, v in values.items()}


def against_real(clf: Classifier, data: Prepared, generated: list[list[np.ndarray]], n_per_class: int
                 ) -> tuple[list[dict], dict]:
    """FID with its real-vs-real floor, precision and recall, and copying per class; the pooled FIDs.

    ``generated`` runs class by class, ``n_per_class`` each. Real drawings are the test split's; copying
    compares 28 x 28 renderings with the class's training drawings (the module docstring says why).
    """
    test, train = data.indices("test"), data.indices("train")
    entries, pools = [], {"generated": [], "real": [], "half_a": [], "half_b": []}
    for c in range(len(data.classes)):
        gen = generated[c * n_per_class : (c + 1) * n_per_class]
        real = _real(data, test[data.labels[test] == c])
        gen_features, real_features = features(clf, gen), features(clf, real)
        half_a, half_b = metrics.halves(real_features)
        precision, recall, k = metrics.precision_recall(real_features, gen_features)
        pixels = [render.rasterize(d, clf.cfg.size).reshape(len(d), clf.cfg.size ** 2)
                  for d in (gen, real, _real(data, train[data.labels[train] == c]))]
        entries.append({
            "fid": {"value": metrics.frechet_distance(gen_features, real_features),
                    "floor": metrics.frechet_distance(half_a, half_b),
                    "n_generated": len(gen), "n_real": len(real), "n_floor": [len(half_a), len(half_b)]},
            "precision_recall": {"precision": precision, "recall": recall, "k": k,
                                 "n_generated": len(gen), "n_real": len(real)},
            "copying": {**metrics.copying(*pixels), "n_train": len(pixels[2]), "n_test": len(real)},
        })
        for key, rows in zip(pools, (gen_features, real_features, half_a, half_b)):
            pools[key].append(rows)
    return entries, {"pooled": metrics.pooled_frechet(pools["generated"], pools["real"]),
                     "pooled_floor": metrics.pooled_frechet(pools["half_a"], pools["half_b"])}


def _classifier(classifier, classes: list[str]) -> tuple[Classifier, list[str]]:
    if isinstance(classifier, (str, os.PathLike)):
        return load_classifier(classifier)
    if isinstance(classifier, tuple):
        return classifier
    return classifier, classes


def evaluate_model(model, classifier, data: Prepared, n_per_class: int = 500, temperature: float = sample.TEMPERATURE,
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
    encodes = models.capable(net, models.Encodes)
    if encodes:
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
        if encodes:
            per_class[name]["reconstruction"] = float(redrawn_hits[mine].mean()) if mine.any() else None
    names = sorted({n for terms in class_terms.values() for n in terms})
    if len(names) > 1:  # a loss of several terms: each one per drawing (or per counted unit), beside the total
        for name, terms in class_terms.items():
            per_class[name]["test_terms"] = {n: terms.get(n) for n in names}
    compared, pooled = against_real(clf, data, generated, n_per_class)
    for entry, numbers in zip(per_class.values(), compared):
        entry.update(numbers)
    return {
        "model": net.name,
        "checkpoint": str(model) if isinstance(model, (str, os.PathLike)) else None,
        "temperature": temperature,
        "n_per_class": n_per_class,
        "seed": seed,
        "loss": net.loss_description,
        "classes": per_class,
        "overall": {**_overall(list(per_class.values())), **_overall_against_real(list(per_class.values()), pooled)},
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


# against_real's numbers that "overall" averages over classes; its other numbers are counts, summed.
AGAINST_REAL_MEANS = {"fid": ("value", "floor"), "precision_recall": ("precision", "recall"),
                      "copying": ("nearest_train", "test_nearest_train", "closer_than_test")}


def _overall_against_real(entries: list[dict], pooled: dict) -> dict:
    """Means over classes of FID, precision, recall and copying, sums of their counts; the pooled FIDs beside."""
    overall = {}
    for group, means in AGAINST_REAL_MEANS.items():
        counts = [k for k in entries[0][group] if k.startswith("n_")]
        overall[group] = {**{k: _mean(e[group][k] for e in entries) for k in means},
                          **{k: np.sum([e[group][k] for e in entries], axis=0).tolist() for k in counts}}
    overall["fid"].update(pooled)
    overall["precision_recall"]["k"] = metrics.K
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
    return title + "\n\n" + table(header, rows, markdown) + "\n\n" + format_against_real(report, markdown)


def format_against_real(report: dict, markdown: bool = False) -> str:
    """against_real's numbers as a second table, the pooled FID as a last row."""
    header = ["class", "FID", "floor", "real n", "precision", "recall", "k", "nearest train gen/test",
              "closer than test"]
    rows = []
    for name, e in [*report["classes"].items(), ("overall", report["overall"])]:
        fid, pr, near = e["fid"], e["precision_recall"], e["copying"]
        rows.append([name, number(fid["value"]), number(fid["floor"]), str(fid["n_real"]), percent(pr["precision"]),
                     percent(pr["recall"]), str(pr["k"]),
                     f"{number(near['nearest_train'], 2)} / {number(near['test_nearest_train'], 2)}",
                     percent(near["closer_than_test"])])
    fid = report["overall"]["fid"]
    rows.append(["pooled", number(fid["pooled"]), number(fid["pooled_floor"]), str(fid["n_real"])] + ["-"] * 5)
    title = ("Against the real test drawings (real n: how many; floor: one half of them against the other; overall = "
             "mean over classes, pooled = all classes together, each weighing the same).\n"
             "FID, precision and recall (k nearest neighbours) in the classifier's features. Copying: distance between "
             "28x28 renderings and the nearest training drawing, generated / real test;\ncloser than test = the share "
             "of generated drawings nearer a training drawing than the median test drawing is (real drawings: 50%).")
    return title + "\n\n" + table(header, rows, markdown)
