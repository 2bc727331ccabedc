"""Output heads: from the recurrent cell's output to a prediction, its loss, and a sample.

* ``PointHead`` - the course report's regression to (x, y, pen), trained with MSE.
* ``MixtureHead`` - Sketch-RNN's mixture density output: 3 pen logits, then a
  mixture of M bivariate Gaussians over (dx, dy) as (pi, mu_x, mu_y, sigma_x,
  sigma_y, rho) in blocks of M; trained by exact negative log-likelihood in log
  space, sampled with a temperature.

Generation draws from uniforms that ``sample`` gives each drawing (from its own
seed), never from a shared torch.Generator, so that a drawing never depends on
which others share its batch; the functions below turn them into draws.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sketchgen.models import rowwise

LOG_2PI = math.log(2 * math.pi)
# Bound on the mixture's log sigma: exp() of it never overflows, so the NLL stays finite for any head
# output; real offsets (normalised to unit std) need sigmas far inside e^-10 .. e^10. Magenta's zoo models,
# trained without a bound, put much of their mass on spikes down to e^-15 (at dx or dy = 0, measured on
# their four shared files): a model imported from one is built with the wider IMPORTED_LOG_SIGMA_LIMIT, at which
# an offset a thousand units off a spike still squares to a finite float32.
LOG_SIGMA_LIMIT = 10.0
IMPORTED_LOG_SIGMA_LIMIT = 20.0


class RowwiseLinear(nn.Linear):
    """A linear layer that, when generating, gives each row the same bits whatever the batch (``rowwise.linear``).

    ``nn.Linear`` takes another BLAS kernel for a batch of 1-3 rows than for
    more, which moves the last bit of the output; a drawing would then come
    out differently alone than in a batch. (tests/test_sample.py checks whole
    drawings alone and in mixed batches.)
    """

    def rowwise(self, x: torch.Tensor) -> torch.Tensor:
        return rowwise.linear(x, self.weight, self.bias)


def _tempering(temperature: float | torch.Tensor, like: torch.Tensor):
    """T (at least 1e-6) and half its log: two numbers for one temperature, or two (B, 1) columns for a (B,) tensor
    of each row's, each row's computed in double from its own value as one number would be: a drawing's bits do not
    depend on the temperatures of the others in its batch."""
    if not torch.is_tensor(temperature):
        t = max(temperature, 1e-6)
        return t, 0.5 * math.log(t)
    rows = [max(value, 1e-6) for value in temperature.tolist()]
    def column(values):
        return torch.tensor(values, dtype=like.dtype, device=like.device)[:, None]
    return column(rows), column([0.5 * math.log(value) for value in rows])


def categorical(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """One category per row by inverse CDF: the first whose cumulative probability exceeds ``u`` x the total.

    In float64, where a 24-bit ``u`` times a float32 total is exact and stays below the total,
    so a category with no probability is never chosen.
    """
    cdf = probs.double().cumsum(-1)
    return torch.searchsorted(cdf, u.double()[:, None] * cdf[:, -1:], right=True)[:, 0]


def normals(u1: torch.Tensor, u2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent standard normals per row from two uniforms in [0, 1) (Box-Muller)."""
    radius = torch.sqrt(-2 * torch.log1p(-u1))  # log(1 - u1): u1 < 1, so always finite
    return radius * torch.cos(2 * math.pi * u2), radius * torch.sin(2 * math.pi * u2)


class PointHead(RowwiseLinear):
    """(x, y, pen) regressed with MSE; the pen output estimates the chance of lifting."""

    draws = 1  # the pen lift

    def __init__(self, hidden: int):
        super().__init__(hidden, 3)

    @staticmethod
    def loss(out: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed squared error over (x, y, pen) of real steps, and how many values that is."""
        err = ((out - target) ** 2).sum(-1) * mask
        return err.sum(), mask.sum() * 3

    @staticmethod
    def sample(out: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The next point: (x, y) as predicted, the lift drawn from the pen output with the row's uniform.

        The pen output is MSE-trained on 0/1, so it estimates the probability
        of lifting; drawing the lift from it makes generated drawings lift the
        pen about as often as real ones (thresholding at 0.5 almost never would).
        """
        out = out[:, -1]
        pen = (u[:, 0] < out[:, 2].clamp(0, 1)).float()
        return torch.stack([out[:, 0], out[:, 1], pen], dim=-1)[:, None, :]


class MixtureHead(RowwiseLinear):
    """Sketch-RNN's output: pen logits and a bivariate Gaussian mixture over the next offset."""

    draws = 4  # the component, two for the Gaussian, the pen

    def __init__(self, hidden: int, n_mixtures: int, log_sigma_limit: float = LOG_SIGMA_LIMIT, soft_pen: bool = False):
        super().__init__(hidden, 3 + 6 * n_mixtures)
        self.log_sigma_limit, self.soft_pen = log_sigma_limit, soft_pen

    def pen_temperature(self, temperature: float) -> float:
        """The pen's temperature when sampling at ``temperature``: the same, or softened to (1 + T) / 2.

        Dividing the pen logits by a low T sharpens them towards the commonest
        state, pen down: strokes run on, and a drawing whose end is not certain
        never ends (an eye's pupil scribbled round until the length cap).
        Softened, as @magenta/sketch's getPDF does by default, generated drawings
        lift and end about as often as real ones, while the offsets keep T.
        """
        return (1 + temperature) / 2 if self.soft_pen else temperature

    def mixture(self, out: torch.Tensor, temperature: float | torch.Tensor = 1.0,
                pen_temperature: float | torch.Tensor | None = None):
        """Raw output -> (pen logits, log pi, mu_x, mu_y, log sigma_x, log sigma_y, rho), tempered.

        Temperature divides the logits (the pen's by ``pen_temperature`` if given) and scales sigma by sqrt(T):
        one for every row, or a (B,) tensor of each row's (``out`` then (B, ...) of one step).
        """
        pen, rest = out[..., :3], out[..., 3:]
        pi, mux, muy, lsx, lsy, rho = rest.chunk(6, dim=-1)
        limit = self.log_sigma_limit
        lsx, lsy = lsx.clamp(-limit, limit), lsy.clamp(-limit, limit)
        t, half_log_t = _tempering(temperature, out)
        log_pi = F.log_softmax(pi / t, dim=-1)
        pen_t = t if pen_temperature is None else _tempering(pen_temperature, out)[0]
        return pen / pen_t, log_pi, mux, muy, lsx + half_log_t, lsy + half_log_t, torch.tanh(rho)

    def offset_log_prob(self, out: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
        """log p(dx, dy) under the mixture, in log space throughout."""
        _, log_pi, mux, muy, lsx, lsy, rho = self.mixture(out)
        zx = (dx[..., None] - mux) * torch.exp(-lsx)
        zy = (dy[..., None] - muy) * torch.exp(-lsy)
        one_minus = (1 - rho**2).clamp_min(1e-6)
        z = zx**2 + zy**2 - 2 * rho * zx * zy
        log_n = -LOG_2PI - lsx - lsy - 0.5 * torch.log(one_minus) - z / (2 * one_minus)
        return torch.logsumexp(log_pi + log_n, dim=-1)

    def nll(self, out: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed NLL of stroke-5 targets: offsets over real steps, pen over real steps plus the end step.

        Returns the sum and the number of steps it covers.
        """
        offsets = -self.offset_log_prob(out, target[..., 0], target[..., 1]) * mask
        pen_mask = mask + F.pad(mask, (1, 0))[..., :-1] * (1 - mask)  # real steps and the first end step
        pen = F.cross_entropy(out[..., :3].transpose(1, 2), target[..., 2:].argmax(-1), reduction="none")
        return offsets.sum() + (pen * pen_mask).sum(), pen_mask.sum()

    def sample(self, out: torch.Tensor, temperature: float | torch.Tensor,
               u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Next stroke-5 step (B, 1, 5) and whether it ends the drawing, from each row's four uniforms ``u`` and
        temperature (one for all, or a (B,) tensor)."""
        pen, log_pi, mux, muy, lsx, lsy, rho = self.mixture(out[:, -1], temperature, self.pen_temperature(temperature))
        k = categorical(log_pi.exp(), u[:, 0])[:, None]
        pick = lambda t: t.gather(-1, k).squeeze(-1)  # noqa: E731
        mx, my, sx, sy, r = pick(mux), pick(muy), pick(lsx).exp(), pick(lsy).exp(), pick(rho)
        e1, e2 = normals(u[:, 1], u[:, 2])
        dx = mx + sx * e1
        dy = my + sy * (r * e1 + torch.sqrt((1 - r**2).clamp_min(0)) * e2)
        state = categorical(F.softmax(pen, dim=-1), u[:, 3])
        step = torch.zeros(len(k), 1, 5)
        step[:, 0, 0], step[:, 0, 1] = dx, dy
        step[torch.arange(len(k)), 0, 2 + state] = 1
        return step, state == 2
