"""Training settings, and the two ways training stops early."""

from __future__ import annotations

from dataclasses import dataclass, field

from sketchgen import models

SCHEDULES = ("plateau", "decay")
BALANCES = ("none", "classes")
# What a run of 0.1.0 did for settings added since: resuming one of its runs continues it as it was.
LEGACY = {"steps": 0, "eval_every": 0, "lr_schedule": "plateau", "lr_decay": 1.0, "min_lr": 0.0, "balance": "none",
          "init": ""}
# Settings a resumed run may change; a change to any other would make it a different run.
RESUMABLE_CHANGES = ("epochs", "steps", "lr", "lr_patience", "early_stop", "device", "amp", "compile", "prefetch")


@dataclass
class TrainConfig:
    """How to train; each model changes some of these (``SketchModel.train_defaults``).

    The defaults are the course report's: at most ``epochs`` passes over the
    data, validation after each, ReduceLROnPlateau on it, early stop after
    ``early_stop`` validations without improvement, the best weights kept.
    ``steps`` > 0 sets a budget of steps instead, with validation every
    ``eval_every`` steps, as Sketch-RNN trains; ``lr_schedule`` "decay"
    multiplies the rate by ``lr_decay`` every step, down to ``min_lr``.
    ``balance`` "classes" draws every class equally often. ``init`` names a
    checkpoint whose weights a new run starts from, where they fit
    (``checkpoints.take_over``).
    """

    model: str = "seed"
    epochs: int = 30
    steps: int = 0
    eval_every: int = 0
    batch_size: int = 64
    lr: float = 1e-3
    lr_schedule: str = "plateau"
    lr_patience: int = 2
    lr_decay: float = 1.0
    min_lr: float = 0.0
    early_stop: int = 3
    balance: str = "none"
    seed: int = 0
    max_len: int = 250
    grad_clip: float = 0.0  # 0: no clipping
    augment_scale: float = 0.0  # Sketch-RNN: 0.15
    augment_drop: float = 0.0  # Sketch-RNN: 0.10
    device: str = "cpu"
    amp: bool = False  # bf16 autocast of the model's forward pass (the loss stays float32)
    compile: bool = False  # torch.compile the model: worth it on a GPU for long runs, not on CPU
    prefetch: int = 2  # batches built ahead on a background thread (0: on the training thread)
    init: str = ""  # a checkpoint to start from instead of random weights ("": none)
    model_config: dict = field(default_factory=dict)

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


class TrainingError(Exception):
    """Training cannot go on (e.g. the loss keeps being NaN); the message says what to try."""


class Interrupted(Exception):
    """SIGINT/SIGTERM arrived; a consistent checkpoint was written before this was raised."""
