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

from sketchgen.models import cells, heads
from sketchgen.models.base import MagentaExport, MagentaImport, ModelError, setting
from sketchgen.models.decoder import RecurrentDecoder
from sketchgen.models.mixture import MixtureConfig, Stroke5Mixture
from sketchgen.models.registry import register

# @magenta/sketch reads exactly this many mixture components (es5/sketch_rnn/model.js: NMIXTURE).
MAGENTA_MIXTURES = 20


@dataclass
class MDNConfig(MixtureConfig):
    hidden: int = setting(512, "LSTM hidden size", 1, 8192)
    dropout: float = setting(0.1, "dropout rate on the cell's output", 0.0, 0.99)
    cell: str = setting("lstm", "recurrent cell: lstm (PyTorch's) or layernorm (Sketch-RNN's, with recurrent "
                        "dropout). A run from a shipped base has the base's: a default mdn run fine-tunes the "
                        "layernorm base, so its cell is layernorm, unless --cell lstm picks the plain base; the "
                        "default shown is a run's from random weights (--init none)",
                        choices=cells.CELLS)
    recurrent_dropout: float = setting(0.1, "dropout on the layernorm cell's candidate update", 0.0, 0.99)


@register
class MDN(Stroke5Mixture, RecurrentDecoder, MagentaExport, MagentaImport):
    """Sketch-RNN's mixture-density decoder, class-conditional."""

    name = "mdn"
    summary = "Sketch-RNN's mixture-density decoder"
    order = 1
    Config = MDNConfig
    # Sketch-RNN's clipping and augmentation on a step budget, each class drawn as the square root of its size
    # says, the rate annealed to its floor by the end of the budget (cosine): 3,000 steps train in ~25 minutes on 2
    # CPU cores; cosine drew better than Sketch-RNN's per-step decay from the layer-norm base (docs/quality.md).
    # Validation and best.pt take the weights' moving average over about the last 500 steps (ema), which drew the
    # 5 seed classes and the 26 better than the weights themselves, the small classes most (docs/quality.md).
    train_defaults = {"grad_clip": 1.0, "augment_scale": 0.15, "augment_drop": 0.10, "steps": 3000, "eval_every": 250,
                      "early_stop": 4, "batch_size": 100, "lr_schedule": "cosine", "lr_decay": 0.9999, "min_lr": 1e-5,
                      "balance": "sqrt", "ema": 0.998}
    tiny = {"hidden": 64, "epochs": 40, "early_stop": 40, "batch_size": 32, "lr": 5e-3}
    legacy = {"cell": "lstm", "lengths": [], "pen_temperature": "same"}  # 0.1.0: one cell, no caps, pen at T
    weight_settings = ("embed_dim", "hidden", "n_mixtures", "cell", "scale", "log_sigma_limit")
    # New runs fine-tune an mdn of all 345 classes (scripts/train_base.py): on the 5 seed classes its drawings were
    # recognised 92% of the time against 83% from scratch, FID 9.6 against 17.9 (docs/quality.md). The layer-norm
    # one first, whose runs draw better; --cell lstm takes PyTorch's LSTM's, whose models @magenta/sketch runs.
    bases = ("mdn-quickdraw345.pt", "mdn-quickdraw345-lstm.pt")

    def __init__(self, cfg: MDNConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.n_classes, cfg.embed_dim)
        self.lstm = cells.make(cfg.cell, self.condition_size(cfg) + self.step_dim, cfg.hidden,
                               recurrent_dropout=cfg.recurrent_dropout)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = self.mixture_head(cfg, cfg.hidden)

    @staticmethod
    def condition_size(cfg: MDNConfig) -> int:
        """Width of what conditions every step (``condition``): the class embedding."""
        return cfg.embed_dim

    def losses(self, outputs, batch, step):
        return self.mixture_losses(outputs, batch)

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
        longest = self.cfg.lengths[label] if self.cfg.lengths else self.cfg.max_len  # the class's cap, as sample's
        info = {"mode": 2, "scale_factor": float(self.cfg.scale), "max_seq_len": int(longest)}
        return info, [sd["head.weight"].T, sd["head.bias"], w_ih[tf_order, e:].T, w_hh[tf_order].T, bias]

    @classmethod
    def from_magenta(cls, info, weights):
        """The inverse of ``magenta_weights``: one class, whose embedding contributes nothing.

        The embedding is one wide and zero, and so are the LSTM's input weights
        from it (training keeps both zero: their gradients are products with
        each other). TensorFlow's gates (i, j, f, o) become PyTorch's (i, f, g,
        o) with g = j, and its forget bias of 1.0 joins the f gate's bias; the
        output layer already has the mixture head's layout. ``scale_factor`` is
        the offset scale; ``max_seq_len``, where the file has one, the
        generation limit after any prefix (no per-class caps: the library
        has none), else the 250 points sketchgen trains on. The
        library bounds no sigma, and the zoo's models need sigmas far below
        ours: the import's bound is the wider ``IMPORTED_LOG_SIGMA_LIMIT``.
        """
        out_w, out_b, w_xh, w_hh, bias = (np.asarray(w, dtype=np.float64) for w in weights)
        h = w_hh.shape[0]
        cfg = MDNConfig(n_classes=1, embed_dim=1, hidden=h, n_mixtures=(out_w.shape[1] - 3) // 6, cell="lstm",
                        scale=float(info["scale_factor"]), max_len=info.get("max_seq_len") or MDNConfig.max_len,
                        log_sigma_limit=heads.IMPORTED_LOG_SIGMA_LIMIT)
        i, j, f, o = np.split(np.arange(4 * h), 4)
        torch_order = np.concatenate([i, f, j, o])
        gate_bias = bias.copy()
        gate_bias[f] += cells.FORGET_BIAS
        w_ih = np.concatenate([np.zeros((4 * h, cfg.embed_dim)), w_xh.T[torch_order]], axis=1)
        state = {"embed.weight": np.zeros((1, cfg.embed_dim)), "lstm.weight_ih_l0": w_ih,
                 "lstm.weight_hh_l0": w_hh.T[torch_order], "lstm.bias_ih_l0": gate_bias[torch_order],
                 "lstm.bias_hh_l0": np.zeros(4 * h), "head.weight": out_w.T, "head.bias": out_b}
        return cls.with_weights(cfg, {k: torch.from_numpy(np.ascontiguousarray(v)).float() for k, v in state.items()})
