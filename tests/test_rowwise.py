"""Batch-invariant generation arithmetic at the default mdn's real sizes: a row's bits never depend on its batch.

What ``serve`` and ``sample`` promise for whole drawings (tests/test_sample.py) rests on these: the products of a
generation step, the element-wise functions after them, and each cell's generation step, alone and in batches of
1 to 1,000 rows, on one thread and two.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sketchgen.models import cells, rowwise

SIZES = [1, 2, 3, 5, 7, 8, 9, 63, 64, 65, 255, 256, 257, 500, 999, 1000]
# The default mdn on 3 classes: input 16 + 5 and hidden 512 (gates 533 -> 2048), the head 512 -> 123 (with bias).
SHAPES = [(533, 2048, False), (512, 123, True)]


@pytest.fixture(params=[1, 2], ids=["1 thread", "2 threads"])
def threads(request):
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


@pytest.mark.parametrize("k, n, with_bias", SHAPES)
def test_a_row_of_a_product_is_the_same_alone_and_in_any_batch(threads, k, n, with_bias):
    gen = torch.Generator().manual_seed(k + n)
    weight, bias = torch.randn(n, k, generator=gen) / k**0.5, torch.randn(n, generator=gen) if with_bias else None
    x = torch.randn(1000, k, generator=gen)
    whole = rowwise.linear(x, weight, bias)
    torch.testing.assert_close(whole, F.linear(x, weight, bias))  # the product, to rounding
    for size in SIZES:
        for start in (0, 1000 - size):
            assert torch.equal(rowwise.linear(x[start : start + size], weight, bias), whole[start : start + size]), size
    order = torch.randperm(1000, generator=gen)
    assert torch.equal(rowwise.linear(x[order], weight, bias), whole[order])
    for i in range(0, 1000, 97):  # alone, as (1, K) and as a generation step's (1, 1, K)
        assert torch.equal(rowwise.linear(x[i : i + 1, None], weight, bias)[:, 0], whole[i : i + 1])


def test_a_product_is_differentiable_as_f_linear_is():
    """The vae computes its decoder's first state through ``linear`` in training too."""
    gen = torch.Generator().manual_seed(0)
    weight, bias = (torch.randn(*s, generator=gen, requires_grad=True) for s in ((1024, 128), (1024,)))
    x = torch.randn(300, 1, 128, generator=gen, requires_grad=True)
    upstream = torch.randn(300, 1, 1024, generator=gen)
    ours = torch.autograd.grad((rowwise.linear(x, weight, bias) * upstream).sum(), (x, weight, bias))
    theirs = torch.autograd.grad((F.linear(x, weight, bias) * upstream).sum(), (x, weight, bias))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_the_one_row_fallback_is_the_product_and_batch_invariant():
    gen = torch.Generator().manual_seed(0)
    weight, bias = torch.randn(123, 512, generator=gen) / 512**0.5, torch.randn(123, generator=gen)
    x = torch.randn(40, 512, generator=gen)
    whole = rowwise._one_row_each(x, weight, bias)
    torch.testing.assert_close(whole, F.linear(x, weight, bias))
    assert all(torch.equal(rowwise._one_row_each(x[i : i + 3], weight, bias), whole[i : i + 3]) for i in range(38))


FUNCTIONS = {"sigmoid_": (lambda t: rowwise.sigmoid_(t.clone()), torch.sigmoid), "tanh": (torch.tanh, torch.tanh),
             "exp": (torch.exp, torch.exp)}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_element_wise_functions_give_an_element_the_same_bits_wherever_it_is(threads, name):
    fn, reference = FUNCTIONS[name]
    x = torch.randn(70_000, generator=torch.Generator().manual_seed(0)) * 4  # past ATen's grain: split by threads
    whole = fn(x)
    torch.testing.assert_close(whole, reference(x))
    for n in range(1, 40):  # the last elements of a loop
        assert torch.equal(fn(x[:n]), whole[:n]) and torch.equal(fn(x[-n:]), whole[-n:]), n
    for rows in (1, 3, 33):  # one gate of a (B, 4H) step, a strided view, as the cells take it
        gates = x[: rows * 2048].view(rows, 2048)
        assert torch.equal(fn(gates[:, 512:1024]), whole[: rows * 2048].view(rows, 2048)[:, 512:1024]), rows


@pytest.mark.parametrize("cell", cells.CELLS)
def test_a_cell_step_is_the_same_alone_and_in_any_batch(threads, cell):
    """The default mdn's cell at its real size: a drawing's next (out, h, c) never depends on the rows beside it."""
    torch.manual_seed(0)
    net = cells.make(cell, 21, 512).eval()
    x, h, c = torch.randn(1000, 1, 21), torch.randn(1000, 1, 512) * 0.5, torch.randn(1000, 1, 512)
    with torch.no_grad():
        whole = net(x, (h, c), rowwise=True)
        plain = net(x, (h, c))
        for a, b in zip((whole[0], *whole[1]), (plain[0], *plain[1])):
            torch.testing.assert_close(a, b)  # the cell's own equations, to rounding
        for size in (1, 3, 8, 9, 100, 257):
            for start in (0, 1000 - size):
                rows = slice(start, start + size)
                part = net(x[rows], (h[rows], c[rows]), rowwise=True)
                for a, b in zip((part[0], *part[1]), (whole[0], *whole[1])):
                    assert torch.equal(a, b[rows]), (size, start)
