"""The VAE (Sketch-RNN whole) on real drawings: its KL against torch's, the annealed weight and free bits, an
encoder that padding never reaches, reconstructions of drawings it overfit, interpolation ends, resume, the
commands end to end, evaluation, and one-line refusals."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
import torch
from conftest import FIXTURES, RAW, SIMPLIFIED, ctrl_c_in_step
from PIL import Image
from torch.distributions import Normal, kl_divergence

from sketchgen import classifier as C
from sketchgen import cli, data, models, render, sample, strokes
from sketchgen import evaluate as E
from sketchgen import report as R
from sketchgen.data import prepare
from sketchgen.models import collate
from sketchgen.serve import Sketcher
from sketchgen.training import TrainConfig, train
from sketchgen.training.batching import augment
from sketchgen.training.step import train_step

CLASSES = ["bear", "zigzag"]  # in both the simplified and the raw folder
TINY = {"hidden": 32, "encoder_hidden": 16, "latent_size": 8, "embed_dim": 4}


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def quiet(msg: str) -> None:
    pass


@pytest.fixture(scope="module")
def vae_data(quickdraw):
    return prepare(CLASSES, quickdraw / "simplified", max_per_class=60, seed=0)


@pytest.fixture(scope="module")
def vae_run(vae_data, tmp_path_factory):
    """A tiny vae trained for seconds on bear and zigzag: its run folder."""
    out = tmp_path_factory.mktemp("vae_run")
    cfg = TrainConfig.for_model("vae", steps=60, eval_every=30, batch_size=16, lr=5e-3, model_config=TINY)
    train(cfg, vae_data, out, log=quiet)
    return out


def drawings_of(cls: str, n: int, start: int = 0) -> list[np.ndarray]:
    lines = (SIMPLIFIED / f"{cls}.ndjson").read_text().splitlines()[start : start + n]
    return [strokes.strokes_to_stroke3(data.parse_line(line).points) for line in lines]


def tiny_vae(**settings) -> models.SketchModel:
    torch.manual_seed(0)
    return models.build("vae", n_classes=2, scale=30.0, **{**TINY, **settings})


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    (line,) = err.strip().splitlines()
    assert line.startswith("sketchgen: error: ")
    return line


# --- the loss -----------------------------------------------------------------------------------


def test_kl_term_is_torch_kl_divergence_per_dimension(quickdraw):
    net = tiny_vae().train()
    batch = collate(net, drawings_of("bear", 5) + drawings_of("zigzag", 4), np.array([0] * 5 + [1] * 4))
    outputs = net(batch)
    _, mu, logvar = outputs
    with torch.no_grad():  # an encoder that is not at its initial zeros, so the KL is not trivially small
        mu, logvar = mu * 40, logvar * 40 - 1
    terms = net.losses((outputs[0], mu, logvar), batch, step=None)
    expected = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0))
    assert terms["kl"].count == 9 * 8  # drawings x latent dimensions: the mean is per dimension, the floor's unit
    torch.testing.assert_close(terms["kl"].total, expected.sum())
    assert float(terms["kl"].total) / 9 > 8  # nats per drawing, far from 0
    nll, steps = net.head.nll(outputs[0], batch.targets, batch.mask)
    assert torch.equal(terms["nll"].total, nll) and terms["nll"].count == steps  # the mdn's reconstruction NLL


def test_kl_weight_anneals_and_validation_uses_the_full_weight(quickdraw):
    net = tiny_vae()
    batch = collate(net, drawings_of("bear", 3), np.zeros(3, dtype=np.int64))
    outputs = net(batch)
    for step, eta in [(0, 0.01), (1, 1 - 0.99 * 0.9995), (1000, 1 - 0.99 * 0.9995**1000),
                      (4000, 1 - 0.99 * 0.9995**4000), (None, 1.0)]:
        kl = net.losses(outputs, batch, step)["kl"]
        assert kl.weight == pytest.approx(0.5 * eta, rel=1e-12) and kl.floor == 0.2
    assert 0.86 < net.kl_weight(4000) / 0.5 < 0.87  # most of the way by the end of the default budget
    paper = tiny_vae(kl_decay_rate=0.99995)
    assert paper.kl_weight(4000) / 0.5 == pytest.approx(1 - 0.99 * 0.99995**4000)


def test_free_bits_stop_the_kl_gradient_in_the_training_step(quickdraw):
    """Below its floor the KL adds no gradient: the step's gradients are the NLL's alone; above, the KL's join."""
    drawings, labels = drawings_of("bear", 4) + drawings_of("zigzag", 4), np.array([0] * 4 + [1] * 4)

    def gradients(tolerance: float, nll_only: bool = False) -> dict[str, torch.Tensor]:
        net = tiny_vae(kl_tolerance=tolerance, dropout=0.0).train()
        batch = collate(net, drawings, labels)
        batch.noise = torch.randn(len(drawings), 8, generator=torch.Generator().manual_seed(1))
        if nll_only:
            out = net(batch)
            total, count = net.head.nll(out[0], batch.targets, batch.mask)
            (total / count).backward()
        else:
            result = train_step(net, net, torch.optim.SGD(net.parameters(), lr=0.0), batch, step=500)
            assert result.weights["kl"] == (net.kl_weight(500), tolerance)
        return {n: p.grad.clone() for n, p in net.named_parameters()}

    nll = gradients(0.0, nll_only=True)
    floored, free = gradients(100.0), gradients(0.0)
    for name in nll:
        torch.testing.assert_close(floored[name], nll[name], msg=name)
    encoder = [n for n in nll if n.startswith(("encoder", "to_latent"))]
    assert all(not torch.allclose(free[n], nll[n]) for n in encoder)


# --- the encoder --------------------------------------------------------------------------------


def test_padding_never_reaches_the_encoder(quickdraw):
    """A drawing's mu is the same alone and beside longer drawings, and it is the bidirectional LSTM's over the
    drawing's own points (``pack_padded_sequence``)."""
    from torch.nn.utils.rnn import pack_padded_sequence

    net = tiny_vae().eval()
    short, longer = drawings_of("zigzag", 1)[0], drawings_of("bear", 3)
    assert all(len(d) > len(short) + 10 for d in longer)
    with torch.no_grad():
        alone = net.encode_latent(collate(net, [short], np.array([1])))
        batch = collate(net, [longer[0], short, *longer[1:]], np.array([0, 1, 0, 0]))
        padded = net.encode_latent(batch)
        for a, b in zip(alone, padded):
            torch.testing.assert_close(b[1], a[0], rtol=0, atol=1e-6)
        bidirectional = torch.nn.LSTM(5, 16, batch_first=True, bidirectional=True)
        bidirectional.load_state_dict({**net.encoder_forward.state_dict(),
                                       **{f"{k}_reverse": v for k, v in net.encoder_backward.state_dict().items()}})
        _, (h, _) = bidirectional(pack_padded_sequence(batch.targets, batch.lengths, batch_first=True,
                                                       enforce_sorted=False))
        mu, logvar = net.to_latent(torch.cat([h[0], h[1]], -1)).chunk(2, -1)
    torch.testing.assert_close(padded[0], mu, rtol=0, atol=1e-6)
    torch.testing.assert_close(padded[1], logvar, rtol=0, atol=1e-6)


def mean_nearest_point_distance(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Symmetric mean distance from each point of one drawing to the nearest point of the other, both fitted
    into QuickDraw's 0-255 frame: 0 for the same drawing, tens of units for different ones. It compares shapes
    where they lie, forgiving what no one sees (how a line is cut into points, a stroke drawn backwards)."""
    p, q = np.concatenate(strokes.fit(a)), np.concatenate(strokes.fit(b))
    d = np.linalg.norm(p[:, None] - q[None], axis=-1)
    return 0.5 * (d.min(1).mean() + d.min(0).mean())


def test_a_vae_overfit_on_a_handful_of_drawings_redraws_them(quickdraw):
    """Three real drawings given one class, so that only the latent tells them apart; trained by the real
    training step on the three, freshly augmented each step (Sketch-RNN's 0.15 / 0.10: without it the decoder
    learns its inputs to the last unit and a free-running drawing leaves them at the first point off).
    Redrawn sixteen times each from their latents' means at temperature 0.2, two thirds of all the redrawings
    are nearer their own drawing than either other one (a model that ignored its latent would draw one drawing
    for all three: a third), and they lie within half the distance between different drawings of their own,
    on average. The pen is tempered as the offsets are (``pen_temperature`` "same"): the
    default softens it to (1 + T) / 2, which is for drawing well from a model, not for checking what it holds.

    Why eight, and not one redrawing at temperature 0.01: the trained weights differ from CPU to CPU. Kernels
    chosen by instruction set sum in other orders, and training amplifies the last-bit differences: the sums
    of the weights trained with AVX2 and with scalar kernels here agree to 3e-7 after 100 steps, 2% apart
    after 200.
    Each CPU thus gets its own draw of the model this recipe makes, and a single near-deterministic redrawing
    of a drawing is one draw of a path that can hang on one step (a pen lift or a mixture component near even
    odds) and drift from there. Over 14 trainings (12 initial weights with this machine's AVX2 kernels, 2 with
    its scalar ones), one redrawing each at 0.01 came within half the distance between drawings in 12 (0.18
    to 0.59 of it; 0.59 for this seed on this AMD EPYC, where the bound had been set on an AVX-512 machine),
    where eight at 0.2 did in all 14 (0.21-0.42), each drawing's redrawings nearer it than the others 6 to 8
    times of 8. One drawing's share alone still varies with the draw (the hat's was 2 of 8 after the model
    interface changed the order of a few sums): the claim is held over all the redrawings together."""
    picked = [("zigzag", 8, 14), ("circle", 14, 20), ("hat", 10, 16)]
    given = []
    for cls, shortest, longest in picked:  # the first recognized drawing of this many points
        lines = (SIMPLIFIED / f"{cls}.ndjson").read_text().splitlines()
        given.append(next(d for d in map(data.parse_line, lines)
                          if d.recognized and shortest <= sum(map(len, d.points)) <= longest).points)
    s3 = [strokes.strokes_to_stroke3(d) for d in given]
    labels = np.zeros(3, dtype=np.int64)
    torch.manual_seed(0)
    net = models.build("vae", n_classes=1, hidden=64, encoder_hidden=64, latent_size=16, dropout=0.0,
                       kl_weight=0.0, pen_temperature="same", scale=float(np.concatenate(s3)[:, :2].std())).train()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for step in range(1500):
        rng = np.random.default_rng(step)
        batch = collate(net, [augment(d, rng, 0.15, 0.10) for d in s3], labels)
        assert not train_step(net, net, opt, batch, step, grad_clip=1.0).skipped
    tries = 16
    redrawn = sample.reconstruct(net, [d for d in s3 for _ in range(tries)], np.zeros(3 * tries, dtype=np.int64),
                                 temperature=0.2, seeds=list(range(tries)) * 3)
    # distance[i, k, j]: drawing i's redrawing k to drawing j
    distance = np.array([[mean_nearest_point_distance(g, strokes.quickdraw_strokes(r)) for g in given]
                         for r in redrawn]).reshape(3, tries, 3)
    between = np.mean([mean_nearest_point_distance(a, b) for a in given for b in given if a is not b])
    assert between > 30
    nearest_own = (distance.argmin(axis=2) == np.arange(3)[:, None]).sum(axis=1)
    own = distance[np.arange(3), :, np.arange(3)]
    assert nearest_own.sum() >= 2 * tries and own.mean() < 0.5 * between, (nearest_own, own.mean(axis=1), between)


# --- using it -----------------------------------------------------------------------------------


def test_a_reconstruction_is_the_same_alone_and_in_any_batch(vae_run):
    net, _ = models.load(vae_run / "best.pt")
    given = drawings_of("bear", 4) + drawings_of("zigzag", 3)
    labels = np.array([0] * 4 + [1] * 3)
    together = sample.reconstruct(net, given, labels, temperature=0.5, seeds=list(range(7)))
    for i, (d, label) in enumerate(zip(given, labels)):
        assert np.array_equal(sample.reconstruct(net, [d], [label], temperature=0.5, seed=i)[0], together[i])
    assert len({d.tobytes() for d in together}) == 7


def test_interpolation_ends_are_the_reconstructions_of_its_two_drawings(vae_run):
    net, _ = models.load(vae_run / "best.pt")
    bear, zigzag = drawings_of("bear", 1)[0], drawings_of("zigzag", 1)[0]
    other_bear = drawings_of("bear", 1, start=5)[0]
    for pair, labels in (([bear, zigzag], [0, 1]), ([bear, other_bear], [0, 0])):
        frames, t = sample.interpolate(net, pair, labels, steps=6, temperature=0.3, seed=11)
        assert len(frames) == 6 and t[0] == 0 and t[-1] == 1
        assert np.array_equal(frames[0], sample.reconstruct(net, pair[:1], labels[:1], 0.3, seed=11)[0])
        assert np.array_equal(frames[-1], sample.reconstruct(net, pair[1:], labels[1:], 0.3, seed=11)[0])
        assert len({f.tobytes() for f in frames}) > 2  # it moves between them


def test_slerp_keeps_to_the_sphere_and_ends_exactly():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(128).astype(np.float32), rng.standard_normal(128).astype(np.float32)
    assert np.array_equal(sample.slerp(a, b, 0.0).astype(np.float32), a)
    assert np.array_equal(sample.slerp(a, b, 1.0).astype(np.float32), b)
    u, v = np.eye(3)[0], np.eye(3)[1]
    for t in np.linspace(0, 1, 7):
        assert np.linalg.norm(sample.slerp(u, v, t)) == pytest.approx(1.0)  # a straight line would dip to 0.71
    np.testing.assert_allclose(sample.slerp(u, 2 * u, 0.5), 1.5 * u)  # parallel: the line


def test_resume_of_a_vae_run_equals_an_unbroken_run(vae_data, tmp_path, monkeypatch):
    """The latent's noise is drawn per drawing from where training is, so stopping changes nothing: between
    rounds, or stopped by Ctrl-C after a round's last step (whose validation then had no step to give it the KL
    term's annealed weight, and logged the round's training loss with a weight of 1: an audit's find)."""
    from sketchgen.training import Interrupted

    cfg = TrainConfig.for_model("vae", steps=6, eval_every=3, batch_size=8, model_config=TINY)
    whole = train(cfg, vae_data, tmp_path / "whole", log=quiet)
    train(TrainConfig.for_model("vae", steps=3, eval_every=3, batch_size=8, model_config=TINY), vae_data,
          tmp_path / "split", log=quiet)
    ctrl_c_in_step(monkeypatch, 2)  # the third step, the round's last, is the last
    with pytest.raises(Interrupted, match=r"at step 3 \(step 3 of the run\)"):
        train(cfg, vae_data, tmp_path / "stopped", log=quiet)
    monkeypatch.undo()
    for run in ("split", "stopped"):
        resumed = train(cfg, vae_data, tmp_path / run, resume=True, log=quiet)
        assert [{k: v for k, v in r.items() if k != "seconds"} for r in resumed] == \
               [{k: v for k, v in r.items() if k != "seconds"} for r in whole], run
        a, b = (torch.load(tmp_path / name / "last.pt", weights_only=True)["state_dict"] for name in ("whole", run))
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_log_and_the_loss_curve_show_each_term(vae_run, tmp_path):
    records = [json.loads(line) for line in (vae_run / "log.jsonl").read_text().splitlines()]
    assert len(records) == 2
    for r in records:
        assert {"train_nll", "train_kl", "val_nll", "val_kl"} <= r.keys()
        assert r["val_loss"] > r["val_nll"]  # the KL term adds at least its floor
    render.loss_curve(records, tmp_path / "curve.png")
    one_term = [{k: v for k, v in r.items() if not k.startswith(("train_n", "train_k", "val_n", "val_k"))}
                for r in records]
    render.loss_curve(one_term, tmp_path / "plain.png")
    with Image.open(tmp_path / "curve.png") as curve, Image.open(tmp_path / "plain.png") as plain:
        assert curve.height == plain.height and curve.width > 2.4 * plain.width  # a panel per term beside the total


# --- the commands -------------------------------------------------------------------------------


def write_lines(path, *sources: tuple) -> None:
    """Lines ``start:stop`` of the named files (simplified or raw), in that order."""
    lines = []
    for folder, cls, start, stop in sources:
        lines += (folder / f"{cls}.ndjson").read_text().splitlines()[start:stop]
    path.write_text("\n".join(lines) + "\n")


def test_reconstruct_writes_one_line_per_valid_input_in_order(vae_run, tmp_path, capsys):
    given = tmp_path / "given.ndjson"
    write_lines(given, (SIMPLIFIED, "zigzag", 0, 2), (RAW, "bear", 0, 2), (SIMPLIFIED, "bear", 3, 4))
    with open(given, "a") as f:
        f.write('{"word": "bear", "drawing": [[[1, 2], [3]]]}\n')  # x and y of different lengths: skipped
    code, out, err = run_cli(capsys, "reconstruct", "--checkpoint", vae_run / "best.pt", "--input", given,
                             "--temperature", "0.3", "--out", tmp_path / "r")
    assert code == 0 and out.strip() == str(tmp_path / "r")
    assert f"{given}:6:" in err  # the reader's own report of the bad line
    written = list(data.read_ndjson(tmp_path / "r" / "reconstructions.ndjson"))
    inputs = list(data.read_ndjson(given, problems=data.Problems(quiet=True)))
    assert [d.word for d in written] == ["zigzag", "zigzag", "bear", "bear", "bear"] == [d.word for d in inputs]
    assert [d.key_id for d in written] == [d.key_id for d in inputs]
    points = np.concatenate([np.concatenate(d.points) for d in written])
    assert points.min() >= 0 and points.max() <= 255 and np.array_equal(points, np.rint(points))
    pictures = sorted(p.name for p in (tmp_path / "r").glob("*.png"))
    assert pictures == ["bear-002.png", "bear-003.png", "bear-004.png", "zigzag-000.png", "zigzag-001.png"]
    with Image.open(tmp_path / "r" / "bear-002.png") as picture:
        assert picture.size == (512, 256 + 2 * 32)  # input beside reconstruction


def test_interpolate_writes_the_morph(vae_run, tmp_path, capsys):
    given = tmp_path / "two.ndjson"
    write_lines(given, (SIMPLIFIED, "bear", 0, 1), (RAW, "zigzag", 0, 1), (SIMPLIFIED, "bear", 1, 2))
    with given.open("a") as f:  # past the two it morphs: a bad line, said nowhere (the file was read through)
        f.write("not a drawing\n")
    code, out, err = run_cli(capsys, "interpolate", "--checkpoint", vae_run / "best.pt", "--input", given,
                             "--steps", "5", "--out", tmp_path / "i")
    assert code == 0 and "skipped" not in err, err
    frames = list(data.read_ndjson(tmp_path / "i" / "interpolation.ndjson"))
    assert [d.word for d in frames] == ["bear", "bear", "zigzag", "zigzag", "zigzag"]
    ts = [json.loads(line)["t"] for line in (tmp_path / "i" / "interpolation.ndjson").read_text().splitlines()]
    assert ts == [0.0, 0.25, 0.5, 0.75, 1.0]
    with Image.open(tmp_path / "i" / "interpolation.png") as row:
        assert row.size == ((5 + 2) * 128, 128 + 128 // 6)  # A, the five, B
    with Image.open(tmp_path / "i" / "interpolation.gif") as gif:
        assert gif.n_frames == 5


def test_sample_on_a_vae_draws_from_the_prior_or_around_given_drawings(vae_run, tmp_path, capsys):
    ckpt = vae_run / "best.pt"
    assert run_cli(capsys, "sample", "--checkpoint", ckpt, "--n", "2", "--out", tmp_path / "prior")[0] == 0
    written = (tmp_path / "prior" / "samples.ndjson").read_text().splitlines()  # a drawing may be empty: all lines
    assert [json.loads(line)["word"] for line in written] == ["bear"] * 2 + ["zigzag"] * 2
    given = tmp_path / "given.ndjson"
    write_lines(given, (SIMPLIFIED, "zigzag", 0, 1), (SIMPLIFIED, "bear", 0, 1))
    assert run_cli(capsys, "sample", "--checkpoint", ckpt, "--around", given, "--n", "3", "--temperature", "0.2",
                   "--out", tmp_path / "around")[0] == 0
    varied = list(data.read_ndjson(tmp_path / "around" / "samples.ndjson"))
    assert [d.word for d in varied] == ["zigzag"] * 3 + ["bear"] * 3
    assert len({json.dumps(strokes.drawing_field(d.points)) for d in varied}) == 6


def test_the_web_server_redraws_and_morphs_as_the_commands_do(vae_run):
    """/api/reconstruct and /api/interpolate on a real vae give the drawings of sample.reconstruct and
    sample.interpolate (the same latent means, spherical path, seed), for drawings sent in any frame."""
    sketcher = Sketcher(vae_run / "best.pt", say=quiet)
    net = sketcher.models["best.pt"].net
    bear, zigzag = (data.parse_line((SIMPLIFIED / f"{c}.ndjson").read_text().splitlines()[3]).points for c in CLASSES)
    sent = {"bear": strokes.drawing_field([s * 0.5 + 40 for s in bear]), "zigzag": strokes.drawing_field(zigzag)}
    s3 = [strokes.strokes_to_stroke3(strokes.simplify(strokes.parse_drawing(sent[c]))) for c in CLASSES]
    req = {"class": "bear", "strokes": sent["bear"], "temperature": 0.3, "seed": 4}
    redrawn = asyncio.run(sketcher.answer("reconstruct", req))
    expected = sample.reconstruct(net, s3[:1], [0], temperature=0.3, seed=4)[0]
    assert redrawn["strokes"] == strokes.drawing_field(strokes.quickdraw_strokes(expected))
    morph = asyncio.run(sketcher.answer("interpolate", {**req, "to_class": "zigzag", "to_strokes": sent["zigzag"],
                                                        "steps": 5}))
    frames, _ = sample.interpolate(net, s3, [0, 1], steps=5, temperature=0.3, seed=4)
    assert [d["strokes"] for d in morph["drawings"]] == [strokes.drawing_field(strokes.quickdraw_strokes(f))
                                                          for f in frames]
    assert morph["drawings"][0]["strokes"] == redrawn["strokes"]


def test_evaluate_reports_reconstructions_of_test_drawings(vae_run, vae_data, tmp_path):
    classifier = C.train_classifier(vae_data, epochs=2, seed=0, log=quiet)[0]
    report = E.evaluate_model(vae_run / "best.pt", classifier, vae_data, n_per_class=4, temperature=0.4, seed=0)
    assert report["checkpoint"] == str(vae_run / "best.pt")  # a checkpoint given as a path is named by it
    test = vae_data.indices("test")
    for c, entry in enumerate(report["classes"].values()):
        assert 0 <= entry["reconstruction"] <= 1 and entry["n_real_test"] == int((vae_data.labels[test] == c).sum())
        assert set(entry["test_terms"]) == {"kl", "nll"} and entry["test_terms"]["kl"] > 0
        assert entry["test_loss"] == pytest.approx(entry["test_terms"]["kl"] + entry["test_terms"]["nll"])
    net, _ = models.load(vae_run / "best.pt")
    redrawn = sample.reconstruct(net, [vae_data.stroke3(i) for i in test], vae_data.labels[test], 0.4, 0)
    hits = C.predict(classifier, [strokes.quickdraw_strokes(r) for r in redrawn]) == vae_data.labels[test]
    assert report["overall"]["reconstruction"] == pytest.approx(np.mean([hits[vae_data.labels[test] == c].mean()
                                                                          for c in range(2)]))
    table = R.format_report(report)
    assert "reconstructions recognised" in table and " kl " in table.splitlines()[2] + " "


# --- refusals -----------------------------------------------------------------------------------


def test_what_a_vae_cannot_do_or_be_given_is_one_line(vae_run, tmp_path, capsys):
    ckpt = vae_run / "best.pt"
    given = tmp_path / "given.ndjson"
    write_lines(given, (SIMPLIFIED, "bear", 0, 1), (SIMPLIFIED, "cat", 0, 1))
    cases = [
        (["reconstruct", "--checkpoint", FIXTURES / "v010-mdn.pt", "--input", given], "mdn model has no encoder"),
        (["interpolate", "--checkpoint", FIXTURES / "v010-seed.pt", "--input", given], "seed model has no encoder"),
        (["reconstruct", "--checkpoint", ckpt, "--input", given], f"{given}: drawing 2 is a 'cat', a class"),
        (["sample", "--checkpoint", ckpt, "--around", given], f"{given}: drawing 2 is a 'cat', a class"),
        (["interpolate", "--checkpoint", ckpt, "--input", tmp_path / "nothing.ndjson"], "nothing.ndjson: no such file"),
        (["export", "--checkpoint", ckpt, "--format", "magenta", "--class", "bear", "--out", tmp_path / "b.json"],
         "@magenta/sketch runs one kind of model, Sketch-RNN's LSTM"),
    ]
    (tmp_path / "one.ndjson").write_text((SIMPLIFIED / "bear.ndjson").read_text().splitlines()[0] + "\n")
    cases.append((["interpolate", "--checkpoint", ckpt, "--input", tmp_path / "one.ndjson"], "needs two"))
    for argv, words in cases:
        code, out, err = run_cli(capsys, *argv, *(["--out", tmp_path / "o"] if argv[0] != "export" else []))
        assert code == 1 and not out, argv
        assert words in one_error_line(err), (argv, err)
    assert not (tmp_path / "b.json").exists()
    code, _, err = run_cli(capsys, "sample", "--checkpoint", ckpt, "--around", given, "--classes", "bear")
    assert code == 1 and "--around takes each drawing's class from its word" in one_error_line(err)
    with pytest.raises(SystemExit):
        cli.main(["interpolate", "--checkpoint", str(ckpt), "--input", str(given), "--steps", "1"])
    assert "must be from 2 to 1000" in capsys.readouterr().err
