"""Sketch-RNN's decoder (Ha & Eck 2017), conditioned on the class instead of a latent vector.

Class embedding + previous stroke-5 step -> recurrent cell -> dropout -> a
mixture of bivariate Gaussians over the next offset and a 3-way softmax over
the pen (down, up, end), trained by exact negative log-likelihood. Offsets are
divided by one scale factor, the standard deviation of all training offsets,
stored in the checkpoint. The cell is a plain LSTM or Sketch-RNN's
layer-normalised LSTM with recurrent dropout (``--cell``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from sketchgen import data, strokes
from sketchgen.models import cells
from sketchgen.models.base import ModelError, Term, default_embed_dim, setting
from sketchgen.models.decoder import ConditionalDecoder
from sketchgen.models.heads import MixtureHead
from sketchgen.models.registry import MAX_CLASSES, register

# @magenta/sketch reads exactly this many mixture components (es5/sketch_rnn/model.js: NMIXTURE).
MAGENTA_MIXTURES = 20


@dataclass
class MDNConfig:
    n_classes: int = setting(1, low=1, high=MAX_CLASSES)
    embed_dim: int = setting(0, "class embedding size (0: grows with the class count, 18 for 5 classes)", 0, 4096)
    hidden: int = setting(512, "LSTM hidden size", 1, 8192)
    n_mixtures: int = setting(20, "Gaussians in the offset mixture", 1, 100)
    dropout: float = setting(0.1, "dropout rate on the cell's output", 0.0, 0.99)
    cell: str = setting("lstm", "recurrent cell: lstm (PyTorch's) or layernorm (Sketch-RNN's, with recurrent dropout)",
                        choices=cells.CELLS)
    recurrent_dropout: float = setting(0.1, "dropout on the layernorm cell's candidate update", 0.0, 0.99)
    # Offsets are divided by this (their std over the training set) before the model sees them.
    scale: float = setting(1.0, low=1e-6, high=1e6)
    max_len: int = setting(250, low=1, high=100_000)

    def __post_init__(self):
        if not self.embed_dim:
            self.embed_dim = default_embed_dim(self.n_classes)


@register
class MDN(ConditionalDecoder):
    """Sketch-RNN's mixture-density decoder, class-conditional."""

    name = "mdn"
    summary = "Sketch-RNN's mixture-density decoder"
    order = 1
    Config = MDNConfig
    step_dim = 5
    draws = MixtureHead.draws
    loss_description = "NLL, nats per drawing"
    loss_per_drawing = True
    train_defaults = {"grad_clip": 1.0, "augment_scale": 0.15, "augment_drop": 0.10}
    legacy = {"cell": "lstm"}  # 0.1.0 had no other

    def __init__(self, cfg: MDNConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.n_classes, cfg.embed_dim)
        self.lstm = cells.make(cfg.cell, self.context_size(cfg) + self.step_dim, cfg.hidden,
                               recurrent_dropout=cfg.recurrent_dropout)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = MixtureHead(cfg.hidden, cfg.n_mixtures)

    @staticmethod
    def context_size(cfg: MDNConfig) -> int:
        """Width of what conditions every step (``context``): the class embedding."""
        return cfg.embed_dim

    @classmethod
    def from_data(cls, prepared, train_idx, max_len, **settings):
        settings.setdefault("scale", data.offset_std(prepared, train_idx))
        settings.setdefault("max_len", max_len)
        return cls(cls.Config(n_classes=len(prepared.classes), **settings))

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

    def losses(self, outputs, batch, step):
        total, count = self.head.nll(outputs, batch.targets, batch.mask)
        return {"nll": Term(total, count)}

    def sample_step(self, out, temperature, u):
        return self.head.sample(out, temperature, u)

    def steps_allowed(self, classes, drawn):
        """Up to ``max_len`` after any prefix; the model's end state usually stops it sooner."""
        return torch.full((len(classes),), self.cfg.max_len, dtype=torch.long)

    def magenta_weights(self, label: int) -> tuple[dict, list[np.ndarray]]:
        """One class as @magenta/sketch's five weights (see ``interop.magenta`` for the layout).

        For one class the embedding is a constant, so its product with the
        input weights folds exactly into the bias, together with PyTorch's two
        biases. PyTorch orders the gates (i, f, g, o); the library's basic LSTM
        cell (i, j, f, o) with j = g, and it adds a forget bias of 1.0 itself.
        """
        if self.cfg.cell != "lstm":
            raise ModelError(f"cannot export exactly: the model's {self.cfg.cell} cell is not the basic LSTM cell "
                             "@magenta/sketch runs (train with --cell lstm)")
        if self.cfg.n_mixtures != MAGENTA_MIXTURES:
            raise ModelError(f"cannot export: the model has {self.cfg.n_mixtures} mixture components and "
                             f"@magenta/sketch always reads {MAGENTA_MIXTURES}")
        sd = {k: v.detach().double().numpy() for k, v in self.state_dict().items()}
        e, h = self.cfg.embed_dim, self.cfg.hidden
        w_ih, w_hh = sd["lstm.weight_ih_l0"], sd["lstm.weight_hh_l0"]
        bias = sd["lstm.bias_ih_l0"] + sd["lstm.bias_hh_l0"] + w_ih[:, :e] @ sd["embed.weight"][label]
        i, f, g, o = np.split(np.arange(4 * h), 4)
        tf_order = np.concatenate([i, g, f, o])
        bias = bias[tf_order]
        bias[2 * h : 3 * h] -= cells.FORGET_BIAS
        info = {"mode": 2, "scale_factor": float(self.cfg.scale), "max_seq_len": int(self.cfg.max_len)}
        return info, [sd["head.weight"].T, sd["head.bias"], w_ih[tf_order, e:].T, w_hh[tf_order].T, bias]
