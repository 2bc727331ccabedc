"""A run folder and what training keeps in it: the lock, ``best.pt``, ``last.pt``, ``log.jsonl``; and the
checkpoint a run starts from (``--init``).

``last.pt`` is a model checkpoint plus what resuming needs: the optimizer's
and the schedule's state and the loop's progress. Reading one for
``--resume`` checks all of that against the run being resumed before any of
it is used. A folder is one run: training into a folder that holds a run
refuses unless told to continue it (``resume``) or replace it
(``overwrite``: once the new run writes its first checkpoint, so that a
run refused before then leaves the old one whole), and a lock keeps two
trainings out of one folder.

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
from sketchgen.data import changed_files, more_files
from sketchgen.errors import flag
from sketchgen.fileio import FileRefused, atomic_write, open_own, replaceable, temporaries, what_is
from sketchgen.models.checkpoint import (
    MAX_COUNT,
    check_history,
    check_settings,
    check_tensor,
    check_weights,
    printable,
    stored_apart,
)
from sketchgen.training.config import LEGACY, MAX_BAD_STEPS, RESUMABLE_CHANGES, TrainConfig, TrainingError

RUN_FILES = ("best.pt", "last.pt", "log.jsonl", "loss_curve.png")
LOCK = ".sketchgen-train.lock"
PROGRESS = {"round": int, "step": int, "global_step": int, "best": float, "bad_rounds": int, "history": list,
            "sums": dict, "skipped": int, "bad_run": int}
WEIGHTS = "weights"  # each loss term's [weight, floor] at the latest step: in progress since 2026-12-07, not before


@contextlib.contextmanager
def run_folder(out: Path, resume: bool, overwrite: bool, log, owner: bool = True):
    """Hold ``out`` for one training run: locked, checked against the run it holds, cleared of temporaries.

    Yields what the run calls before it writes its first file: with ``overwrite``, it removes the run the folder
    held. Not before, so that a run refused after the claim (no drawing short enough, an --init that does not
    fit, a first step that moves nothing) leaves the old run whole. Only the process that writes (``owner``,
    rank 0 under torchrun) takes the lock and checks.
    """
    if not owner:
        yield lambda: None
        return
    made = not os.path.lexists(out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        with _held(out) as lock:
            yield _claim(out, lock, resume, overwrite, log)
    except BaseException:
        if made:  # a run refused before it wrote anything (no drawings left to train on) leaves no empty folder
            with contextlib.suppress(OSError):
                out.rmdir()
        raise


def _claim(out: Path, lock, resume: bool, overwrite: bool, log):
    """Mark ``out`` as this run's, clear a killed run's temporaries, and check what it holds against ``resume``
    and ``overwrite``; return what removes the run ``overwrite`` replaces (each call after the first: nothing)."""
    lock.seek(0)
    lock.truncate()
    lock.write(f"sketchgen train (pid {os.getpid()} on {socket.gethostname()})\n")
    lock.flush()
    for tmp in temporaries(out, RUN_FILES):  # what a killed run was writing when it died; nothing else of the folder
        tmp.unlink(missing_ok=True)
    present = _present(out)
    if problem := _refusal(out, present, resume, overwrite):
        raise TrainingError(problem)
    if present and not resume:
        return lambda: _replace(out, present, log)
    return lambda: None


def check_out(out: Path, resume: bool, overwrite: bool) -> None:
    """``_claim``'s refusals, and a run training there now, said before the data is prepared and training
    announced (``_claim`` checks again, under the run's lock, which this takes for the check alone)."""
    if not out.is_dir():
        return
    with _held(out):
        if problem := _refusal(out, _present(out), resume, overwrite):
            raise TrainingError(problem)


def _present(out: Path) -> list[str]:
    """The run files ``out`` holds."""
    return [name for name in RUN_FILES if (out / name).exists()]


def _refusal(out: Path, present: list[str], resume: bool, overwrite: bool) -> str | None:
    """Why a run cannot be trained into ``out``, which holds the run files ``present``, or None."""
    for path in (out / name for name in RUN_FILES):  # a folder or a FIFO there, or a link to one: writing the file
        # would fail after the old run's files were removed, or once the resumed run had trained (the rule is the
        # writer's own, ``replaceable``: a link to a file, or to nothing, is replaced, not followed)
        try:
            replaceable(path)
        except FileRefused:
            link = "a link to " if path.is_symlink() else ""
            return f"{path} is {link}{what_is(path)}, where a run keeps its {path.name}: move it, or give another --out"
    if present and resume and "last.pt" not in present:
        return (f"{out} holds a run ({', '.join(present)}) but no last.pt to resume it from: pass --overwrite to "
                "start again, or another --out")
    if present and not resume and not overwrite:
        return (f"{out} holds a run ({', '.join(present)}): pass --resume to continue it, --overwrite to start "
                "again, or another --out")
    return None


def _replace(out: Path, present: list[str], log) -> None:
    """Remove the files of the run ``--overwrite`` replaces, the first time only (``present`` is emptied)."""
    if present:
        log(f"--overwrite: replacing the run in {out} ({', '.join(present)})")
        for name in present:
            (out / name).unlink(missing_ok=True)
        present.clear()


@contextlib.contextmanager
def _held(out: Path):
    """The run folder's lock file, held exclusively, and removed when the run ends (a finished run names no
    process). A process that opened the file just before another removed it finds, once it holds the lock, that
    its file is no longer the folder's, and opens the folder's anew."""
    path = out / LOCK
    while True:
        lock = os.fdopen(open_own(path), "r+")  # never a link's target, which it would overwrite
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read(200).strip() or "another process"  # a line of ours; what else is there, unread
            lock.close()
            raise TrainingError(f"{out} is in use by {holder}: wait for it, or train into another --out") from None
        try:
            current = os.stat(path, follow_symlinks=False).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(lock.fileno()).st_ino:
            break
        lock.close()
    try:
        yield lock
    finally:
        path.unlink(missing_ok=True)  # while still held: no one can take a lock on it in between
        lock.close()


def _json_line(record: dict) -> bytes:
    """A record as one line of strict JSON (a NaN loss is written as null)."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
    return (json.dumps(clean, allow_nan=False) + "\n").encode()


def append_log(path: Path, record: dict) -> None:
    """Add one validation's line to log.jsonl in one write; a write that fails (a full disk) is taken back."""
    line = _json_line(record)
    fd = open_own(path, os.O_WRONLY | os.O_APPEND)
    try:
        size = os.fstat(fd).st_size
        try:
            while line:  # a disk that fills mid-line writes part, then says why on the next write
                line = line[os.write(fd, line):]
        except OSError as e:
            os.ftruncate(fd, size)
            raise OSError(e.errno, f"{e.strerror}: could not write {path}; its earlier lines are intact") from None
    finally:
        os.close(fd)


def rewrite_log(path: Path, history: list[dict]) -> None:
    """log.jsonl as the resumed ``last.pt``'s history has it: a run killed between writing last.pt and its log
    line, or mid-line, loses nothing and repeats nothing."""
    with atomic_write(path) as f:
        f.write(b"".join(_json_line(record) for record in history))


def read_last(path: Path) -> dict:
    """``last.pt`` for resuming: a valid model checkpoint that also carries valid training state."""
    ckpt = models.read(path)
    missing = [k for k in ("train", "optimizer", "scheduler", "progress") if k not in ckpt]
    if missing:
        raise TrainingError(f"{path} holds no training state to resume (no {missing[0]}); "
                            "train without --resume, or with --overwrite to start again")
    return {**ckpt, "train": _train_settings(ckpt["train"], path), "progress": _progress(ckpt, path)}


def _damaged(path: Path, what: str):
    """A ``fail`` for the checks: one line naming the file and the field, and what to do."""
    def fail(message: str):
        raise TrainingError(f"{path}: {what}{message}; train again with --overwrite")
    return fail


def _train_settings(saved: dict, path: Path) -> dict:
    """The saved TrainConfig fields, each of its type and bounds (settings added since 0.1.0 as 0.1.0 ran)."""
    fail = _damaged(path, "")
    missing = [f.name for f in fields(TrainConfig) if f.name not in {**LEGACY, **saved}]
    if missing:
        fail(f"training settings lack {missing[0]}")
    settings = check_settings(TrainConfig, saved, fail, "training setting", LEGACY)
    if not settings["device"] or not printable(settings["device"], 40):
        fail("training setting device is not a device name")
    cls = models.get(settings["model"])
    config = settings["model_config"]
    alien = [k for k in config if k not in cls.flags() and k not in cls.weight_settings]  # flags, or an --init's
    if alien:
        fail(f"training setting model_config has {str(alien[0])[:40]!r}, which is not a setting of a {cls.name} model")
    settings["model_config"] = check_settings(cls.Config, config, fail, "training setting model_config", partial=True)
    return settings


def _progress(ckpt: dict, path: Path) -> dict:
    """The loop's counters, each a count within what the history and MAX_BAD_STEPS allow."""
    fail = _damaged(path, "training progress ")
    progress = ckpt["progress"]
    if not isinstance(progress, dict):
        fail("is not a dict")
    if "epoch" in progress and "round" not in progress:  # 0.1.0's names for the same numbers
        progress = {"round": progress["epoch"], "step": progress.get("step"), "global_step": 0,
                    "best": progress.get("best"), "bad_rounds": progress.get("bad_epochs"),
                    "history": progress.get("history"), "skipped": progress.get("skipped"),
                    "bad_run": progress.get("bad_run"), "sums": {}}  # the epoch's running loss restarts
    unknown = [k for k in progress if k not in PROGRESS and k != WEIGHTS]
    if unknown:
        fail(f"has {str(unknown[0])[:40]!r}, which the loop does not keep")
    if not isinstance(progress.get(WEIGHTS, {}), dict):
        fail(f"field {WEIGHTS} is damaged")
    progress = dict(progress)
    for key, t in PROGRESS.items():
        value = progress.get(key)
        if t is float and type(value) is int:
            value = progress[key] = float(value)
        if type(value) is not t or (t is int and not 0 <= value <= MAX_COUNT):
            fail(f"field {key} is damaged")
    history = progress["history"]
    check_history(history, fail, "history")
    if len(history) != progress["round"]:
        fail(f"history has {len(history)} validations for {progress['round']} rounds")
    # best is the lowest finite validation loss so far, and bad_rounds the validations since it was reached.
    losses = [r["val_loss"] if isinstance(r["val_loss"], float) and math.isfinite(r["val_loss"]) else math.inf
              for r in history]
    best = min(losses, default=math.inf)
    since = len(losses) - (losses.index(best) + 1) if math.isfinite(best) else len(losses)
    if progress["best"] != best or progress["bad_rounds"] != since:
        fail(f"best {progress['best']} or bad_rounds {progress['bad_rounds']} contradicts the history "
             f"(best {best}, {since} since)")
    done = history[-1]["step"] if history and "step" in history[-1] else None  # the global step of the last validation
    if progress["bad_run"] >= MAX_BAD_STEPS or progress["skipped"] > progress["step"] or \
            progress["step"] > progress["global_step"] or \
            (done is not None and progress["global_step"] != done + progress["step"]):
        fail("step counts contradict each other")
    for name, pair in progress["sums"].items():  # a loss term's running (sum, count) this round
        if not (printable(name, 100) and isinstance(pair, list) and len(pair) == 2
                and all(type(x) is float and math.isfinite(x) for x in pair) and pair[1] >= 0):
            fail(f"sums of {str(name)[:40]!r} are damaged")
    for name, pair in progress.get(WEIGHTS, {}).items():  # a term's weight, and its floor or None
        if not (printable(name, 100) and isinstance(pair, list) and len(pair) == 2
                and all(type(x) is float and math.isfinite(x) for x in pair[: 1 if pair[1] is None else 2])):
            fail(f"weights of {str(name)[:40]!r} are damaged")
    return progress


def check_same_run(ckpt: dict, cfg: TrainConfig, net: models.SketchModel, data, path: Path) -> None:
    """Refuse to resume into a different run: other data, model or batches could never reach the same weights."""
    def setting(name: str, there, here) -> str:
        return f"{name} ({there!r:.40} there, {here!r:.40} here)"

    saved = ckpt["train"]  # every training setting but model_config is a flag of train's
    differ = [setting(flag(k), saved.get(k), v) for k, v in asdict(cfg).items()
              if k not in (*RESUMABLE_CHANGES, "model_config") and saved.get(k) != v]
    # The model's settings are compared as built (model_config holds only those given), and the first named: by its
    # flag where it is one (the offset scale is drawn from the data).
    mine = asdict(net.cfg)
    if ckpt["classes"] != list(data.classes):
        differ.append("classes")
    elif changed := [k for k in mine if ckpt["config"].get(k) != mine[k]]:
        k = changed[0]
        differ.append(setting(flag(k) if k in type(net).flags() else k, ckpt["config"].get(k), mine[k]))
    recorded = ckpt.get("data")
    if recorded is not None and data.settings and \
            any(recorded[k] != data.settings[k] for k in ("max_per_class", "seed", "sources")):
        moved = [(there, data.settings["sources"].get(name)) for name, there in recorded["sources"].items()
                 if there != data.settings["sources"].get(name)]  # the same drawings elsewhere: say where they were
        differ.append(f"data ({moved[0][0]} trained it, where this is {moved[0][1]})" if moved and moved[0][1]
                      else "data")
    # The same paths ("other data" says otherwise), with other drawings in them: said first, since the model's
    # settings drawn from the data (lengths, offset scale) then differ too, though no flag was changed.
    if "data" not in differ and data.settings and (changed := changed_files(recorded, data)):
        raise TrainingError(f"{path} is from a run on other drawings: {changed[0][0]}{more_files(changed)} has "
                            "changed since it began (SHA-256); put the file it trained on back to resume, or "
                            "--overwrite to start over")
    if differ:
        raise TrainingError(f"{path} is from a run with other {', '.join(differ)}: pass the same settings "
                            "with --resume, or --overwrite to start over")
    best = path.with_name("best.pt")
    try:  # the run's result, printed at its end though it may never be written again
        kept = models.read(best) if best.exists() else None
    except models.CheckpointError:  # damaged: replaced at the next improvement, as before
        kept = None
    if kept is not None and (kept["kind"], kept["classes"], kept["config"]) != \
            (ckpt["kind"], ckpt["classes"], ckpt["config"]):
        raise TrainingError(f"{best} is not this run's (a {kept['kind']} of {len(kept['classes'])} classes, where "
                            f"{path.name} is a {ckpt['kind']} of {len(ckpt['classes'])}): pass --overwrite to start "
                            "over, or resume where its own last.pt is")


def restore(ckpt: dict, net: models.SketchModel, opt: torch.optim.Optimizer, sched, terms: set[str], path: Path,
            average: torch.optim.swa_utils.AveragedModel | None = None) -> None:
    """Load the weights, the optimizer's and schedule's state and the weights' moving ``average``, each checked
    against the run's own first.

    ``terms`` are the model's loss terms: the only names the round's running sums may have.
    """
    fail = _damaged(path, "")
    progress = ckpt["progress"]
    unknown = [name for name in (*progress["sums"], *progress.get(WEIGHTS, {})) if name not in terms]
    if unknown:
        fail(f"training progress names a loss term {unknown[0][:40]!r} the model does not have")
    _check_optimizer(ckpt["optimizer"], opt, _damaged(path, "optimizer state "))
    if sched is not None:
        _check_scheduler(ckpt["scheduler"], sched, _damaged(path, "schedule state "))
    if average is not None:
        fail_average = _damaged(path, "moving average: ")
        if not isinstance(ckpt.get("averaged"), dict):
            fail_average("not a dict of tensors")
        check_weights(lambda: average, ckpt["averaged"], fail_average)
        count = int(ckpt["averaged"]["n_averaged"])
        if not 0 <= count <= ckpt["progress"]["global_step"]:
            fail_average(f"count {count} is not a count of the run's steps")
    net.load_state_dict({k: v.to(next(net.parameters()).dtype) for k, v in ckpt["state_dict"].items()})
    if average is not None:
        average.load_state_dict(ckpt["averaged"])
    opt.load_state_dict(ckpt["optimizer"])
    if sched is not None:
        patience = sched.patience  # --lr-patience may change on resume: the run's state, the new patience
        sched.load_state_dict(ckpt["scheduler"])
        sched.patience = patience


def _check_optimizer(saved, opt: torch.optim.Optimizer, fail) -> None:
    """The optimiser's state (Adam's or AdamW's) as ``opt.state_dict()`` would give it for this model: its groups'
    settings and each moment.

    Settings other than the learning rate must be this run's own (a ``capturable`` or ``betas`` of 2 would fail
    or diverge mid-run); each parameter's ``step`` a positive count and its moments finite tensors of its shape.
    """
    fresh = opt.state_dict()
    if not isinstance(saved, dict) or set(saved) != {"state", "param_groups"} or not isinstance(saved["state"], dict) \
            or not isinstance(saved["param_groups"], list) or len(saved["param_groups"]) != len(fresh["param_groups"]):
        fail("is not this run's optimiser state for this model")
    params = [p for group in opt.param_groups for p in group["params"]]
    for group, mine in zip(saved["param_groups"], fresh["param_groups"]):
        if not isinstance(group, dict) or group.get("params") != mine["params"]:
            fail("names other parameters than the model's")
        for key, value in group.items():
            if key == "lr":
                if type(value) not in (int, float) or not 0 <= value <= 10:
                    fail(f"learning rate {value!r:.20} is not a rate")
            elif key in mine and (type(value) is not type(mine[key]) or value != mine[key]):
                fail(f"setting {key} is {value!r:.20}, not this run's {mine[key]}")
    moments = {"exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if opt.defaults.get("amsgrad") else set())
    tensors = []
    for index, state in saved["state"].items():
        if type(index) is not int or not 0 <= index < len(params) or not isinstance(state, dict) \
                or set(state) != moments | {"step"}:
            fail(f"of parameter {str(index)[:20]} is not the optimiser's (step and moments)")
        step = state["step"]
        if isinstance(step, torch.Tensor):
            step = float(step) if step.dim() == 0 and step.is_floating_point() and step.device.type == "cpu" else None
        if type(step) not in (int, float) or not (1 <= step <= 2**53 and step == int(step)):
            fail(f"of parameter {index}: step is not a positive count")
        for key in sorted(moments):
            check_tensor(state[key], fail, f"of parameter {index}: {key}", params[index].shape)
            if key != "exp_avg" and float(state[key].min()) < 0:
                fail(f"of parameter {index}: {key} is negative, which a mean of squares never is")
            tensors.append(state[key])
    stored_apart(tensors, fail, "moments")


def _check_scheduler(saved, sched, fail) -> None:
    """ReduceLROnPlateau's state: the keys it has (it sets every key as an attribute), each of its type, sane."""
    fresh = sched.state_dict()
    if not isinstance(saved, dict):
        fail("is not a dict")
    unknown = [k for k in saved if k not in fresh]
    if unknown:
        fail(f"has {str(unknown[0])[:40]!r}, which ReduceLROnPlateau does not")
    for key, value in saved.items():
        mine = fresh[key]
        if isinstance(mine, str):
            ok = value == mine
        elif isinstance(mine, list):
            ok = isinstance(value, list) and len(value) == len(mine) and all(_rate(v) for v in value)
        else:
            ok = type(value) is type(mine) or (type(mine) is float and type(value) is int)
            ok = ok and not math.isnan(value) and (key == "best" or value >= 0) and (key != "factor" or 0 < value < 1)
        if not ok:
            fail(f"{key} is {value!r:.20}")


def _rate(value) -> bool:
    return type(value) in (int, float) and math.isfinite(value) and value >= 0


# --- starting from another checkpoint ---------------------------------------------------------


def read_init(path: str, kind: str) -> dict:
    """The checkpoint a run of a ``kind`` model starts from: checked whole, and of that kind."""
    return of_kind(models.read(path), kind, path)


def of_kind(ckpt: dict, kind: str, path: str) -> dict:
    """``ckpt``, the ``--init`` checkpoint at ``path``, if a ``kind`` model can start from its weights."""
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
    saying what it took, what starts from scratch and what it left unused. Refused where nothing fits."""
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
    unused = [name for name in theirs if name not in state]  # e.g. what a setting given as a flag does away with
    return (f"--init {path}: started from {taken} of the model's {len(state)} weight tensors"
            + (f"; from scratch: {'; '.join(missed)}" if missed else "")
            + (f"; not used: {', '.join(unused)} (this model has no such weights)" if unused else ""))


def freeze_known(net: models.SketchModel, classes: list[str], known: list[str], path: str) -> list[str]:
    """Leave only the class rows to train (``--fine-tune new-classes``); the classes ``known`` lacks, named. The
    run then trains on those classes' drawings alone, so a known class's row never has a gradient: Adam's
    moments for it stay zero and it stays bit for bit what --init holds, as every frozen tensor does."""
    new = [c for c in classes if c not in known]
    if not new:
        raise TrainingError(f"--fine-tune new-classes: --init {path} knows every class of this run, so nothing "
                            "would train; add a class it does not know, or leave --fine-tune out")
    for name, p in net.named_parameters():
        p.requires_grad_(name in net.class_weights)
    return new


def _shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape))
