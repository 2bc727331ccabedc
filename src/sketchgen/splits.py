"""Which drawings a model saw: where they come from (``data_settings``), and a checkpoint's own split of them,
reproduced to measure, complete or resume it (``own_split``, ``own_drawings``, ``test_starts``).

A split is a function of the class files, ``max_per_class`` and the seed (``data.prepare``); a checkpoint
records all three, so its test drawings here are the ones it never trained on - unless its files changed,
which is said, or its relative data folder now finds other files, which is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sketchgen import classfiles, data, strokes
from sketchgen import sample as sampling
from sketchgen.api import SEED_MAX, Model, UsageError, checked_int, checked_path, to_stderr
from sketchgen.classfiles import DataError
from sketchgen.data import Prepared
from sketchgen.errors import flag

DEFAULT_MAX_PER_CLASS = 100_000
MAX_PER_CLASS = 10**7


def data_settings(data_dir=None, max_per_class: int | None = None, seed: int | None = None,
                  recorded: dict | None = None, where: str = "") -> dict:
    """What to prepare (data_dir, max_per_class, seed): as given, else what ``recorded`` (a checkpoint's or a
    run's data settings) holds, else the defaults. A value that contradicts ``recorded`` is refused: the split
    would not be the one the model saw."""
    if data_dir is not None:
        checked_path(data_dir, "data_dir")
    if max_per_class is not None:
        max_per_class = checked_int("max_per_class", max_per_class, 1, MAX_PER_CLASS)
    if seed is not None:
        seed = checked_int("seed", seed, 0, SEED_MAX)  # a plain int: NumPy's would not be written as JSON
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
    say = say or to_stderr
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
            here = str(classfiles.find_class_file(name, data_dir, fetch=False).path.resolve())
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
    say = say or to_stderr
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
