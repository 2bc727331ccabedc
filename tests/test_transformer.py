"""The Transformer decoder: its KV cache computes what the whole sequence does, completes prefixes of any lengths
together exactly, never runs past its context, and refuses what it cannot do in one line.

What every model must do (training, batch independence, resume, checkpoints, serving) is checked for it by the
contract tests; these are what a cache adds.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SIMPLIFIED

from sketchgen import models, sample
from sketchgen.models import collate
from sketchgen.models.attention import BLOCK, causal_block_attention


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def net(tiny_models):
    return models.load(tiny_models["transformer"])[0]


def test_block_attention_is_softmax_attention_over_the_positions_so_far():
    """Read BLOCK positions at a time with a running max and sum, the result is plain causal attention."""
    torch.manual_seed(0)
    b, h, d, capacity = 5, 2, 8, 3 * BLOCK
    keys, values = torch.randn(b, h, capacity, d), torch.randn(b, h, capacity, d)
    q = torch.randn(b, h, 1, d)
    length = torch.tensor([0, 1, BLOCK - 1, BLOCK, 2 * BLOCK + 7])
    got = causal_block_attention(q, keys, values, length)
    for i, n in enumerate(length.tolist()):
        weights = torch.softmax((q[i] @ keys[i, :, : n + 1].transpose(1, 2)) / d**0.5, dim=-1)
        torch.testing.assert_close(got[i], weights @ values[i, :, : n + 1], rtol=1e-5, atol=1e-6)


def test_the_cache_computes_what_the_whole_sequence_does(net, seed_data):
    """Fed a drawing's steps one at a time through its cache, the model gives the outputs of the whole sequence."""
    idx = seed_data.indices("test")[:4]
    batch = collate(net, seed_data.gather(idx), seed_data.labels[idx])
    with torch.no_grad():
        whole = net(batch)
        state = net.initial_state(batch.labels)
        steps = []
        for t in range(batch.inputs.shape[1]):
            out, state = net.step(batch.inputs[:, t : t + 1], state)
            steps.append(out)
    by_step = torch.cat(steps, dim=1)
    mask = batch.mask.bool()
    torch.testing.assert_close(by_step[mask], whole[mask], rtol=1e-4, atol=1e-4)


def test_prefixes_of_any_lengths_complete_together_exactly(net, seed_data):
    """Prefixes of 1 to over two cache blocks of points, each kept exactly and finished as it is alone."""
    test = seed_data.indices("test")
    longest = [int(i) for i in sorted(test, key=lambda i: -len(seed_data.stroke3(i)))[:3]]
    prefixes = [seed_data.stroke3(i)[:n] for i, n in zip(longest + [longest[0]], (2 * BLOCK + 5, BLOCK, 1, 17))]
    labels = seed_data.labels[longest + [longest[0]]]
    together = sample.generate(net, labels, 1.0, seeds=[3, 4, 5, 6], prefixes=prefixes)
    for prefix, label, s, done in zip(prefixes, labels, (3, 4, 5, 6), together):
        assert np.array_equal(done[: len(prefix)], prefix)
        assert np.array_equal(done, sample.generate(net, [label], 1.0, seeds=[s], prefixes=[prefix])[0])


def test_it_never_draws_past_its_context(net, seed_data):
    context = net.context_length()
    drawings = sample.generate(net, [0, 1], 1.0, seed=0, max_len=10 * context)  # asked for more than it can hold
    assert all(len(d) <= context for d in drawings)
    long = seed_data.stroke3(int(seed_data.indices("train")[0]))
    too_long = np.concatenate([long] * (context // len(long) + 1))[:context]
    with pytest.raises(models.ModelError, match=f"has {context:,} points, more than the {context - 1:,} a drawing"):
        sample.generate(net, [0], prefixes=[too_long])
    done = sample.generate(net, [0], prefixes=[too_long[:-1]])[0]  # room for one step (or the end): completed
    assert np.array_equal(done[: context - 1], too_long[:-1]) and len(done) <= context


def test_sample_says_when_max_len_is_past_its_context(tiny_models, tmp_path, capsys):
    """``sample --max-len`` past a Transformer's context was cut to it without a word (an audit's find)."""
    from sketchgen.cli import main

    assert main(["sample", "--checkpoint", str(tiny_models["transformer"]), "--classes", "eye", "--max-len", "10000",
                 "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().err.splitlines()[0] == ("note: --max-len 10,000 is past the 251 positions a drawing of "
                                                       "this transformer model can hold (its start among them): its "
                                                       "drawings stop there")


def test_it_draws_as_many_at_once_as_its_cache_may_hold(net, monkeypatch):
    """An audit's find: 500 drawings of the default Transformer's 250 steps held 1.5 GB of KV cache at once, and a
    checkpoint of 10,000 positions would have asked for 31 GB. Generation takes as many drawings at a time as
    ``STATE_BUDGET`` holds of their cache (``state_bytes``), and they are the drawings all at once would be."""
    whole = sample.generate(net, [0, 1, 2] * 10, max_len=20, seed=3)
    widths, step = [], net.step
    monkeypatch.setattr(net, "step", lambda x, state: (widths.append(len(x)), step(x, state))[1])
    monkeypatch.setattr(sample, "STATE_BUDGET", 7 * net.state_bytes(20))
    parts = sample.generate(net, [0, 1, 2] * 10, max_len=20, seed=3)
    assert widths[0] == 7 and max(widths) == 7
    assert all(np.array_equal(a, b) for a, b in zip(whole, parts, strict=True))


def test_what_it_cannot_do_is_one_line(net, tiny_models, tmp_path, capsys):
    from sketchgen.cli import main

    assert main(["export", "--checkpoint", str(tiny_models["transformer"]), "--format", "magenta", "--class", "eye",
                 "--out", str(tmp_path / "eye.gen.json")]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "a transformer model cannot be exported" in line and not (tmp_path / "eye.gen.json").exists()
    with pytest.raises(models.ModelError, match="has no encoder"):
        sample.reconstruct(net, [np.array([[1.0, 2.0, 1.0]])], [0])
    with pytest.raises(models.ModelError, match="--hidden 30 is not a multiple of --heads 4"):
        models.build("transformer", hidden=30, heads=4)
    assert main(["train", "--model", "transformer", "--hidden", "30", "--heads", "4", "--out", str(tmp_path / "r")]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("each head is hidden / heads wide")
    # Its positions are weights: an --init built for drawings of 250 points cannot take longer ones.
    assert main(["train", "--init", str(tiny_models["transformer"]), "--max-len", "300", "--classes", "eye", "circle",
                 "--data-dir", str(SIMPLIFIED), "--steps", "1", "--out", str(tmp_path / "r")]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "sketchgen: error: --max-len 300 is more than the 250 points a drawing may have in the model --init names (its "
        "max_len): give --max-len 250 or less")
    assert not (tmp_path / "r" / "best.pt").exists()
