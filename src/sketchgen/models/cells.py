"""Recurrent cells a model can be built on, each with the same face.

``cell(x, state, rowwise=False) -> (out, state)``: ``x`` is (B, T, input),
``out`` (B, T, hidden), and ``state`` a pair (h, c) of (B, layers, hidden)
tensors, batch first like every generation state, so that
``SketchModel.select`` can keep rows of it. ``None`` starts from zeros.
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

import torch
import torch.nn.functional as F
from torch import nn

from sketchgen.models import rowwise
from sketchgen.models.rowwise import sigmoid_

CELLS = ("lstm", "layernorm")
LN_EPSILON = 1e-3  # Magenta's layer_norm
FORGET_BIAS = 1.0


class LSTM(nn.LSTM):
    """``nn.LSTM`` with batch-first states; its parameters keep nn.LSTM's names (``weight_ih_l0``, ...)."""

    def __init__(self, input_size: int, hidden: int, layers: int = 1, dropout: float = 0.0, recurrent_dropout: float = 0.0):
        super().__init__(input_size, hidden, num_layers=layers, dropout=dropout if layers > 1 else 0.0, batch_first=True)
        self._stacked = {}

    def forward(self, x, state=None, rowwise: bool = False):
        if rowwise:
            return self._rowwise(x, state)
        hx = None if state is None else tuple(s.transpose(0, 1).contiguous() for s in state)
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

    The input projection of all steps is one matrix product; the recurrence
    runs step by step in eager PyTorch (TorchScript was slower here, and its
    fused kernels change the last bits between the first calls and later ones,
    which would break reproducible sampling).
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

    def forward(self, x, state=None, rowwise: bool = False):
        if state is None:
            h = c = x.new_zeros(len(x), self.hidden)
        else:
            h, c = state[0][:, 0], state[1][:, 0]
        if rowwise:
            out, h, c = self._rowwise(x, h, c)
        else:
            out, h, c = self._recurrence(x, h, c)
        return out, (h[:, None], c[:, None])

    def _recurrence(self, x, h, c):
        b, xw = len(x), x @ self.weight_ih.T
        rate = self.recurrent_dropout if self.training else 0.0
        outs = []
        for t in range(x.shape[1]):
            gates = F.layer_norm((xw[:, t] + h @ self.weight_hh.T).view(b, 4, self.hidden), [self.hidden], eps=LN_EPSILON)
            i, j, f, o = (gates.reshape(b, -1) * self.gate_gamma + self.gate_beta).chunk(4, 1)
            g = F.dropout(torch.tanh(j), rate, self.training) if rate else torch.tanh(j)
            c = c * torch.sigmoid(f + FORGET_BIAS) + torch.sigmoid(i) * g
            h = torch.tanh(F.layer_norm(c, [self.hidden], self.cell_gamma, self.cell_beta, LN_EPSILON)) * torch.sigmoid(o)
            outs.append(h)
        return torch.stack(outs, 1), h, c

    def _rowwise(self, x, h, c):
        """The recurrence with each step's gates one ``rowwise.linear`` (generation: no dropout, no gradient)."""
        w, shift, outs = stacked(self._stacked, 0, self.weight_ih, self.weight_hh), _gate_shift(self.gate_beta), []
        for t in range(x.shape[1]):
            h, c, _ = _step(rowwise.linear(torch.cat([x[:, t], h], 1), w), c, self.gate_gamma, shift,
                            self.cell_gamma, self.cell_beta, None)
            outs.append(h)
        return torch.stack(outs, 1), h, c


def _gate_shift(gate_beta: torch.Tensor) -> torch.Tensor:
    """The gates' beta with the forget bias added to the forget gate's block (gates i, j, f, o)."""
    shift = gate_beta.detach().clone()
    shift.view(4, -1)[2] += FORGET_BIAS
    return shift


def _step(z, c, gate_gamma, shift, cell_gamma, cell_beta, keep):
    """One step's element-wise part, from the gates' pre-activations ``z`` (B, 4H) and the cell state ``c``.

    Returns the new h and c, and the step's intermediate values.
    """
    b, hidden = c.shape
    zn, _, rstd = torch.native_layer_norm(z.view(b, 4, hidden), [hidden], None, None, LN_EPSILON)
    a = torch.addcmul(shift, zn.view(b, -1), gate_gamma)
    g = torch.tanh(a.chunk(4, 1)[1])
    s = sigmoid_(a)  # i, f and o's; j's quarter is unused, and one call beats three
    si, _, sf, so = s.chunk(4, 1)
    c = torch.addcmul(c * sf, si, g if keep is None else g * keep)
    cn, mean_c, rstd_c = torch.native_layer_norm(c, [hidden], cell_gamma, cell_beta, LN_EPSILON)
    tn = torch.tanh(cn)
    return tn * so, c, (zn, rstd, s, g, mean_c, rstd_c, tn)


def make(name: str, input_size: int, hidden: int, layers: int = 1, dropout: float = 0.0,
         recurrent_dropout: float = 0.0) -> nn.Module:
    """A cell by name (``CELLS``)."""
    cls = {"lstm": LSTM, "layernorm": LayerNormLSTM}[name]
    return cls(input_size, hidden, layers, dropout, recurrent_dropout)
