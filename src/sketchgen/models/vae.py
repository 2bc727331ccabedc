"""Sketch-RNN whole (Ha & Eck 2017): a variational autoencoder, class-conditional like the mixture decoder.

**Encoder.** A bidirectional LSTM (256 each way) reads the drawing's stroke-5
points - its real points only (``batch.lengths``), so neither the end row nor
padding reaches its final states, as in Sketch-RNN - and its two final hidden
states give mu and log sigma^2 of z (128). Training decodes z = mu +
sigma * eps, with eps from ``batch.noise`` (drawn per drawing by the batch
builder, so resuming or splitting a batch over processes changes nothing);
validation, tests and every use decode mu.

**Decoder.** The mdn's: initial (h, c) = tanh(W z + b), and the class
embedding with z beside it concatenated to every input step; the mixture head
and either cell (``--cell``).

**Loss.** ``nll``, the mdn's reconstruction NLL per real step, plus ``kl`` =
KL(q(z|x) || N(0, I)) per latent dimension and drawing, with Sketch-RNN's free
bits (below ``kl_tolerance`` on the global batch's mean it adds a constant and
no gradient) and its annealed weight w_KL * (1 - (1 - eta_min) * R^step).

**The balance of the two.** Sketch-RNN divides the reconstruction loss by
N_max, the longest drawing of the data set, padded steps included; we divide
by the real steps (plus each drawing's end step), so our NLL per step is
N_max / L larger than Sketch-RNN's for drawings of L steps on average. Taken
as it is, w_KL = 0.5 would then weigh the KL about 238 / 47 = 5 times less
against the reconstruction than in the paper (on the 26 classes of
docs/vae.md): a latent that holds far more
than the prior allows, good reconstructions, and poor drawings from z ~ N(0, I)
and between drawings. So the KL weight is also multiplied by ``kl_scale`` =
N_max / L of the training drawings (computed by ``from_data`` and stored in the
config), which makes w_KL mean what it means in the paper (and makes the
objective, times N_max, the paper's). Per drawing that is a KL weight of
w_KL * N_max / 128 against the summed NLL: 0.98 at w_KL 0.5 and N_max 250, the
ELBO itself, once annealed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sketchgen.models.base import SketchModel, Term, class_embedding, setting
from sketchgen.models.heads import RowwiseLinear
from sketchgen.models.mdn import MDN, MDNConfig
from sketchgen.models.registry import register


@dataclass
class VAEConfig(MDNConfig):
    encoder_hidden: int = setting(256, "encoder LSTM hidden size, each way of the bidirectional LSTM", 1, 8192)
    latent_size: int = setting(128, "size of the latent vector z", 1, 4096)
    kl_weight: float = setting(0.5, "w_KL: the KL term's weight once annealed, as in Sketch-RNN", 0.0, 1000.0)
    kl_tolerance: float = setting(0.2, "free bits: a KL per latent dimension below this adds no gradient", 0.0, 100.0)
    kl_decay_rate: float = setting(0.99995, "R: the KL weight anneals as 1 - (1 - 0.01) * R^step", 0.0, 1.0)
    kl_eta_min: float = setting(0.01, low=0.0, high=1.0)
    # N_max / mean steps per drawing of the training drawings: see the module docstring.
    kl_scale: float = setting(1.0, low=1e-6, high=1e6)


@register
class VAE(MDN):
    """Sketch-RNN's variational autoencoder: encoder, latent z, mixture decoder; class-conditional."""

    name = "vae"
    summary = "Sketch-RNN's variational autoencoder: encode a drawing to z, decode, interpolate"
    order = 2
    Config = VAEConfig
    loss_description = "NLL + KL, nats per drawing"
    # Sketch-RNN's recipe, on a step budget that trains in under 45 minutes on 2 CPU cores on the 26 classes of
    # ../shared/quickdraw with ~150 drawings or more (docs/vae.md has the measurement).
    train_defaults = {**MDN.train_defaults, "steps": 6000, "eval_every": 500, "early_stop": 4, "lr_schedule": "decay",
                      "lr_decay": 0.9999, "min_lr": 1e-5, "balance": "classes"}
    legacy = {}  # no checkpoint predates it
    # The library runs decoder-only models; this decoder needs its encoder's z. (The base class refuses.)
    magenta_weights = SketchModel.magenta_weights

    def __init__(self, cfg: VAEConfig):
        super().__init__(cfg)
        self.encoder_forward = nn.LSTM(self.step_dim, cfg.encoder_hidden, batch_first=True)
        self.encoder_backward = nn.LSTM(self.step_dim, cfg.encoder_hidden, batch_first=True)
        self.to_latent = nn.Linear(2 * cfg.encoder_hidden, 2 * cfg.latent_size)
        self.to_state = RowwiseLinear(cfg.latent_size, 2 * cfg.hidden)  # row by row: see heads.RowwiseLinear

    @staticmethod
    def context_size(cfg: VAEConfig) -> int:
        return cfg.embed_dim + cfg.latent_size

    @property
    def latent_dim(self) -> int:
        return self.cfg.latent_size

    @classmethod
    def from_data(cls, prepared, train_idx, max_len, **settings):
        steps = prepared.lengths()[train_idx] + 1  # what the NLL counts per drawing: its points and its end
        settings.setdefault("kl_scale", float(steps.max() / steps.mean()))
        return super().from_data(prepared, train_idx, max_len, **settings)

    # --- encoding -----------------------------------------------------------------------------

    def encode_latent(self, batch):
        """(mu, log sigma^2) of z from the final states of both directions over each drawing's real points.

        Each direction is a one-way LSTM over the padded batch (the backward
        one over each drawing reversed within its own length), read at the
        drawing's last point: padding comes after it, so it never reaches
        the state read. ``pack_padded_sequence`` would do the same 4x slower
        on a CPU (docs/vae.md).
        """
        x, last = batch.targets, batch.lengths - 1
        t = torch.arange(x.shape[1], device=x.device)[None, :]
        backward = torch.where(t <= last[:, None], last[:, None] - t, t)
        reversed_x = x.gather(1, backward[..., None].expand(-1, -1, x.shape[2]))
        rows = torch.arange(len(x), device=x.device)
        h_forward = self.encoder_forward(x)[0][rows, last]
        h_backward = self.encoder_backward(reversed_x)[0][rows, last]
        return self.to_latent(torch.cat([h_forward, h_backward], dim=-1)).chunk(2, dim=-1)

    # --- decoding -----------------------------------------------------------------------------

    def context(self, classes, latent=None):
        return torch.cat([class_embedding(self.embed, classes), latent], dim=-1)

    def _start_state(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(h, c) = tanh(W z + b), each (B, 1, hidden)."""
        return torch.tanh(self.to_state.rowwise(z[:, None])).chunk(2, dim=-1)

    def initial_state(self, classes, latent=None):
        """The decoder's state for z = ``latent`` (default: 0, the prior's mean)."""
        z = latent if latent is not None else torch.zeros(len(classes), self.cfg.latent_size)
        return *self._start_state(z), self.context(classes, z)

    def forward(self, batch):
        mu, logvar = self.encode_latent(batch)
        z = mu
        if self.training:
            noise = batch.noise if batch.noise is not None else torch.randn_like(mu)
            z = mu + torch.exp(0.5 * logvar) * noise
        out, _ = self.run(self.context(batch.labels, z), batch.inputs, self._start_state(z))
        return self.head(out), mu, logvar

    # --- training -----------------------------------------------------------------------------

    def kl_weight(self, step: int | None) -> float:
        """w_KL * kl_scale, annealed by the global step (unannealed, ``step`` None, to validate and test)."""
        cfg = self.cfg
        anneal = 1.0 if step is None else 1.0 - (1.0 - cfg.kl_eta_min) * cfg.kl_decay_rate**step
        return cfg.kl_weight * cfg.kl_scale * anneal

    def losses(self, outputs, batch, step):
        """``nll`` per real step; ``kl`` summed over dimensions and drawings, counted per dimension and drawing
        (so its mean is per dimension, where the floor applies, and its sum per drawing is the KL in nats)."""
        out, mu, logvar = outputs
        nll, steps = self.head.nll(out, batch.targets, batch.mask)
        kl = -0.5 * (1 + logvar - mu**2 - logvar.exp())
        return {"nll": Term(nll, steps),
                "kl": Term(kl.sum(), kl.numel(), self.kl_weight(step), self.cfg.kl_tolerance)}
