"""Training settings, and the two ways training stops early."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sketchgen import models
from sketchgen.classfiles import categories
from sketchgen.errors import SketchgenError, one_line
from sketchgen.models.base import setting
from sketchgen.strokes import MAX_POINTS
from sketchgen.training.optim import OPTIMIZERS, SCHEDULES

MAX_ROUNDS = 10**9  # epochs, steps, validations: any budget a run could finish
# Validations a run of up to Quick, Draw!'s 345 classes may make. Each appends a record to the history that best.pt
# and last.pt carry, whose reader builds at most MAX_PICKLE_OPS (2,000,000) pickle objects. A record of a 345-class
# run is ~720 of them: two per class for its class_share (the name, memoized after its first record, and the share)
# and two per other field. Measured (tests/test_train.py): last.pt of a 345-class vae run with 2,000 records holds
# 1,446,806 objects, its weights, optimiser state and settings ~6,000 of them, so 550,000 are to spare. A run of
# more classes of its own may make proportionally fewer (``TrainConfig.rounds``).
MAX_VALIDATIONS = 2000
# Drawings per batch: 40 times Sketch-RNN's 100; memory grows with batch x length x hidden.
MAX_BATCH = 4096
# Drawings in a round of --eval-every steps, whose plan is drawn whole (~40 bytes each while it is: 400 MB); an
# epoch's round holds the data's training drawings, which it already has.
MAX_ROUND_DRAWINGS = 10**7
# NaN/inf losses tolerated in a row before training gives up.
MAX_BAD_STEPS = 20
BALANCES = ("none", "classes", "sqrt")
FINE_TUNES = ("all", "new-classes")
VAL_WEIGHTS = ("balance", "pooled")
# What a run of 0.1.0 did for settings added since: resuming one of its runs continues it as it was.
LEGACY = {"steps": 0, "eval_every": 0, "lr_schedule": "plateau", "lr_decay": 1.0, "min_lr": 0.0, "balance": "none",
          "init": "", "optimizer": "adam", "weight_decay": 0.0, "warmup": 0, "fine_tune": "all",
          "val_weights": "balance", "ema": 0.0}
# Settings a resumed run may change; a change to any other would make it a different run.
RESUMABLE_CHANGES = ("epochs", "steps", "lr", "lr_patience", "early_stop", "device", "amp", "compile", "prefetch")


@dataclass
class TrainConfig:
    """How to train; each model changes some of these (``SketchModel.train_defaults``).

    The defaults are the course report's: at most ``epochs`` passes over the
    data, validation after each, Adam and ReduceLROnPlateau on it, early stop
    after ``early_stop`` validations without improvement, the best weights
    kept. ``steps`` > 0 sets a budget of steps instead, with validation every
    ``eval_every`` steps, as Sketch-RNN trains; the optimiser and the
    learning-rate schedule are ``optim``'s. ``balance`` "classes" draws every
    class equally often. ``init`` names a checkpoint whose weights a new run
    starts from, where they fit (``checkpoints.take_over``); ``fine_tune``
    "new-classes" trains only the rows of the classes it does not know,
    on their drawings alone (``checkpoints.freeze_known``). Each field's
    bounds are what a resumed ``last.pt`` is checked against, and a field with
    ``help`` is a ``sketchgen train`` flag that accepts what they allow.
    """

    model: str = setting(models.default, choices=models.names)
    epochs: int = setting(30, "an epoch budget: at most this many passes, validating after each (unless --steps)",
                          low=1, high=MAX_ROUNDS)
    steps: int = setting(0, "a step budget instead of epochs (0: epochs)", low=0, high=MAX_ROUNDS)
    eval_every: int = setting(0, "steps between validations under --steps (0: one epoch's worth)", low=0,
                              high=MAX_ROUNDS)
    batch_size: int = setting(64, "drawings per batch, across all processes", low=1, high=MAX_BATCH)
    optimizer: str = setting("adam", "adam, or adamw (decoupled weight decay on weight matrices)", choices=OPTIMIZERS)
    weight_decay: float = setting(0.0, "adamw's weight decay", low=0.0, high=10.0)
    lr: float = setting(1e-3, "learning rate", low=0.0, high=10.0, above=True)
    lr_schedule: str = setting("plateau", "plateau: lowered when validation stops improving; decay: times --lr-decay "
                               "every step; cosine: down to --min-lr over the run", choices=SCHEDULES)
    warmup: int = setting(0, "steps over which the rate rises linearly to --lr first (decay and cosine)", low=0,
                          high=MAX_ROUNDS)
    lr_patience: int = setting(2, "validations without improvement before plateau lowers the rate", low=0,
                               high=MAX_ROUNDS)
    lr_decay: float = setting(1.0, "the decay schedule's factor per step", low=0.0, high=1.0)
    min_lr: float = setting(0.0, "the lowest rate decay and cosine reach", low=0.0, high=10.0)
    early_stop: int = setting(3, "stop after this many validations without improvement", low=1, high=MAX_ROUNDS)
    balance: str = setting("none", "how often each class is drawn: classes: equally; sqrt: in proportion to the square "
                           "root of its drawings; none: as the data comes", choices=BALANCES)
    val_weights: str = setting("balance", "how validation weighs the classes: balance: as --balance draws them; "
                               "pooled: every validation drawing alike, so that the largest classes decide when "
                               "to stop", choices=VAL_WEIGHTS)
    ema: float = setting(0.0, "validate and keep an exponential moving average of the weights, this much of it kept "
                         "each step (0: the weights themselves)", low=0.0, high=0.9999)
    seed: int = setting(0, low=0, high=2**63 - 1)
    max_len: int = setting(250, "drop drawings with more points than this", low=1, high=MAX_POINTS)
    grad_clip: float = setting(0.0, "clip the gradient's norm to this (0: no clipping)", low=0.0, high=1e6)
    augment_scale: float = setting(0.0, "stretch x and y by up to this fraction, each drawing anew (Sketch-RNN: 0.15)",
                                   low=0.0, high=0.99)
    augment_drop: float = setting(0.0, "drop this share of a drawing's interior points (Sketch-RNN: 0.10)", low=0.0,
                                  high=0.99)
    device: str = "cpu"  # checked where it is used: whether this machine has it
    amp: bool = False  # bf16 autocast of the model's forward pass (the loss stays float32)
    compile: bool = False  # torch.compile the model: worth it on a GPU for long runs, not on CPU
    prefetch: int = setting(2, "batches built ahead on a background thread (0: none)", low=0, high=64)
    init: str = ""  # a checkpoint to start from instead of random weights ("": none)
    fine_tune: str = setting("all", "what a run that starts from a checkpoint trains: all its weights, or new-classes: "
                             "only the class rows of the classes that checkpoint does not know, so that those it "
                             "knows draw exactly as before", choices=FINE_TUNES)
    model_config: dict = field(default_factory=dict)

    def __post_init__(self):
        """Refuse settings each within its bounds but wrong together, whoever builds them (a flag, the library,
        a resumed run): before any drawing is read."""
        if self.lr_schedule != "plateau" and self.min_lr > self.lr:
            raise TrainingError(f"--min-lr {self.min_lr:g} is above --lr {self.lr:g}: the {self.lr_schedule} "
                                "schedule would raise the rate to it; lower --min-lr or raise --lr")
        if not self.steps or self.eval_every:  # else a round is an epoch's steps, which the data decides (``Schedule``)
            self.rounds(per_epoch=1, n_classes=1)
        if self.steps and min(self.eval_every, self.steps) * self.batch_size > MAX_ROUND_DRAWINGS:
            raise TrainingError(f"--eval-every {self.eval_every:,} steps of --batch-size {self.batch_size:,} make "
                                f"rounds of more than the {MAX_ROUND_DRAWINGS:,} drawings whose plan a round holds in "
                                "memory: lower --eval-every")

    def rounds(self, per_epoch: int, n_classes: int, done: int = 0, start: int = 0) -> int:
        """The validations of a run of ``n_classes`` with ``per_epoch`` steps an epoch: one per epoch, or one every
        ``eval_every`` steps (an epoch's worth if 0), after the ``done`` a resumed run has made, the next from step
        ``start`` on. More than its checkpoints' history can hold (``MAX_VALIDATIONS``) are refused, since the run
        would write a best.pt and last.pt that no reader takes back."""
        every = self.eval_every or per_epoch
        rounds = self.epochs if not self.steps else done + math.ceil(max(0, self.steps - start) / every)
        quickdraw = len(categories())
        most = MAX_VALIDATIONS * quickdraw // max(n_classes, quickdraw)
        if rounds > most:
            every = self.eval_every or f"0 (an epoch, {per_epoch:,} step{'s' * (per_epoch != 1)})"  # as given
            budget = f"--epochs {self.epochs}" if not self.steps else f"--steps {self.steps} with --eval-every {every}"
            fix = "lower --epochs" if not self.steps else "raise --eval-every or lower --steps"
            of = f" of {n_classes:,} classes" if n_classes > quickdraw else ""
            raise TrainingError(f"{budget} makes {rounds:,} validations, more than the {most:,} the history of a "
                                f"checkpoint{of} may hold: {fix}")
        return rounds

    @classmethod
    def for_model(cls, kind: str, **overrides) -> "TrainConfig":
        """The loop's defaults, then the model's own, then ``overrides`` (an epoch budget replaces a step budget)."""
        return cls(model=kind, **with_budget(models.get(kind).train_defaults, overrides))


def with_budget(base: dict, overrides: dict) -> dict:
    """``overrides`` over ``base``, where asking for epochs (and not for steps) means an epoch budget."""
    merged = {**base, **overrides}
    if "epochs" in overrides and "steps" not in overrides:
        merged["steps"] = 0
    return merged


class TrainingError(SketchgenError):
    """Training cannot go on (e.g. the loss keeps being NaN); the message says what to try."""


class Interrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM arrived; a consistent last.pt was written before this was raised. A KeyboardInterrupt, as
    Ctrl-C is anywhere else, so that a caller's ``except Exception`` does not swallow the stop."""

    def __str__(self) -> str:  # one line, as a SketchgenError's: it names the run's folder
        return one_line(super().__str__())
