"""Checkpoints: a plain dict that loads with ``torch.load(..., weights_only=True)``, checked whole before use.

A checkpoint holds ``kind`` (the model's registry name), ``config`` (its
settings dataclass as a dict), ``classes``, ``state_dict``, ``format``, and
what training adds: ``data`` (where the drawings came from and how they were
split), ``train`` (the training settings), ``epoch``, ``step``, ``val_loss``
and ``history``; or, for a model imported from another tool's file,
``imported`` (that file's format and name) instead. A file is untrusted input, every field of it: ``read``
checks the whole dict - types, bounds, counts against each other, every
tensor's shape against the model its config describes (built on PyTorch's
meta device, so a config claiming a huge model allocates nothing), finite
weights - before anything else uses any of it. Checkpoints of 0.1.0 (format
1) load as they are; settings added since take the values they were trained
with (each model's ``legacy``).
"""

from __future__ import annotations

import io
import math
import os
import typing
from dataclasses import MISSING, asdict, fields
from pathlib import Path

import torch

from sketchgen.fileio import atomic_write
from sketchgen.models.base import SketchModel
from sketchgen.models.registry import get, names

FORMAT = 2
MAX_NAME = 100  # characters in a class name
DATA_KEYS = {"data_dir": (str, type(None)), "max_per_class": int, "seed": int, "sources": dict}


class CheckpointError(Exception):
    """A checkpoint that cannot be used; one line saying why and what to do."""


def checkpoint_dict(model: SketchModel, classes: list[str], **extra) -> dict:
    """The plain-dict checkpoint: everything needed to rebuild and use the model."""
    return {"format": FORMAT, "kind": model.name, "config": asdict(model.cfg), "classes": list(classes),
            "state_dict": model.state_dict(), **extra}


def save(path: str | os.PathLike, payload: dict) -> None:
    """Serialise in memory, then write atomically: a full disk is a plain OSError and the old file stays."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)  # torch's own writer turns a failed write into an obscure RuntimeError
    with atomic_write(path) as f:
        f.write(buffer.getbuffer())


def read_file(path: str | os.PathLike, what: str = "checkpoint") -> dict:
    """A file's plain dict, read without executing anything in it (``weights_only``); nothing checked yet."""
    if Path(path).is_dir():
        raise CheckpointError(f"{path}: a folder, not a {what} file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such {what}") from None
    except Exception as e:  # truncated zip, foreign pickle, wrong format: all mean "not ours"
        raise CheckpointError(f"{path}: not a readable sketchgen {what} ({type(e).__name__}); retrain or pass another") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not a sketchgen {what} (a {type(ckpt).__name__}, not a dict)")
    return ckpt


def read(path: str | os.PathLike) -> dict:
    """A checkpoint file's dict, checked completely (see the module docstring); its config filled in."""
    ckpt = read_file(path)
    return validate(ckpt, path)


def load(path: str | os.PathLike) -> tuple[SketchModel, dict]:
    """Rebuild a model from a checkpoint file, in eval mode."""
    ckpt = read(path)
    return build(ckpt), ckpt


def build(ckpt: dict) -> SketchModel:
    """The model of a checked checkpoint dict, its weights loaded (in float32), in eval mode."""
    cls = get(ckpt["kind"])
    model = cls(cls.Config(**ckpt["config"]))
    model.load_state_dict({k: v.float() for k, v in ckpt["state_dict"].items()})
    return model.eval()


def validate(ckpt: dict, path) -> dict:
    """Check every field a checkpoint's user reads; raise CheckpointError naming the first fault."""
    def fail(message: str):
        raise CheckpointError(f"{path}: {message}")

    fmt = ckpt.get("format", 1)
    if type(fmt) is not int or not 1 <= fmt <= FORMAT:
        fail(f"format {str(fmt)[:20]} is not one this sketchgen reads (1 to {FORMAT}); a newer sketchgen wrote it?")
    kind = ckpt.get("kind")
    if not isinstance(kind, str) or kind not in names():
        fail(f"not a sketchgen model checkpoint (kind {str(kind)[:40]!r}; the models are {', '.join(names())})")
    for key, t in (("config", dict), ("classes", list), ("state_dict", dict)):
        if not isinstance(ckpt.get(key), t):
            fail(f"no {key} (a {t.__name__}): not a complete sketchgen checkpoint")
    cls = get(kind)
    config = _config(cls, ckpt["config"], fmt, fail)
    _classes(ckpt["classes"], config["n_classes"], fail)
    _state_dict(cls, config, ckpt["state_dict"], fail)
    if fmt < FORMAT:  # 0.1.0 recorded no data settings; its shipped checkpoint's free-form "data" is provenance
        ckpt = {k: v for k, v in ckpt.items() if k != "data"}
    _metadata(ckpt, fail)
    return {**ckpt, "format": fmt, "config": config}


def _config(cls: type[SketchModel], config: dict, fmt: int, fail) -> dict:
    """The config with every field of the right type and within its bounds; fields it predates filled in."""
    known = {f.name: f for f in fields(cls.Config)}
    hints = typing.get_type_hints(cls.Config)
    unknown = [k for k in config if k not in known]
    if unknown:
        fail(f"config has {str(unknown[0])[:40]!r}, which a {cls.name} model does not have")
    filled = {**(cls.legacy if fmt < FORMAT else {}), **config}
    for name, f in known.items():
        if name not in filled:
            if f.default is MISSING and f.default_factory is MISSING:
                fail(f"config lacks {name}")
            continue
        value, hint = filled[name], hints[name]
        where = f"config {name}"
        if hint is float and type(value) is int:
            value = filled[name] = float(value)
        if typing.get_origin(hint) is list:
            if not isinstance(value, list) or any(type(v) is not int for v in value):
                fail(f"{where} is not a list of integers")
            values = value
        elif type(value) is not hint:
            fail(f"{where} is a {type(value).__name__}, not a {hint.__name__}")
        else:
            values = [value]
        low, high, choices = f.metadata.get("low"), f.metadata.get("high"), f.metadata.get("choices")
        for v in values:
            if isinstance(v, float) and not math.isfinite(v):
                fail(f"{where} is {v}, not a finite number")
            if (low is not None and v < low) or (high is not None and v > high):
                fail(f"{where} is {v}, outside {low} to {high}")
            if choices and v not in choices:
                fail(f"{where} is {str(v)[:40]!r}, not one of {', '.join(choices)}")
        per_class = f.metadata.get("per_class")
        if per_class and len(values) != filled.get("n_classes") and not (per_class == "optional" and not values):
            fail(f"{where} has {len(values)} entries for {filled.get('n_classes')} classes")
    return filled


def _classes(classes: list, n: int, fail) -> None:
    if len(classes) != n:
        fail(f"{len(classes)} class names for a model of {n} classes")
    for c in classes:
        if not isinstance(c, str) or not 0 < len(c) <= MAX_NAME or not c.isprintable():
            fail(f"class name {str(c)[:40]!r} is not a printable name of 1 to {MAX_NAME} characters")
    if len(set(classes)) != len(classes):
        fail("a class is named twice")


def _state_dict(cls: type[SketchModel], config: dict, state: dict, fail) -> None:
    """Every tensor the model has, of its shape, floating point and finite; nothing else."""
    try:
        with torch.device("meta"):  # shapes without allocating: a config may claim any size
            expected = cls(cls.Config(**config)).state_dict()
    except (TypeError, ValueError, RuntimeError) as e:
        fail(f"config describes no {cls.name} model ({str(e).splitlines()[0][:100]})")
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        fail(f"weights do not match its config ({'no ' + missing[0] if missing else 'unknown ' + str(unexpected[0])[:60]})")
    for key, want in expected.items():
        have = state[key]
        if not isinstance(have, torch.Tensor) or not have.is_floating_point():
            fail(f"weight {key} is not a floating-point tensor")
        if have.shape != want.shape:
            fail(f"weight {key} has shape {tuple(have.shape)}, its config says {tuple(want.shape)}")
        if not torch.isfinite(have).all():
            fail(f"weight {key} holds NaN or infinite values: the run that wrote it diverged; use another checkpoint")


def _metadata(ckpt: dict, fail) -> None:
    """The fields training adds, where present: what reads them (evaluate, serve, resume) may trust their types."""
    data = ckpt.get("data")
    if data is not None:
        if not isinstance(data, dict) or set(data) != set(DATA_KEYS):
            fail("data settings are not the dict training writes")
        for key, t in DATA_KEYS.items():
            if not isinstance(data[key], t) or type(data[key]) is bool:
                fail(f"data setting {key} has the wrong type")
        if data["max_per_class"] < 1 or data["seed"] < 0:
            fail("data settings hold a negative seed or a cap below 1")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in data["sources"].items()):
            fail("data sources are not class names and paths")
    imported = ckpt.get("imported")
    if imported is not None and (not isinstance(imported, dict) or set(imported) != {"format", "file"}
                                 or not all(isinstance(v, str) for v in imported.values())):
        fail("imported is not the format and file name an import writes")
    for key in ("epoch", "step"):
        if key in ckpt and (type(ckpt[key]) is not int or ckpt[key] < 0):
            fail(f"{key} is not a count")
    if "val_loss" in ckpt and not (isinstance(ckpt["val_loss"], float) and math.isfinite(ckpt["val_loss"])):
        fail("val_loss is not a finite number")
    for key, t in (("train", dict), ("history", list)):
        if key in ckpt and not isinstance(ckpt[key], t):
            fail(f"{key} is not a {t.__name__}")
