"""What the models that draw as Sketch-RNN does share, whatever computes their outputs.

Their steps are stroke-5 (dx, dy, p_down, p_up, p_end) with offsets divided by
one scale factor, the standard deviation of all training offsets, stored in the
checkpoint; their output is ``heads.MixtureHead``'s (pen logits and a mixture
of bivariate Gaussians), trained by exact negative log-likelihood and sampled
with a temperature; each class's drawings stop at a high percentile of its
training drawings' lengths. ``MixtureConfig`` holds those settings and
``Stroke5Mixture`` the methods; a model lists it first among its bases and
builds its head with ``mixture_head``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sketchgen import data, strokes
from sketchgen.models import heads
from sketchgen.models.base import ModelError, Term, default_embed_dim, hard_labels, setting
from sketchgen.models.heads import MixtureHead
from sketchgen.models.registry import MAX_CLASSES
from sketchgen.strokes import MAX_POINTS

# A class's drawings are generated up to this percentile of its training lengths: a model unsure of the end
# at a low temperature otherwise goes on (an eye's pupil scribbled round and round) to max_len.
LENGTH_PERCENTILE = 98


@dataclass
class MixtureConfig:
    n_classes: int = setting(1, low=1, high=MAX_CLASSES)
    embed_dim: int = setting(0, "class embedding size (0: grows with the class count, 18 for 5 classes, 149 for 345; "
                                "a run from a shipped base keeps the base's, 149)", 0, 4096)
    n_mixtures: int = setting(20, "Gaussians in the offset mixture", 1, 100)
    # Offsets are divided by this (their std over the training set) before the model sees them.
    scale: float = setting(1.0, low=1e-6, high=1e6)
    max_len: int = setting(250, low=1, high=MAX_POINTS)
    # The most points generated for each class: a high percentile of its training drawings' lengths (empty: max_len).
    lengths: list[int] = setting(list, low=1, high=MAX_POINTS, per_class="optional")
    # The mixture's bound on log sigma (heads.LOG_SIGMA_LIMIT; wider for models imported from Magenta's zoo).
    log_sigma_limit: float = setting(heads.LOG_SIGMA_LIMIT, low=1.0, high=heads.IMPORTED_LOG_SIGMA_LIMIT)
    # How sampling tempers the pen state: "softened" to (1 + T) / 2 (heads.MixtureHead.pen_temperature), or the
    # "same" T as the offsets (0.1.0's).
    pen_temperature: str = setting("softened", choices=("softened", "same"))

    def __post_init__(self):
        if not self.embed_dim:
            self.embed_dim = default_embed_dim(self.n_classes)
        if self.lengths and max(self.lengths) > self.max_len:  # a percentile of drawings of at most max_len points
            raise ModelError(f"a class's length cap of {max(self.lengths):,} is more than its max_len, {self.max_len:,}")


class Stroke5Mixture:
    """Stroke-5 sequences, the mixture head's loss and samples, per-class length caps (see the module docstring)."""

    step_dim = 5
    draws = MixtureHead.draws
    loss_description = "NLL, nats per drawing"
    loss_per_drawing = True

    cfg: MixtureConfig
    head: MixtureHead

    @classmethod
    def from_data(cls, prepared, train_idx, longest, **settings):
        """``max_len`` among ``settings``: the weights of an ``--init`` built for drawings of so many points (a
        Transformer's positions), which cannot take longer ones."""
        if settings.setdefault("max_len", longest) < longest:
            raise ModelError(f"--max-len {longest} is more than the {settings['max_len']} points a drawing may have in "
                             f"the model --init names (its max_len): give --max-len {settings['max_len']} or less")
        settings.setdefault("scale", data.offset_std(prepared, train_idx))
        settings.setdefault("lengths", data.length_percentiles(prepared, train_idx, LENGTH_PERCENTILE, longest))
        return cls(cls.Config(n_classes=len(prepared.classes), **settings))

    @staticmethod
    def mixture_head(cfg: MixtureConfig, width: int) -> MixtureHead:
        return MixtureHead(width, cfg.n_mixtures, cfg.log_sigma_limit, cfg.pen_temperature == "softened")

    def encode(self, s3: np.ndarray) -> np.ndarray:
        """Stroke-3 -> stroke-5 with offsets divided by the training scale (one end row)."""
        s5 = strokes.stroke3_to_stroke5(s3)
        s5[:, :2] /= self.cfg.scale
        return s5

    def decode(self, seq: np.ndarray) -> np.ndarray:
        s3 = strokes.stroke5_to_stroke3(np.asarray(seq, dtype=np.float64))
        s3[:, :2] *= self.cfg.scale
        return s3

    def start(self, n: int) -> torch.Tensor:
        s = torch.zeros(n, 1, 5)
        s[..., 2] = 1  # Sketch-RNN's start token: (0, 0, 1, 0, 0)
        return s

    def mixture_losses(self, out: torch.Tensor, batch) -> dict[str, Term]:
        total, count = self.head.nll(out, batch.targets, batch.mask)
        return {"nll": Term(total, count)}

    def sample_step(self, out, temperature, u):
        return self.head.sample(out, temperature, u)

    def steps_allowed(self, classes, drawn):
        """The rest of the class's length cap after any prefix (at least a quarter of it), or ``max_len`` where
        the model has no caps (0.1.0's); the model's end state usually stops it sooner."""
        if not self.cfg.lengths:
            return torch.full((len(classes),), self.cfg.max_len, dtype=torch.long)
        caps = torch.tensor(self.cfg.lengths, dtype=torch.long)[hard_labels(classes)]
        return torch.maximum(caps - drawn, caps // 4)

    def max_steps(self) -> int:
        """A caller may ask for drawings as long as the longest trained on, beyond the classes' caps."""
        return self.cfg.max_len
