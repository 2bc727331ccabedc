"""Products whose result for a row never depends on the other rows: what every generation step is built from.

A drawing must come out bit for bit the same alone or in any batch (``base``
module docstring), but a BLAS kernel may choose its blocking, and so the order
of a row's additions, by the number of rows: ``nn.Linear`` takes another kernel
for a batch of 1-3 rows than for more. A batched product of one-row matrices
runs the same kernel for every row, whatever the batch.
"""

from __future__ import annotations

import torch


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``x @ weight.T + bias`` for ``x`` of (B, K) or (B, 1, K), each row computed as if it were alone."""
    rows = x.reshape(len(x), 1, x.shape[-1])
    w = weight.T.expand(len(x), -1, -1)
    out = torch.bmm(rows, w) if bias is None else torch.baddbmm(bias, rows, w)
    return out.reshape(*x.shape[:-1], weight.shape[0])
