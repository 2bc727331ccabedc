"""Checkpoints: a plain dict that loads with ``torch.load(..., weights_only=True)``, checked whole before use.

A checkpoint holds ``kind`` (the model's registry name), ``config`` (its
settings dataclass as a dict), ``classes``, ``state_dict``, ``format``, and
what training adds: ``data`` (where the drawings came from and how they were
split), ``train`` (the training settings), ``epoch``, ``round``, ``step``,
``val_loss`` and ``history``; or, for a model imported from another tool's file,
``imported`` (that file's format and name) instead. A file is untrusted input, every field of it.

``read_file`` bounds what reading costs before torch reads anything: a
regular file of at most ``MAX_FILE_BYTES``, an uncompressed zip archive as
``torch.save`` writes it (so no record inflates beyond the file: a zip bomb is
refused unread) whose pickle is at most ``MAX_PICKLE_BYTES`` and
``MAX_PICKLE_OPS`` opcodes (a pickle can build a 72-byte dict from 2 bytes).
``validate`` then checks the whole dict - types, bounds, counts against each
other, every tensor's shape against the model its config describes (built on
PyTorch's meta device, so a config claiming a huge model allocates nothing),
that the weights are really in the file (dense, each in its own storage: a
tiny file cannot stand for a huge model by striding one number), finite and
within ``MAX_WEIGHT`` - before anything else uses any of it. Reading a
checkpoint therefore takes memory of about twice its size at most (docs/
reliability.md has the measurements). Checkpoints of 0.1.0 (format 1) load as
they are; settings added since take the values they were trained with (each
model's ``legacy``).
"""

from __future__ import annotations

import io
import math
import os
import pickletools
import typing
import zipfile
from dataclasses import MISSING, asdict, fields

import torch

from sketchgen.cache import is_sha256
from sketchgen.classfiles import Names
from sketchgen.errors import SketchgenError
from sketchgen.fileio import FileRefused, atomic_write, open_regular
from sketchgen.models.base import SketchModel, shapes_only
from sketchgen.models.registry import get, names
from sketchgen.strokes import MAX_NAME, is_printable

FORMAT = 2
MAX_TEXT = 4096  # characters in a recorded path or other free text
MAX_COUNT = 2**63 - 1  # epochs, steps and seeds are int64 somewhere
MAX_HISTORY_NAMES = 48  # names in a run's history: epoch, step, losses, lr, ... and a train_ and val_ per loss term
# 2 GiB: ten times the last.pt of an mdn with hidden 2048 on all 345 classes (~220 MB), 300 times the shipped ones.
MAX_FILE_BYTES = 2 * 2**30
MAX_RECORDS = 10_000  # zip records: one per tensor; our largest last.pt has ~60
MAX_PICKLE_BYTES = 64 * 2**20  # a 345-class run's history is ~4 KB per validation
MAX_PICKLE_OPS = 2_000_000  # objects a pickle may build (~80 B each): ~2,700 validations of a 345-class run
# Trained weights are within +-100; beyond 1e4 an LSTM's outputs could overflow float32 downstream.
MAX_WEIGHT = 1e4
FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
DATA_KEYS = {"data_dir": (str, type(None)), "max_per_class": int, "seed": int, "sources": dict}
DATA_DIGESTS = "digests"  # each class file's SHA-256: in the data settings of runs since 2026-12-07, not before
COUNTS = ("epoch", "round", "step")


class CheckpointError(SketchgenError):
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
    """A file's plain dict, read at a cost bounded by its size, executing nothing in it; nothing checked yet."""
    try:
        f = open_regular(path, MAX_FILE_BYTES, what)
    except FileRefused as e:
        raise CheckpointError(str(e)) from None
    with f:
        fault = _archive_fault(f, os.fstat(f.fileno()).st_size)
        try:
            if fault:
                raise ValueError(fault)
            f.seek(0)
            ckpt = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated zip, foreign pickle, wrong format: all mean "not ours"
            reason = fault or type(e).__name__
            raise CheckpointError(f"{path}: not a readable sketchgen {what} ({reason}); retrain or pass another") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not a sketchgen {what} (a {type(ckpt).__name__}, not a dict)")
    return ckpt


def _archive_fault(f, size: int) -> str | None:
    """Why the open file ``f`` is not a torch.save archive whose loading stays within its size, or None."""
    try:
        end = zipfile._EndRecData(f)  # the counts ZipFile itself would trust (zip64 included), read first
        if end is None:
            return "not torch's zip format"
        if end[zipfile._ECD_ENTRIES_TOTAL] > MAX_RECORDS or end[zipfile._ECD_SIZE] > MAX_RECORDS * 1024:
            return f"more than {MAX_RECORDS:,} records"
        with zipfile.ZipFile(f) as z:
            entries = z.infolist()
            if len(entries) > MAX_RECORDS:
                return f"more than {MAX_RECORDS:,} records"
            if any(e.compress_type != zipfile.ZIP_STORED for e in entries):
                return "compressed records, which torch.save never writes"
            if sum(e.file_size for e in entries) > size or any(e.file_size != e.compress_size for e in entries):
                return "records larger than the file"
            pickles = [e for e in entries if e.filename.count("/") == 1 and e.filename.endswith("/data.pkl")]
            if len(pickles) != 1:
                return "not a torch.save archive"
            if pickles[0].file_size > MAX_PICKLE_BYTES:
                return f"a pickle of more than {MAX_PICKLE_BYTES // 2**20} MB"
            body = z.read(pickles[0])
            damaged = z.testzip()  # each record's CRC-32 as torch.save wrote it: a flipped byte in the weights
            if damaged is not None:
                return f"record {damaged[:80]!r} is damaged: its checksum does not match"
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
        return type(e).__name__
    try:
        for count, _ in enumerate(pickletools.genops(body)):
            if count >= MAX_PICKLE_OPS:
                return f"a pickle of more than {MAX_PICKLE_OPS:,} objects"
    except Exception:  # genops raises whatever a damaged byte makes of it
        return "UnpicklingError"
    return None


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
    return cls.with_weights(cls.Config(**ckpt["config"]), {k: v.float() for k, v in ckpt["state_dict"].items()})


def restrict(ckpt: dict, classes: list[str]) -> dict:
    """A checked checkpoint as a model of some of its classes alone, in the order given: each class's rows of
    its weights (``class_weights``) and of its per-class settings taken by name, everything else shared. It
    draws and scores those classes as the whole model does; a model of 345 classes is measured on a few so
    (``evaluate --classes``)."""
    known = Names(ckpt["classes"])
    missing = [c for c in classes if known.find(c) is None]
    if missing:
        raise CheckpointError(f"the model was not trained on {listing(missing)}")
    cls, rows = get(ckpt["kind"]), [known.find(c) for c in classes]
    config = dict(ckpt["config"], n_classes=len(classes))
    for f in fields(cls.Config):
        if f.metadata.get("per_class") and config.get(f.name):
            config[f.name] = [config[f.name][r] for r in rows]
    state = {k: v[rows] if k in cls.class_weights else v for k, v in ckpt["state_dict"].items()}
    return {**ckpt, "config": config, "classes": list(classes), "state_dict": state}


def listing(items: list, most: int = 8) -> str:
    """Names for a one-line message: the first ``most``, then how many in all."""
    shown = ", ".join(str(c)[:40] for c in items[:most])
    return shown + (f", ... ({len(items)} in all)" if len(items) > most else "")


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
    cls = get(kind)
    config = check_module(ckpt, cls.Config, lambda cfg: cls(cls.Config(**cfg)), fail, "sketchgen checkpoint",
                          cls.legacy if fmt < FORMAT else {})
    if fmt < FORMAT:  # 0.1.0 recorded no data settings; its shipped checkpoint's free-form "data" is provenance
        ckpt = {k: v for k, v in ckpt.items() if k != "data"}
    _metadata(ckpt, fail)
    return {**ckpt, "format": fmt, "config": config}


def check_module(ckpt: dict, config_cls: type, make, fail, what: str, legacy: dict | None = None) -> dict:
    """What every file of a module holds, checked: its ``config`` of ``config_cls`` (filled in and returned), its
    ``classes``, and a ``state_dict`` of exactly the tensors ``make(config)`` has. Models and the classifier."""
    for key, t in (("config", dict), ("classes", list), ("state_dict", dict)):
        if not isinstance(ckpt.get(key), t):
            fail(f"no {key} (a {t.__name__}): not a complete {what}")
    config = check_settings(config_cls, ckpt["config"], fail, "config", legacy)
    check_class_names(ckpt["classes"], config["n_classes"], fail)
    check_weights(lambda: make(config), ckpt["state_dict"], fail)
    return config


# --- settings ------------------------------------------------------------------------------------


def check_settings(cls: type, values: dict, fail, where: str, legacy: dict | None = None,
                   partial: bool = False) -> dict:
    """``values`` for the dataclass ``cls``: every field of its type and within its ``setting`` bounds.

    Fields missing from ``values`` take ``legacy``'s value, or their default (checked too); ``partial``: only the
    given fields are checked (a run's overrides of a model's settings). Returns the values, every field filled in
    unless ``partial``, ints given for floats made floats.
    """
    known = {f.name: f for f in fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = [k for k in values if k not in known]
    if unknown:
        fail(f"{where} has {str(unknown[0])[:40]!r}, which {cls.__name__} does not have")
    filled = {**(legacy or {}), **values}
    for name, f in known.items():
        if name not in filled:
            if partial:
                continue
            if f.default is MISSING and f.default_factory is MISSING:
                fail(f"{where} lacks {name}")
            filled[name] = f.default if f.default is not MISSING else f.default_factory()
    for name in [name for name in known if name in filled]:  # n_classes first: per-class lists are counted by it
        filled[name] = _setting(known[name], hints[name], filled[name], filled, fail, f"{where} {name}")
    return filled


def _setting(f, hint, value, filled: dict, fail, where: str):
    """One field's value, checked against its type hint and ``setting`` metadata."""
    if hint is float and type(value) is int:
        value = float(value)
    if typing.get_origin(hint) is list:
        if not isinstance(value, list) or any(type(v) is not int for v in value):
            fail(f"{where} is not a list of integers")
        values = value
    elif type(value) is not hint:
        fail(f"{where} is a {type(value).__name__}, not a {getattr(hint, '__name__', hint)}")
    else:
        values = [value]
    low, high, choices = f.metadata.get("low"), f.metadata.get("high"), f.metadata.get("choices")
    if callable(choices):  # choices known only at run time, e.g. the registered models
        choices = choices()
    for v in values:
        if isinstance(v, float) and not math.isfinite(v):
            fail(f"{where} is {v}, not a finite number")
        if (low is not None and (v < low or (f.metadata.get("above") and v == low))) or (high is not None and v > high):
            fail(f"{where} is {v}, outside {'(' if f.metadata.get('above') else ''}{low} to {high}")
        if choices and v not in choices:
            fail(f"{where} is {str(v)[:40]!r}, not one of {', '.join(choices)}")
        if isinstance(v, str) and (len(v) > MAX_TEXT or not is_printable(v)):
            fail(f"{where} is not a printable text of at most {MAX_TEXT} characters")
    per_class = f.metadata.get("per_class")
    if per_class and len(values) != filled.get("n_classes") and not (per_class == "optional" and not values):
        fail(f"{where} has {len(values)} entries for {filled.get('n_classes')} classes")
    return value


def check_class_names(classes: list, n: int, fail) -> None:
    """``n`` distinct printable names of 1 to MAX_NAME characters."""
    if len(classes) != n:
        fail(f"{len(classes)} class names for a model of {n} classes")
    for c in classes:
        if not isinstance(c, str) or not 0 < len(c) <= MAX_NAME or not is_printable(c):
            fail(f"class name {str(c)[:40]!r} is not a printable name of 1 to {MAX_NAME} characters")
    if len(set(classes)) != len(classes):
        fail("a class is named twice")


# --- weights -------------------------------------------------------------------------------------


def check_tensor(t, fail, where: str, shape: torch.Size | None = None, dtype: torch.dtype = torch.float32) -> None:
    """A dense CPU tensor holding its own elements (of ``shape``): of ``dtype`` if it is an integer type, else
    floating point, finite and within MAX_WEIGHT."""
    kinds = FLOATS if dtype.is_floating_point else (dtype,)
    if not isinstance(t, torch.Tensor) or t.layout != torch.strided or t.device.type != "cpu" or t.dtype not in kinds:
        fail(f"{where} is not a dense {'floating-point' if dtype.is_floating_point else dtype} tensor")
    if shape is not None and t.shape != shape:
        fail(f"{where} has shape {tuple(t.shape)}, its config says {tuple(shape)}")
    if not t.is_contiguous() or t.untyped_storage().nbytes() < (t.storage_offset() + t.numel()) * t.element_size():
        fail(f"{where} is not stored whole in the file (a strided view): not a real checkpoint")
    if t.numel() and dtype.is_floating_point:
        low, high = torch.aminmax(t)  # no temporary the size of the tensor
        if not (-MAX_WEIGHT <= float(low) and float(high) <= MAX_WEIGHT):
            fail(f"{where} holds NaN, infinite or huge values (beyond +-{MAX_WEIGHT:g}): the run that wrote it "
                 "diverged; use another checkpoint")


def stored_apart(tensors: list[torch.Tensor], fail, what: str) -> None:
    """No two tensors share storage beyond its size: what the model will allocate is really in the file."""
    used: dict[int, int] = {}
    for t in tensors:
        storage = t.untyped_storage()
        used[storage.data_ptr()] = used.get(storage.data_ptr(), 0) + t.numel() * t.element_size()
        if used[storage.data_ptr()] > storage.nbytes():
            fail(f"{what} share their storage: the file does not hold the model it describes")


def check_weights(make, state: dict, fail) -> None:
    """Every tensor the module ``make()`` has, of its shape, in the file, finite, not all zero; nothing else.

    The module is built without values (``shapes_only``): its shapes cost nothing, whatever size the config claims.
    """
    try:
        with shapes_only():
            expected = make().state_dict()
    except (TypeError, ValueError, RuntimeError) as e:
        fail(f"config describes no model ({str(e).splitlines()[0][:100]})")
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        fail(f"weights do not match its config ({'no ' + missing[0] if missing else 'unknown ' + str(unexpected[0])[:60]})")
    for key, want in expected.items():
        check_tensor(state[key], fail, f"weight {key}", want.shape, want.dtype)
    stored_apart(list(state.values()), fail, "weights")
    if not any(t.count_nonzero() for t in state.values() if t.numel() and t.is_floating_point()):
        fail("every weight is zero: not a trained model")


# --- what training adds --------------------------------------------------------------------------


def printable(value, most: int = MAX_TEXT) -> bool:
    """A printable text (no NUL, newline or other control character) of at most ``most`` characters."""
    return isinstance(value, str) and len(value) <= most and is_printable(value)


def is_count(value) -> bool:
    """A non-negative int that fits int64 (a bool is not a count)."""
    return type(value) is int and 0 <= value <= MAX_COUNT


def _plain(value) -> bool:
    """A value a settings dataclass holds: None, a bool, a number or a printable text."""
    return value is None or type(value) is bool or _number(value) or printable(value)


def _number(value) -> bool:
    """A plain number (NaN and inf included: a diverged validation is logged as NaN)."""
    return type(value) in (int, float)


def check_history(history, fail, where: str = "history") -> None:
    """Validation records as the loop writes them, in order: epoch and losses (numbers, or None), step if any."""
    if not isinstance(history, list):
        fail(f"{where} is not a list")
    previous, entries, names = None, 0, set()
    for i, record in enumerate(history):
        # A pickle may refer to one object many times: entries are counted as written out, not as stored, so
        # that checking (and a resume's log rewritten from it) costs no more than a file of unshared records.
        entries += len(record) + sum(len(v) for v in record.values() if isinstance(v, dict)) \
            if isinstance(record, dict) else 1
        if entries > MAX_PICKLE_OPS:
            fail(f"{where} holds more than {MAX_PICKLE_OPS:,} values (its records refer to the same ones again and again): "
                 "not what training writes")
        if not isinstance(record, dict) or not all(printable(k, MAX_NAME) for k in record):
            fail(f"{where} record {i + 1} is not a dict of named values")
        names.update(record)
        if len(names) > MAX_HISTORY_NAMES:  # the loss curve draws a panel for each loss term: 1,000 took minutes
            fail(f"{where} names more than {MAX_HISTORY_NAMES} values, where training writes a few and two for each "
                 "loss term")
        epoch = record.get("epoch")
        if not _number(epoch) or not math.isfinite(epoch) or epoch < 0 or ("step" in record and not is_count(record["step"])):
            fail(f"{where} record {i + 1} has no epoch and step counts")
        if "train_loss" not in record or "val_loss" not in record:
            fail(f"{where} record {i + 1} has no losses")
        if previous is not None:  # a step budget's epochs are fractions that may repeat; its steps never do
            later = record["step"] > previous["step"] and epoch >= previous["epoch"] \
                if "step" in record and "step" in previous else epoch > previous["epoch"]
            if not later:
                fail(f"{where} record {i + 1} does not follow record {i}")
        for key, value in record.items():
            if isinstance(value, dict):  # class_share: class name -> share, a finite number (the log is strict JSON)
                if not all(printable(k, MAX_NAME) and _number(v) and (type(v) is int or math.isfinite(v))
                           for k, v in value.items()):
                    fail(f"{where} record {i + 1}: {key[:40]} is not class names and finite numbers")
            elif not (value is None or _number(value) or printable(value)):
                fail(f"{where} record {i + 1}: {key[:40]} is not a number")
        previous = record


def _metadata(ckpt: dict, fail) -> None:
    """The fields training or an import adds, where present: what reads them (evaluate, serve, resume) may trust
    their types. Present means of its type: nothing writes None for one, and a reader's ``.get(key, {})`` would fail."""
    if "data" in ckpt:
        data = ckpt["data"]
        if not isinstance(data, dict) or set(data) - {DATA_DIGESTS} != set(DATA_KEYS):
            fail("data settings are not the dict training writes")
        for key, t in DATA_KEYS.items():
            if not isinstance(data[key], t) or type(data[key]) is bool:
                fail(f"data setting {key} has the wrong type")
        if not 1 <= data["max_per_class"] <= MAX_COUNT:
            fail(f"data setting max_per_class is {data['max_per_class']!r:.40}, not 1 to {MAX_COUNT}")
        if not is_count(data["seed"]):
            fail(f"data setting seed is {data['seed']!r:.40}, not a count from 0 to {MAX_COUNT}")
        if data["data_dir"] is not None and not printable(data["data_dir"]):
            fail("data setting data_dir is not a printable path")
        if not all(printable(k, MAX_NAME) and printable(v) for k, v in data["sources"].items()):
            fail("data sources are not class names and paths")
        digests = data.get(DATA_DIGESTS, {})
        if DATA_DIGESTS in data and (not isinstance(digests, dict) or digests.keys() != data["sources"].keys()
                                     or not all(is_sha256(v) for v in digests.values())):
            fail("data digests are not a SHA-256 for each class file")
    frozen = ckpt.get("frozen_classes")  # --fine-tune new-classes: the rows it keeps as --init had them
    if "frozen_classes" in ckpt:
        classes = set(ckpt["classes"])
        if not isinstance(frozen, list) or not all(isinstance(c, str) and c in classes for c in frozen) \
                or not len(set(frozen)) == len(frozen) < len(classes):
            fail("frozen_classes are not some of its classes, each once")
    imported = ckpt.get("imported")
    if "imported" in ckpt and (not isinstance(imported, dict) or set(imported) != {"format", "file"}
                               or not all(printable(v) for v in imported.values())):
        fail("imported is not the format and file name an import writes")
    for key in COUNTS:
        if key in ckpt and not is_count(ckpt[key]):
            fail(f"{key} is not a count")
    if "val_loss" in ckpt and not (isinstance(ckpt["val_loss"], float) and math.isfinite(ckpt["val_loss"])):
        fail("val_loss is not a finite number")
    if "history" in ckpt:
        check_history(ckpt["history"], fail)
    if "train" in ckpt:
        train = ckpt["train"]
        if not isinstance(train, dict) or not all(printable(k, MAX_NAME) for k in train):
            fail("train is not a dict of training settings")
        for key, value in train.items():  # their meaning is training's to check; their types are checked here
            nested = isinstance(value, dict) and all(printable(k, MAX_NAME) and _plain(v) for k, v in value.items())
            if not (_plain(value) or nested):  # model_config is the one dict
                fail(f"training setting {key[:40]} is not a plain value")
        for key in ("seed", "max_len"):  # what evaluate reads from a best.pt
            if key in train and not is_count(train[key]):
                fail(f"training setting {key} is not a count")
