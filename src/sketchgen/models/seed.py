"""The course report's seed model, exactly: class embedding + previous point -> LSTM -> dropout -> (x, y, pen).

Absolute points scaled from 0-255 to [-1, 1] (x / 127.5 - 1) with the pen as
0/1, all three trained with MSE. Xavier-uniform weights. ``nn.LSTM`` applies
dropout only between layers, so the report's dropout of 0.3 needs two layers
to do anything. It has no end token: it draws as many points as the median
training drawing of its class. It regresses to the mean, which is why the
mixture-density models exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from sketchgen import data, strokes
from sketchgen.models.base import Term, hard_labels, setting
from sketchgen.models.cells import LSTM
from sketchgen.models.decoder import RecurrentDecoder
from sketchgen.models.heads import PointHead
from sketchgen.models.registry import MAX_CLASSES, register
from sketchgen.strokes import MAX_POINTS

# Simplified QuickDraw coordinates are 0-255; the model sees them in [-1, 1].
COORD_HALF = 127.5


@dataclass
class SeedConfig:
    n_classes: int = setting(1, low=1, high=MAX_CLASSES)
    embed_dim: int = setting(128, "class embedding size", 1, 4096)
    hidden: int = setting(256, "LSTM hidden size", 1, 8192)
    layers: int = setting(2, "LSTM layers", 1, 8)
    dropout: float = setting(0.3, "dropout rate", 0.0, 0.99)
    # Points per generated drawing for each class (the median in training); the seed has no end token.
    lengths: list[int] = setting(list, low=1, high=MAX_POINTS, per_class=True)


@register
class Seed(RecurrentDecoder):
    """The seed model, exactly as the course report describes it."""

    name = "seed"
    summary = "the course report's LSTM regressing absolute points with MSE"
    order = 0
    Config = SeedConfig
    step_dim = 3
    draws = PointHead.draws
    uses_temperature = False  # it regresses one point per step: nothing to temper
    loss_description = "MSE per value"
    weight_settings = ("embed_dim", "hidden", "layers")
    tiny = {"hidden": 64, "embed_dim": 8, "epochs": 5, "batch_size": 32, "lr": 5e-3}

    def __init__(self, cfg: SeedConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.n_classes, cfg.embed_dim)
        self.lstm = LSTM(cfg.embed_dim + self.step_dim, cfg.hidden, cfg.layers, cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = PointHead(cfg.hidden)
        for name, p in self.named_parameters():
            if p.dim() == 2 and not name.startswith("embed"):
                nn.init.xavier_uniform_(p)
            elif "bias" in name:
                nn.init.zeros_(p)

    @classmethod
    def from_data(cls, prepared, train_idx, longest, **settings):
        settings.setdefault("lengths", data.median_lengths(prepared, train_idx))
        return cls(SeedConfig(n_classes=len(prepared.classes), **settings))

    def encode(self, s3: np.ndarray) -> np.ndarray:
        """Stroke-3 -> absolute points scaled to [-1, 1], pen as 0/1."""
        pts = strokes.stroke3_to_absolute(s3)
        pts[:, :2] = pts[:, :2] / COORD_HALF - 1
        return pts.astype(np.float32)

    def decode(self, seq: np.ndarray) -> np.ndarray:
        pts = np.asarray(seq, dtype=np.float64).copy()
        pts[:, :2] = (pts[:, :2] + 1) * COORD_HALF
        pts[-1:, 2] = 1  # the drawing ends here, so its last stroke does (as in every stroke-3 drawing)
        return strokes.absolute_to_stroke3(pts)

    def losses(self, outputs, batch, step):
        total, count = self.head.loss(outputs, batch.targets, batch.mask)
        return {"mse": Term(total, count)}

    def sample_step(self, out, temperature, u):
        step = self.head.sample(out, u)
        return step, torch.zeros(len(step), dtype=torch.bool)

    def steps_allowed(self, classes, drawn):
        """The rest of the class's median length (it has no end token), at least one step."""
        return (torch.tensor(self.cfg.lengths, dtype=torch.long)[hard_labels(classes)] - drawn).clamp_min(1)

    def max_steps(self) -> int:
        """Twice its longest class: without an end token, a longer drawing is only more points."""
        return 2 * max(self.cfg.lengths)
