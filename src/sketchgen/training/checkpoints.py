"""A run folder and what training keeps in it: the lock, ``best.pt``, ``last.pt``, ``log.jsonl``; and the
checkpoint a run starts from (``--init``).

``last.pt`` is a model checkpoint plus what resuming needs: the optimizer's
and the schedule's state and the loop's progress. Reading one for
``--resume`` checks all of that against the run being resumed before any of
it is used. A folder is one run: training into a folder that holds a run
refuses unless told to continue it (``resume``) or replace it
(``overwrite``), and a lock keeps two trainings out of one folder.

A run started from another checkpoint (fine-tuning, an imported model
included) is built with that checkpoint's ``weight_settings`` - the sizes
and the input scaling its weights were trained for, the mixture model's
offset scale among them - where the new data would otherwise decide them,
unless a flag sets one; then it takes over every tensor that fits, the
class embedding row by row for the classes both know, and says in one line
what it could not take over.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import socket
from dataclasses import asdict, fields
from pathlib import Path

import torch

from sketchgen import models
from sketchgen.training.config import LEGACY, RESUMABLE_CHANGES, TrainConfig, TrainingError

RUN_FILES = ("best.pt", "last.pt", "log.jsonl", "loss_curve.png")
LOCK = ".sketchgen-train.lock"
PROGRESS = {"round": int, "step": int, "global_step": int, "best": float, "bad_rounds": int, "history": list,
            "sums": dict, "skipped": int, "bad_run": int}


@contextlib.contextmanager
def run_folder(out: Path, resume: bool, overwrite: bool, log, owner: bool = True):
    """Hold ``out`` for one training run: locked, checked against the run it holds, cleared of temporaries.

    Only the process that writes (``owner``, rank 0 under torchrun) takes the lock and checks.
    """
    if not owner:
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    with open(out / LOCK, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise TrainingError(f"{out} is in use by {holder}: wait for it, or train into another --out") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"sketchgen train (pid {os.getpid()} on {socket.gethostname()})\n")
        lock.flush()
        for tmp in out.glob(".*.tmp"):  # what a killed run was writing when it died
            tmp.unlink(missing_ok=True)
        present = [name for name in RUN_FILES if (out / name).exists()]
        if present and not resume:
            if not overwrite:
                raise TrainingError(f"{out} holds a run ({', '.join(present)}): pass --resume to continue it, "
                                    "--overwrite to start again, or another --out")
            log(f"--overwrite: replacing the run in {out} ({', '.join(present)})")
            for name in present:
                (out / name).unlink()
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def append_log(path: Path, record: dict) -> None:
    """One line of strict JSON per validation (a NaN loss is written as null)."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
    with open(path, "a") as f:
        f.write(json.dumps(clean, allow_nan=False) + "\n")


def read_last(path: Path) -> dict:
    """``last.pt`` for resuming: a valid model checkpoint that also carries valid training state."""
    ckpt = models.read(path)
    missing = [k for k in ("train", "optimizer", "scheduler", "progress") if k not in ckpt]
    if missing:
        raise TrainingError(f"{path} holds no training state to resume (no {missing[0]}); "
                            "train without --resume, or with --overwrite to start again")
    return {**ckpt, "train": _train_settings(ckpt["train"], path), "progress": _progress(ckpt, path)}


def _train_settings(saved: dict, path: Path) -> dict:
    """The saved TrainConfig fields, each of its type (settings added since 0.1.0 as 0.1.0 ran)."""
    saved = {**LEGACY, **saved}
    for f in fields(TrainConfig):
        if f.name not in saved:
            raise TrainingError(f"{path}: training settings lack {f.name}; train without --resume")
        value, default = saved[f.name], getattr(TrainConfig(), f.name)
        if type(default) is float and type(value) is int:
            value = float(value)
        if type(value) is not type(default) or (isinstance(value, float) and not math.isfinite(value)):
            raise TrainingError(f"{path}: training setting {f.name} is not a valid {type(default).__name__}; "
                                "train without --resume")
        saved[f.name] = value
    return saved


def _progress(ckpt: dict, path: Path) -> dict:
    progress = ckpt["progress"]
    if not isinstance(progress, dict):
        raise TrainingError(f"{path}: training progress is damaged; train again with --overwrite")
    if "epoch" in progress and "round" not in progress:  # 0.1.0's names for the same numbers
        progress = {"round": progress["epoch"], "step": progress.get("step"), "global_step": 0,
                    "best": progress.get("best"), "bad_rounds": progress.get("bad_epochs"),
                    "history": progress.get("history"), "skipped": progress.get("skipped"),
                    "bad_run": progress.get("bad_run"), "sums": {}}  # the epoch's running loss restarts
    for key, t in PROGRESS.items():
        value = progress.get(key)
        if t is float and type(value) is int:
            value = progress[key] = float(value)
        if type(value) is not t or (t is int and value < 0):
            raise TrainingError(f"{path}: training progress field {key} is damaged; train again with --overwrite")
    sums = progress["sums"]
    if not all(isinstance(v, list) and len(v) == 2 and all(type(x) is float for x in v) for v in sums.values()):
        raise TrainingError(f"{path}: training progress sums are damaged; train again with --overwrite")
    return progress


def check_same_run(ckpt: dict, cfg: TrainConfig, net: models.SketchModel, data, path: Path) -> None:
    """Refuse to resume into a different run: other data, model or batches could never reach the same weights."""
    saved = ckpt["train"]
    differ = [k for k, v in asdict(cfg).items() if k not in RESUMABLE_CHANGES and saved.get(k) != v]
    if ckpt["classes"] != list(data.classes):
        differ.append("classes")
    elif ckpt["config"] != asdict(net.cfg):
        differ.append("model settings")
    recorded = ckpt.get("data")
    if recorded is not None and data.settings and \
            any(recorded[k] != data.settings[k] for k in ("max_per_class", "seed", "sources")):
        differ.append("data")
    if differ:
        raise TrainingError(f"{path} is from a run with other {', '.join(differ)}: pass the same settings "
                            "with --resume, or --overwrite to start over")


def restore(ckpt: dict, net: models.SketchModel, opt: torch.optim.Optimizer, sched, path: Path) -> None:
    """Load the weights and the optimizer's and schedule's state; damaged state is one line, not a traceback."""
    net.load_state_dict({k: v.to(next(net.parameters()).dtype) for k, v in ckpt["state_dict"].items()})
    try:
        opt.load_state_dict(ckpt["optimizer"])
        if sched is not None:
            sched.load_state_dict(ckpt["scheduler"])
    except (KeyError, ValueError, TypeError, RuntimeError, AttributeError) as e:
        raise TrainingError(f"{path}: optimizer or schedule state is damaged ({type(e).__name__}); "
                            "train again with --overwrite") from None
    for p in net.parameters():
        for key, value in opt.state.get(p, {}).items():
            if not isinstance(value, torch.Tensor):
                continue
            if (value.dim() and value.shape != p.shape) or not torch.isfinite(value).all():
                raise TrainingError(f"{path}: optimizer state {key} does not fit the model or is not finite; "
                                    "train again with --overwrite")


# --- starting from another checkpoint ---------------------------------------------------------


def read_init(path: str, kind: str) -> dict:
    """The checkpoint a run of a ``kind`` model starts from: checked whole, and of that kind."""
    ckpt = models.read(path)
    if ckpt["kind"] != kind:
        raise TrainingError(f"--init {path} holds a {ckpt['kind']} model; a {kind} model cannot start from its "
                            f"weights (pass --model {ckpt['kind']}, or leave --model out)")
    return ckpt


def init_settings(ckpt: dict, given: dict) -> dict:
    """A run's model settings when it starts from ``ckpt``: the settings its weights mean something under, then
    those ``given`` (flags), which win."""
    kept = models.get(ckpt["kind"]).weight_settings
    return {**{k: ckpt["config"][k] for k in kept if k in ckpt["config"]}, **given}


def take_over(net: models.SketchModel, classes: list[str], ckpt: dict, path: str) -> str:
    """Copy into ``net`` every tensor of ``ckpt`` of the same name and shape, class rows by class name; one line
    saying what it took and what starts from scratch. Refused where nothing fits."""
    theirs, their_classes = ckpt["state_dict"], ckpt["classes"]
    state = net.state_dict()
    taken, missed = 0, []
    with torch.no_grad():
        for name, mine in state.items():
            have = theirs.get(name)
            if have is None:
                missed.append(f"{name} (not in it)")
            elif have.shape[1:] != mine.shape[1:] or (have.shape != mine.shape and name not in net.class_weights):
                missed.append(f"{name} ({_shape(have)} there, {_shape(mine)} here)")
            elif name in net.class_weights:
                known = [c for c in classes if c in their_classes]
                for c in known:
                    mine[classes.index(c)] = have[their_classes.index(c)]
                taken += bool(known)
                new = [c for c in classes if c not in their_classes]
                if new:
                    missed.append(f"the {name} rows of {', '.join(new)} (classes it was not trained on)")
            else:
                mine.copy_(have)
                taken += 1
    if not taken:
        raise TrainingError(f"--init {path}: none of its weights fit this model ({missed[0]}, ...); "
                            "leave out the flags that change the model's size")
    return (f"--init {path}: started from {taken} of the model's {len(state)} weight tensors"
            + (f"; from scratch: {'; '.join(missed)}" if missed else ""))


def _shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape))
