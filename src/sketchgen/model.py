"""The two sketch models, and how each sees a drawing.

* ``SketchGenerator`` - the course report's seed model: class embedding (128)
  concatenated with the previous absolute point -> LSTM (256) -> dropout ->
  linear to (x, y, pen), trained with MSE. It regresses to the mean.
* ``MixtureDecoder`` - Sketch-RNN's decoder (Ha & Eck 2017), class-conditional:
  stroke-5 offsets, a mixture of bivariate Gaussians over (dx, dy) and a 3-way
  softmax over the pen, trained by exact negative log-likelihood.

Each model owns its data representation (``encode`` / ``decode`` between
stroke-3 and its own normalised sequence), its loss and one generation step,
so training and sampling code is the same for both. A checkpoint is a plain
dict - kind, config, class names, state_dict - loadable with ``weights_only``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sketchgen import strokes

LOG_2PI = math.log(2 * math.pi)
# Bound on the mixture's log sigma: exp() of it never overflows, so the NLL stays finite for any head
# output; real offsets (normalised to unit std) need sigmas far inside e^-10 .. e^10.
LOG_SIGMA_LIMIT = 10.0
# Simplified QuickDraw coordinates are 0-255; the seed model sees them in [-1, 1].
COORD_HALF = 127.5


def default_embed_dim(n_classes: int) -> int:
    """Class embedding size that grows with the class count: 18 for 5 classes, 149 for 345."""
    return int(min(256, max(16, round(8 * math.sqrt(n_classes)))))


# Generation draws from uniforms that sample.py gives each drawing (from its own seed), not from a shared
# torch.Generator, so that a drawing never depends on which others share its batch. These turn them into draws.


def _categorical(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """One category per row by inverse CDF: the first whose cumulative probability exceeds ``u`` x the total.

    In float64, where a 24-bit ``u`` times a float32 total is exact and stays below the total,
    so a category with no probability is never chosen.
    """
    cdf = probs.double().cumsum(-1)
    return torch.searchsorted(cdf, u.double()[:, None] * cdf[:, -1:], right=True)[:, 0]


def _normals(u1: torch.Tensor, u2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent standard normals per row from two uniforms in [0, 1) (Box-Muller)."""
    radius = torch.sqrt(-2 * torch.log1p(-u1))  # log(1 - u1): u1 < 1, so always finite
    return radius * torch.cos(2 * math.pi * u2), radius * torch.sin(2 * math.pi * u2)


@dataclass
class SeedConfig:
    n_classes: int
    embed_dim: int = 128
    hidden: int = 256
    # nn.LSTM applies dropout only between layers, so the report's dropout=0.3 needs two.
    layers: int = 2
    dropout: float = 0.3
    # Points per generated drawing for each class (the median in training); the seed has no end token.
    lengths: list[int] = field(default_factory=list)


@dataclass
class MDNConfig:
    n_classes: int
    embed_dim: int = 0  # 0: default_embed_dim(n_classes)
    hidden: int = 512
    n_mixtures: int = 20
    dropout: float = 0.1
    # Offsets are divided by this (their std over the training set) before the model sees them.
    scale: float = 1.0
    max_len: int = 250

    def __post_init__(self):
        if not self.embed_dim:
            self.embed_dim = default_embed_dim(self.n_classes)


class _ClassConditional(nn.Module):
    """What both models share: class embedding + previous step -> LSTM -> dropout -> linear head."""

    step_dim: int

    def __init__(self, cfg, layers: int, out_dim: int):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.n_classes, cfg.embed_dim)
        self.lstm = nn.LSTM(
            cfg.embed_dim + self.step_dim, cfg.hidden, num_layers=layers,
            dropout=cfg.dropout if layers > 1 else 0.0, batch_first=True,
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden, out_dim)

    def forward(self, labels, inputs, state=None):
        out, state = self._recur(labels, inputs, state)
        return self.head(out), state

    def step(self, labels, x, state=None):
        """``forward`` for one step of generation, with each row's head computed on its own.

        ``nn.Linear`` takes another BLAS kernel for a batch of 1-3 rows than for
        more, which moves the last bit of the output; a drawing would then come
        out differently alone than in a batch. A batched product of one-row
        matrices runs the same kernel for every row, whatever the batch. (The
        LSTM and the elementwise sampling maths are row-independent already;
        tests/test_sample.py checks whole drawings alone and in mixed batches.)
        """
        out, state = self._recur(labels, x, state)
        return torch.baddbmm(self.head.bias, out, self.head.weight.T.expand(len(out), -1, -1)), state

    def _recur(self, labels, inputs, state):
        emb = self.embed(labels)[:, None, :].expand(-1, inputs.shape[1], -1)
        out, state = self.lstm(torch.cat([emb, inputs], dim=-1), state)
        return self.drop(out), state


class SketchGenerator(_ClassConditional):
    """The seed model, exactly as the course report describes it."""

    kind = "seed"
    step_dim = 3
    draws = 1  # uniforms a generation step takes per drawing: the pen lift

    def __init__(self, cfg: SeedConfig):
        super().__init__(cfg, cfg.layers, 3)
        for name, p in self.named_parameters():
            if p.dim() == 2 and not name.startswith("embed"):
                nn.init.xavier_uniform_(p)
            elif "bias" in name:
                nn.init.zeros_(p)

    def loss(self, out, target, mask):
        """Summed squared error over (x, y, pen) of real steps, and how many values that is."""
        err = ((out - target) ** 2).sum(-1) * mask
        return err.sum(), mask.sum() * 3

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

    def start(self, n: int) -> torch.Tensor:
        return torch.zeros(n, 1, 3)

    def steps_allowed(self, labels: torch.Tensor, drawn: torch.Tensor) -> torch.Tensor:
        """Steps to generate after ``drawn`` points: the rest of the class's median length (no end token), at least one."""
        return (torch.tensor(self.cfg.lengths, dtype=torch.long)[labels] - drawn).clamp_min(1)

    def sample_step(self, out, temperature: float, u: torch.Tensor):
        """Next point from the prediction, and whether the drawing ended (never: no end token).

        The pen output is MSE-trained on 0/1, so it estimates the probability
        of lifting; drawing the lift from it (with the row's uniform ``u``)
        makes generated drawings lift the pen about as often as real ones
        (thresholding at 0.5 almost never would).
        """
        out = out[:, -1]
        p = out[:, 2].clamp(0, 1)
        pen = (u[:, 0] < p).float()
        step = torch.stack([out[:, 0], out[:, 1], pen], dim=-1)
        return step[:, None, :], torch.zeros(len(step), dtype=torch.bool)


class MixtureDecoder(_ClassConditional):
    """Sketch-RNN's decoder, conditioned on the class instead of a latent vector."""

    kind = "mdn"
    step_dim = 5
    draws = 4  # uniforms per step and drawing: the component, two for the Gaussian, the pen

    def __init__(self, cfg: MDNConfig):
        super().__init__(cfg, 1, 3 + 6 * cfg.n_mixtures)

    def mixture(self, out, temperature: float = 1.0):
        """Raw head output -> (pen logits, log pi, mu_x, mu_y, log sigma_x, log sigma_y, rho).

        Layout as in Sketch-RNN: 3 pen logits, then pi, mu_x, mu_y, sigma_x,
        sigma_y, rho in blocks of M. Temperature divides the logits and scales
        sigma by sqrt(T).
        """
        pen, rest = out[..., :3], out[..., 3:]
        pi, mux, muy, lsx, lsy, rho = rest.chunk(6, dim=-1)
        lsx, lsy = lsx.clamp(-LOG_SIGMA_LIMIT, LOG_SIGMA_LIMIT), lsy.clamp(-LOG_SIGMA_LIMIT, LOG_SIGMA_LIMIT)
        t = max(temperature, 1e-6)
        log_pi = F.log_softmax(pi / t, dim=-1)
        half_log_t = 0.5 * math.log(t)
        return pen / t, log_pi, mux, muy, lsx + half_log_t, lsy + half_log_t, torch.tanh(rho)

    def offset_log_prob(self, out, dx, dy):
        """log p(dx, dy) under the mixture, in log space throughout."""
        _, log_pi, mux, muy, lsx, lsy, rho = self.mixture(out)
        zx = (dx[..., None] - mux) * torch.exp(-lsx)
        zy = (dy[..., None] - muy) * torch.exp(-lsy)
        one_minus = (1 - rho**2).clamp_min(1e-6)
        z = zx**2 + zy**2 - 2 * rho * zx * zy
        log_n = -LOG_2PI - lsx - lsy - 0.5 * torch.log(one_minus) - z / (2 * one_minus)
        return torch.logsumexp(log_pi + log_n, dim=-1)

    def loss(self, out, target, mask):
        """Summed NLL: offsets over real steps, pen over real steps plus the end step."""
        offsets = -self.offset_log_prob(out, target[..., 0], target[..., 1]) * mask
        pen_mask = mask + F.pad(mask, (1, 0))[..., :-1] * (1 - mask)  # real steps and the first end step
        pen = F.cross_entropy(out[..., :3].transpose(1, 2), target[..., 2:].argmax(-1), reduction="none")
        return offsets.sum() + (pen * pen_mask).sum(), pen_mask.sum()

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

    def steps_allowed(self, labels: torch.Tensor, drawn: torch.Tensor) -> torch.Tensor:
        """Steps to generate: up to ``max_len`` after any prefix; the model's end state usually stops it sooner."""
        return torch.full_like(labels, self.cfg.max_len)

    def sample_step(self, out, temperature: float, u: torch.Tensor):
        """Next stroke-5 step and whether it ends the drawing, from each row's four uniforms ``u``."""
        pen, log_pi, mux, muy, lsx, lsy, rho = self.mixture(out[:, -1], temperature)
        k = _categorical(log_pi.exp(), u[:, 0])[:, None]
        pick = lambda t: t.gather(-1, k).squeeze(-1)  # noqa: E731
        mx, my, sx, sy, r = pick(mux), pick(muy), pick(lsx).exp(), pick(lsy).exp(), pick(rho)
        e1, e2 = _normals(u[:, 1], u[:, 2])
        dx = mx + sx * e1
        dy = my + sy * (r * e1 + torch.sqrt((1 - r**2).clamp_min(0)) * e2)
        state = _categorical(F.softmax(pen, dim=-1), u[:, 3])
        step = torch.zeros(len(k), 1, 5)
        step[:, 0, 0], step[:, 0, 1] = dx, dy
        step[torch.arange(len(k)), 0, 2 + state] = 1
        return step, state == 2


MODELS = {"seed": (SketchGenerator, SeedConfig), "mdn": (MixtureDecoder, MDNConfig)}


def build(kind: str, **config) -> nn.Module:
    cls, cfg_cls = MODELS[kind]
    return cls(cfg_cls(**config))


def checkpoint_dict(model: nn.Module, classes: list[str], **extra) -> dict:
    """The plain-dict checkpoint: everything needed to rebuild and use the model."""
    return {"kind": model.kind, "config": asdict(model.cfg), "classes": list(classes), "state_dict": model.state_dict(), **extra}


class CheckpointError(Exception):
    """A checkpoint that cannot be used; one line saying why and what to do."""


def read_checkpoint(path) -> dict:
    """A checkpoint file's plain dict, read without executing anything in it (``weights_only``)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except Exception as e:  # truncated zip, foreign pickle, wrong format: all mean "not ours"
        raise CheckpointError(f"{path}: not a readable sketchgen checkpoint ({type(e).__name__}); retrain or pass another") from None
    if not isinstance(ckpt, dict) or ckpt.get("kind") not in MODELS \
            or not all(isinstance(ckpt.get(k), t) for k, t in (("config", dict), ("classes", list), ("state_dict", dict))):
        raise CheckpointError(f"{path}: not a sketchgen checkpoint (no model kind/config/classes/state_dict)")
    return ckpt


def load(path) -> tuple[nn.Module, dict]:
    """Rebuild a model from a checkpoint file."""
    ckpt = read_checkpoint(path)
    try:
        model = build(ckpt["kind"], **ckpt["config"])
        model.load_state_dict(ckpt["state_dict"])
    except (TypeError, ValueError, RuntimeError) as e:  # unknown or impossible config, weights of other shapes
        raise CheckpointError(f"{path}: checkpoint does not match its model ({str(e).splitlines()[0]})") from None
    model.eval()
    return model, ckpt
