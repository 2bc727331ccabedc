"""sketchgen as a library: load a model, draw, finish, redraw and morph drawings, read and show them.

    import sketchgen
    model = sketchgen.load()                      # the shipped model; or a checkpoint, or a Magenta .gen.json
    eyes = model.sample("eye", n=4, seed=0)       # list of sketchgen.Drawing, shown inline by a notebook
    sketchgen.grid(eyes)

Training is ``runs`` (``sketchgen.train``), and which drawings a model saw
is ``splits``; both build on this module. The command line (``cli``) and the
web server (``serve``) are shells over the three: the same seeds give the
same drawings there as here, and what the library decides - which model is
shipped, how a checkpoint's split is reproduced, how a resumed run's
settings merge with new ones - is decided once. Every refusal is a
``SketchgenError`` (one line saying what is wrong and what to do); files
that cannot be read or written raise ``OSError`` as Python's own functions do.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from sketchgen import classfiles, data, models, render
from sketchgen import sample as sampling
from sketchgen.drawing import Drawing, Grid, as_drawings, checked_points, points_in
from sketchgen.errors import DrawingError, SketchgenError, counted, whole_number
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
    return classfiles.categories()


# --- drawings ----------------------------------------------------------------------------------


def read_ndjson(path: str | os.PathLike) -> Iterator[Drawing]:
    """The drawings of a QuickDraw ndjson file, simplified or raw (raw converted with Google's simplification);
    each bad line is reported once on stderr as ``file:line: reason`` and skipped."""
    return data.read_ndjson(checked_path(path, "path"))


def write_ndjson(drawings: Drawing | Iterable[Drawing], path: str | os.PathLike) -> None:
    """A drawing or several as QuickDraw's simplified ndjson, one per line."""
    if isinstance(drawings, Drawing) or not isinstance(drawings, Iterable) or isinstance(drawings, (str, bytes)):
        drawings = as_drawings(drawings)  # one drawing, or one line saying what was given instead
    data.write_ndjson(drawings, checked_path(path, "path"))


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
        classes = class_names(classes, "classes")
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
    return Model(models.checkpoint.build(ckpt).to(device), ckpt, path)


def _drawn_by_a_shipped_model(classes: list[str]) -> None:
    """Refuse no class, or a class no shipped model draws (one of the 345 or not at all), with close matches."""
    if not classes:
        raise UsageError("classes is empty: name at least one class, or leave classes out for the 29-class model")
    known = classfiles.categories()
    for name in classes:
        if name not in known:
            raise UsageError(f"no shipped model draws {name[:40]!r}: they draw the 345 Quick, Draw! classes "
                             f"(sketchgen.classes() lists them).{classfiles.did_you_mean(name, known)} A class of your "
                             "own needs a model trained on it (sketchgen.train)")


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
        return f"<sketchgen {self.kind} model, {counted(len(self.classes), 'class')}, from {self.path.name}>"

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
        wanted = class_names(wanted, "classes") if wanted is not None else self.classes
        if not wanted:  # none asked for is not every one: nothing would be drawn, without a word
            raise UsageError("classes is empty: name at least one class, or leave classes out for every class")
        index = classfiles.Names(self.classes)
        unknown = [c for c in wanted if index.find(c) is None]
        if unknown:
            other = self.path == SHIPPED_MODEL and set(unknown) <= set(classfiles.categories())
            hint = f" (sketchgen.load(classes={unknown[:3]!r}) loads the shipped model that draws them)" if other else ""
            raise UsageError(f"{self.path} was not trained on {models.listing(unknown)}{hint}; it knows: "
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
        seed = checked_int("seed", seed, 0, SEED_MAX)
        max_len = None if max_len is None else checked_int("max_len", max_len, 1, MAX_POINTS)
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
            checked_int(f"labels[{i}], a class index,", label, 0, len(self.classes) - 1)
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
        words = [classes] * len(drawings) if classes is None or isinstance(classes, str) \
            else class_names(classes, "classes")
        if len(words) != len(drawings):
            raise UsageError(f"{len(words)} classes for {len(drawings)} drawings: give one class for all, or one each")
        if classes is None:
            labels = self._labels_of(drawings)
        else:  # a class it lacks named as sample names it, not blamed on the drawing
            asked = list(dict.fromkeys(words))
            found = dict(zip(asked, self.labels(asked)))
            labels = np.array([found[w] for w in words], dtype=np.int64)
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
        steps = checked_int("steps", steps, 2, 1000)
        for name, end in (("a", a), ("b", b)):  # named, rather than the list of both as_drawings would quote
            if not isinstance(end, Drawing):
                raise UsageError(f"{name} must be a sketchgen.Drawing, not {end!r:.40}")
        a, b = _to_encode([a, b])
        labels = self._labels_of([a, b])
        how = _recorded(temperature, seed)
        frames, ts = sampling.interpolate(self.net, [a.stroke3, b.stroke3], labels, steps, **how)
        return [Drawing.from_stroke3(f, a.word if t < 0.5 else b.word, model=self.kind, t=round(float(t), 6), **how)
                for f, t in zip(frames, ts)]

    def _labels_of(self, drawings: Sequence[Drawing]) -> np.ndarray:
        """The class of each drawing, its word; one line for a class it lacks."""
        index = classfiles.Names(self.classes)
        labels = []
        for i, d in enumerate(drawings):
            word = d.word
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
    n = checked_int("n", n, 0, MAX_EACH)
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
    return {"temperature": _check_temperature(temperature), "seed": checked_int("seed", seed, 0, SEED_MAX)}


def _check_temperature(t: float) -> float:
    if isinstance(t, (bool, np.bool_)) or not isinstance(t, (int, float, np.integer, np.floating)) \
            or not 0 < t <= sampling.MAX_TEMPERATURE:
        raise UsageError(f"temperature must be a number above 0 and at most {sampling.MAX_TEMPERATURE:g}, not {t!r:.40}")
    return float(t)


def _cut(d: Drawing, n_strokes: int | None) -> np.ndarray:
    """A started drawing's stroke-3, cut to its first ``n_strokes`` strokes."""
    if n_strokes is not None:
        n_strokes = checked_int("strokes", n_strokes, 1, MAX_POINTS)
    points = d.points[:n_strokes] if n_strokes else d.points
    if not points:
        raise UsageError(f"a {d.word!r} drawing with no strokes cannot be completed")
    return Drawing(d.word, points).stroke3  # checked: a Drawing(...) made by hand skipped from_points' door


# --- small shared things -----------------------------------------------------------------------


def checked_int(name: str, value: int, low: int, high: int) -> int:
    """``value`` if it is a whole number from ``low`` to ``high``, else one line naming ``name``."""
    return whole_number(name, value, low, high, UsageError)


def class_names(value: str | Sequence[str], name: str) -> list[str]:
    """A name or a sequence of names as a list ("all" alone: the 345, as ``--classes all``; a class of your own
    named so goes in a list), or one line saying what ``name`` takes instead."""
    if isinstance(value, str) and value == classfiles.ALL:
        return classfiles.categories()
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, Sequence) or not all(isinstance(c, str) and c for c in names):
        raise UsageError(f"{name} must be a class name or a list of class names, not {value!r:.40}")
    return list(names)


def run_path(out: str | os.PathLike | None, prefix: str) -> Path:
    """``out``, or runs/<prefix>-<time>; one line if it, or the nearest folder above it that is there, is no folder
    (said before any work, where ``mkdir`` said `[Errno 20] Not a directory` after it)."""
    import time

    path = checked_path(out, "out") if out is not None else Path("runs") / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    above = next((p for p in (path, *path.parents) if os.path.lexists(p)), None)
    if above is not None and not above.is_dir():
        where = "" if above == path else f" (for {path})"
        raise UsageError(f"{above} is {what_is(above)}, not a folder{where}: give another path for the output")
    return path


def checked_path(value: str | os.PathLike, name: str) -> Path:
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


def to_stderr(msg: str) -> None:
    """Where the library says what it does when not given a ``log`` or ``say`` of the caller's."""
    print(msg, file=sys.stderr)


__all__ = ["Drawing", "Grid", "Model", "SettingError", "SketchgenError", "UsageError", "animate", "classes", "grid",
           "load", "read_ndjson", "write_ndjson"]
