"""The training loop: rounds of steps, validation after each, the schedule, early stopping, checkpoints, logs.

A run is a sequence of *rounds*, each a plan of batches (``batching``) then a
validation: an epoch each under the course report's schedule (at most
``epochs``), or ``eval_every`` steps each under a step budget (``steps``).
After each validation the best weights so far go to ``best.pt`` and
everything needed to continue to ``last.pt``; early stopping counts
validations without improvement. Everything random is derived from the seed
and where training is - the plan from the round, augmentation from (round,
step, place in the batch), dropout from (round, step, rank) - so a run
stopped at any step and resumed reaches the same weights as one that never
stopped. Under ``torchrun`` every process runs this loop (``distributed``);
only rank 0 logs and writes files.
"""

from __future__ import annotations

import ctypes
import math
import signal
import sys
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sketchgen import models
from sketchgen.data import Prepared
from sketchgen.errors import counted
from sketchgen.models import collate
from sketchgen.models.checkpoint import MAX_FILE_BYTES
from sketchgen.training import batching, checkpoints, optim
from sketchgen.training.config import (
    MAX_BAD_STEPS,
    Interrupted,
    TrainConfig,
    TrainingError,
)
from sketchgen.training.distributed import from_rank0, join, leave, step_seed, wrap
from sketchgen.training.step import objective, slow_amp, term_sums, train_step


def usable(data: Prepared, split: str, max_len: int) -> np.ndarray:
    """Indices of a split short enough to train on."""
    idx = data.indices(split)
    return idx[data.lengths()[idx] <= max_len]


def dataset_loss(net: models.SketchModel, data: Prepared, idx: np.ndarray, batch_size: int, device: str = "cpu",
                 per_drawing: bool = False, class_weights: np.ndarray | None = None) -> tuple[float, dict[str, float]]:
    """The objective and each term's mean over the drawings at ``idx``, without dropout or augmentation.

    Means are per counted unit, or per drawing; with ``class_weights``, the
    mean over classes of each class's own mean, weighted as training draws
    them, so that a class of 5,000 drawings does not drown one of 25 that
    training sees as often. Under torchrun each rank scores its share. Batches
    hold drawings of similar length (sorted), so that little of them is padding.
    """
    rank, world = _rank_world()
    present = np.unique(data.labels[idx])
    groups = [idx[data.labels[idx] == c] for c in present] if class_weights is not None else [idx]
    share = np.asarray(class_weights)[present] if class_weights is not None else np.ones(1)
    means, weights = [], {}
    for group in groups:
        mine = group[rank::world]
        mine = mine[np.argsort(data.lengths()[mine], kind="stable")]
        pairs = [(mine[i : i + batch_size], 1.0) for i in range(0, len(mine), batch_size)] or [(group[:1], 0.0)]
        batches = ((collate(net, data.gather(b), data.labels[b]), w) for b, w in pairs)
        sums, weights, drawings = term_sums(net, batches, device)
        means.append({n: s / max(drawings if per_drawing else c, 1) for n, (s, c) in sums.items()})
    averaged = {n: float(np.average([m[n] for m in means], weights=share)) for n in means[0]}
    return objective(averaged, weights), averaged


def _rank_world() -> tuple[int, int]:
    dist = torch.distributed
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag checked between steps, so a checkpoint is never torn. Python delivers
    signals to the main thread alone: a run in another thread (a web app's, a GUI's) trains without it."""

    def __init__(self):
        self.signal = None

    def __enter__(self):
        main = threading.current_thread() is threading.main_thread()
        self.old = {s: signal.signal(s, self._set) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
        return self

    def _set(self, signum, frame):
        self.signal = signum

    def __exit__(self, *exc):
        for s, h in self.old.items():
            signal.signal(s, h)


class Schedule:
    """The rounds of a run: how many, each one's plan of batches, and the learning rate at each step.

    A resumed run has made ``done`` rounds and starts the next at step ``start``: rounds of ``eval_every`` steps
    from there to the budget. A budget raised on ``--resume`` after a short last round (``--steps 5`` with
    validations every 250) trained nothing, the rounds being counted from step 0."""

    def __init__(self, cfg: TrainConfig, labels: np.ndarray, lengths: np.ndarray, n_classes: int, done: int = 0,
                 start: int = 0):
        self.cfg, self.labels, self.lengths, self.done, self.start = cfg, labels, lengths, done, start
        self.shares = batching.class_shares(labels, n_classes, cfg.balance)
        self.per_epoch = math.ceil(len(labels) / cfg.batch_size)
        self.round_steps = cfg.eval_every or self.per_epoch
        self.rounds = cfg.rounds(self.per_epoch, n_classes, done, start)
        self.unit = "epoch" if not cfg.steps else "round"  # what the log calls a round
        self.total_steps = cfg.steps or self.rounds * self.per_epoch

    def plan(self, r: int) -> list[np.ndarray]:
        cfg, rng = self.cfg, np.random.default_rng([self.cfg.seed, r])
        if not cfg.steps and cfg.balance == "none":
            return batching.epoch_plan(self.lengths, cfg.batch_size, rng)
        begins = self.start + (r - self.done) * self.round_steps
        n = self.per_epoch if not cfg.steps else min(self.round_steps, cfg.steps - begins)
        return batching.sampled_plan(self.labels, self.lengths, self.shares, n, cfg.batch_size, rng)

    def lr(self, step: int) -> float | None:
        """The learning rate at a global step (``optim.learning_rate``); None under the plateau schedule."""
        return optim.learning_rate(self.cfg, step, self.total_steps)


def _model_config(cfg: TrainConfig, data: Prepared, train_idx: np.ndarray):
    """The model's config derived from the data, once; a model whose last.pt (weights and the optimiser's two moments)
    could not be read back is refused first, built without values so that nothing is allocated."""
    with models.shapes_only():
        probe = models.get(cfg.model).from_data(data, train_idx, cfg.max_len, **cfg.model_config)
    size = 3 * sum(p.numel() * 4 for p in probe.parameters())
    if size > MAX_FILE_BYTES:
        raise TrainingError(f"a {cfg.model} model of {sum(p.numel() for p in probe.parameters()):,} parameters needs "
                            f"{size / 2**30:.1f} GiB per checkpoint, more than sketchgen reads back "
                            f"({MAX_FILE_BYTES // 2**30} GiB): use a smaller --hidden or --layers")
    return probe.cfg


def _term_names(net: models.SketchModel, data: Prepared, idx: np.ndarray, device: str) -> set[str]:
    """The model's loss terms (the names a round's running sums may have), from one training drawing."""
    batch = collate(net, data.gather(idx[:1]), data.labels[idx[:1]]).to(device)
    net.eval()
    with torch.no_grad():
        names = set(net.losses(net(batch), batch, None))
    net.train()
    return names


def _every_class_trains(data: Prepared, train_idx: np.ndarray, max_len: int) -> None:
    """Refuse, in one line naming them and why, classes left without a training drawing: every statistic a model
    is built from (its lengths, its scale) is per class, and a class never drawn would be learnt from nothing."""
    counts = np.bincount(data.labels[train_idx], minlength=len(data.classes))
    empty = np.flatnonzero(counts == 0)
    if not len(empty):
        return
    had = np.bincount(data.labels[data.indices("train")], minlength=len(data.classes))

    def why(c: int) -> str:
        return f"its {had[c]} are all longer than {max_len} points" if had[c] else "none in its training split"

    named = ", ".join(f"{data.classes[c]!r} ({why(c)})" for c in empty[:3]) + (", ..." if len(empty) > 3 else "")
    raise TrainingError(f"no training drawing of {len(empty)} of the classes: {named}; raise --max-len, give more "
                        "drawings, or leave those classes out")


def _new_classes_only(cfg, net, data, train_idx, valid_idx, known, log):
    """``--fine-tune new-classes``: freeze all but the rows of the classes --init does not know (``known``: its
    classes, or on resume those the run recorded as frozen) and train and validate on their drawings alone, since
    no other class's loss can change. Also returns the frozen classes, for the run's checkpoints."""
    if not cfg.init:
        raise TrainingError("--fine-tune new-classes needs a checkpoint to start from: give --init FILE")
    new = checkpoints.freeze_known(net, list(data.classes), known, cfg.init)
    log(f"--fine-tune new-classes: training only the class rows of {', '.join(new)}; every other weight stays "
        f"as in {cfg.init}")
    labels = [data.classes.index(c) for c in new]
    train_idx, valid_idx = (idx[np.isin(data.labels[idx], labels)] for idx in (train_idx, valid_idx))
    if not len(valid_idx):
        raise TrainingError(f"--fine-tune new-classes: no validation drawing of {', '.join(new)}; give more drawings")
    return train_idx, valid_idx, [c for c in data.classes if c not in new]


def _val_weights(cfg: TrainConfig, schedule) -> np.ndarray | None:
    """Each class's weight in the validation loss: as training draws the classes, or none (every drawing alike)."""
    return None if cfg.balance == "none" or cfg.val_weights == "pooled" else schedule.shares


def _fresh_progress() -> dict:
    return {"round": 0, "step": 0, "global_step": 0, "best": math.inf, "bad_rounds": 0, "history": [], "sums": {},
            "skipped": 0, "bad_run": 0}


def _of_the_run(progress: dict) -> str:
    """The run's own step (the log's, and --steps'), beside the step within an epoch or round that the progress bar
    counts: "round 3, step 0" alone read as the run's start."""
    return f" (step {progress['global_step']} of the run)"


def _shares_line(classes: list[str], shares: np.ndarray, most: int = 12) -> str:
    """Each class's share, the largest first; past ``most`` classes, the range of the rest."""
    ranked = sorted(zip(classes, shares), key=lambda x: -x[1])
    shown = ", ".join(f"{c} {100 * s:.1f}%" for c, s in ranked[:most])
    rest = [s for _, s in ranked[most:]]
    return shown + (f", and {len(rest)} more classes of {100 * min(rest):.1f}% to {100 * max(rest):.1f}%" if rest else "")


def train(cfg: TrainConfig, data: Prepared, out_dir: str | Path, resume: bool = False, overwrite: bool = False,
          log=print, init: dict | None = None) -> list[dict]:
    """Train, writing ``best.pt``, ``last.pt`` and ``log.jsonl`` in ``out_dir``; return the history.

    ``init`` is ``cfg.init``'s checkpoint where the caller has read it already (``sketchgen.train`` reads a
    Magenta file too); else it is read here. Under torchrun, each process runs this with the same arguments;
    ``cfg.batch_size`` is the global batch.
    """
    rank, world, device = join(cfg.device)
    _reuse_freed_memory()
    out = Path(out_dir)
    if rank:
        log = _silent
    with checkpoints.run_folder(out, resume, overwrite, log, owner=rank == 0) as replace_old:
        history = _train(cfg, data, out, resume, log, rank, world, device, init, replace_old)
    leave()
    return history


def _silent(*args) -> None:
    """The log of ranks other than 0."""


def _reuse_freed_memory() -> None:
    """Have glibc's malloc keep freed blocks of up to 2 GiB for reuse (a no-op elsewhere).

    Every step allocates and frees the same large buffers (the LSTM's workspace, the activations kept for
    the backward pass). By default glibc hands blocks over 32 MiB back to the kernel at once and maps fresh
    ones, whose pages the kernel then faults in zeroed: in a one-epoch mdn run, 2.9 million page faults,
    16 % of its CPU time and a fifth of its wall clock (docs/performance.md).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # no glibc
        return
    for option in (-3, -1):  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
        mallopt(option, 2**31 - 1)


def _train(cfg, data, out, resume, log, rank, world, device, init, replace_old) -> list[dict]:
    """The run itself; ``replace_old`` (``checkpoints.run_folder``'s) is called before its first file is written,
    so that every check that can refuse it (here, and its first step's) comes while an old run is still whole."""
    train_idx = usable(data, "train", cfg.max_len)
    valid_idx = usable(data, "valid", cfg.max_len)
    dropped = len(data.indices("train")) - len(train_idx)
    if dropped:
        log(f"dropped {dropped} training drawings longer than {cfg.max_len} points")
    if not len(train_idx) or not len(valid_idx):
        had = len(data.indices("train")) and len(data.indices("valid"))  # so --max-len left none
        raise TrainingError(f"no training or validation drawings of at most {counted(cfg.max_len, 'point')}: raise "
                            "--max-len" if had else
                            "no training or validation drawings: use more data or a larger --max-per-class")
    _every_class_trains(data, train_idx, cfg.max_len)
    unseen = data.missing(valid_idx)
    if unseen:  # a class of a drawing or two: its split keeps none to validate (an audit's find: said nothing)
        log(f"note: no validation drawing of {len(unseen)} of the classes ("
            + ", ".join(map(repr, unseen[:3])) + (", ..." if len(unseen) > 3 else "")
            + "): the validation loss and the best weights kept say nothing of how they are drawn; give them more "
              "drawings (a class's split keeps 15% to validate)")

    last = out / "last.pt"
    ckpt = from_rank0(checkpoints.read_last(last) if resume and rank == 0 and last.exists() else None)
    # A resumed run has its weights, the init's settings in its model_config and the classes it froze: it reads
    # --init again only if it recorded none (a run of an earlier sketchgen).
    frozen = ckpt.get("frozen_classes") if ckpt is not None else None
    if not cfg.init or (ckpt is not None and (cfg.fine_tune != "new-classes" or frozen is not None)):
        init = None
    elif init is not None:
        init = checkpoints.of_kind(init, cfg.model, cfg.init)
    else:
        init = from_rank0(checkpoints.read_init(cfg.init, cfg.model) if rank == 0 else None)
    if ckpt is None and init is not None:
        cfg = replace(cfg, model_config=checkpoints.init_settings(init, cfg.model_config))
    model_cfg = _model_config(cfg, data, train_idx)
    torch.manual_seed(cfg.seed)
    net = models.get(cfg.model)(model_cfg)
    if ckpt is not None:  # before anything is said of what this run trains
        checkpoints.check_same_run(ckpt, cfg, net, data, last)
    if ckpt is None and init is not None:
        log(checkpoints.take_over(net, list(data.classes), init, cfg.init))
    if cfg.fine_tune == "new-classes":
        train_idx, valid_idx, frozen = _new_classes_only(cfg, net, data, train_idx, valid_idx,
                                                         init and init["classes"] if frozen is None else frozen, log)
    net = net.to(device)
    opt = optim.optimizer(cfg, net)
    sched = optim.plateau(cfg, opt)
    average = optim.averaged(cfg, net)
    kept = average.module if average is not None else net  # the weights validated and kept in best.pt
    done = ckpt["progress"] if ckpt is not None else _fresh_progress()
    schedule = Schedule(cfg, data.labels[train_idx], data.lengths()[train_idx], len(data.classes), done["round"],
                        done["global_step"] - done["step"])
    if cfg.lr_schedule != "plateau" and cfg.warmup >= schedule.total_steps:  # an epoch budget's steps, known now
        log(f"note: the warm-up of {cfg.warmup:,} steps is the whole run of {schedule.total_steps:,}: the rate rises "
            f"throughout and never reaches {cfg.lr:g} (lower --warmup, or train for longer)")
    if cfg.amp and slow_amp(device):
        log("note: --amp on a CPU that reports no bf16 instructions (AVX512_BF16, AMX): bf16 is emulated, and a "
            "step may take many times as long as without --amp (2-22x on an AVX2-only CPU, docs/performance.md)")
    progress = _fresh_progress()
    if ckpt is not None:
        checkpoints.restore(ckpt, net, opt, sched, _term_names(net, data, train_idx, device), last, average)
        progress = ckpt["progress"]
        if progress["round"] < schedule.rounds and progress["step"] > len(schedule.plan(progress["round"])):
            if cfg.steps and progress["global_step"] > cfg.steps:  # a budget lowered below where the run is
                raise TrainingError(f"the run in {out} is at step {progress['global_step']:,}, past --steps "
                                    f"{cfg.steps:,}: raise --steps to go on with it")
            raise TrainingError(f"{last}: training progress is at step {progress['step']} of a {schedule.unit} of "
                                f"{len(schedule.plan(progress['round']))}; train again with --overwrite")
        if rank == 0:
            checkpoints.rewrite_log(out / "log.jsonl", progress["history"])
        log(f"resumed from {last} at {schedule.unit} {progress['round'] + 1}, step {progress['step']}"
            + _of_the_run(progress))
        if progress["round"] >= schedule.rounds:
            budget = f"--steps {cfg.steps:,}" if cfg.steps else f"--epochs {cfg.epochs}"
            log(f"note: the run has trained its budget ({budget}): nothing more to train; raise it to train on")
        if cfg.lr != ckpt["train"]["lr"]:  # e.g. lowered after the loss went NaN
            for group in opt.param_groups:
                group["lr"] = cfg.lr
            log(f"learning rate set to {cfg.lr:g} (the run started with {ckpt['train']['lr']:g})")
    elif resume:
        log(f"nothing to resume in {out}; starting fresh")
    log(f"class shares of training drawings: {_shares_line(data.classes, schedule.shares)}")
    step_net = wrap(net, world, device, cfg.compile)
    extra = {"train": asdict(cfg), **({"data": data.settings} if data.settings else {}),
             **({"frozen_classes": frozen} if cfg.fine_tune == "new-classes" else {})}

    def save_last() -> None:
        if rank == 0:
            replace_old()
            models.save(last, models.checkpoint_dict(net, data.classes, **extra, optimizer=opt.state_dict(),
                                                     scheduler=sched.state_dict() if sched else {}, progress=progress,
                                                     **({"averaged": average.state_dict()} if average else {})))

    net.train()
    # Each loss term's [weight, floor] at the latest step (a vae's annealed KL weight), kept with the progress: a run
    # stopped after a round's last step validates, once resumed, with no step left to give them.
    weights = progress.setdefault(checkpoints.WEIGHTS, {})
    with _StopFlag() as stop:
        while progress["round"] < schedule.rounds and progress["bad_rounds"] < cfg.early_stop:
            r, t0 = progress["round"], time.time()
            plan = schedule.plan(r)
            where = f"{schedule.unit} {r + 1}/{schedule.rounds}"
            bar = progress_bar(len(plan), progress["step"], where, rank == 0)
            told, first = time.time(), progress["step"]  # where no bar shows (a log file, a pipe): a line now and then
            build = batching.builder(net, data, train_idx, plan, cfg, r, rank, world, pin=device.startswith("cuda"))
            with batching.Prefetcher(build, progress["step"], len(plan), cfg.prefetch) as batches:
                for batch, weight in batches:
                    torch.manual_seed(step_seed(cfg.seed, r, progress["step"], rank))
                    lr = schedule.lr(progress["global_step"])
                    if lr is not None:
                        for group in opt.param_groups:
                            group["lr"] = lr
                    result = train_step(net, step_net, opt, batch.to(device, non_blocking=True), progress["global_step"],
                                        weight, cfg.grad_clip, cfg.amp, stop.signal is not None, device)
                    _count(progress, result, f"{schedule.unit} {r + 1}")
                    if average is not None and not result.skipped:
                        average.update_parameters(net)
                    if progress["global_step"] == 1 and not result.skipped:
                        _first_step_moves(net, cfg)
                    weights.update({name: [float(w), None if floor is None else float(floor)]
                                    for name, (w, floor) in result.weights.items()})
                    bar.update()
                    loss, terms = _running(progress, weights)
                    bar.set_postfix(loss=f"{loss:.4f}", **(_terms(terms) if len(terms) > 1 else {}))
                    if bar.disable and rank == 0 and time.time() - told >= PROGRESS_SECONDS:
                        told = time.time()
                        log(f"{where}: step {progress['step']}/{len(plan)}, loss {loss:.4f}, "
                            f"{(progress['step'] - first) / (told - t0):.2f} steps/s")
                    if result.stopping:
                        save_last()
                        by = signal.Signals(stop.signal).name if stop.signal else "a signal to another rank"
                        raise Interrupted(f"stopped by {by} in {schedule.unit} {r + 1} at step {progress['step']}"
                                          f"{_of_the_run(progress)}; resume with --resume (state in {last})")
            bar.close()
            val_loss, val_terms = dataset_loss(kept, data, valid_idx, cfg.batch_size, device,
                                               class_weights=_val_weights(cfg, schedule))
            train_loss, train_terms = _running(progress, weights)
            record = {
                "epoch": r + 1 if not cfg.steps else round(progress["global_step"] * cfg.batch_size / len(train_idx), 3),
                "step": progress["global_step"], "train_loss": train_loss, "val_loss": val_loss,
                "lr": opt.param_groups[0]["lr"], "seconds": round(time.time() - t0, 2),
                "skipped_steps": progress["skipped"],
                **_per_term(train_terms, val_terms),
                "class_share": _seen(data, train_idx, plan),
            }
            improved = record["val_loss"] < progress["best"]  # a NaN never improves (min() would let it)
            if sched is not None:
                sched.step(record["val_loss"])
            progress["history"].append(record)
            progress.update(round=r + 1, step=0, sums={}, skipped=0, best=record["val_loss"] if improved else progress["best"],
                            bad_rounds=0 if improved else progress["bad_rounds"] + 1)
            if improved and rank == 0:
                replace_old()
                marks = {"epoch": r + 1} if not cfg.steps else {}
                models.save(out / "best.pt", models.checkpoint_dict(
                    kept, data.classes, **extra, **marks, round=r + 1, step=progress["global_step"],
                    val_loss=record["val_loss"], history=progress["history"]))
            save_last()
            if rank == 0:
                checkpoints.append_log(out / "log.jsonl", record)
            at = f"step {progress['global_step']}" if cfg.steps else f"epoch {r + 1}"
            log(f"{at}: train {record['train_loss']:.4f}  valid {record['val_loss']:.4f}"
                + (f" ({', '.join(f'{n} {v}' for n, v in _terms(val_terms).items())})" if len(val_terms) > 1 else "")
                + f"  lr {record['lr']:.2e}" + ("  (best)" if improved else ""))
    if not math.isfinite(progress["best"]):
        raise TrainingError("no validation loss was finite, so no best.pt was written: lower --lr or check the data")
    if progress["bad_rounds"] >= cfg.early_stop:
        log(f"early stop: no validation improvement for {cfg.early_stop} validations")
    return progress["history"]


# Seconds between progress lines when no progress bar shows: a log file or pipe still hears of a long round.
PROGRESS_SECONDS = 30


def progress_bar(total: int, initial: int, desc: str, show: bool) -> tqdm:
    """A round's bar where ``show``: on a terminal but not into a redirected stderr (tqdm's ``disable=None``), and
    in a Jupyter notebook, whose stderr is no terminal yet shows the bar."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    notebook = shell is not None and "IPKernelApp" in shell.config
    disable = (False if notebook else None) if show else True
    return tqdm(total=total, initial=initial, desc=desc, leave=False, disable=disable)


def _first_step_moves(net: models.SketchModel, cfg: TrainConfig) -> None:
    """Refuse a run whose first step gave none of the weights it trains a gradient: every step would change
    nothing. Under --fine-tune new-classes that is a model that makes no use of its class rows, as a one-class
    import (whose class input is zero) does; it trained nothing and reported success."""
    if any(p.grad is not None and bool(p.grad.any()) for p in net.parameters() if p.requires_grad):
        return
    hint = ("--init's model makes no use of the class rows this trains (an imported one-class model's class input "
            "is zero): train with --fine-tune all" if cfg.fine_tune == "new-classes" else "check the data and --lr")
    raise TrainingError(f"the first step gave none of the weights this run trains a gradient, so no step would "
                        f"change them: {hint}")


def _count(progress: dict, result, where: str) -> None:
    """Add one step's terms to the round's running sums, or count it as skipped (giving up after too many)."""
    if result.skipped:
        progress["skipped"] += 1
        progress["bad_run"] += 1
        if progress["bad_run"] >= MAX_BAD_STEPS:
            raise TrainingError(f"loss was NaN/inf for {MAX_BAD_STEPS} steps in a row ({where}); "
                                "lower --lr or check the data. best.pt is untouched.")
    else:
        for name, (total, count) in result.sums.items():
            s = progress["sums"].setdefault(name, [0.0, 0.0])
            s[0] += total
            s[1] += count
        progress["bad_run"] = 0
    progress["step"] += 1
    progress["global_step"] += 1


def _running(progress: dict, weights: dict) -> tuple[float, dict[str, float]]:
    """The round's training loss so far (with the terms' latest weights), and each term's mean."""
    means = {n: s / max(c, 1.0) for n, (s, c) in progress["sums"].items()}
    return objective(means, {n: weights.get(n, (1.0, None)) for n in means}), means


def _terms(means: dict[str, float]) -> dict[str, str]:
    """Each term's mean as the progress bar and the log show it."""
    return {n: f"{v:.4f}" for n, v in sorted(means.items())}


def _per_term(train_terms: dict, val_terms: dict) -> dict:
    """Each term's training and validation mean, for a loss of more than one term."""
    if len(val_terms) < 2:
        return {}
    return {**{f"train_{n}": v for n, v in train_terms.items()}, **{f"val_{n}": v for n, v in val_terms.items()}}


def _seen(data: Prepared, train_idx: np.ndarray, plan: list[np.ndarray]) -> dict[str, float]:
    """Each class's share of the drawings a round trained on."""
    seen = np.bincount(data.labels[train_idx[np.concatenate(plan)]], minlength=len(data.classes))
    return {c: round(float(s), 4) for c, s in zip(data.classes, seen / seen.sum())}
