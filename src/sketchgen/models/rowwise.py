"""Batch-invariant arithmetic for generation: each row's numbers are the same whatever rows share its call.

Generation promises that a drawing (class, seed) is bit-for-bit the same alone, in a batch of 500, or beside
other callers' drawings (``serve`` batches requests on it). A plain product breaks that promise: BLAS picks its
kernel, how it blocks the sum over K and how it splits the rows between threads from the shape, so a row's sum
is rounded in another order when the number of rows changes (MKL on AVX2, measured: a thread's share of 1-3
rows goes to a matrix-vector kernel; docs/performance.md). So may any fused kernel that chooses by batch size
(cuDNN's LSTM; oneDNN's on other CPUs), so every product of a generation step goes through ``linear``.

**How ``linear`` keeps the promise.** Rows go through the product in blocks of ``BLOCK`` rows, and the rest in
one block of the next multiple of ``ALIGN`` rows (padded with zeros). Every block of a size is the same call:
the same shape, strides and 64-byte alignment of its input, against the same weight, so it gets
the same kernel, the same blocking of K and the same split between threads whatever the batch. A row's
result can then depend only on its place in its block and on the block's size, and that is checked rather
than assumed: the first time a weight shape (per dtype, device and thread count) meets a block size, random
rows go through blocks of that size at other places, alone among zeros and beside other rows, and must come
out with the bits a block of ``BLOCK`` gives them (a kernel that treats some places or sizes differently
shows it on random rows). A size that fails gives way to the next that holds; if ``BLOCK`` itself fails,
each row is its own one-row product: exact, but it reads the whole weight once per row. Blocks of 256 rows
run at ``torch.matmul``'s speed (docs/performance.md; ``tests/test_rowwise.py`` checks rows alone and in
batches of 1 to 1,000).

**Element-wise arithmetic** is batch-invariant when every element goes through the same code: IEEE
operations (``+ - * /``, ``sqrt``), ATen's vectorised math functions (``exp``, ``tanh``, ``log``...: the
last elements of a loop use the same vector code, partly loaded), and row-wise kernels (``layer_norm``,
``softmax``). ``torch.sigmoid`` is not: the last elements of each loop go through scalar code that rounds
differently from its vector code, so a row's bits would depend on where it falls; ``sigmoid_`` below is its
batch-invariant replacement.
"""

from __future__ import annotations

import torch

BLOCK = 256  # rows of a full block: enough for the product to run at torch.matmul's speed
ALIGN = 8  # the last block's rows, a multiple of this: a lone drawing costs a product of 8 rows
_LANE = 16  # the input's rows are 16 floats (64 bytes) apart or a multiple of it: every block starts 64-byte aligned
_verdicts: dict[tuple, dict[int, bool]] = {}  # (shape, layout, dtype, device, threads) -> block size -> holds


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``x @ weight.T + bias`` where each row of ``x`` gives the same bits whatever other rows it comes with.

    ``x`` is (B, K), (B, 1, K) or any (..., K); ``weight`` (N, K) and ``bias`` (N,) as ``nn.Linear`` holds
    them; the result is (..., N). Each row costs its share of a matrix product, as in ``F.linear``
    (differentiable too), but its numbers never depend on the batch (see the module's docstring).
    """
    rows = x.reshape(-1, x.shape[-1])
    if not _holds(weight, bias, BLOCK):
        out = _one_row_each(rows, weight, bias)
    else:
        sizes = [BLOCK] * (len(rows) // BLOCK)
        if len(rows) % BLOCK:
            size = -(-(len(rows) % BLOCK) // ALIGN) * ALIGN
            while not _holds(weight, bias, size):
                size += ALIGN
            sizes.append(size)
        out = _blocks(rows, sizes, weight, bias)
    return out.reshape(*x.shape[:-1], len(weight))


def sigmoid_(x: torch.Tensor) -> torch.Tensor:
    """x = 1 / (1 + exp(-x)) in place, each element through the same code wherever it is (unlike ``torch.sigmoid``).

    In place, so not for tensors autograd needs; generation and the layer-norm cell's own forward use it.
    """
    return x.neg_().exp_().add_(1).reciprocal_()


def _blocks(rows: torch.Tensor, sizes: list[int], weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``rows`` through one product per block of ``sizes`` rows (which cover them; the rest are zeros)."""
    padded = rows.new_empty(sum(sizes), -(-rows.shape[1] // _LANE) * _LANE)[:, : rows.shape[1]]
    padded[: len(rows)] = rows
    padded[len(rows) :] = 0
    out, start = [], 0
    for size in sizes:
        block = padded[start : start + size]
        out.append(block @ weight.T if bias is None else torch.addmm(bias, block, weight.T))
        start += size
    return torch.cat(out)[: len(rows)]


def _one_row_each(rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The fallback: each row its own (1 x K) matrix of one batched product."""
    w = weight.T.expand(len(rows), -1, -1)
    out = torch.bmm(rows[:, None], w) if bias is None else torch.baddbmm(bias, rows[:, None], w)
    return out[:, 0]


def _holds(weight: torch.Tensor, bias: torch.Tensor | None, size: int) -> bool:
    """Whether blocks of ``size`` rows give every row the bits a block of ``BLOCK`` gives it, at any place;
    checked once per weight shape, layout, dtype, device, thread count and size."""
    key = (tuple(weight.shape), weight.stride(), weight.dtype, str(weight.device), bias is None,
           torch.get_num_threads())
    verdicts = _verdicts.setdefault(key, {})
    if size not in verdicts:
        with torch.no_grad():
            verdicts[size] = _check(weight, bias, size)
    return verdicts[size]


def _check(weight: torch.Tensor, bias: torch.Tensor | None, size: int) -> bool:
    gen = torch.Generator().manual_seed(0)  # its own generator: checking never moves torch's global one
    x = torch.randn(BLOCK, weight.shape[1], generator=gen).to(weight)
    ref = _blocks(x, [BLOCK], weight, bias)
    if size == BLOCK:  # rows moved to other places of the block
        moved = (torch.randperm(BLOCK, generator=gen), torch.arange(BLOCK).flip(0))
        if not all(torch.equal(_blocks(x[p], [BLOCK], weight, bias), ref[p]) for p in moved):
            return False
    whole = BLOCK // size * size
    beside = torch.equal(_blocks(x[:whole], [size] * (BLOCK // size), weight, bias), ref[:whole])
    return beside and all(torch.equal(_alone(x[i], place, size, weight, bias), ref[i])
                          for i, place in ((0, 0), (BLOCK // 2, size // 2), (BLOCK - 1, size - 1)))


def _alone(row: torch.Tensor, place: int, size: int, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``row``'s result at ``place`` of a block of ``size`` rows that are otherwise zeros."""
    block = row.new_zeros(size, len(row))
    block[place] = row
    return _blocks(block, [size], weight, bias)[place]
