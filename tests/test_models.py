"""The model interface: a model is one class in one file, and everything else asks the model.

A model written here, in a test, and registered as any file in ``models/`` registers itself, trains,
samples, completes, evaluates and serves through the same commands as the shipped ones, without a
line of sketchgen changed. The layer-normalised cell is checked against Ha & Eck's equations, and its
hand-written backward against autograd's.
"""

from __future__ import annotations

import gc
import weakref
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sketchgen import cli, data, models, sample, strokes
from sketchgen.models import registry
from sketchgen.models.base import (
    Batch,
    SketchModel,
    State,
    Term,
    class_embedding,
    hard_labels,
    setting,
)
from sketchgen.models.cells import FORGET_BIAS, LN_EPSILON, LayerNormLSTM
from sketchgen.models.heads import PointHead
from sketchgen.sample import generate


@dataclass
class OffsetConfig:
    n_classes: int = setting(1, low=1, high=1000)
    hidden: int = setting(16, "LSTM hidden size", 1, 8192)
    lengths: list[int] = setting(list, low=1, high=10_000, per_class=True)


@dataclass
class OffsetState(State):
    """nn.LSTM's (h, c), layers first, and the class embedding: a state that says itself how rows are kept."""

    h: torch.Tensor  # (1, B, hidden)
    c: torch.Tensor
    emb: torch.Tensor  # (B, 4)

    def __len__(self):
        return len(self.emb)

    def keep(self, rows):
        return OffsetState(self.h[:, rows], self.c[:, rows], self.emb[rows])

    @classmethod
    def join(cls, states):
        return cls(*(torch.cat([getattr(s, k) for s in states], dim=int(k != "emb")) for k in ("h", "c", "emb")))


class OffsetRegressor(SketchModel):
    """A model sketchgen does not ship: the seed model's recipe on stroke-3 offsets instead of points."""

    name = "offsets"
    summary = "a test's model: MSE on stroke-3 offsets"
    Config = OffsetConfig
    step_dim = 3
    draws = 1
    uses_temperature = False

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.n_classes, 4)
        self.lstm = nn.LSTM(4 + 3, cfg.hidden, batch_first=True)
        self.head = PointHead(cfg.hidden)

    @classmethod
    def from_data(cls, prepared, train_idx, longest, **settings):
        return cls(OffsetConfig(n_classes=len(prepared.classes), lengths=data.median_lengths(prepared, train_idx),
                                **settings))

    def encode(self, s3):
        return (np.asarray(s3, dtype=np.float32) / [50, 50, 1]).astype(np.float32)

    def decode(self, seq):
        s3 = np.asarray(seq, dtype=np.float64) * [50, 50, 1]
        s3[:, 2] = s3[:, 2] > 0.5
        s3[-1:, 2] = 1
        return s3

    def forward(self, batch: Batch):
        emb = self.embed(batch.labels)[:, None].expand(-1, batch.inputs.shape[1], -1)
        return self.head(self.lstm(torch.cat([emb, batch.inputs], -1))[0])

    def losses(self, outputs, batch, step):
        return {"mse": Term(*self.head.loss(outputs, batch.targets, batch.mask))}

    def initial_state(self, classes, latent=None):
        zeros = torch.zeros(1, len(classes), self.cfg.hidden)
        return OffsetState(zeros, zeros.clone(), class_embedding(self.embed, classes))

    def step(self, x, state):
        # Its own state layout, layers first as nn.LSTM has it: keep and join are its to say.
        out, (h, c) = self.lstm(torch.cat([state.emb[:, None].expand(-1, x.shape[1], -1), x], -1), (state.h, state.c))
        return self.head.rowwise(out), OffsetState(h, c, state.emb)

    def sample_step(self, out, temperature, u):
        return self.head.sample(out, u), torch.zeros(len(out), dtype=torch.bool)

    def steps_allowed(self, classes, drawn):
        return (torch.tensor(self.cfg.lengths)[hard_labels(classes)] - drawn).clamp_min(1)


@pytest.fixture
def plugged_in(monkeypatch):
    """OffsetRegressor registered as a file in models/ would be, for one test."""
    monkeypatch.setitem(registry._MODELS, OffsetRegressor.name, OffsetRegressor)
    return OffsetRegressor.name


def test_a_new_model_is_one_class_and_every_command_offers_it(plugged_in, quickdraw, tmp_path, capsys):
    assert plugged_in in models.names()
    train_help = [a for a in cli.build_parser()._subparsers._group_actions[0].choices["train"]._actions
                  if a.dest == "model"][0]
    assert plugged_in in train_help.choices and "stroke-3 offsets" in train_help.help
    run = tmp_path / "run"
    assert cli.main(["train", "--model", plugged_in, "--classes", "circle", "zigzag", "--data-dir",
                     str(quickdraw / "simplified"), "--epochs", "2", "--hidden", "8", "--out", str(run)]) == 0
    # A flag the model does not have is refused, naming it.
    assert cli.main(["train", "--model", plugged_in, "--cell", "layernorm", "--out", str(tmp_path / "x")]) == 1
    assert "--cell does not apply to --model offsets" in capsys.readouterr().err
    net, ckpt = models.load(run / "best.pt")
    assert isinstance(net, OffsetRegressor) and ckpt["kind"] == plugged_in and ckpt["config"]["hidden"] == 8
    assert cli.main(["sample", "--checkpoint", str(run / "best.pt"), "--n", "2", "--out", str(tmp_path / "s"),
                     "--prefix", "test", "--prefix-strokes", "1"]) == 0
    drawings = list(data.read_ndjson(tmp_path / "s" / "samples.ndjson"))
    assert [d.word for d in drawings] == ["circle"] * 2 + ["zigzag"] * 2
    assert all(d.points and np.isfinite(np.vstack(d.points)).all() for d in drawings)
    from sketchgen.serve import Sketcher
    sketcher = Sketcher(run / "best.pt")
    assert sketcher.info["model"]["kind"] == plugged_in and sketcher.info["model"]["temperature"] is None
    assert sketcher.sample({"class": "zigzag", "seed": 3})["strokes"]


def reference_step(x, h, c, cell: LayerNormLSTM):
    """One step of Ha & Eck's layer-normalised LSTM (Magenta's LayerNormLSTMCell) in float64, no dropout."""
    def ln(v, gamma, beta):
        mean, var = v.mean(-1, keepdims=True), v.var(-1, keepdims=True)
        return (v - mean) / np.sqrt(var + LN_EPSILON) * gamma + beta

    p = {k: v.detach().double().numpy() for k, v in cell.state_dict().items()}
    hidden = cell.hidden
    z = x @ p["weight_ih"].T + h @ p["weight_hh"].T
    gates = [ln(z[:, k * hidden : (k + 1) * hidden], p["gate_gamma"][k * hidden : (k + 1) * hidden],
                p["gate_beta"][k * hidden : (k + 1) * hidden]) for k in range(4)]
    i, j, f, o = gates
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    c = c * sig(f + FORGET_BIAS) + sig(i) * np.tanh(j)
    h = np.tanh(ln(c, p["cell_gamma"], p["cell_beta"])) * sig(o)
    return h, c


def test_layernorm_cell_follows_the_equations():
    torch.manual_seed(0)
    cell = LayerNormLSTM(7, 12, recurrent_dropout=0.3)
    with torch.no_grad():
        for prm in (cell.gate_gamma, cell.gate_beta, cell.cell_gamma, cell.cell_beta):
            prm.add_(torch.randn_like(prm) * 0.3)  # not their initial 1s and 0s, so that they are exercised
    cell.eval().requires_grad_(False)
    x = torch.randn(5, 9, 7)
    out, (h_end, c_end) = cell(x)
    h = c = np.zeros((5, 12))
    for t in range(9):
        h, c = reference_step(x[:, t].double().numpy(), h, c, cell)
        np.testing.assert_allclose(out[:, t].numpy(), h, atol=1e-5)
    np.testing.assert_allclose(h_end[:, 0].numpy(), h, atol=1e-5)
    np.testing.assert_allclose(c_end[:, 0].numpy(), c, atol=1e-5)
    # Resuming from a state is the same as running on.
    first, state = cell(x[:, :4])
    rest, _ = cell(x[:, 4:], state)
    torch.testing.assert_close(torch.cat([first, rest], 1), out)


def test_layernorm_recurrent_dropout_acts_in_training_only():
    torch.manual_seed(0)
    cell = LayerNormLSTM(3, 32, recurrent_dropout=0.5)
    x = torch.randn(4, 6, 3)
    cell.train()
    a, b = cell(x)[0], cell(x)[0]
    assert not torch.equal(a, b)  # a fresh dropout mask every call
    a.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in cell.parameters())
    cell.eval()
    assert torch.equal(cell(x)[0], cell(x)[0])


def autograd_recurrence(cell: LayerNormLSTM, x, h, c, keep):
    """The layer-normalised LSTM op by op under autograd (the cell's code before its hand-written backward)."""
    b, hidden = len(x), cell.hidden
    outs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ cell.weight_ih.T + h @ cell.weight_hh.T
        gates = F.layer_norm(z.view(b, 4, hidden), [hidden], eps=LN_EPSILON).reshape(b, -1)
        i, j, f, o = (gates * cell.gate_gamma + cell.gate_beta).chunk(4, 1)
        c = c * torch.sigmoid(f + FORGET_BIAS) + torch.sigmoid(i) * torch.tanh(j) * keep[t]
        h = torch.tanh(F.layer_norm(c, [hidden], cell.cell_gamma, cell.cell_beta, LN_EPSILON)) * torch.sigmoid(o)
        outs.append(h)
    return torch.stack(outs, 1), h, c


def test_layernorm_cell_gradients_are_autograd_s_in_float64():
    """The hand-written backward against autograd through the plain equations, and against finite differences."""
    torch.manual_seed(0)
    cell = LayerNormLSTM(7, 12, recurrent_dropout=0.3).double()
    with torch.no_grad():
        for prm in (cell.gate_gamma, cell.gate_beta, cell.cell_gamma, cell.cell_beta):
            prm.add_(torch.randn_like(prm) * 0.3)
    x, h, c = (torch.randn(*shape, dtype=torch.float64, requires_grad=True) for shape in ((5, 9, 7), (5, 12), (5, 12)))
    torch.manual_seed(1)
    keep = torch.empty(9, 5, 12, dtype=torch.float64).bernoulli_(0.7).div_(0.7)  # the mask the cell draws next
    torch.manual_seed(1)
    out, (h_end, c_end) = cell(x, (h[:, None], c[:, None]))
    expected = autograd_recurrence(cell, x, h, c, keep)
    for got, want in zip((out, h_end[:, 0], c_end[:, 0]), expected):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    weights = [torch.randn_like(t) for t in expected]
    inputs = [x, h, c, *cell.parameters()]
    ours = torch.autograd.grad(sum((w * t).sum() for w, t in zip(weights, (out, h_end[:, 0], c_end[:, 0]))), inputs)
    theirs = torch.autograd.grad(sum((w * t).sum() for w, t in zip(weights, expected)), inputs)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    small = LayerNormLSTM(3, 4, recurrent_dropout=0.3).double().train()

    def run(x, h, c):
        torch.manual_seed(2)  # the same dropout mask at every evaluation
        out, (h, c) = small(x, (h[:, None], c[:, None]))
        return out, h, c

    assert torch.autograd.gradcheck(run, tuple(torch.randn(*s, dtype=torch.float64, requires_grad=True)
                                               for s in ((2, 3, 3), (2, 4), (2, 4))))


def test_layernorm_cell_under_autocast_rounds_its_products_alone():
    """``--amp``: the products in bfloat16 (the speed), states and gradients float32, close to the float32 run.
    It failed with a dtype error before: the recurrence added bfloat16 products into its float32 gates."""
    torch.manual_seed(0)
    cell = LayerNormLSTM(7, 32, recurrent_dropout=0.1).train()
    x = torch.randn(6, 20, 7)

    def run(amp):
        cell.zero_grad()
        torch.manual_seed(1)  # the same dropout mask
        with torch.autocast("cpu", torch.bfloat16, enabled=amp):
            out, (h, c) = cell(x)
        (out.square().mean() + h.sum() + c.sum()).backward()
        return out, [p.grad for p in cell.parameters()]

    exact, exact_grads = run(False)
    rounded, rounded_grads = run(True)
    assert rounded.dtype == torch.float32 and all(g.dtype == torch.float32 for g in rounded_grads)
    assert not torch.equal(rounded, exact)  # the products were rounded: autocast reached them
    for a, b in zip([rounded, *rounded_grads], [exact, *exact_grads]):  # bfloat16 keeps 8 bits: a few % apart
        assert (a - b).norm() < 0.05 * b.norm()
    # A state made by a layer autocast ran (the vae's tanh(W z + b)) arrives in bfloat16: the recurrence runs it in
    # float32 all the same.
    cell.zero_grad()
    state = tuple(torch.randn(6, 1, 32, dtype=torch.bfloat16, requires_grad=True) for _ in range(2))
    with torch.autocast("cpu", torch.bfloat16):
        out, (h, c) = cell(x, state)
    assert out.dtype == h.dtype == c.dtype == torch.float32
    (out.square().mean() + h.sum() + c.sum()).backward()
    assert all(s.grad.dtype == torch.bfloat16 and torch.isfinite(s.grad).all() for s in state)
    assert all(p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all() for p in cell.parameters())


def test_layernorm_cell_frees_each_step_after_backward():
    """What the recurrence keeps for its backward is freed with the graph. An output kept on the autograd
    context holds its own graph node, a cycle through C++ that is never collected: training leaked every
    batch's steps (~100 MB a step at the default size) until the machine ran out of memory."""
    cell = LayerNormLSTM(3, 8, recurrent_dropout=0.1).train()
    finished = []
    for _ in range(3):
        out, (h, c) = cell(torch.randn(4, 6, 3, requires_grad=True))
        (out.sum() + h.sum() + c.sum()).backward()
        finished += [weakref.ref(h._base), weakref.ref(c._base)]
        del out, h, c
    gc.collect()
    assert all(ref() is None for ref in finished)


def test_layernorm_mdn_resumes_exactly(small_data, tmp_path):
    """One epoch, then --resume to two, against two unbroken: the same weights bit for bit (dropout masks included).
    The per-step decay, whose rate does not depend on the budget (cosine's, the default, does)."""
    from sketchgen.training import TrainConfig, train

    settings = {"batch_size": 16, "seed": 0, "lr_schedule": "decay",
                "model_config": {"hidden": 16, "cell": "layernorm", "recurrent_dropout": 0.3}}
    train(TrainConfig.for_model("mdn", epochs=2, **settings), small_data, tmp_path / "whole", log=lambda m: None)
    train(TrainConfig.for_model("mdn", epochs=1, **settings), small_data, tmp_path / "split", log=lambda m: None)
    train(TrainConfig.for_model("mdn", epochs=2, **settings), small_data, tmp_path / "split", resume=True,
          log=lambda m: None)
    a, b = (torch.load(tmp_path / run / "last.pt", weights_only=True)["state_dict"] for run in ("whole", "split"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_layernorm_mdn_trains_and_samples_from_the_command_line(quickdraw, tmp_path):
    run = tmp_path / "ln"
    assert cli.main(["train", "--model", "mdn", "--cell", "layernorm", "--classes", "zigzag", "--data-dir",
                     str(quickdraw / "simplified"), "--epochs", "1", "--hidden", "16", "--out", str(run)]) == 0
    net, ckpt = models.load(run / "best.pt")
    assert ckpt["config"]["cell"] == "layernorm" and isinstance(net.lstm, LayerNormLSTM)
    drawings = generate(net, [0, 0, 0], temperature=0.5, max_len=40)
    assert all(np.isfinite(d).all() and len(d) <= 40 for d in drawings)
    assert cli.main(["export", "--checkpoint", str(run / "best.pt"), "--format", "magenta", "--class", "zigzag",
                     "--out", str(tmp_path / "z.gen.json")]) == 1
    assert not (tmp_path / "z.gen.json").exists()


def test_models_describe_themselves_to_the_rest():
    for kind in models.names():
        cls = models.get(kind)
        assert cls.summary and cls.step_dim > 0 and cls.draws > 0
        for name, meta in cls.flags().items():
            assert meta["help"], f"{kind}.{name} is a flag without help"
    with pytest.raises(models.ModelError, match="no model named 'gan'"):
        models.get("gan")
    seed = models.build("seed", n_classes=2, lengths=[5, 7])
    # What only some models can do is a capability, asked of the model and refused in one line naming who can.
    assert not models.capable(seed, models.MagentaExport) and models.capable(models.get("mdn"), models.MagentaExport)
    with pytest.raises(models.ModelError, match="a seed model cannot be exported.*train a mdn model"):
        models.require(seed, models.MagentaExport, "cannot be exported")
    with pytest.raises(models.ModelError, match="has no encoder.*train a vae model"):
        sample.require_encoder(seed)
    assert models.importer("magenta") is models.get("mdn")
    s3 = strokes.strokes_to_stroke3([np.array([[0.0, 0.0], [10.0, 5.0]]), np.array([[20.0, 20.0]])])
    np.testing.assert_allclose(seed.decode(seed.encode(s3)), s3, atol=1e-4)
