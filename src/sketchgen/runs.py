"""Training as the library starts it: ``train`` checks what it is given, finds where a run starts (a shipped base,
``--init``, or the run being resumed), merges settings into a ``TrainConfig`` and hands over to ``training``;
the finished ``Run`` names its checkpoints.

``sketchgen train`` is a shell over ``train``: the same arguments train the same weights from either.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from sketchgen import classfiles, models, render, training
from sketchgen.api import (
    ASSETS,
    SEED_CLASSES,
    Model,
    SettingError,
    UsageError,
    checked_int,
    checked_path,
    class_names,
    load,
    read_model,
    run_path,
    to_stderr,
)
from sketchgen.data import Prepared
from sketchgen.errors import counted, flag
from sketchgen.models.checkpoint import check_settings
from sketchgen.splits import data_settings, prepare
from sketchgen.training import TrainConfig
from sketchgen.training.checkpoints import check_out, of_kind, read_last
from sketchgen.training.config import with_budget
from sketchgen.training.distributed import check_device

NO_INIT = "none"  # --init none: a new run from random weights, not from its model's shipped base


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
    (continue it with its own settings) or ``overwrite``. ``resume`` where
    ``out`` holds no ``last.pt`` yet starts the run, saying so, so that a
    retry loop may always pass it. Progress goes to ``log`` (default:
    stderr) and a progress bar. SIGINT (Ctrl-C) or SIGTERM stops it at the
    next step with ``last.pt`` written and raises ``training.Interrupted``,
    a ``KeyboardInterrupt``: ``resume=True`` continues it. It seeds torch's
    random generator, which every thread of a process shares (dropout draws
    from it), and puts the caller's state back at its end: the same seed gives
    the same weights, and other threads' numbers are their own, only where no
    other thread draws from torch's random numbers meanwhile (sampling does
    not); a process of its own gives both.
    """
    if log is not None and not callable(log):
        raise UsageError(f"log must be a function of one line of text, not {log!r:.40}")
    for flag_name, value in (("resume", resume), ("overwrite", overwrite)):
        if not isinstance(value, (bool, np.bool_)):
            raise UsageError(f"{flag_name} must be True or False, not {value!r:.40}")
    log = log or to_stderr
    if resume and overwrite:
        raise UsageError("resume continues the run in out, overwrite replaces it: pass one of them, not both")
    if workers is not None:
        checked_int("workers", workers, 1, 10**9)
    if model is not None:
        models.get(model)  # one line naming the models; "" would be taken for "not given"
    classes = None if classes is None else _class_list(classes)
    if init is not None and init != NO_INIT:
        checked_path(init, "init")
    out = run_path(out, "train")  # made by the training, once everything is checked
    if training.is_main_process():  # the process that writes, as the run's own check (two would lock each other out)
        check_out(out, resume, overwrite)
    last = read_last(out / "last.pt") if resume and (out / "last.pt").is_file() else None
    if last is not None and classes is not None and not classfiles.same_names(classes, last["classes"]):
        raise UsageError(f"--classes differ from the run in {out} ({', '.join(last['classes'][:5])}...); "
                         "leave --classes out to resume it, or pass --overwrite to start again")
    classes = list(last["classes"] if last else classes or SEED_CLASSES)  # a run's own, as it wrote them
    settings_ = data_settings(data_dir, max_per_class, seed, last and last.get("data"), f"the run in {out}")
    start, said = None, ""  # the checkpoint the run starts from, read once, and the line that says so
    if last is not None and init is not None:
        init = _as_recorded(init, last["train"]["init"])
    if last is None:
        init, start, said = starting_point(model, init, settings)
        model = model or (start and start["kind"])
    cfg = train_config(model, last and last["train"], settings_["seed"], init=None if init is None else str(init),
                       **settings)
    if said and training.is_main_process():  # once the settings are known to be good
        log(said)
    if last is not None and cfg.init and cfg.fine_tune == "new-classes" and "frozen_classes" not in last:
        start = read_model(cfg.init)  # an earlier sketchgen's run: the init's classes say which rows stay frozen
    if start is not None:
        of_kind(start, cfg.model, cfg.init)
    prepared = prepare(classes, settings_, workers)
    if training.is_main_process():
        log(f"training {cfg.model} on {counted(len(prepared.indices('train')), 'drawing')} of "
            f"{counted(len(classes), 'class')} -> {out}")
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
    return None, None, (f"training from random weights: {flag(key)} {settings[key]} is not the shipped "
                        f"base's {theirs} ({name}; --init FILE starts from another checkpoint)")


def train_config(model: str | None, saved: dict | None, seed: int, init: str | None = None, **settings):
    """The ``TrainConfig`` of a run: the model's defaults (or a resumed run's saved settings), then ``settings``.

    Each setting is the training's or the model's own, checked against its bounds (``SettingError``).
    """
    if saved and model and model != saved["model"]:  # its settings are another kind's: the config would not build
        raise UsageError(f"--model {model}: the run to resume trains a {saved['model']} model; leave --model out to "
                         "resume it, or pass --overwrite to start again")
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
    if overrides.get("eval_every") and not cfg.steps:  # asked for, and as moot: an epoch budget validates by epoch
        raise SettingError(f"--eval-every {cfg.eval_every} does nothing with an epoch budget (--epochs {cfg.epochs}), "
                           "which validates after each epoch: pass --steps, or leave --eval-every out")
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


def _class_list(value: str | Sequence[str]) -> list[str]:
    """Classes to train, as ``--classes`` takes them: at least one, none twice (a model's classes are its rows)."""
    names = class_names(value, "classes")
    if not names:
        raise UsageError("classes is empty: name at least one class (or leave it out for the 5 seed classes)")
    twice = classfiles.named_twice(names)
    if twice is not None:
        raise UsageError(f"classes: class {twice[:40]!r} is named twice")
    return names


__all__ = ["Run", "train"]
