"""The model contract: what every registered model must do, checked for each one without naming any.

A model added as one file in ``models/`` is picked up here (and by the other tests parametrized over
``models.names()``: generation alone and in batches and completion in test_sample, resume after a signal in
test_faults, the evaluation report in test_evaluate) with no test edited. Each trains at its own ``tiny``
settings (conftest's ``tiny_models``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sketchgen import models, sample, strokes
from sketchgen.models import cells, collate
from sketchgen.runs import train_config
from sketchgen.serve import Sketcher
from sketchgen.training import TrainConfig, train
from sketchgen.training.optim import optimizer
from sketchgen.training.step import train_step

KINDS = models.names()


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.mark.parametrize("kind", KINDS)
def test_it_describes_itself_and_its_tiny_settings_are_valid(kind):
    cls = models.get(kind)
    assert cls.summary and cls.step_dim > 0 and cls.draws > 0 and cls.tiny
    for name, meta in cls.flags().items():
        assert meta["help"], f"{kind}.{name} is a flag without help"
    cfg = train_config(kind, None, 0, **cls.tiny)  # every tiny setting is the model's or its training's, in bounds
    assert cfg.model == kind and set(cfg.model_config) <= {f for f in cls.flags()}


@pytest.mark.parametrize("kind", KINDS)
def test_built_without_values_it_has_its_parameters_shapes_and_no_values(kind, seed_data):
    """``shapes_only`` (how a checkpoint's config is checked before its weights are read) gives the state a real
    build has, key for key, shape and dtype, at its default size and a size no machine could hold, all on the meta
    device; a real build afterwards is initialised as before (same seed, same values)."""
    cls = models.get(kind)
    train_idx = seed_data.indices("train")
    torch.manual_seed(0)
    real = cls.from_data(seed_data, train_idx, 250).state_dict()
    with models.shapes_only():
        probe = cls.from_data(seed_data, train_idx, 250).state_dict()
        huge = cls.from_data(seed_data, train_idx, 250, hidden=8192).parameters()
        assert sum(p.numel() for p in huge) > 10**8
    assert [(k, v.shape, v.dtype) for k, v in probe.items()] == [(k, v.shape, v.dtype) for k, v in real.items()]
    assert all(v.is_meta for v in probe.values())
    torch.manual_seed(0)
    again = cls.from_data(seed_data, train_idx, 250).state_dict()
    assert all(torch.equal(again[k], v) for k, v in real.items())


@pytest.mark.parametrize("precision", ["float32", "bf16", "bf16, no oneDNN LSTM"])
@pytest.mark.parametrize("kind", KINDS)
def test_training_steps_lower_the_loss_on_a_batch(kind, precision, seed_data, monkeypatch):
    """The objective it names is what training minimises: 15 steps on one batch of real drawings lower it by more
    than a fifth (measured: to 0.49-0.66 of the first), in float32 and under bf16 autocast (``--amp``), also as on a
    CPU where oneDNN builds no bf16 LSTM (AVX2 only): there each LSTM runs in float32 on its own, and oneDNN, a flag
    of the whole process that other threads' work sees, stays on (it was turned off for the forward pass, and two
    threads training so could leave it off: an audit's find)."""
    amp = precision != "float32"
    seen = []
    if precision == "bf16, no oneDNN LSTM":
        monkeypatch.setattr(cells, "onednn_lstm_in_bf16", lambda: False)
    cls = models.get(kind)
    cfg = train_config(kind, None, 0, **cls.tiny)
    train_idx = seed_data.indices("train")
    torch.manual_seed(0)
    net = cls.from_data(seed_data, train_idx, cfg.max_len, **cfg.model_config)
    idx = train_idx[:: max(1, len(train_idx) // 16)][:16]
    batch = collate(net, seed_data.gather(idx), seed_data.labels[idx])
    if models.capable(net, models.Encodes):
        batch.noise = torch.zeros(len(idx), net.latent_dim)
    opt = optimizer(TrainConfig(**{**vars(cfg), "lr": 3e-3}), net)
    net.train()
    net.register_forward_pre_hook(lambda *_: seen.append(torch.backends.mkldnn.enabled))
    lstm_dtypes = set()
    for module in net.modules():
        if isinstance(module, cells.LSTM):
            module.register_forward_hook(lambda module, args, out: lstm_dtypes.add(out[0].dtype))
    losses = []
    for step in range(15):
        result = train_step(net, net, opt, batch, step, amp=amp)
        losses.append(sum(w * s / c for (s, c), (w, _) in zip(result.sums.values(), result.weights.values())))
        assert not result.skipped
    assert np.isfinite(losses).all() and losses[-1] < 0.8 * losses[0], losses
    assert seen == [True] * 15 and torch.backends.mkldnn.enabled
    if precision == "bf16, no oneDNN LSTM":
        assert lstm_dtypes <= {torch.float32}


@pytest.mark.parametrize("kind", KINDS)
def test_its_state_keeps_and_joins_rows_as_if_each_drawing_were_alone(kind, tiny_models):
    """Stepping all drawings, or some of them after keeping their rows, or joined again: the same outputs."""
    net, _ = models.load(tiny_models[kind])
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    latents = sample.latent_normals(sample.stream_keys(range(6)), net.latent_dim) \
        if models.capable(net, models.Encodes) else None
    x = net.start(6)
    state = net.initial_state(labels, latents)
    with torch.no_grad():
        for _ in range(3):  # a few steps, so that the state holds some history
            out, state = net.step(x, state)
            x = torch.tanh(out[..., : net.step_dim]) if out.shape[-1] >= net.step_dim else x
        whole, _ = net.step(x, state)
        odd, even = torch.tensor([1, 3, 5]), torch.tensor([0, 2, 4])
        joined = type(state).join([state.keep(odd), state.keep(even)])
        again, _ = net.step(x[torch.cat([odd, even])], joined)
        alone = torch.cat([net.step(x[i : i + 1], state.keep(torch.tensor([i])))[0] for i in range(6)])
    assert len(joined) == 6 and torch.equal(again, whole[torch.cat([odd, even])]) and torch.equal(alone, whole)


@pytest.mark.parametrize("kind", KINDS)
def test_its_checkpoint_round_trips_and_draws_the_same(kind, tiny_models, tmp_path):
    net, ckpt = models.load(tiny_models[kind])
    path = tmp_path / "copy.pt"
    models.save(path, models.checkpoint_dict(net, ckpt["classes"]))
    again, copy = models.load(path)
    assert copy["kind"] == kind and copy["config"] == ckpt["config"]
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values()))
    labels = np.arange(len(ckpt["classes"]))
    assert all(np.array_equal(a, b) for a, b in zip(sample.generate(net, labels, seed=4),
                                                    sample.generate(again, labels, seed=4)))


@pytest.mark.parametrize("kind", KINDS)
def test_it_fine_tunes_from_a_checkpoint_of_its_own_kind(kind, tiny_models, seed_data, tmp_path):
    """``train --init`` of each kind takes every weight of a checkpoint of its own, and trains on from them. A
    Transformer's failed in a TypeError traceback: its max_len, a setting its weights are built for, came twice."""
    said = []
    cfg = train_config(kind, None, 0, init=str(tiny_models[kind]), **{**models.get(kind).tiny, "steps": 2,
                                                                      "eval_every": 1, "warmup": 0})
    train(cfg, seed_data, tmp_path / "tuned", log=said.append)
    n = len(models.load(tiny_models[kind])[0].state_dict())
    assert any(line.endswith(f"started from {n} of the model's {n} weight tensors") for line in said), said
    assert models.read(tmp_path / "tuned" / "best.pt")["kind"] == kind


@pytest.mark.parametrize("kind", KINDS)
def test_some_of_its_classes_alone_draw_as_the_whole_model_draws_them(kind, tiny_models):
    """``models.restrict``, what measures a model of 345 classes on a few: each class's rows, by name."""
    ckpt = models.read(tiny_models[kind])
    some = [ckpt["classes"][3], ckpt["classes"][1]]
    whole, part = models.checkpoint.build(ckpt), models.checkpoint.build(models.restrict(ckpt, some))
    assert part.cfg.n_classes == 2
    drawn = zip(sample.generate(whole, [3, 1, 3], seeds=[5, 6, 7]), sample.generate(part, [0, 1, 0], seeds=[5, 6, 7]))
    assert all(np.array_equal(a, b) for a, b in drawn)
    with pytest.raises(models.CheckpointError, match="not trained on cat"):
        models.restrict(ckpt, ["cat"])


@pytest.mark.parametrize("kind", KINDS)
def test_it_serves_what_it_draws(kind, tiny_models):
    """The server's drawing for (class, seed) is the library's, and a drawing started on the page is finished."""
    sketcher = Sketcher(tiny_models[kind])
    served = sketcher.models["best.pt"]
    name = served.classes[1]
    got = sketcher.sample({"class": name, "seed": 3})
    expected = sample.generate(served.net, [1], seeds=[3])[0]
    assert got["class"] == name and got["points"] == len(expected)
    assert got["strokes"] == strokes.drawing_field(strokes.quickdraw_strokes(expected))
    started = [[[10, 60, 120], [40, 90, 40]], [[60, 60], [10, 90]]]  # in the 0-255 frame: its own frame too
    done = sketcher.complete({"class": name, "seed": 3, "strokes": started})
    assert done["n_prefix"] == 2 and done["strokes"][:2] == started, done["strokes"][:2]
