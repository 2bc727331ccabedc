"""The models behind the page and what a request may ask of them, every field checked.

Several checkpoints serve together, each model with its own batcher; a model
is named on the page and in requests by the shortest end of its path that
tells it from the others (``best.pt``, or ``a/best.pt`` beside ``b/best.pt``).
A request may leave the model out where only one model knows its class. What
a model can do is asked of it (``uses_temperature``, ``max_steps``,
``latent_dim``), never decided by its name.
"""

from __future__ import annotations

import asyncio
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from sketchgen import api, models, sample, strokes
from sketchgen.classfiles import Names
from sketchgen.sample import MAX_TEMPERATURE, TEMPERATURE
from sketchgen.serve.batcher import BATCH, Batcher, DrawingFailed, Job

# Bytes of a request body: interpolate's two drawings of MAX_POINTS points each, at the longest JSON numbers, are
# under 200 kB; parsing a body holds the event loop (a 1 MiB one of 100,000 keys ~0.1 s, so a stream of them stalled everyone).
MAX_BODY = 1 << 18
MAX_POINTS = 2000  # points in a drawing sent to /api/complete (a minute of scribbling at 30 points a second)
MAX_COORD = 10_000  # |x|, |y| in the 0-255 frame: far off the canvas, but no float overflow downstream
MAX_LEN = 1000  # the most steps a request may ask the model for
# A start narrower than half the canvas is taken as part of a drawing at least this wide, not blown up to fill
# the frame: the model learnt whole drawings scaled to 0-255, and a face's outline or an eye's lid is usually
# what one starts with. Measured on an outline and an arc, completions then land inside the outline.
MIN_SPAN = 128
MAX_SEED = 2**31 - 1
STEPS = 5  # drawings of an interpolation, both ends included
MAX_STEPS = 16  # the most a request may ask for: one batch of drawings


class BadRequest(Exception):
    """A request the server refuses: an HTTP status and one line saying why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


MODEL_FILES = (".pt", ".gen.json")  # what a folder given to --checkpoint is searched for


def checkpoint_files(given: Sequence[str | Path], say: Callable[[str], None]) -> dict[Path, dict]:
    """The checkpoint files named by ``--checkpoint``, each with its dict, read and checked once: files as given,
    and every valid ``*.pt`` model checkpoint and Magenta ``*.gen.json`` in a folder (each other such file skipped
    in one line saying why). Raises CheckpointError, one line."""
    files: list[Path] = []
    read: dict[Path, dict] = {}
    for path in map(Path, given):
        if not path.is_dir():
            files.append(path)
            continue
        found = []
        for candidate in sorted(p for p in path.iterdir() if p.name.lower().endswith(MODEL_FILES) and p.is_file()):
            try:
                read[candidate] = api.read_model(candidate)
                found.append(candidate)
            except models.CheckpointError as e:
                say(f"sketchgen: skipped {e}")
        if not found:
            raise models.CheckpointError(f"{path}: a folder holding no sketchgen model checkpoint (*.pt) or Magenta "
                                         "model (*.gen.json)")
        files += found
    for path in files:  # read before its path is resolved: a link that loops is refused in one line, as reading it
        if path not in read:
            read[path] = api.read_model(path)
    seen: dict[Path, Path] = {}
    for path in files:
        if path.resolve() in seen:
            raise models.CheckpointError(f"{path}: given twice (as {seen[path.resolve()]})")
        seen[path.resolve()] = path
    return {path: read[path] for path in files}


def model_ids(paths: Sequence[Path]) -> list[str]:
    """Each checkpoint's name: the fewest trailing parts of its path that tell it from the others."""
    parts = [p.resolve().parts for p in paths]
    k = 1
    while len(set(ids := ["/".join(p[-k:]) for p in parts])) < len(ids):  # whole paths differ: it ends
        k += 1
    return ids


class Served:
    """One checkpoint being served: its model, classes, description and batcher."""

    def __init__(self, id: str, path: Path, ckpt: dict, workers: int, batch: int):
        self.id, self.path = id, path
        self.net = models.checkpoint.build(ckpt)  # a checkpoint's, or a Magenta .gen.json file's served as it is
        self.encodes = models.capable(self.net, models.Encodes)
        self.classes: list[str] = list(ckpt["classes"])
        self.rows = Names(self.classes)  # a class asked for in either Unicode form
        self.max_len = min(MAX_LEN, self.net.max_steps())
        self.info = {
            "id": id, "checkpoint": path.name, "kind": self.net.name,
            "parameters": sum(p.numel() for p in self.net.parameters()),
            "epoch": ckpt.get("epoch"), "val_loss": ckpt.get("val_loss"),
            "temperature": TEMPERATURE if self.net.uses_temperature else None, "max_len": self.max_len,
            "latent_dim": self.net.latent_dim if self.encodes else 0, "classes": self.classes,
        }
        self.batcher = Batcher(self.net, workers, batch, most=self.max_len)

    async def make(self, job: Job) -> np.ndarray:
        """The job's answer; whatever fails it alone (the batcher has spared the others) is a DrawingFailed."""
        try:
            return await asyncio.wrap_future(self.batcher.submit(job))
        except DrawingFailed:
            raise
        except Exception as e:
            reason = (str(e).splitlines() or [""])[0][:100]
            raise DrawingFailed(f"the model failed on this drawing ({type(e).__name__}: {reason}); other requests are "
                                "unaffected") from e

    def needs_latent(self, route: str) -> None:
        if not self.encodes:
            raise BadRequest(400, f"model {self.id!r} ({self.net.name}) encodes no drawings, so it cannot {route} one: "
                                  "name a model with a latent (GET /api/classes gives each model's latent_dim)")


class Sketcher:
    """The loaded checkpoints and what the page asks of them, each request checked field by field.

    ``answer(route, request)`` is what the server awaits; ``sample`` and
    ``complete`` are the same for a script, blocking until the drawing is made.
    """

    def __init__(self, checkpoints: str | Path | Sequence[str | Path], workers: int = 1, batch: int = BATCH,
                 say: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr), first_wins: bool = False):
        self.first_wins = first_wins  # the shipped models together: the 29-class one draws its classes, the base the rest
        given = [checkpoints] if isinstance(checkpoints, (str, Path)) else list(checkpoints)
        files = checkpoint_files(given, say)
        self.models = {id: Served(id, path, ckpt, workers, batch)
                       for id, (path, ckpt) in zip(model_ids(list(files)), files.items())}
        self.by_class: dict[str, list[Served]] = defaultdict(list)
        for served in self.models.values():
            for name in served.classes:
                self.by_class[name].append(served)
        self.named = Names(self.by_class)
        self.routes = ["sample", "complete"]
        if any(m.encodes for m in self.models.values()):
            self.routes += ["reconstruct", "interpolate"]
        listed = [m.info for m in self.models.values()]
        self.info = {
            "classes": list(self.by_class), "model": listed[0], "models": listed, "routes": self.routes,
            "limits": {"temperature": [0, MAX_TEMPERATURE], "max_len": max(m.max_len for m in self.models.values()),
                       "max_points": MAX_POINTS, "max_body": MAX_BODY, "seed": [0, MAX_SEED], "steps": [2, MAX_STEPS]},
        }

    async def answer(self, route: str, req: dict) -> dict:
        """The reply to a request of one of ``self.routes``; raises BadRequest or DrawingFailed."""
        return await getattr(self, f"_{route}")(req)

    def sample(self, req: dict) -> dict:
        return asyncio.run(self.answer("sample", req))

    @staticmethod
    def drawings(route: str, req: dict) -> int:
        """How many drawings a request asks to be made (an encoding counted as one), before it is checked: what
        ``app.WAITING`` counts. A bad ``steps`` counts as the default; the request is refused for it anyway."""
        if route == "interpolate":
            steps = req.get("steps", STEPS)
            valid = not isinstance(steps, bool) and isinstance(steps, int) and 2 <= steps <= MAX_STEPS
            return 2 + (steps if valid else STEPS)
        return 2 if route == "reconstruct" else 1

    def complete(self, req: dict) -> dict:
        return asyncio.run(self.answer("complete", req))

    async def _sample(self, req: dict) -> dict:
        """A new drawing of a class, fitted to 0-255."""
        _only(req, "class", "model", "temperature", "seed", "max_len")
        served, label, temperature, seed = self._common(req)
        max_len = _integer(req, "max_len", None, 1, served.max_len)
        s3 = await served.make(Job(label, temperature, seed, max_len))
        return _fitted(s3, {"class": req["class"], "model": served.id, "temperature": temperature, "seed": seed})

    async def _complete(self, req: dict) -> dict:
        """The user's drawing, finished by the model, in the user's frame."""
        _only(req, "class", "model", "temperature", "seed", "strokes")
        served, label, temperature, seed = self._common(req)
        start = _drawing(req.get("strokes"), "strokes")
        frame = strokes.fitting(start, min_extent=MIN_SPAN)
        simplified = strokes.simplify(start, min_extent=MIN_SPAN)
        prefix = strokes.strokes_to_stroke3(simplified)
        most = sample.longest_prefix(served.net)
        if len(prefix) > most:
            raise BadRequest(400, f"'strokes': {len(prefix):,} points after simplifying, more than the {most:,} a "
                                  f"drawing of model {served.id!r} may have: draw less")
        s3 = await served.make(Job(label, temperature, seed, prefix=prefix))
        finished = frame.invert(strokes.stroke3_to_strokes(s3))
        return {"class": req["class"], "model": served.id, "temperature": temperature, "seed": seed,
                "n_prefix": len(simplified), "strokes": strokes.drawing_field(finished)}

    async def _reconstruct(self, req: dict) -> dict:
        """The drawing a latent model decodes from the latent of the user's, fitted to 0-255."""
        _only(req, "class", "model", "temperature", "seed", "strokes", "max_len")
        served, label, temperature, seed = self._common(req)
        served.needs_latent("reconstruct")
        max_len = _integer(req, "max_len", None, 1, served.max_len)
        latent = await served.make(Job(label, encode=_whole(req.get("strokes"), "strokes")))
        s3 = await served.make(Job(label, temperature, seed, max_len, latent=latent))
        return _fitted(s3, {"class": req["class"], "model": served.id, "temperature": temperature, "seed": seed})

    async def _interpolate(self, req: dict) -> dict:
        """``steps`` drawings along the great circle from one drawing's latent to another's (as ``sample.interpolate``
        goes), the classes mixed in the same shares."""
        _only(req, "class", "model", "temperature", "seed", "strokes", "to_class", "to_strokes", "steps", "max_len")
        served, label, temperature, seed = self._common(req)
        served.needs_latent("interpolate")
        to_class = req.get("to_class", req["class"])
        to_label = served.rows.find(to_class) if isinstance(to_class, str) else None
        if to_label is None:
            raise BadRequest(400, f"'to_class' must be a class of model {served.id!r} (GET /api/classes lists them)")
        steps = _integer(req, "steps", STEPS, 2, MAX_STEPS)
        max_len = _integer(req, "max_len", None, 1, served.max_len)
        drawings = _whole(req.get("strokes"), "strokes"), _whole(req.get("to_strokes"), "to_strokes")
        ends = await asyncio.gather(served.make(Job(label, encode=drawings[0])),
                                    served.make(Job(to_label, encode=drawings[1])))
        frames = []
        for t in np.linspace(0.0, 1.0, steps):
            weights = np.zeros(len(served.classes), dtype=np.float32)
            weights[label] += 1 - t
            weights[to_label] += t
            frames.append(served.make(Job(weights, temperature, seed, max_len,
                                          latent=sample.slerp(ends[0], ends[1], t).astype(np.float32))))
        drawn = await asyncio.gather(*frames)
        return {"class": req["class"], "to_class": to_class, "model": served.id, "temperature": temperature,
                "seed": seed, "drawings": [_fitted(s3, {}) for s3 in drawn]}

    def _common(self, req: dict) -> tuple[Served, int, float, int]:
        """The model and class index a request names, its temperature and its seed."""
        name = req.get("class")
        if not isinstance(name, str):
            raise BadRequest(400, "'class' must be a class name (a string)")
        served = self._model(req.get("model", None), name)
        temperature = req.get("temperature", TEMPERATURE)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
                or not 0 < temperature <= MAX_TEMPERATURE:
            raise BadRequest(400, f"'temperature' must be a number in (0, {MAX_TEMPERATURE:g}]")
        return served, served.rows.find(name), float(temperature), _integer(req, "seed", 0, 0, MAX_SEED)

    def _model(self, model_id: object, name: str) -> Served:
        if model_id is not None:
            if not isinstance(model_id, str) or model_id not in self.models:
                raise BadRequest(400, f"unknown model {str(model_id)[:60]!r}: this server has "
                                      f"{', '.join(self.models)[:200]} (GET /api/classes lists them)")
            served = self.models[model_id]
            if served.rows.find(name) is None:
                raise BadRequest(400, f"unknown class {name[:60]!r} for model {model_id!r}: it knows "
                                      f"{len(served.classes)} (GET /api/classes lists them)")
            return served
        place = self.named.find(name)
        owners = self.by_class[self.info["classes"][place]] if place is not None else []
        if not owners:
            raise BadRequest(400, f"unknown class {name[:60]!r}: the models here know {len(self.by_class)} "
                                  "(GET /api/classes lists them)")
        if len(owners) > 1 and not self.first_wins:
            raise BadRequest(400, f"class {name[:60]!r} is drawn by {len(owners)} models here "
                                  f"({', '.join(m.id for m in owners)[:200]}): name one with 'model'")
        return owners[0]


def _only(req: dict, *names: str) -> None:
    extra = sorted(set(req) - set(names))
    if extra:
        raise BadRequest(400, f"unknown field {extra[0][:60]!r} (expected: {', '.join(names)})")


def _integer(req: dict, name: str, default, low: int, high: int):
    if name not in req:
        return default
    value = req[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(400, f"{name!r} must be an integer from {low} to {high}")
    return value


def _drawing(value: object, name: str) -> list[np.ndarray]:
    """A drawing sent by the user, checked: point count, strokes, coordinate range. The points are counted on the
    JSON lists before any is parsed: a body of 10,000 strokes whose last was bad was parsed whole, then stroke by
    stroke, holding the event loop (and every other client) 230 ms a request."""
    said = sum(len(s[0]) for s in value if isinstance(s, list) and s and isinstance(s[0], list)) \
        if isinstance(value, list) else 0
    if said > MAX_POINTS:
        raise BadRequest(400, f"too many points: a drawing sent may have at most {MAX_POINTS}")
    try:
        drawing = strokes.parse_drawing(value)
    except strokes.StrokeError as e:
        raise BadRequest(400, f"{name!r}: {e}") from None
    if any(np.abs(s).max() > MAX_COORD for s in drawing):
        raise BadRequest(400, f"{name!r}: coordinates must lie within +-{MAX_COORD}")
    return drawing


def _whole(value: object, name: str) -> np.ndarray:
    """A whole drawing sent to be encoded, as the model's training drawings were: simplified into 0-255, stroke-3."""
    return strokes.strokes_to_stroke3(strokes.simplify(_drawing(value, name)))


def _fitted(s3: np.ndarray, reply: dict) -> dict:
    drawing = strokes.quickdraw_strokes(s3)
    return {**reply, "points": len(s3), "strokes": strokes.drawing_field(drawing)}
