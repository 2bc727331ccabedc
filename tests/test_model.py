"""The mixture-density decoder: its likelihood is the textbook one, it never yields NaN, and temperature does what it says."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import distributions as D

from sketchgen import models, strokes
from sketchgen.models import collate
from sketchgen.sample import generate, stream_keys, uniforms

M = 20


def mdn(n_classes: int = 3, hidden: int = 16, scale: float = 1.0, pen: str = "same") -> models.SketchModel:
    torch.manual_seed(0)
    return models.build("mdn", n_classes=n_classes, hidden=hidden, n_mixtures=M, scale=scale, pen_temperature=pen)


def reference_log_prob(out: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """log p(dx, dy) built from torch.distributions, from Sketch-RNN's head layout (3 pen logits, then 6 blocks of M)."""
    pi, mux, muy, lsx, lsy, rho = out[..., 3:].double().chunk(6, dim=-1)
    sx, sy, rho = lsx.exp(), lsy.exp(), torch.tanh(rho)
    cov = torch.stack([torch.stack([sx**2, rho * sx * sy], -1), torch.stack([rho * sx * sy, sy**2], -1)], -2)
    mixture = D.MixtureSameFamily(D.Categorical(logits=pi), D.MultivariateNormal(torch.stack([mux, muy], -1), cov))
    return mixture.log_prob(torch.stack([dx, dy], -1).double())


@pytest.fixture(scope="module")
def real_drawings(quickdraw) -> list[list[np.ndarray]]:
    drawings = []
    for name in ("apple", "square", "triangle", "circle"):
        with (quickdraw / "simplified" / f"{name}.ndjson").open() as f:
            drawings += [strokes.parse_drawing(json.loads(line)["drawing"]) for line in f]
    return drawings


def test_mixture_log_likelihood_matches_torch_distributions():
    net = mdn()
    gen = torch.Generator().manual_seed(1)
    out = torch.randn(4, 9, 3 + 6 * M, generator=gen) * 1.5
    dx, dy = torch.randn(2, 4, 9, generator=gen) * 2
    ours = net.head.offset_log_prob(out, dx, dy)
    assert torch.allclose(ours.double(), reference_log_prob(out, dx, dy), atol=1e-4, rtol=1e-5)


def test_loss_is_masked_mixture_nll_plus_pen_cross_entropy(real_drawings):
    """On a real padded batch: offsets count on real steps only, the pen also on the first end step."""
    net = mdn(scale=20.0)
    s3 = [strokes.strokes_to_stroke3(d) for d in real_drawings[:6]]
    batch = collate(net, s3, np.arange(6) % 3)
    targets = batch.targets
    with torch.no_grad():
        out = net(batch)
    term = net.losses(out, batch, None)["nll"]
    total, count = term.total, term.count
    expected, steps = 0.0, 0
    for i, d in enumerate(s3):
        n = len(d)
        expected -= float(reference_log_prob(out[i, :n], targets[i, :n, 0], targets[i, :n, 1]).sum())
        pen = D.Categorical(logits=out[i, : n + 1, :3].double())
        expected -= float(pen.log_prob(targets[i, : n + 1, 2:].argmax(-1)).sum())
        steps += n + 1
    assert float(count) == steps
    assert float(total) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("magnitude", [1e2, 1e4, 1e6])
def test_nll_is_finite_for_extreme_parameters(real_drawings, magnitude):
    net = mdn(scale=20.0)
    s3 = [strokes.strokes_to_stroke3(d) for d in real_drawings[:4]]
    batch = collate(net, s3, np.zeros(4, dtype=int))
    out = (torch.randn(*batch.targets.shape[:2], 3 + 6 * M, generator=torch.Generator().manual_seed(2)) * magnitude)
    out.requires_grad_(True)
    total = net.losses(out, batch, None)["nll"].total
    total.backward()
    assert torch.isfinite(total)
    assert torch.isfinite(out.grad).all()


def test_stroke5_round_trips_real_drawings(real_drawings):
    net = mdn(scale=17.3)
    for d in real_drawings:
        s3 = strokes.strokes_to_stroke3(d)
        s5 = strokes.stroke3_to_stroke5(s3, max_len=250)
        n = len(s3)
        assert s5.shape == (251, 5)
        assert (s5[:, 2:].sum(1) == 1).all()  # exactly one pen state per row
        assert (s5[n:] == [0, 0, 0, 0, 1]).all()  # padding is end rows
        back = strokes.stroke3_to_strokes(strokes.stroke5_to_stroke3(s5))
        assert len(back) == len(d) and all(np.array_equal(a, b) for a, b in zip(back, d))
        # The model's own view: offsets divided by the scale, one end row, and back.
        seq = net.encode(s3)
        assert seq.shape == (n + 1, 5)
        np.testing.assert_allclose(net.decode(seq), s3, atol=1e-3)


def fixed_head(pen_logits, batch: int) -> torch.Tensor:
    """A head output with two components: pi logits (2, 0), means (1, 0) and (-3, 2), sigma 1, rho 0.5."""
    out = torch.zeros(batch, 1, 3 + 6 * M)
    pi, mux, muy, lsx, lsy, rho = (3 + k * M for k in range(6))
    out[..., :3] = torch.tensor(pen_logits)
    out[..., pi : pi + M] = -1e3  # only the first two components exist
    out[..., pi], out[..., pi + 1] = 2.0, 0.0
    out[..., mux], out[..., muy] = 1.0, 0.0
    out[..., mux + 1], out[..., muy + 1] = -3.0, 2.0
    out[..., rho : rho + M] = float(np.arctanh(0.5))
    return out


def sample_many(temperature: float, pen_logits=(1.0, 0.5, -1.0), n: int = 4000, pen: str = "same"):
    """``n`` draws from the fixed head, each from the uniforms generation would give a drawing of its own seed."""
    net = mdn(pen=pen)
    step, ended = net.sample_step(fixed_head(pen_logits, n), temperature, uniforms(stream_keys(range(n)), 0, net.draws))
    return step[:, 0].numpy(), ended.numpy()


def test_near_zero_temperature_is_near_deterministic():
    step, ended = sample_many(1e-4)
    # The heavier component's mean, with sigma shrunk by sqrt(1e-4) = 0.01, and the likeliest pen state.
    assert np.abs(step[:, 0] - 1).max() < 0.06 and np.abs(step[:, 1]).max() < 0.06
    assert (step[:, 2] == 1).all() and not ended.any()


def test_high_temperature_spreads_samples():
    spreads = [sample_many(t)[0][:, :2].std(0).mean() for t in (0.1, 1.0, 4.0)]
    assert spreads[0] < spreads[1] < spreads[2]
    step, _ = sample_many(1.0)
    # At T=1 the two components are drawn in proportion exp(2) : 1, each with the unit sigma it was given.
    first = np.abs(step[:, 0] - 1) < np.abs(step[:, 0] + 3)
    assert first.mean() == pytest.approx(np.exp(2) / (1 + np.exp(2)), abs=0.03)
    assert step[first, 0].std() == pytest.approx(1.0, rel=0.1)
    # sigma_y of the chosen component, with the correlation rho = 0.5 visible in the samples.
    assert np.corrcoef(step[first, 0], step[first, 1])[0, 1] == pytest.approx(0.5, abs=0.06)


@pytest.mark.parametrize("pen", ["same", "softened"])
@pytest.mark.parametrize("temperature", [0.2, 0.5, 1.0, 2.0])
def test_pen_state_follows_the_tempered_logits(temperature, pen):
    """The pen's logits are divided by T ("same", 0.1.0's), or by (1 + T) / 2 ("softened", the default)."""
    logits = np.array([1.0, 0.5, -1.0])
    step, ended = sample_many(temperature, tuple(logits), pen=pen)
    pen_t = temperature if pen == "same" else (1 + temperature) / 2
    expected = np.exp(logits / pen_t) / np.exp(logits / pen_t).sum()
    observed = step[:, 2:].mean(0)
    assert (np.abs(observed - expected) < 4 * np.sqrt(expected * (1 - expected) / len(step))).all()
    assert (ended == (step[:, 4] == 1)).all()
    # A state with no probability never comes up.
    step, ended = sample_many(temperature, (0.0, -1e4, -1e4), pen=pen)
    assert (step[:, 2] == 1).all() and not ended.any()


def test_a_trained_mdn_lifts_the_pen_and_ends(tiny_models, seed_data):
    """At T=1 a trained model lifts the pen about as often as the real drawings do, and ends by itself.

    (At lower temperatures the sharpened pen logits favour the commonest state, pen down, as in Sketch-RNN.)
    """
    net, _ = models.load(tiny_models["mdn"])
    drawings = generate(net, np.repeat(np.arange(len(seed_data.classes)), 20), temperature=1.0, seed=0)
    real = [seed_data.stroke3(i) for i in seed_data.indices("train")]
    lifts, real_lifts = (np.mean([d[:, 2].mean() for d in ds if len(d)]) for ds in (drawings, real))
    assert real_lifts / 2 < lifts < real_lifts * 2
    assert np.mean([d[:, 2].sum() >= 2 for d in drawings]) > 0.3  # many have more than one stroke
    assert np.mean([len(d) < net.cfg.max_len for d in drawings]) > 0.9


def test_checkpoint_round_trip_and_bad_files(tmp_path):
    net = mdn(scale=12.5)
    path = tmp_path / "m.pt"
    torch.save(models.checkpoint_dict(net, ["a", "b", "c"]), path)
    again, ckpt = models.load(path)
    assert ckpt["classes"] == ["a", "b", "c"] and again.cfg.scale == 12.5
    for a, b in zip(net.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(models.CheckpointError, match="bad.pt"):
        models.load(tmp_path / "bad.pt")
