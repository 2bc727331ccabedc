"""Recurrent cells a model can be built on, each with the same face.

``cell(x, state, rowwise=False) -> (out, state)``: ``x`` is (B, T, input),
``out`` (B, T, hidden), and ``state`` a pair (h, c) of (B, layers, hidden)
tensors, batch first like every generation state (``zeros(B)`` is the first).
``rowwise`` asks for each row computed as if it were alone, as a generation
step must be (``rowwise``).

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

CELLS = ("lstm", "layernorm")
LN_EPSILON = 1e-3  # Magenta's layer_norm
FORGET_BIAS = 1.0


class LSTM(nn.LSTM):
    """``nn.LSTM`` with batch-first states; its parameters keep nn.LSTM's names (``weight_ih_l0``, ...)."""

    def __init__(self, input_size: int, hidden: int, layers: int = 1, dropout: float = 0.0, recurrent_dropout: float = 0.0):
        super().__init__(input_size, hidden, num_layers=layers, dropout=dropout if layers > 1 else 0.0, batch_first=True)

    def zeros(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(batch, self.num_layers, self.hidden_size)
        return zeros, zeros.clone()

    def forward(self, x, state=None, rowwise: bool = False):
        hx = None if state is None else tuple(s.transpose(0, 1).contiguous() for s in state)
        out, (h, c) = super().forward(x, hx)
        return out, (h.transpose(0, 1), c.transpose(0, 1))


class LayerNormLSTM(nn.Module):
    """One layer of Sketch-RNN's layer-normalised LSTM with recurrent dropout.

    The input projection of all steps is one matrix product; the recurrence
    runs step by step in eager PyTorch (TorchScript was slower here, and its
    fused kernels change the last bits between the first calls and later ones,
    which would break reproducible sampling). With ``rowwise``, every product
    is a batched product of one-row matrices, so a drawing's numbers never
    depend on the rows beside it (see ``rowwise``).
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
        nn.init.xavier_uniform_(self.weight_ih)
        for block in self.weight_hh.data.chunk(4):  # Magenta's lstm_ortho_initializer: each gate's block orthogonal
            nn.init.orthogonal_(block)

    def zeros(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(batch, 1, self.hidden)
        return zeros, zeros.clone()

    def forward(self, x, state=None, rowwise: bool = False):
        b = len(x)
        if state is None:
            h = c = x.new_zeros(b, self.hidden)
        else:
            h, c = state[0][:, 0], state[1][:, 0]
        if not rowwise:
            xw = x @ self.weight_ih.T
        else:
            xw = torch.bmm(x, self.weight_ih.T.expand(b, -1, -1))
        rate = self.recurrent_dropout if self.training else 0.0
        w = self.weight_hh.T
        outs = []
        for t in range(x.shape[1]):
            recurrent = torch.bmm(h[:, None], w.expand(b, -1, -1))[:, 0] if rowwise else h @ w
            gates = F.layer_norm((xw[:, t] + recurrent).view(b, 4, self.hidden), [self.hidden], eps=LN_EPSILON)
            i, j, f, o = (gates.reshape(b, -1) * self.gate_gamma + self.gate_beta).chunk(4, 1)
            g = F.dropout(torch.tanh(j), rate, self.training) if rate else torch.tanh(j)
            c = c * torch.sigmoid(f + FORGET_BIAS) + torch.sigmoid(i) * g
            h = torch.tanh(F.layer_norm(c, [self.hidden], self.cell_gamma, self.cell_beta, LN_EPSILON)) * torch.sigmoid(o)
            outs.append(h)
        return torch.stack(outs, 1), (h[:, None], c[:, None])


def make(name: str, input_size: int, hidden: int, layers: int = 1, dropout: float = 0.0,
         recurrent_dropout: float = 0.0) -> nn.Module:
    """A cell by name (``CELLS``)."""
    cls = {"lstm": LSTM, "layernorm": LayerNormLSTM}[name]
    return cls(input_size, hidden, layers, dropout, recurrent_dropout)
