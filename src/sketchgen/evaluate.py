"""Measuring how good generated sketches are: numbers instead of impressions.

* **Recognisability.** The judge (``classifier``), trained on real drawings,
  judges generated ones: the share it assigns to the requested class, read
  against its accuracy on real test drawings of that class - the ceiling,
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
25; its ``below_half`` lists the classes recognised less than half as often
as their real test drawings (the quality target asks for none), of those
that can be judged so: ``not_judged`` lists the others, whose real test
drawings are none or none recognised (a ceiling of 0). Its
``precision_recall`` ``k`` is the k asked for, and ``ks`` the k's the classes used.
``changed_sources`` lists the class files whose bytes are not those the
checkpoint trained on (by SHA-256): their split is not the model's own, and
their test drawings may be ones it trained on. ``report`` turns a report
into tables.
"""

from __future__ import annotations

import json
import os

import numpy as np

from sketchgen import metrics, models, render, sample, strokes
from sketchgen.classfiles import Names, same_names
from sketchgen.classifier import (
    Classifier,
    EvaluationError,
    features,
    load_classifier,
    predict,
    real_drawings,
)
from sketchgen.data import Prepared, changed_files
from sketchgen.fileio import atomic_write
from sketchgen.training import TrainConfig, dataset_loss, usable

SHAPES = ("strokes", "points", "length")

__all__ = ["EvaluationError", "against_real", "below_half", "evaluate_model", "judged", "shape_stats",
           "write_report"]


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
        real = real_drawings(data, test[data.labels[test] == c])
        gen_features, real_features = features(clf, gen), features(clf, real)
        half_a, half_b = metrics.halves(real_features)
        precision, recall, k = metrics.precision_recall(real_features, gen_features)
        pixels = [render.rasterize(d, clf.cfg.size).reshape(len(d), clf.cfg.size ** 2)
                  for d in (gen, real, real_drawings(data, train[data.labels[train] == c]))]
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


def judges(clf_classes: list[str], classes: list[str]) -> Names:
    """Refuse classes a classifier was not trained on: it could not recognise them. Its classes' places, found by
    name."""
    known = Names(clf_classes)
    unknown = [c for c in classes if known.find(c) is None]
    if unknown:
        raise EvaluationError(f"the classifier does not know {models.listing(unknown)}; "
                              f"it was trained on {models.listing(clf_classes)}")
    return known


def evaluate_model(model, classifier, data: Prepared, n_per_class: int = 500, temperature: float = sample.TEMPERATURE,
                   seed: int = 0, classes: list[str] | None = None, path: str | os.PathLike | None = None) -> dict:
    """The report for one model: per class and overall, recognisability vs ceiling, test loss, shapes.

    ``model`` is a checkpoint path, a checked checkpoint dict (``sketchgen.load``'s,
    a Magenta file's too) or a model; ``classifier`` a path, a
    ``(classifier, classes)`` pair, or a classifier over ``data.classes``.
    ``data`` must hold the model's classes (or ``classes``, some of a
    checkpoint's, measured alone) with the split it was trained on. The
    report names ``path`` as its checkpoint (default: ``model``, if a path).
    """
    if isinstance(model, (str, os.PathLike)):
        path = model if path is None else path
        model = models.read(model)
    ckpt = model if isinstance(model, dict) else {}
    if classes is not None:
        if not ckpt:
            raise EvaluationError("measuring some of a model's classes needs its checkpoint file")
        ckpt = models.restrict(ckpt, classes)
    net = models.checkpoint.build(ckpt) if ckpt else model  # built once, of the classes measured
    classes = ckpt.get("classes", data.classes)
    if not same_names(classes, data.classes):
        raise EvaluationError(f"the model was trained on {classes}, the data holds {data.classes}")
    clf, clf_classes = _classifier(classifier, data.classes)
    known = judges(clf_classes, classes)
    target = np.array([known.find(c) for c in classes])

    labels = np.repeat(np.arange(len(classes)), n_per_class)
    generated = [strokes.quickdraw_strokes(s3) for s3 in sample.generate(net, labels, temperature, seed)]
    hits = predict(clf, generated) == target[labels]
    test = data.indices("test")
    real_hits = predict(clf, real_drawings(data, test)) == target[data.labels[test]]
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
        real_shape = shape_stats(real_drawings(data, np.flatnonzero(data.labels == c)))
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
        "checkpoint": str(path) if path is not None else None,
        "temperature": temperature,
        "n_per_class": n_per_class,
        "seed": seed,
        "loss": net.loss_description,
        # Class files whose bytes are not those the checkpoint trained on: their split is not the model's own.
        "changed_sources": [here for here, _ in changed_files(ckpt.get("data"), data)] if data.settings else [],
        "classes": per_class,
        "overall": {**_overall(list(per_class.values())), "below_half": below_half(per_class),
                    "not_judged": [name for name in per_class if name not in judged(per_class)],
                    **_overall_against_real(list(per_class.values()), pooled)},
    }


def judged(classes: dict[str, dict]) -> list[str]:
    """The classes of a report's ``classes`` whose drawings can be read against their real test drawings: those
    with generated drawings and a ceiling above 0. Without real test drawings, or with none of them recognised,
    there is nothing to fall short of, and such a class is not judged rather than counted as fine."""
    return [name for name, e in classes.items() if e["recognisability"] is not None and e["ceiling"]]


def below_half(classes: dict[str, dict]) -> list[str]:
    """The judged classes of a report's ``classes`` whose drawings are recognised less than half as often as their
    real test drawings are."""
    return [name for name in judged(classes) if classes[name]["recognisability"] < 0.5 * classes[name]["ceiling"]]


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
    # Each class's k is lowered where it has few drawings (0: none measured): ``ks``, the k's the means rest on,
    # beside the k asked for (an int, as reports have held it).
    overall["precision_recall"]["k"] = metrics.K
    overall["precision_recall"]["ks"] = sorted({e["precision_recall"]["k"] for e in entries} - {0})
    return overall


def write_report(report: dict, path: str | os.PathLike) -> None:
    with atomic_write(path) as f:
        f.write((json.dumps(report, indent=2) + "\n").encode())
