"""sketchgen as a library: load a model, draw, finish, redraw and morph drawings, read and show them, train.

    import sketchgen
    model = sketchgen.load()                      # the shipped model; or a checkpoint, or a Magenta .gen.json
    eyes = model.sample("eye", n=4, seed=0)       # list of sketchgen.Drawing, shown inline by a notebook
    sketchgen.grid(eyes)
    run = sketchgen.train(classes=["cat", "dog"], model="mdn", out="runs/pets")

The command line (``cli``) and the web server (``serve``) are shells over
this module: the same seeds give the same drawings here as there, and what
the library decides - where data comes from and how a checkpoint's split is
reproduced, how a resumed run's settings merge with new ones, which model is
shipped - is decided here once. Every refusal is a ``SketchgenError`` (one
line saying what is wrong and what to do); files that cannot be read or
written raise ``OSError`` as Python's own functions do.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from sketchgen import data, models, render, strokes
from sketchgen import sample as sampling
from sketchgen.data import DataError, Prepared
from sketchgen.drawing import Drawing, Grid, as_drawings, checked_points, points_in
from sketchgen.errors import DrawingError, SketchgenError, flag, whole_number
from sketchgen.fileio import what_is
from sketchgen.sample import TEMPERATURE
from sketchgen.strokes import MAX_COORD, MAX_POINTS

SEED_CLASSES = ["apple", "eye", "square", "triangle", "circle"]
ASSETS = Path(__file__).resolve().parent / "assets"
# The course report's seed model, trained on the 5 seed classes: what `make demo` draws with when it finds no data.
SHIPPED_CHECKPOINT = ASSETS / "seed-quickdraw5.pt"
# The model that draws well, shipped: what `load()`, `sample` and `serve` draw with when given no checkpoint.
SHIPPED_MODEL = ASSETS / "mdn-quickdraw29.pt"
SHIPPED_DESCRIPTION = "an mdn trained on 29 Quick, Draw! classes, the seed classes among them"
# The mdn of all 345 classes: what draws a class the 29-class model does not know (docs/quality.md measures both).
BASE_MODEL = ASSETS / "mdn-quickdraw345.pt"
BASE_DESCRIPTION = "an mdn trained on all 345 Quick, Draw! classes"
DEFAULT_MAX_PER_CLASS = 100_000
NO_INIT = "none"  # --init none: a new run from random weights, not from its model's shipped base
MAX_PER_CLASS = 10**7
SEED_MAX = 2**63 - 1  # every seed becomes an int64 somewhere (torch, NumPy)
CHUNK = 500  # drawings generated at a time: memory stays one chunk's, whatever is asked for
MAX_DRAWINGS = 1_000_000  # drawings one call makes
MAX_EACH = 100_000  # drawings of each class (or of each drawing given) one call makes: n at most


class UsageError(SketchgenError):
    """Requests that contradict each other or a checkpoint (a flag, a setting, a class it lacks); one line."""


class SettingError(UsageError):
    """A setting the model or the training does not have, or a value outside what it takes."""


def classes() -> list[str]:
    """The 345 Quick, Draw! class names."""
    return data.categories()


# --- drawings ----------------------------------------------------------------------------------


def read_ndjson(path: str | os.PathLike) -> Iterator[Drawing]:
    """The drawings of a QuickDraw ndjson file, simplified or raw (raw converted with Google's simplification);
    each bad line is reported once on stderr as ``file:line: reason`` and skipped."""
    return data.read_ndjson(_path(path, "path"))


def write_ndjson(drawings: Drawing | Iterable[Drawing], path: str | os.PathLike) -> None:
    """A drawing or several as QuickDraw's simplified ndjson, one per line."""
    if isinstance(drawings, Drawing) or not isinstance(drawings, Iterable) or isinstance(drawings, (str, bytes)):
        drawings = as_drawings(drawings)  # one drawing, or one line saying what was given instead
    data.write_ndjson(drawings, _path(path, "path"))


def grid(drawings: Iterable[Drawing], columns: int = 8) -> Grid:
    """Drawings side by side, ``columns`` a row: a notebook shows it; ``.save(path)`` writes a PNG."""
    return Grid(drawings, columns)


def animate(drawings: Drawing | Iterable[Drawing], path: str | os.PathLike, columns: int = 4) -> Path:
    """A GIF of the drawings drawn stroke by stroke, side by side (``columns`` a row); the path written."""
    drawings = as_drawings(drawings)
    render.check_sheet(len(drawings), render.whole("columns", columns), render.ANIMATED_CELL, points_in(drawings),
                       frames=2)
    render.animate_many([checked_points(d.points) for d in drawings], path, columns)
    return Path(path)


# --- models ------------------------------------------------------------------------------------


def load(source: str | os.PathLike | None = None, device: str = "cpu", classes: Sequence[str] | None = None) -> Model:
    """A model ready to draw: ``source`` a checkpoint written by ``train`` (or ``sketchgen train``), a Magenta
    ``.gen.json`` model file, or None for a shipped model: the 29-class mdn, or where ``classes`` names one it does
    not know, the mdn of all 345. Checked whole before anything in it is used; torch's random state is left as it
    was (the weights are built, then loaded)."""
    if source is not None and (not isinstance(source, (str, os.PathLike)) or not os.fspath(source)
                               or "\0" in str(source)):
        raise UsageError(f"load takes a path to a checkpoint or a Magenta .gen.json file, not {source!r:.40}")
    if classes is not None:
        classes = _names(classes, "classes")
        if source is not None:
            raise UsageError("classes chooses among the shipped models; a checkpoint draws its own classes: "
                             "load(source), then model.sample(class)")
        _drawn_by_a_shipped_model(classes)
    device = _device(device)
    if source is None:
        ckpt, path = _shipped(classes)
    else:
        path = Path(source)
        ckpt = read_model(path)
    with torch.random.fork_rng(devices=[]):
        net = models.checkpoint.build(ckpt)
    return Model(net.to(device), ckpt, path)


def _drawn_by_a_shipped_model(classes: list[str]) -> None:
    """Refuse no class, or a class no shipped model draws (one of the 345 or not at all), with close matches."""
    if not classes:
        raise UsageError("classes is empty: name at least one class, or leave classes out for the 29-class model")
    known = data.categories()
    for name in classes:
        if name not in known:
            raise UsageError(f"no shipped model draws {name[:40]!r}: they draw the 345 Quick, Draw! classes "
                             f"(sketchgen.classes() lists them).{data.did_you_mean(name, known)} A class of your own needs a model trained on it "
                             "(sketchgen.train)")


def read_model(path: str | os.PathLike) -> dict:
    """The checkpoint dict of a sketchgen checkpoint or a Magenta ``.gen.json`` (imported as it is read), checked
    whole: what ``load`` draws with and ``train(init=...)`` starts from."""
    from sketchgen.interop.magenta import magenta_checkpoint

    path = Path(path)
    return magenta_checkpoint(path) if path.name.lower().endswith(".json") else models.read(path)


def _device(device: str) -> str:
    """``device`` if this machine has it (cpu, cuda, cuda:1, mps), else one line saying why not."""
    from sketchgen.training.distributed import check_device

    try:
        return check_device(device)
    except ValueError as e:
        raise UsageError(str(e)) from None


def shipped_model(classes: Sequence[str] | None = None) -> Path:
    """The shipped model that draws ``classes``: the 29-class mdn where it knows them all (it draws them better),
    else the mdn of all 345 classes; or one line saying there is none."""
    return _shipped(classes)[1]


def _shipped(classes: Sequence[str] | None) -> tuple[dict, Path]:
    """``shipped_model``'s checkpoint, checked, and its file: each file read once."""
    if SHIPPED_MODEL.is_file():
        ckpt = models.read(SHIPPED_MODEL)
        if not classes or set(classes) <= set(ckpt["classes"]) or not BASE_MODEL.is_file():
            return ckpt, SHIPPED_MODEL
    elif not (classes and BASE_MODEL.is_file()):
        raise models.CheckpointError(f"no checkpoint given and no shipped model at {SHIPPED_MODEL}: pass --checkpoint "
                                     "(a best.pt written by train), or train one: sketchgen train --model mdn --out runs/mdn")
    return models.read(BASE_MODEL), BASE_MODEL


class Model:
    """A trained sketch model, made by ``load``: the ``classes`` it draws (in the order of its class indices), its
    ``kind`` (the model's name, as ``sketchgen train --model`` takes it), ``latent_dim``, the ``path`` it came
    from, and what it draws.

    Each drawing has its own seed (``seed`` + its place in the call times
    ``sketchgen.sample.DRAWING_STRIDE``): drawing i of a call is the same whatever else
    the call draws at its other places, here or on the command line, and
    ``sample(word, seed=seed + i * DRAWING_STRIDE)`` draws it alone.
    """

    classes: list[str]  # the classes it draws, in the order of its class indices
    kind: str  # its model's name, as --model takes it
    path: Path  # the file it was loaded from
    net: models.SketchModel  # the PyTorch module
    checkpoint: dict  # the checkpoint it was built from, checked

    def __init__(self, net: models.SketchModel, ckpt: dict, path: Path):
        self.net, self.checkpoint, self.path = net.eval(), ckpt, Path(path)
        self.classes = list(ckpt["classes"])
        self.kind = net.name

    def __repr__(self) -> str:
        return f"<sketchgen {self.kind} model, {len(self.classes)} classes, from {self.path.name}>"

    @property
    def encodes(self) -> bool:
        """Whether it encodes drawings to a latent (``reconstruct``, ``variations``, ``interpolate``)."""
        return models.capable(self.net, models.Encodes)

    @property
    def latent_dim(self) -> int:
        """The size of its latent vector; 0 for a model that encodes no drawings."""
        return self.net.latent_dim if self.encodes else 0

    def labels(self, wanted: str | Sequence[str] | None = None) -> list[int]:
        """The class indices of ``wanted`` (default all), or one line naming those it was not trained on."""
        wanted = _names(wanted, "classes") if wanted is not None else self.classes
        if not wanted:  # none asked for is not every one: nothing would be drawn, without a word
            raise UsageError("classes is empty: name at least one class, or leave classes out for every class")
        index = data.Names(self.classes)
        unknown = [c for c in wanted if index.find(c) is None]
        if unknown:
            other = self.path == SHIPPED_MODEL and set(unknown) <= set(data.categories())
            hint = f" (sketchgen.load(classes={unknown[:3]!r}) loads the shipped model that draws them)" if other else ""
            raise models.CheckpointError(f"{self.path} was not trained on {models.listing(unknown)}{hint}; it knows: "
                                         f"{models.listing(self.classes)}")
        return [index.find(c) for c in wanted]

    # --- drawing -------------------------------------------------------------------------------

    def generate(self, labels: Sequence[int], temperature: float = TEMPERATURE, seed: int = 0,
                 max_len: int | None = None, prefix: Callable[[int], np.ndarray] | None = None) -> Iterator[np.ndarray]:
        """Stroke-3 drawings of ``labels`` (class indices, as ``labels()`` gives them; drawing i completing
        ``prefix(i)``, the stroke-3 start of a drawing, if given), made ``CHUNK`` at a time: memory stays one
        chunk's however many are asked for. Each prefix is checked as its chunk is made."""
        labels = self._indices(labels)
        _check_temperature(temperature)
        seed = _integer("seed", seed, 0, SEED_MAX)
        max_len = None if max_len is None else _integer("max_len", max_len, 1, MAX_POINTS)
        if prefix is not None and not callable(prefix):
            raise UsageError(f"prefix must be a function from a drawing's index to its start (stroke-3), not "
                             f"{prefix!r:.40}")
        return self._chunks(labels, temperature, seed, max_len, prefix)  # checked now, not at the first next()

    def _chunks(self, labels: np.ndarray, temperature: float, seed: int, max_len: int | None,
                prefix: Callable[[int], np.ndarray] | None) -> Iterator[np.ndarray]:
        for a in range(0, len(labels), CHUNK):
            part, prefixes = labels[a : a + CHUNK], None
            if prefix is not None:
                prefixes = [_start(prefix, i) for i in range(a, a + len(part))]
                sampling.check_prefixes(self.net, prefixes, first=a)
            yield from sampling.generate(self.net, part, temperature, seed + a * sampling.DRAWING_STRIDE, max_len, prefixes)

    def _indices(self, labels: Sequence[int]) -> np.ndarray:
        """``labels`` as an array, or one line naming the first that is not one of its class indices (a bool, a
        float or a name would be taken as some class, or fail deep in the model); too many, before any is read."""
        if isinstance(labels, str) or not (isinstance(labels, Sequence) or np.ndim(labels) == 1):
            raise UsageError(f"labels must be a sequence of class indices (model.labels(names) gives them), not "
                             f"{labels!r:.40}")
        drawings_asked(len(labels))
        for i, label in enumerate(labels):
            _integer(f"labels[{i}], a class index,", label, 0, len(self.classes) - 1)
        return np.asarray(labels, dtype=np.int64)

    def _drawings(self, labels, s3s: Iterable[np.ndarray], fit: bool = True, **info) -> list[Drawing]:
        return [Drawing.from_stroke3(s3, self.classes[label], fit=fit, model=self.kind, **info)
                for label, s3 in zip(labels, s3s)]

    def sample(self, classes: str | Sequence[str] | None = None, n: int = 1, temperature: float = TEMPERATURE,
               seed: int = 0, max_len: int | None = None) -> list[Drawing]:
        """``n`` drawings of each class (default every class it knows; "all": the 345), class by class."""
        how = _recorded(temperature, seed)
        wanted = self.labels(classes)
        labels = np.repeat(wanted, drawings_asked(len(wanted), n))
        return self._drawings(labels, self.generate(labels, max_len=max_len, **how), **how)

    def complete(self, drawings: Drawing | Iterable[Drawing], n: int = 1, temperature: float = TEMPERATURE,
                 seed: int = 0, max_len: int | None = None, strokes: int | None = None,
                 classes: str | Sequence[str] | None = None) -> list[Drawing]:
        """``n`` completions of each started drawing (cut to its first ``strokes`` strokes if given), as its own
        class (its word) or as ``classes`` (one for all, or one each).

        Each stays in its start's frame, the start's strokes exactly as given
        and the model's after them; ``Drawing.from_stroke3(d.stroke3)`` fits one
        into the 0-255 frame, as ``sketchgen sample --prefix`` writes it.
        """
        how = _recorded(temperature, seed)
        drawings = as_drawings(drawings)
        n = drawings_asked(len(drawings), n)
        starts = [_cut(d, strokes) for d in drawings]
        sampling.check_prefixes(self.net, starts)  # here, so that the index named is the caller's drawing
        if isinstance(classes, str) and not classes:  # a drawing's own word stood in for it
            raise UsageError("classes must be a class name or a list of class names, not ''")
        words = [classes] * len(drawings) if classes is None or isinstance(classes, str) else _names(classes, "classes")
        if len(words) != len(drawings):
            raise UsageError(f"{len(words)} classes for {len(drawings)} drawings: give one class for all, or one each")
        labels = self._labels_of(drawings, words)
        rows = np.repeat(np.arange(len(drawings)), n)
        made = self.generate(labels[rows], max_len=max_len, prefix=lambda i: starts[rows[i]], **how)
        try:
            return self._drawings(labels[rows], made, fit=False, **how)
        except DrawingError as e:  # the model's strokes go where the start puts them: past the edge, from near it
            raise DrawingError(f"a completion: {e} (a start near the +-{MAX_COORD} edge can take the model's strokes "
                               "past it: move the start nearer 0, as QuickDraw's 0-255 frame is)") from None

    def reconstruct(self, drawings: Drawing | Iterable[Drawing], temperature: float = TEMPERATURE,
                    seed: int = 0) -> list[Drawing]:
        """Each drawing redrawn from the mean of its latent, as its class (its word): a model that encodes. Made
        ``CHUNK`` at a time, the same drawings as all at once: the work in hand stays one chunk's."""
        how = _recorded(temperature, seed)
        drawings = _to_encode(drawings)
        sampling.require_encoder(self.net)
        drawings_asked(len(drawings))
        labels = self._labels_of(drawings)
        redrawn = []
        for a in range(0, len(drawings), CHUNK):
            part = labels[a : a + CHUNK]
            made = sampling.reconstruct(self.net, [d.stroke3 for d in drawings[a : a + CHUNK]], part,
                                        how["temperature"], how["seed"] + a * sampling.DRAWING_STRIDE)
            redrawn += self._drawings(part, made, **how)
        return redrawn

    def variations(self, drawings: Drawing | Iterable[Drawing], n: int = 4, temperature: float = TEMPERATURE,
                   seed: int = 0) -> list[Drawing]:
        """``n`` drawings from the posterior of each drawing's latent, drawing by drawing: a model that encodes."""
        return list(self.iter_variations(drawings, n, temperature, seed))

    def iter_variations(self, drawings: Drawing | Iterable[Drawing], n: int = 4,
                        temperature: float = TEMPERATURE, seed: int = 0) -> Iterator[Drawing]:
        """``variations``, made and yielded about ``CHUNK`` at a time: memory stays a chunk's, whatever ``n``."""
        drawings = _to_encode(drawings)
        sampling.require_encoder(self.net)
        labels, n = self._labels_of(drawings), drawings_asked(len(drawings), n)
        how = _recorded(temperature, seed)
        return self._variations(drawings, labels, n, how)  # checked now, not at the first next()

    def _variations(self, drawings: list[Drawing], labels: np.ndarray, n: int, how: dict) -> Iterator[Drawing]:
        temperature, seed = how["temperature"], how["seed"]
        step = max(1, CHUNK // max(n, 1))  # drawings whose variations make a chunk
        for a in range(0, len(drawings), step):
            # Drawing i's variations are rows i * n ... of one call: this chunk's start at a * n.
            made, rows = sampling.variations(self.net, [d.stroke3 for d in drawings[a : a + step]], labels[a : a + step],
                                           n, temperature, seed + a * n * sampling.DRAWING_STRIDE)
            yield from self._drawings(labels[a + rows], made, **how)

    def interpolate(self, a: Drawing, b: Drawing, steps: int = 10, temperature: float = TEMPERATURE,
                    seed: int = 0) -> list[Drawing]:
        """``steps`` drawings morphing ``a`` into ``b`` (both ends included): a model that encodes."""
        sampling.require_encoder(self.net)
        steps = _integer("steps", steps, 2, 1000)
        for name, end in (("a", a), ("b", b)):  # named, rather than the list of both as_drawings would quote
            if not isinstance(end, Drawing):
                raise UsageError(f"{name} must be a sketchgen.Drawing, not {end!r:.40}")
        a, b = _to_encode([a, b])
        labels = self._labels_of([a, b])
        how = _recorded(temperature, seed)
        frames, ts = sampling.interpolate(self.net, [a.stroke3, b.stroke3], labels, steps, **how)
        return [Drawing.from_stroke3(f, a.word if t < 0.5 else b.word, model=self.kind, t=round(float(t), 6), **how)
                for f, t in zip(frames, ts)]

    def _labels_of(self, drawings: Sequence[Drawing], words: Sequence[str | None] | None = None) -> np.ndarray:
        """The class of each drawing, its word unless ``words`` says otherwise; one line for a class it lacks."""
        index = data.Names(self.classes)
        labels = []
        for i, d in enumerate(drawings):
            word = (words[i] if words is not None else None) or d.word
            if not isinstance(word, str) or index.find(word) is None:
                raise UsageError(f"drawing {i + 1} is a {str(word)[:40]!r}, a class {self.path.name} was not trained "
                                 f"on; it knows: {models.listing(self.classes)}")
            labels.append(index.find(word))
        return np.array(labels, dtype=np.int64)


def _to_encode(drawings: Drawing | Iterable[Drawing]) -> list[Drawing]:
    """``as_drawings``, none of them empty: a drawing of no points has no latent to encode."""
    drawings = as_drawings(drawings)
    empty = next((i for i, d in enumerate(drawings) if not d.points), None)
    if empty is not None:
        raise UsageError(f"drawing {empty + 1} is empty: there is nothing in it to encode")
    return drawings


def drawings_asked(items: int, n: int = 1) -> int:
    """``n``, drawings of each of ``items`` (at most ``MAX_EACH``), refused (one line) where that is more than
    ``MAX_DRAWINGS`` in all: before anything is made for them, whose memory would grow with the product."""
    n = _integer("n", n, 0, MAX_EACH)
    if items * n > MAX_DRAWINGS:
        raise UsageError(f"{items * n:,} drawings asked for, more than {MAX_DRAWINGS:,} in one call: ask for fewer")
    return n


def _start(prefix: Callable[[int], np.ndarray], i: int) -> np.ndarray:
    """``prefix(i)`` as an array if it is the stroke-3 start of a drawing as ``Drawing.from_stroke3`` takes one
    (numbers, (n, 3), finite, within a drawing's points and frame), else one line naming ``i``: NaN or a huge
    offset would fail deep in the model."""
    s3 = prefix(i)
    try:
        Drawing.from_stroke3(s3, fit=False)
    except DrawingError as e:
        raise DrawingError(f"prefix({i}) is not the start of a drawing: {e}") from None
    return np.asarray(s3)


def _recorded(temperature: float, seed: int) -> dict:
    """The sampling settings, checked, as plain numbers: each drawing records them, and a NumPy number among its
    fields would not be written as JSON."""
    return {"temperature": _check_temperature(temperature), "seed": _integer("seed", seed, 0, SEED_MAX)}


def _integer(name: str, value: int, low: int, high: int) -> int:
    """``value`` if it is a whole number from ``low`` to ``high``, else one line naming ``name``."""
    return whole_number(name, value, low, high, UsageError)


def _names(value: str | Sequence[str], name: str) -> list[str]:
    """A name or a sequence of names as a list ("all" alone: the 345, as ``--classes all``; a class of your own
    named so goes in a list), or one line saying what ``name`` takes instead."""
    if isinstance(value, str) and value == data.ALL:
        return data.categories()
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, Sequence) or not all(isinstance(c, str) and c for c in names):
        raise UsageError(f"{name} must be a class name or a list of class names, not {value!r:.40}")
    return list(names)


def _class_list(value: str | Sequence[str]) -> list[str]:
    """Classes to train, as ``--classes`` takes them: at least one, none twice (a model's classes are its rows)."""
    names = _names(value, "classes")
    if not names:
        raise UsageError("classes is empty: name at least one class (or leave it out for the 5 seed classes)")
    twice = data.named_twice(names)
    if twice is not None:
        raise UsageError(f"classes: class {twice[:40]!r} is named twice")
    return names


def _check_temperature(t: float) -> float:
    if isinstance(t, (bool, np.bool_)) or not isinstance(t, (int, float, np.integer, np.floating)) \
            or not 0 < t <= sampling.MAX_TEMPERATURE:
        raise UsageError(f"temperature must be a number above 0 and at most {sampling.MAX_TEMPERATURE:g}, not {t!r:.40}")
    return float(t)


def _cut(d: Drawing, n_strokes: int | None) -> np.ndarray:
    """A started drawing's stroke-3, cut to its first ``n_strokes`` strokes."""
    if n_strokes is not None:
        n_strokes = _integer("strokes", n_strokes, 1, MAX_POINTS)
    points = d.points[:n_strokes] if n_strokes else d.points
    if not points:
        raise UsageError(f"a {d.word!r} drawing with no strokes cannot be completed")
    return Drawing(d.word, points).stroke3  # checked: a Drawing(...) made by hand skipped from_points' door


# --- data: where drawings come from, and which split a model saw -------------------------------


def data_settings(data_dir=None, max_per_class: int | None = None, seed: int | None = None,
                  recorded: dict | None = None, where: str = "") -> dict:
    """What to prepare (data_dir, max_per_class, seed): as given, else what ``recorded`` (a checkpoint's or a
    run's data settings) holds, else the defaults. A value that contradicts ``recorded`` is refused: the split
    would not be the one the model saw."""
    if data_dir is not None:
        _path(data_dir, "data_dir")
    if max_per_class is not None:
        max_per_class = _integer("max_per_class", max_per_class, 1, MAX_PER_CLASS)
    if seed is not None:
        seed = _integer("seed", seed, 0, SEED_MAX)  # a plain int: NumPy's would not be written as JSON
    if recorded is None:
        return {"data_dir": data_dir, "max_per_class": max_per_class or DEFAULT_MAX_PER_CLASS, "seed": seed or 0}
    for key, given in (("max_per_class", max_per_class), ("seed", seed)):
        if given is not None and given != recorded[key]:
            name = flag(key)
            raise UsageError(f"{name} {given} contradicts {where}, which was trained with {name} {recorded[key]}; "
                             f"leave {name} out to use the model's own split")
    return {"data_dir": data_dir if data_dir is not None else recorded["data_dir"],
            "max_per_class": recorded["max_per_class"], "seed": recorded["seed"]}


def own_split(path, ckpt: dict, data_dir=None, max_per_class: int | None = None, say=None) -> dict:
    """The data settings of a checkpoint's own split: those it records, else (a checkpoint of 0.1.0, or one
    imported from another tool's file, trained on none of our drawings) those given and the defaults."""
    say = say or _say
    recorded = ckpt.get("data")
    if recorded is None:
        imported = ckpt.get("imported")
        if imported:
            say(f"{path} was imported from {imported['file']} ({imported['format']}): it learnt from that model's own "
                "drawings, none of ours, so its test drawings are the test split of those the data rule finds "
                "(Quick, Draw! drawings it may have seen in training)")
        else:
            say(f"{path} records no data settings (sketchgen 0.1.0): using --max-per-class and the seed its "
                "training used, as given")
        recorded = {"data_dir": None, "max_per_class": max_per_class or DEFAULT_MAX_PER_CLASS,
                    "seed": ckpt.get("train", {}).get("seed", 0)}
    settings = data_settings(data_dir, max_per_class, None, recorded, str(path))
    if data_dir is None and recorded["data_dir"] is not None and not Path(recorded["data_dir"]).is_absolute():
        _same_files(path, recorded.get("sources") or {}, recorded["data_dir"])
    return settings


def _same_files(path, sources: dict, data_dir: str) -> None:
    """Refuse class files other than those a checkpoint trained from, found through the relative --data-dir it
    records: read from another working folder, it would give another split, silently. (A model used on another
    machine finds its data elsewhere by design: an absolute folder, or the data rule's, is taken as it is.)"""
    for name, trained in sources.items():
        try:
            here = str(data.find_class_file(name, data_dir, fetch=False).resolve())
        except DataError:
            continue  # said by prepare, if the class is asked for
        if here != trained:
            raise DataError(f"{path} was trained on {trained}, but {here} is what its data folder "
                            f"({data_dir!r}, relative) gives here: its split would not be the model's; pass "
                            "--data-dir where it was trained from (or this folder, to use these drawings)")


def prepare(classes: Sequence[str], settings: dict, workers: int | None = None, verify: bool = False) -> Prepared:
    """The drawings of ``classes`` as ``data_settings`` say; ``workers`` and ``verify`` change how, never what."""
    return data.prepare(list(classes), settings["data_dir"], settings["max_per_class"], settings["seed"],
                        workers=workers, verify=verify)


def own_drawings(path, ckpt: dict, classes: Sequence[str], data_dir=None, max_per_class: int | None = None,
                 say=None) -> Prepared:
    """The drawings of ``classes`` in a checkpoint's own split (``own_split``). Where a class file has changed since
    the model was trained, its split is not the model's and its test drawings may be ones the model trained on:
    said in one line, since measuring a model on other drawings (the shipped ones on a full download) is allowed."""
    say = say or _say
    prepared = prepare(classes, own_split(path, ckpt, data_dir, max_per_class, say))
    if changed := data.changed_files(ckpt.get("data"), prepared):
        here, there = changed[0]
        what = f"has changed since {path} was trained" if here == there else \
            f"is not {there}, which {path} was trained on"
        say(f"note: {here}{data.more_files(changed)} {what} (SHA-256): its test drawings here are not the model's "
            "own, and may include some it trained on")
    return prepared


def test_starts(model: Model, labels: Sequence[int], n_strokes: int | None, data_dir=None) -> list[np.ndarray]:
    """The model's own test drawings of each label's class in turn (cut to ``n_strokes`` strokes), to complete."""
    ckpt = model.checkpoint
    if ckpt.get("data") is None and not ckpt.get("imported"):
        raise DataError(f"{model.path} records no data settings (written by sketchgen 0.1.0): "
                        "give drawings to complete instead of its test drawings")
    # The classes asked for alone (each class's split is its own): every class of a 345-class model was prepared,
    # or downloaded, to complete one cat.
    wanted = [model.classes[label] for label in dict.fromkeys(int(label) for label in labels)]
    prepared = own_drawings(model.path, ckpt, wanted, data_dir)
    test = prepared.indices("test")
    test = test[prepared.lengths()[test] <= sampling.longest_prefix(model.net)]  # longer, it cannot be a start
    starts, used, cut = [], {}, {}
    for label in labels:
        mine = test[prepared.labels[test] == wanted.index(model.classes[label])]
        if not len(mine):
            raise DataError(f"no test drawing of {model.classes[label]!r} to complete")
        k = used.get(int(label), 0)
        used[int(label)] = k + 1
        i = int(mine[k % len(mine)])
        if i not in cut:  # each test drawing cut once, however many drawings start from it
            cut[i] = strokes.strokes_to_stroke3(strokes.stroke3_to_strokes(prepared.stroke3(i))[:n_strokes])
        starts.append(cut[i])
    return starts


# --- training ----------------------------------------------------------------------------------


@dataclass
class Run:
    """A finished training run: its folder, ``best`` and ``last`` checkpoints, and one record per validation."""

    out: Path
    history: list[dict]
    data: Prepared

    def __repr__(self) -> str:  # not the dataclass's: every record of the history, and the data's object
        losses = [r["val_loss"] for r in self.history if isinstance(r.get("val_loss"), float)]
        best = f", best validation loss {min(losses):.4f}" if losses else ""
        return f"<sketchgen run in {self.out}: {len(self.history)} validations{best}>"

    @property
    def best(self) -> Path:
        """The checkpoint of the best validation loss: the one to draw with."""
        return self.out / "best.pt"

    @property
    def last(self) -> Path:
        """The checkpoint of the latest step, with what ``train(..., resume=True)`` needs to continue."""
        return self.out / "last.pt"

    def load(self, device: str = "cpu") -> Model:
        """The best weights, ready to draw."""
        return load(self.best, device)


def model_kind(model: str | None = None, out: str | os.PathLike | None = None, resume: bool = False,
               init: str | None = None) -> str:
    """The model a training trains: the one asked for, else a resumed run's, else ``init``'s, else the default."""
    from sketchgen.training.checkpoints import read_last

    last = Path(out) / "last.pt" if out is not None else None
    if model is not None:
        return models.get(model).name
    if resume and last is not None and last.is_file():
        return read_last(last)["train"]["model"]
    if init and init != NO_INIT:
        return read_model(init)["kind"]
    return models.default()


def train(classes: Sequence[str] | None = None, model: str | None = None, out: str | os.PathLike | None = None, *,
          data_dir: str | os.PathLike | None = None, max_per_class: int | None = None, seed: int | None = None,
          workers: int | None = None, init: str | os.PathLike | None = None, resume: bool = False,
          overwrite: bool = False, log: Callable[[str], None] | None = None, **settings: object) -> Run:
    """Train a model as ``sketchgen train`` does, with its defaults and checks; the finished ``Run``.

    ``classes`` default to the 5 seed classes (a resumed run's own; "all": the 345);
    ``model`` to the seed model (a resumed run's, or ``init``'s kind).
    ``init`` is where a new run's weights start: a checkpoint or a Magenta
    ``.gen.json`` (read once, as ``load`` reads it), "none" for random
    weights, by default the model's shipped base if it has one.
    ``settings`` are training settings (``training.TrainConfig``'s: ``steps``,
    ``lr``, ``batch_size``, ...) and the model's own (``hidden``, ``dropout``,
    ...), each checked against its bounds. ``out`` defaults to
    runs/train-<time>; a folder holding a run is refused unless ``resume``
    (continue it with its own settings) or ``overwrite``. Progress goes to
    ``log`` (default: stderr) and a progress bar.
    """
    from sketchgen import training
    from sketchgen.training.checkpoints import check_out, of_kind, read_last

    if log is not None and not callable(log):
        raise UsageError(f"log must be a function of one line of text, not {log!r:.40}")
    for flag_name, value in (("resume", resume), ("overwrite", overwrite)):
        if not isinstance(value, (bool, np.bool_)):
            raise UsageError(f"{flag_name} must be True or False, not {value!r:.40}")
    log = log or _say
    if resume and overwrite:
        raise UsageError("resume continues the run in out, overwrite replaces it: pass one of them, not both")
    if workers is not None:
        _integer("workers", workers, 1, 10**9)
    if model is not None:
        models.get(model)  # one line naming the models; "" would be taken for "not given"
    classes = None if classes is None else _class_list(classes)
    if init is not None and init != NO_INIT:
        _path(init, "init")
    out = run_path(out, "train")  # made by the training, once everything is checked
    if training.is_main_process():  # the process that writes, as the run's own check (two would lock each other out)
        check_out(out, resume, overwrite)
    last = read_last(out / "last.pt") if resume and (out / "last.pt").is_file() else None
    if last is not None and classes is not None and \
            [data.canonical(c) for c in classes] != [data.canonical(c) for c in last["classes"]]:
        raise UsageError(f"--classes differ from the run in {out} ({', '.join(last['classes'][:5])}...); "
                         "leave --classes out to resume it, or pass --overwrite to start again")
    classes = list(last["classes"] if last else classes or SEED_CLASSES)  # a run's own, as it wrote them
    settings_ = data_settings(data_dir, max_per_class, seed, last and last.get("data"), f"the run in {out}")
    start = None  # the checkpoint the run starts from, read once
    if last is not None and init is not None:
        init = _as_recorded(init, last["train"]["init"])
    if last is None:
        init, start, said = starting_point(model, init, settings)
        model = model or (start and start["kind"])
        if said and training.is_main_process():
            log(said)
    cfg = train_config(model, last and last["train"], settings_["seed"], init=None if init is None else str(init),
                       **settings)
    if last is not None and cfg.init and cfg.fine_tune == "new-classes" and "frozen_classes" not in last:
        start = read_model(cfg.init)  # an earlier sketchgen's run: the init's classes say which rows stay frozen
    if start is not None:
        of_kind(start, cfg.model, cfg.init)
    prepared = prepare(classes, settings_, workers)
    if training.is_main_process():
        log(f"training {cfg.model} on {len(prepared.indices('train'))} drawings of {len(classes)} classes -> {out}")
    with torch.random.fork_rng(devices=[]):  # it seeds torch as the run says: the caller's random state is kept
        history = training.train(cfg, prepared, out, resume=resume, overwrite=overwrite, log=log, init=start)
    if training.is_main_process():
        render.loss_curve(history, out / "loss_curve.png")
    return Run(out, history, prepared)


def _as_recorded(init: str | os.PathLike, recorded: str) -> str:
    """``--init`` given again to resume a run, as the run recorded it: "" for none, the recorded path where the
    two name the same file (``base.pt`` and ``./base.pt``), so that the same command resumes."""
    if init == NO_INIT:
        return ""
    try:
        return recorded if recorded and os.path.samefile(init, recorded) else str(init)
    except OSError:  # either is gone: compared as written
        return str(init)


def starting_point(model: str | None, init: str | os.PathLike | None,
                   settings: dict) -> tuple[str | None, dict | None, str]:
    """The checkpoint a new run of a ``model`` (default: ``init``'s kind, else the default model) starts from: its
    path and its dict, read once, and the line that says so.

    ``init`` as given (a checkpoint, or a Magenta ``.gen.json`` as ``load`` reads it); ``NO_INIT`` ("none") for
    random weights; by default a shipped base of its kind (``SketchModel.bases``, fine-tuned as detection and
    language models are): the first whose weights mean what the settings given ask for (a ``--hidden`` of
    another size, another cell), else random weights.
    """
    if init == NO_INIT:
        return None, None, f"--init {NO_INIT}: training from random weights"
    if init is not None:
        return str(init), read_model(init), ""
    cls = models.get(model or models.default())
    refused = []  # (base, the first setting that rules it out, the base's value)
    for path in (ASSETS / name for name in cls.bases if (ASSETS / name).is_file()):
        ckpt = models.read(path)
        config = ckpt["config"]
        differ = [k for k in cls.weight_settings if k in settings and settings[k] != config[k]]
        if not differ:
            return str(path), ckpt, (f"starting from the shipped base {path.name} (pretrained on all "
                                     f"{config['n_classes']} Quick, Draw! classes): the classes it knows keep what it "
                                     "learnt, new ones start fresh; --init none trains from random weights")
        refused.append((path.name, differ[0], config[differ[0]]))
    if not refused:
        return None, None, ""
    name, key, theirs = refused[0]
    return None, None, (f"training from random weights: --{key.replace('_', '-')} {settings[key]} is not the shipped "
                        f"base's {theirs} ({name}; --init FILE starts from another checkpoint)")


def train_config(model: str | None, saved: dict | None, seed: int, init: str | None = None, **settings):
    """The ``TrainConfig`` of a run: the model's defaults (or a resumed run's saved settings), then ``settings``.

    Each setting is the training's or the model's own, checked against its bounds (``SettingError``).
    """
    from sketchgen.models.checkpoint import check_settings
    from sketchgen.training import TrainConfig
    from sketchgen.training.config import with_budget
    from sketchgen.training.distributed import check_device

    kind = model or (saved["model"] if saved else None) or (read_model(init)["kind"] if init else None) \
        or models.default()
    cls = models.get(kind)
    own = {f.name for f in fields(cls.Config) if f.metadata.get("help")}
    loop = {f.name for f in fields(TrainConfig)} - {"model", "model_config", "seed", "init"}
    unknown = [k for k in settings if k not in own and k not in loop]
    if unknown:
        raise SettingError(f"{unknown[0]} is not a setting of a {kind} model or of its training")

    def fail(message: str):
        raise SettingError(message)

    # NumPy's numbers as Python's (np.int64(3) is a whole number, np.float32(0.5) a number), for the checks and JSON
    given = {k: v.item() if isinstance(v, np.generic) else v for k, v in settings.items() if v is not None}
    model_settings = check_settings(cls.Config, {k: v for k, v in given.items() if k in own}, fail,
                                    f"{kind} setting", partial=True)
    overrides = check_settings(TrainConfig, {k: v for k, v in given.items() if k in loop}, fail,
                               "training setting", partial=True)
    if init is not None:
        overrides["init"] = init
    base = dict(saved) if saved else {**cls.train_defaults}
    cfg = TrainConfig(**{**with_budget(base, overrides), "model": kind, "seed": seed,
                         "model_config": {**base.get("model_config", {}), **model_settings}})
    if overrides.get("warmup"):  # asked for, so say where it would do nothing (a model's default may be moot)
        if cfg.lr_schedule == "plateau":
            raise SettingError(f"--warmup {cfg.warmup} does nothing under the plateau schedule, which follows the "
                               "validation loss: pass --lr-schedule decay or cosine, or leave --warmup out")
        if cfg.steps and cfg.warmup >= cfg.steps:
            raise SettingError(f"--warmup {cfg.warmup} is the whole run (--steps {cfg.steps}): the rate would never "
                               "reach --lr; lower --warmup")
    try:
        check_device(cfg.device)
    except ValueError as e:
        if saved and "device" not in overrides:  # the run's own device: one this machine may not have
            raise UsageError(f"the run trained on {cfg.device[:40]}: {e}; pass --device cpu to continue it here") from None
        raise UsageError(str(e)) from None
    return cfg


# --- small shared things -----------------------------------------------------------------------


def run_path(out: str | os.PathLike | None, prefix: str) -> Path:
    """``out``, or runs/<prefix>-<time>; one line if it, or the nearest folder above it that is there, is no folder
    (said before any work, where ``mkdir`` said `[Errno 20] Not a directory` after it)."""
    import time

    path = _path(out, "out") if out is not None else Path("runs") / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    above = next((p for p in (path, *path.parents) if os.path.lexists(p)), None)
    if above is not None and not above.is_dir():
        where = "" if above == path else f" (for {path})"
        raise UsageError(f"{above} is {what_is(above)}, not a folder{where}: give another path for the output")
    return path


def _path(value: str | os.PathLike, name: str) -> Path:
    """``value`` as a path, or one line saying what ``name`` takes: never empty ("" would be taken for "not given",
    or for the working folder), never with a NUL (no file system takes one)."""
    if not isinstance(value, (str, os.PathLike)) or not str(value) or "\0" in str(value):
        raise UsageError(f"{name} must be a path (a non-empty str or os.PathLike, without NUL), not {value!r:.40}")
    return Path(value)


def run_dir(out: str | os.PathLike | None, prefix: str) -> Path:
    """``run_path``, made if missing."""
    path = run_path(out, prefix)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _say(msg: str) -> None:
    print(msg, file=sys.stderr)


__all__ = ["Drawing", "Grid", "Model", "Run", "SettingError", "SketchgenError", "UsageError", "animate", "classes",
           "grid", "load", "read_ndjson", "train", "write_ndjson"]
