"""Recurrent cells a model can be built on, each with the same face.

``cell(x, state, rowwise=False) -> (out, state)``: ``x`` is (B, T, input),
``out`` (B, T, hidden), and ``state`` a pair (h, c) of (B, layers, hidden)
tensors, batch first like every generation state (``zeros(B)`` is the first).
Generation passes ``rowwise=True``: every product then goes through
``rowwise.linear``, so a drawing's numbers never depend on the rows beside it
(and there is no dropout).

* ``lstm`` - PyTorch's ``nn.LSTM`` (its oneDNN / cuDNN kernels), any number of
  layers, dropout between layers.
* ``layernorm`` - Ha & Eck's layer-normalised LSTM with recurrent dropout, as in
  Magenta's Sketch-RNN (``LayerNormLSTMCell``): each gate and the cell state
  layer-normalised (epsilon 1e-3), a forget bias of 1.0, and dropout on the
  candidate update (Semeniuta et al. 2016), which regularises without erasing
  the memory - Magenta's advice for classes of fewer than 10,000 drawings.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from sketchgen.models import rowwise
from sketchgen.models.base import shapes_only
from sketchgen.models.rowwise import sigmoid_

CELLS = ("lstm", "layernorm")
LN_EPSILON = 1e-3  # Magenta's layer_norm
FORGET_BIAS = 1.0


@functools.cache
def onednn_lstm_in_bf16() -> bool:
    """Whether oneDNN builds ``nn.LSTM``'s kernel under CPU autocast here: it does not on a CPU without AVX-512
    (an AMD EPYC with AVX2 only: "could not create a primitive descriptor"), whatever torch's own checks say, so
    this asks it once with a 2-unit LSTM of zeros (built without drawing from torch's random state)."""
    with shapes_only():
        lstm = nn.LSTM(2, 2, batch_first=True)
    lstm = lstm.to_empty(device="cpu").requires_grad_(False)
    for weight in lstm.parameters():
        weight.zero_()
    try:
        with torch.autocast("cpu", torch.bfloat16):
            lstm(torch.zeros(1, 1, 2))
    except RuntimeError:
        return False
    return True


class LSTM(nn.LSTM):
    """``nn.LSTM`` with batch-first states; its parameters keep nn.LSTM's names (``weight_ih_l0``, ...).

    Under CPU autocast where oneDNN has no bf16 LSTM, it runs in float32 with autocast off for it alone, and the
    other products stay in bf16. (Turning oneDNN off for the forward pass did the same through a flag of the whole
    process, which another thread's work saw, or found left off.)
    """

    def __init__(self, input_size: int, hidden: int, layers: int = 1, dropout: float = 0.0, recurrent_dropout: float = 0.0):
        super().__init__(input_size, hidden, num_layers=layers, dropout=dropout if layers > 1 else 0.0, batch_first=True)
        self._stacked = {}

    def zeros(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(batch, self.num_layers, self.hidden_size)
        return zeros, zeros.clone()

    def forward(self, x, state=None, rowwise: bool = False):
        if rowwise:
            return self._rowwise(x, state)
        hx = None if state is None else tuple(s.transpose(0, 1).contiguous() for s in state)
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu") and not onednn_lstm_in_bf16():
            with torch.autocast("cpu", enabled=False):
                out, (h, c) = super().forward(x.float(), hx and tuple(s.float() for s in hx))
        else:
            out, (h, c) = super().forward(x, hx)
        return out, (h.transpose(0, 1), c.transpose(0, 1))

    def _rowwise(self, x, state):
        """``nn.LSTM``'s equations (gates i, f, g, o) one step at a time, each step's gates one ``rowwise.linear``."""
        if state is None:
            state = (x.new_zeros(len(x), self.num_layers, self.hidden_size),) * 2
        hs, cs = [], []
        for layer, (w_ih, w_hh, b_ih, b_hh) in enumerate(self.all_weights):
            w, bias, h, c = stacked(self._stacked, layer, w_ih, w_hh), b_ih + b_hh, state[0][:, layer], state[1][:, layer]
            outs = []
            for t in range(x.shape[1]):
                gates = rowwise.linear(torch.cat([x[:, t], h], 1), w, bias)
                g = torch.tanh(gates.chunk(4, 1)[2])
                i, f, _, o = sigmoid_(gates).chunk(4, 1)
                c = torch.addcmul(f * c, i, g)
                h = o * torch.tanh(c)
                outs.append(h)
            x = torch.stack(outs, 1)
            hs.append(h)
            cs.append(c)
        return x, (torch.stack(hs, 1), torch.stack(cs, 1))


def stacked(cache: dict, key, w_ih: torch.Tensor, w_hh: torch.Tensor) -> torch.Tensor:
    """[W_ih | W_hh], built again only when either changes (its storage or version): generation multiplies
    [x, h] by it every step, one product where two and a sum cost 20% more at a batch of 1,000."""
    stamp = tuple((w.data_ptr(), w._version) for w in (w_ih, w_hh))
    if key not in cache or cache[key][0] != stamp:
        cache[key] = stamp, torch.cat([w_ih.detach(), w_hh.detach()], 1)
    return cache[key][1]


class LayerNormLSTM(nn.Module):
    """One layer of Sketch-RNN's layer-normalised LSTM with recurrent dropout.

    Layer norm inside the recurrence rules out PyTorch's fused LSTM kernels,
    and run op by op under autograd it cost twice PyTorch's LSTM per training
    step. So the recurrence is one ``autograd.Function``
    (``_LayerNormRecurrence``) with a hand-written backward: the input
    projection of all steps is one product, each step's element-wise part is
    a handful of kernels, and the backward's weight gradients are products over
    all steps at once (docs/performance.md measures it).
    """

    def __init__(self, input_size: int, hidden: int, layers: int = 1, dropout: float = 0.0, recurrent_dropout: float = 0.1):
        super().__init__()
        if layers != 1:
            raise ValueError("the layernorm cell has one layer")
        self.hidden, self.recurrent_dropout, self.num_layers = hidden, recurrent_dropout, 1
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden, hidden))
        self.gate_gamma = nn.Parameter(torch.ones(4 * hidden))
        self.gate_beta = nn.Parameter(torch.zeros(4 * hidden))
        self.cell_gamma = nn.Parameter(torch.ones(hidden))
        self.cell_beta = nn.Parameter(torch.zeros(hidden))
        self._stacked = {}
        nn.init.xavier_uniform_(self.weight_ih)
        for block in self.weight_hh.data.chunk(4):  # Magenta's lstm_ortho_initializer: each gate's block orthogonal
            nn.init.orthogonal_(block)

    def zeros(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(batch, 1, self.hidden)
        return zeros, zeros.clone()

    def forward(self, x, state=None, rowwise: bool = False):
        if state is None:
            h = c = x.new_zeros(len(x), self.hidden)
        else:
            h, c = state[0][:, 0], state[1][:, 0]
        if rowwise:
            out, h, c = self._rowwise(x, h, c)
        else:
            rate = self.recurrent_dropout if self.training else 0.0
            # The candidate's dropout mask for every step at once, scaled as F.dropout scales it.
            keep = x.new_empty(x.shape[1], len(x), self.hidden).bernoulli_(1 - rate).div_(1 - rate) if rate else None
            device = x.device.type
            low = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None
            with torch.autocast(device, enabled=False):  # the recurrence rounds its products to ``low`` itself
                out, h, c = _LayerNormRecurrence.apply(x, h, c, keep, low, self.weight_ih, self.weight_hh,
                                                       self.gate_gamma, self.gate_beta, self.cell_gamma, self.cell_beta)
        return out, (h[:, None], c[:, None])

    def _rowwise(self, x, h, c):
        """The recurrence with each step's gates one ``rowwise.linear`` (generation: no dropout, no gradient)."""
        w, shift, outs = stacked(self._stacked, 0, self.weight_ih, self.weight_hh), _gate_shift(self.gate_beta), []
        for t in range(x.shape[1]):
            h, c, _ = _step(rowwise.linear(torch.cat([x[:, t], h], 1), w), c, self.gate_gamma, shift,
                            self.cell_gamma, self.cell_beta, None, sigmoid_)
            outs.append(h)
        return torch.stack(outs, 1), h, c


def _gate_shift(gate_beta: torch.Tensor) -> torch.Tensor:
    """The gates' beta with the forget bias added to the forget gate's block (gates i, j, f, o)."""
    shift = gate_beta.detach().clone()
    shift.view(4, -1)[2] += FORGET_BIAS
    return shift


def _step(z, c, gate_gamma, shift, cell_gamma, cell_beta, keep, sigmoid_):
    """One step's element-wise part, from the gates' pre-activations ``z`` (B, 4H) and the cell state ``c``.

    ``sigmoid_`` is ``torch.sigmoid_`` to train and ``rowwise.sigmoid_`` to
    generate. Returns the new h and c, and what the backward pass needs besides
    ``z`` and the states: the gates' sigmoids, the candidate tanh(j), and the
    cell's layer-norm statistics and tanh.
    """
    b, hidden = c.shape
    zn = torch.native_layer_norm(z.view(b, 4, hidden), [hidden], None, None, LN_EPSILON)[0]
    a = torch.addcmul(shift, zn.view(b, -1), gate_gamma)
    g = torch.tanh(a.chunk(4, 1)[1])
    s = sigmoid_(a)  # i, f and o's; j's quarter is unused, and one call beats three
    si, _, sf, so = s.chunk(4, 1)
    gk = g if keep is None else g * keep
    c = torch.addcmul(c * sf, si, gk)
    tn, mean_c, rstd_c = torch.native_layer_norm(c, [hidden], cell_gamma, cell_beta, LN_EPSILON)
    tn.tanh_()
    return tn * so, c, (s, g, mean_c, rstd_c, tn)


class _LayerNormRecurrence(torch.autograd.Function):
    """The layer-normalised LSTM over all steps: forward step by step, backward by hand.

    The backward runs the steps in reverse with only what must be sequential
    in the loop (the element-wise chain rule, both layer norms' backward as
    ATen's fused kernel, and dh = dz @ W_hh); the gradients of W_ih, W_hh and
    the input are three products over all steps at once afterwards. Step
    tensors are time-major, so that each step's slice is contiguous. Under
    autocast (``low``, e.g. bfloat16) the products alone run in that precision,
    as autocast runs ``nn.LSTM``'s; the states, layer norms and gradients stay
    float32.
    """

    @staticmethod
    def forward(ctx, x, h, c, keep, low, w_ih, w_hh, gate_gamma, gate_beta, cell_gamma, cell_beta):
        b, steps, _ = x.shape
        # Every step's gates: the input's share for all steps in one product, the recurrent share added in place.
        z = _mm(x.transpose(0, 1).reshape(steps * b, -1), w_ih.T, low).view(steps, b, -1)
        shift = _gate_shift(gate_beta)
        hs, cs, saved = [h], [c], []
        w_hh_low = None if low is None else w_hh.to(low)
        for t in range(steps):
            if low is None:
                torch.addmm(z[t], h, w_hh.T, out=z[t])
            else:
                z[t] += h.to(low) @ w_hh_low.T
            h, c, extra = _step(z[t], c, gate_gamma, shift, cell_gamma, cell_beta, None if keep is None else keep[t],
                                torch.sigmoid_)
            hs.append(h)
            cs.append(c)
            saved.append(extra)
        ctx.save_for_backward(x, z, keep, w_ih, w_hh, gate_gamma, cell_gamma, cell_beta)
        ctx.hs, ctx.cs, ctx.saved, ctx.low = hs, cs, saved, low
        # The last h and c are returned as copies: an output kept on ctx would hold its own graph node (the output's
        # grad_fn is ctx), a cycle through C++ that is never freed - a whole batch's steps leaked per training step.
        return torch.stack(hs[1:], 1), h.clone(), c.clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_out, d_h, d_c):
        x, z, keep, w_ih, w_hh, gate_gamma, cell_gamma, cell_beta = ctx.saved_tensors
        hs, cs, low = ctx.hs, ctx.cs, ctx.low
        w_hh_low = w_hh if low is None else w_hh.to(low)
        b, steps, _ = x.shape
        hidden = w_hh.shape[1]
        dz = x.new_empty(steps, b, 4 * hidden)
        da = x.new_empty(b, 4 * hidden)  # the gates' gradient before their layer norm's affine
        d_i, d_j, d_f, d_o = da.chunk(4, 1)
        gamma_sum, beta_sum = torch.zeros_like(da), torch.zeros_like(da)
        d_cell_gamma, d_cell_beta = torch.zeros_like(cell_gamma), torch.zeros_like(cell_gamma)
        zero, one = x.new_zeros(b, 4, 1), x.new_ones(b, 4, 1)
        for t in reversed(range(steps)):
            s, g, mean_c, rstd_c, tn = ctx.saved[t]
            si, _, sf, so = s.chunk(4, 1)
            d_h = d_h + d_out[:, t]
            # h = tanh(LN(c)) * o, and sigmoid' = s - s^2, tanh' = 1 - tanh^2
            u = d_h * so
            v = u * tn
            torch.addcmul(v, v, so, value=-1, out=d_o)
            d_c_ln, d_cg, d_cb = torch.ops.aten.native_layer_norm_backward(
                torch.addcmul(u, v, tn, value=-1), cs[t + 1], [hidden], mean_c, rstd_c, cell_gamma, cell_beta,
                [True, True, True])
            d_cell_gamma += d_cg
            d_cell_beta += d_cb
            d_c = d_c + d_c_ln
            # c = c_prev * f + i * tanh(j) * keep
            gk, q = (g, d_c * si) if keep is None else (g * keep[t], d_c * si * keep[t])
            p = d_c * gk * si
            torch.addcmul(p, p, si, value=-1, out=d_i)
            torch.addcmul(q, q * g, g, value=-1, out=d_j)
            r = d_c * cs[t] * sf
            torch.addcmul(r, r, sf, value=-1, out=d_f)
            d_c = d_c * sf
            # a = LN(z) * gamma + shift, the layer norm per gate (recomputed, then given LN(z) with mean 0, 1/std 1)
            zn, _, rstd = torch.native_layer_norm(z[t].view(b, 4, hidden), [hidden], None, None, LN_EPSILON)
            gamma_sum.addcmul_(da, zn.view(b, -1))
            beta_sum += da
            d_zn = (da * gate_gamma).view(b, 4, hidden)
            d_z = torch.ops.aten.native_layer_norm_backward(d_zn, zn, [hidden], zero, one, None, None,
                                                            [True, False, False])[0]
            torch.mul(d_z, rstd, out=dz[t].view(b, 4, hidden))
            d_h = _mm(dz[t], w_hh_low, low)
        flat = dz.view(steps * b, -1)
        d_w_hh = _mm(flat.T, torch.stack(hs[:-1]).view(steps * b, hidden), low)
        d_w_ih = _mm(flat.T, x.transpose(0, 1).reshape(steps * b, -1), low)
        d_x = _mm(flat, w_ih, low).view(steps, b, -1).transpose(0, 1) if ctx.needs_input_grad[0] else None
        return (d_x, d_h, d_c, None, None, d_w_ih, d_w_hh, gamma_sum.sum(0), beta_sum.sum(0), d_cell_gamma,
                d_cell_beta)


def _mm(a: torch.Tensor, b: torch.Tensor, low: torch.dtype | None) -> torch.Tensor:
    """``a @ b`` as float32, its inputs rounded to ``low`` first where autocast asked for a lower precision."""
    return a @ b if low is None else (a.to(low) @ b.to(low)).float()


def make(name: str, input_size: int, hidden: int, layers: int = 1, dropout: float = 0.0,
         recurrent_dropout: float = 0.0) -> nn.Module:
    """A cell by name (``CELLS``)."""
    cls = {"lstm": LSTM, "layernorm": LayerNormLSTM}[name]
    return cls(input_size, hidden, layers, dropout, recurrent_dropout)
