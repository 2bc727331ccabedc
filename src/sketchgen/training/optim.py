"""The optimiser and the learning rate at every step, both chosen by the training settings.

* ``adam`` - the course report's and Sketch-RNN's; ``adamw`` - decoupled weight
  decay (``weight_decay``) on the weight matrices only, never on biases,
  normalisation gains or embeddings, as Transformers are trained.
* ``plateau`` - the course report's ReduceLROnPlateau on the validation loss
  (``lr_patience``); ``decay`` - Sketch-RNN's (lr - min_lr) * lr_decay^step +
  min_lr; ``cosine`` - from lr down to min_lr over the run's steps, half a
  cosine. ``warmup`` steps first raise the rate linearly from lr / warmup
  (``decay`` and ``cosine``).
* ``ema`` - an exponential moving average of the weights beside them, which is
  what validation scores and ``best.pt`` keeps (Polyak averaging).
"""

from __future__ import annotations

import math

import torch

OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("plateau", "decay", "cosine")


def optimizer(cfg, net: torch.nn.Module) -> torch.optim.Optimizer:
    """The optimiser ``cfg.optimizer`` names, over ``net``'s parameters."""
    if cfg.optimizer == "adam":
        return torch.optim.Adam(net.parameters(), lr=cfg.lr)
    decayed = [p for name, p in net.named_parameters() if p.dim() >= 2 and "embed" not in name]
    kept = [p for name, p in net.named_parameters() if not (p.dim() >= 2 and "embed" not in name)]
    return torch.optim.AdamW([{"params": decayed, "weight_decay": cfg.weight_decay},
                              {"params": kept, "weight_decay": 0.0}], lr=cfg.lr)


def plateau(cfg, opt: torch.optim.Optimizer):
    """ReduceLROnPlateau for the ``plateau`` schedule (stepped with each validation loss), else None."""
    return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, "min", patience=cfg.lr_patience) \
        if cfg.lr_schedule == "plateau" else None


def learning_rate(cfg, step: int, total: int) -> float | None:
    """The rate at global ``step`` of a run of ``total`` steps; None under ``plateau``, which follows validation."""
    if cfg.lr_schedule == "plateau":
        return None
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    if cfg.lr_schedule == "decay":
        return (cfg.lr - cfg.min_lr) * cfg.lr_decay ** (step - cfg.warmup) + cfg.min_lr
    progress = min(1.0, (step - cfg.warmup) / max(1, total - cfg.warmup))
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


def averaged(cfg, net: torch.nn.Module) -> torch.optim.swa_utils.AveragedModel | None:
    """The moving average of ``net``'s weights that ``cfg.ema`` asks for, else None.

    Averaging the last few hundred steps' weights smooths out the noise of the latest batches, as annealing the
    rate does, at any step of the run: so the weights an early stop keeps are smoothed too (docs/quality.md).
    """
    if not cfg.ema:
        return None
    return torch.optim.swa_utils.AveragedModel(net, multi_avg_fn=_debiased(cfg.ema), use_buffers=True)


def _debiased(decay: float):
    """An exponential average of the weights of every step so far, weighed decay^age and normalised (as Adam's
    moments are): so a short run averages its own steps, not the weights it started from. AveragedModel copies
    the first step's weights and calls this with the count of those averaged before."""
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n: torch.Tensor) -> None:
        weight = (1 - decay) / (1 - decay ** (n + 1.0))
        for a, c in zip(averaged, current):
            a.lerp_(c, weight.to(a.dtype))
    return update
