"""Generation from both models: valid drawings in batches, stopping at the end token, and completions that keep their start."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
from conftest import VARIANTS

import sketchgen
from sketchgen import Drawing, DrawingError, SketchgenError, models
from sketchgen.api import CHUNK
from sketchgen.cli import main
from sketchgen.data import read_stroke3
from sketchgen.models import ModelError
from sketchgen.sample import drawing_seeds, generate, longest_prefix, stream_keys, uniforms
from sketchgen.strokes import MAX_POINTS, stroke3_to_strokes, strokes_to_stroke3
from sketchgen.strokes import quickdraw_strokes as to_strokes


def assert_valid(drawing: np.ndarray, limit: int) -> None:
    """A stroke-3 drawing: finite offsets, 0/1 pen ending lifted, at most ``limit`` points."""
    assert drawing.ndim == 2 and drawing.shape[1] == 3 and len(drawing) <= limit
    assert np.isfinite(drawing).all()
    assert set(np.unique(drawing[:, 2])) <= {0.0, 1.0}
    if len(drawing):
        assert drawing[-1, 2] == 1
        pictures = to_strokes(drawing)
        assert 1 <= len(pictures) == int(drawing[:, 2].sum())
        points = np.concatenate(pictures)
        assert points.min() >= 0 and points.max() <= 255


@pytest.mark.parametrize("kind", [*models.names(), *VARIANTS])
def test_batched_generation_gives_valid_drawings(tiny_models, kind):
    net, ckpt = models.load(tiny_models[kind])
    labels = np.repeat(np.arange(len(ckpt["classes"])), 6)
    drawings = generate(net, labels, temperature=0.4, seed=0, batch_size=7)  # batches that split classes
    assert len(drawings) == len(labels)
    limits = net.steps_allowed(torch.as_tensor(labels), torch.zeros(len(labels), dtype=torch.long)).numpy()
    for d, limit in zip(drawings, limits):
        assert_valid(d, limit)
    again = generate(net, labels, temperature=0.4, seed=0, batch_size=7)
    assert all(np.array_equal(a, b) for a, b in zip(drawings, again))  # a seed gives the same drawings
    other = generate(net, labels, temperature=0.4, seed=1, batch_size=7)
    assert not all(np.array_equal(a, b) for a, b in zip(drawings, other))


def test_uniforms_are_uniform_uncorrelated_and_a_function_of_seed_step_and_draw():
    keys = stream_keys(range(4000))  # neighbouring seeds, as the drawings of one call have
    u = np.hstack([uniforms(keys, 5, 4).numpy(), uniforms(keys, 6, 4).numpy()])  # two steps, four draws each
    assert u.dtype == np.float32 and u.min() >= 0 and u.max() < 1
    grid = np.linspace(0, 1, 101)
    for column in u.T:
        assert np.abs(np.searchsorted(np.sort(column), grid) / len(column) - grid).max() < 1.63 / np.sqrt(len(u))
    assert np.abs(np.corrcoef(u.T) - np.eye(8)).max() < 0.05
    assert torch.equal(uniforms(keys[[7, 3]], 5, 4), torch.from_numpy(u[[7, 3], :4]))  # a row's numbers are its own


@pytest.mark.parametrize("kind", [*models.names(), *VARIANTS])
def test_a_drawing_is_the_same_alone_and_in_any_batch(tiny_models, eye_starts, kind):
    """(class, seed) gives one drawing, bit for bit, whatever is generated beside it: what lets serve batch requests."""
    net, ckpt = models.load(tiny_models[kind])
    rng = np.random.default_rng(0)
    labels = rng.integers(0, net.cfg.n_classes, 30)
    seeds = [int(s) for s in rng.integers(0, 2**31, 30)]
    mixed = generate(net, labels, temperature=1.0, seeds=seeds)
    alone = [generate(net, [label], temperature=1.0, seed=s)[0] for label, s in zip(labels, seeds)]
    # Reordered, in batches of 1-3 rows (where BLAS switches kernels) and beside drawings of other seeds.
    order = rng.permutation(30)
    shuffled = generate(net, labels[order], temperature=1.0, seeds=[seeds[i] for i in order], batch_size=3)
    for i, j in enumerate(order):
        assert np.array_equal(mixed[j], alone[j]) and np.array_equal(mixed[j], shuffled[i])
    # Other seeds, other drawings (the seed model's only chance is the pen lift: two may lift alike).
    assert len({d.tobytes() for d in mixed}) > 20
    # A call's own seeds: drawing i of a call with seed s is the drawing of seed drawing_seeds(s, n)[i].
    by_call = generate(net, labels, temperature=1.0, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(by_call, generate(net, labels, 1.0, seeds=drawing_seeds(5, 30))))
    assert sum(np.array_equal(a, b) for a, b in zip(by_call, generate(net, labels, temperature=1.0, seed=6))) < 10
    # Completions too: each prefix is primed alone, then all continue together.
    eye = ckpt["classes"].index("eye")
    done = generate(net, [eye] * 5, temperature=1.0, seeds=seeds[:5], prefixes=eye_starts[:5])
    for prefix, s, d in zip(eye_starts, seeds, done):
        assert np.array_equal(d, generate(net, [eye], temperature=1.0, seed=s, prefixes=[prefix])[0])
    # A drawing with no step left (a prefix as long as it may be, or a class cap used up) is its prefix alone, beside
    # others too: it took one step where another drawing of its batch had some (an audit's find: 10,001 points).
    beside = generate(net, [eye] * 2, temperature=1.0, seeds=seeds[:2], prefixes=eye_starts[:2], max_len=[0, None])
    assert np.array_equal(beside[0], eye_starts[0]) and np.array_equal(beside[1], done[1])


def test_seed_model_draws_its_class_length_or_max_len(tiny_models):
    net, _ = models.load(tiny_models["seed"])
    labels = np.arange(net.cfg.n_classes)
    assert [len(d) for d in generate(net, labels)] == list(net.cfg.lengths)
    assert [len(d) for d in generate(net, labels, max_len=7)] == [7] * len(labels)


def forced_pen(state: int) -> models.SketchModel:
    """An mdn whose pen always comes out in ``state`` (0 down, 1 up, 2 end)."""
    net = models.build("mdn", n_classes=2, hidden=8, n_mixtures=3)
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
        net.head.bias[state] = 30.0
    return net


def test_mdn_stops_at_the_end_token_or_max_len():
    assert all(len(d) == 0 for d in generate(forced_pen(2), [0, 1, 1]))  # ended at the first step
    drawings = generate(forced_pen(0), [0, 1, 1], max_len=30)
    assert [len(d) for d in drawings] == [30, 30, 30]
    assert all(d[:, 2].sum() == 1 for d in drawings)  # never lifted: one stroke, closed at the cut


def test_each_drawing_stops_at_its_own_end(tiny_models):
    net, _ = models.load(tiny_models["mdn"])
    drawings = generate(net, np.repeat(np.arange(net.cfg.n_classes), 10), temperature=1.0, seed=0)
    lengths = np.array([len(d) for d in drawings])
    assert (lengths < net.cfg.max_len).mean() > 0.9
    assert len(np.unique(lengths)) > 10  # not all cut where the batch's last drawing ended


def test_read_prefix_cuts_to_the_first_strokes(quickdraw):
    starts = read_stroke3(quickdraw / "simplified" / "square.ndjson", n_strokes=1)
    whole = read_stroke3(quickdraw / "simplified" / "square.ndjson")
    assert len(whole) == len(starts) == 25
    for start, full in zip(starts, whole):
        assert start[:, 2].sum() == 1 and np.array_equal(start, full[: len(start)])


@pytest.fixture(scope="module")
def eye_starts(seed_data) -> list[np.ndarray]:
    """The first stroke of each test eye drawn in several: a start that real drawings go on from."""
    eyes = [seed_data.stroke3(i) for i in seed_data.indices("test") if seed_data.classes[seed_data.labels[i]] == "eye"]
    return [strokes_to_stroke3(stroke3_to_strokes(d)[:1]) for d in eyes if d[:, 2].sum() >= 3]


@pytest.mark.parametrize("kind", [*models.names(), *VARIANTS])
def test_completion_keeps_the_prefix_exactly_and_continues_it(tiny_models, eye_starts, kind):
    """Every model: the start exactly as given, then a valid continuation within the steps its class allows."""
    net, ckpt = models.load(tiny_models[kind])
    assert len(eye_starts) >= 5
    # Each start four times: whether the tiny mdn goes on is a draw (it ends some one-stroke eyes with p = 0.7).
    starts = eye_starts * 4
    labels = [ckpt["classes"].index("eye")] * len(starts)
    done = generate(net, labels, temperature=0.4, seed=0, prefixes=starts)
    limits = net.steps_allowed(torch.as_tensor(labels), torch.as_tensor([len(p) for p in starts])).numpy()
    assert len(done) == len(starts)
    for prefix, drawing, limit in zip(starts, done, limits):
        assert np.array_equal(drawing[: len(prefix)], prefix)
        assert_valid(drawing[len(prefix):], limit)
    assert np.mean([len(d) > len(p) for d, p in zip(done, starts)]) > 0.6


def test_seed_completion_stops_at_the_class_length_counting_its_prefix(tiny_models, eye_starts):
    net, ckpt = models.load(tiny_models["seed"])
    eye = ckpt["classes"].index("eye")
    length = net.cfg.lengths[eye]
    # The last is longer than the class's drawings, and no longer than the model draws (net.max_steps()).
    starts = [*eye_starts, np.tile(eye_starts[0], (length // len(eye_starts[0]) + 1, 1))]
    labels = [eye] * len(starts)
    assert [len(d) for d in generate(net, labels, prefixes=starts)] == [max(length, len(p) + 1) for p in starts]
    assert [len(d) for d in generate(net, labels, max_len=7, prefixes=starts)] == [len(p) + 7 for p in starts]


def test_sample_command_completes_a_prefix_file(tiny_models, quickdraw, tmp_path, capsys):
    out = tmp_path / "samples"
    code = main(["sample", "--checkpoint", str(tiny_models["mdn"]), "--classes", "square", "--n", "3",
                 "--prefix", str(quickdraw / "simplified" / "square.ndjson"), "--prefix-strokes", "1",
                 "--out", str(out)])
    assert code == 0
    records = [json.loads(line) for line in (out / "samples.ndjson").read_text().splitlines()]
    assert [r["word"] for r in records] == ["square"] * 3
    assert all(len(r["drawing"]) >= 1 for r in records)
    # Without --prefix (or with --around) it would keep nothing: it drew whole drawings without a word; so did
    # --data-dir without --prefix test, the one use sample has for it.
    for other in (["--prefix-strokes", "1"], ["--prefix-strokes", "1", "--around", str(quickdraw / "simplified" /
                  "square.ndjson")], ["--data-dir", str(tmp_path)], ["--data-dir", str(tmp_path), "--prefix",
                  str(quickdraw / "simplified" / "square.ndjson")]):
        assert main(["sample", "--checkpoint", str(tiny_models["mdn"]), *other, "--out", str(tmp_path / "none")]) == 1
        assert not (tmp_path / "none").exists()
    os.mkfifo(tmp_path / "fifo")  # an output folder that is something else is said as what it is ("a file")
    assert main(["sample", "--checkpoint", str(tiny_models["mdn"]), "--out", str(tmp_path / "fifo")]) == 1
    assert capsys.readouterr().err.strip().endswith(f"{tmp_path / 'fifo'} is a FIFO, not a folder: give another "
                                                    "path for the output")
    # Below a file: `[Errno 20] Not a directory`, once the model had loaded (found by an audit).
    assert main(["sample", "--checkpoint", str(tiny_models["mdn"]), "--out", str(tmp_path / "fifo" / "sub")]) == 1
    assert capsys.readouterr().err.strip().endswith(f"{tmp_path / 'fifo'} is a FIFO, not a folder (for "
                                                    f"{tmp_path / 'fifo' / 'sub'}): give another path for the output")


def test_prefix_test_prepares_the_classes_asked_for_alone(tiny_models, quickdraw, tmp_path, capsys):
    """`sample --classes eye --prefix test` prepared every class the model knows (a 345-class model's all 345, each
    downloaded where missing) to complete one eye, and failed where the data held the eyes alone (an audit's find)."""
    (tmp_path / "data").mkdir()
    shutil.copy(quickdraw / "simplified" / "eye.ndjson", tmp_path / "data")
    code = main(["sample", "--checkpoint", str(tiny_models["mdn"]), "--classes", "eye", "--n", "2", "--prefix", "test",
                 "--prefix-strokes", "1", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "drawn")])
    assert code == 0, capsys.readouterr().err
    records = [json.loads(line) for line in (tmp_path / "drawn" / "samples.ndjson").read_text().splitlines()]
    assert [r["word"] for r in records] == ["eye", "eye"]


def zigzag(n: int) -> np.ndarray:
    """A one-stroke stroke-3 drawing of ``n`` points: a start as long as asked."""
    s3 = np.zeros((n, 3), dtype=np.float32)
    s3[:, 0], s3[:, 1], s3[-1, 2] = np.where(np.arange(n) % 2, -1, 1), np.where(np.arange(n) % 4 < 2, 1, -1), 1
    return s3


@pytest.mark.parametrize("kind", [*models.names(), *VARIANTS])
def test_a_prefix_longer_than_the_model_draws_is_refused_in_one_line(tiny_models, kind):
    """Priming costs a step per point: a start longer than any drawing of the model is refused before the first."""
    net, _ = models.load(tiny_models[kind])
    most = net.max_steps()
    done = generate(net, [0, 0], prefixes=[zigzag(3), zigzag(most)])  # as long as the model draws: completed
    assert [len(d) >= len(p) for d, p in zip(done, [zigzag(3), zigzag(most)])] == [True, True]
    with pytest.raises(ModelError, match=rf"^prefix 1 has {most + 1:,} points, more than the {most:,} ") as e:
        generate(net, [0, 0], prefixes=[zigzag(3), zigzag(most + 1)])
    assert "\n" not in str(e.value)
    with pytest.raises(ModelError, match="^prefix 0 has 300,000 points"):
        generate(net, [0], prefixes=[zigzag(300_000)])


def test_complete_and_the_sample_command_refuse_a_prefix_longer_than_the_model_draws(tiny_models, tmp_path, capsys):
    model = sketchgen.load(tiny_models["mdn"])
    most = model.net.max_steps()
    start = Drawing.from_stroke3(zigzag(most + 1), "square", fit=False)
    with pytest.raises(SketchgenError, match=rf"prefix 0 has {most + 1:,} points, more than the {most:,} "):
        model.complete(start)
    for points, says in ((most + 1, f"prefix 0 has {most + 1:,} points"),
                         # the audit's 2.7 MB line: more than a drawing may have, skipped as it is read
                         (300_000, "long.ndjson: no valid drawing to complete")):
        xs, ys = np.cumsum(zigzag(points)[:, :2], axis=0).astype(int).T.tolist()
        (tmp_path / "long.ndjson").write_text(json.dumps({"word": "square", "drawing": [[xs, ys]]}) + "\n")
        code = main(["sample", "--checkpoint", str(tiny_models["mdn"]), "--classes", "square", "--n", "1",
                     "--prefix", str(tmp_path / "long.ndjson"), "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert code == 1 and "Traceback" not in err and not (tmp_path / "out").exists()
        assert err.splitlines()[-1].startswith("sketchgen: error: ") and says in err.splitlines()[-1]


def test_generate_checks_each_prefix_as_the_start_of_a_drawing_naming_its_index(tiny_models):
    """``Model.generate``'s prefix is the caller's function: what it returns is refused in one line naming the index
    it was called with, past the first chunk too, unless it is a stroke-3 drawing as ``Drawing.from_stroke3`` takes
    one. A NaN or a huge offset was an index error deep in the model, a prefix that was no function a TypeError."""
    model = sketchgen.load(tiny_models["mdn"])
    start = zigzag(3)
    wrong = {"NaN": np.full((3, 3), np.nan), "infinite": [[np.inf, 0, 1]], "pairs": np.ones((3, 2)),
             "flat": np.ones(3), "words": [["a", "b", "c"]], "ragged": [[1, 2, 1], [1, 2]], "nothing": None,
             "out of the frame": [[1e300, 0, 1]], "past the frame by steps": np.tile([[9000.0, 0, 0]], (2, 1)),
             "more points than a drawing": zigzag(MAX_POINTS + 1)}
    for what, prefix in wrong.items():
        with pytest.raises(DrawingError, match=r"^prefix\(1\) is not the start of a drawing: [^\n]+$"):
            list(model.generate([0, 0], max_len=1, prefix=lambda i, p=prefix: p if i else start))
    far = CHUNK + 1  # in the second chunk: named by the caller's index, not its place in the chunk
    with pytest.raises(DrawingError, match=rf"^prefix\({far}\) is not the start of a drawing: stroke-3 row 0 is not finite$"):
        list(model.generate([0] * (far + 1), max_len=1, prefix=lambda i: wrong["NaN"] if i == far else start))
    most = longest_prefix(model.net)
    with pytest.raises(ModelError, match=rf"^prefix {far} has {most + 1:,} points, more than the {most:,} "):
        list(model.generate([0] * (far + 1), max_len=1, prefix=lambda i: zigzag(most + 1) if i == far else start))
    with pytest.raises(sketchgen.UsageError, match=r"^prefix must be a function from a drawing's index to its start"):
        list(model.generate([0], prefix=start))
    as_array = list(model.generate([0, 1], seed=3, prefix=lambda i: start))  # a list of rows draws as its array
    assert all(np.array_equal(a, b) for a, b in zip(as_array, model.generate([0, 1], seed=3,
                                                                              prefix=lambda i: start.tolist())))
    assert all(np.array_equal(d[:3], start) for d in as_array)


def test_sample_says_which_drawings_ended_before_their_first_point(tiny_models, tmp_path, capsys):
    """An empty drawing keeps its line (line i is drawing i) but has no picture, and the command says so."""
    ckpt = torch.load(tiny_models["mdn"], weights_only=True)
    ckpt["state_dict"]["head.weight"][2] = 0.0  # the pen's third logit, the end, certain at every step
    ckpt["state_dict"]["head.bias"][2] = 30.0
    torch.save(ckpt, tmp_path / "ends.pt")
    out = tmp_path / "out"
    assert main(["sample", "--checkpoint", str(tmp_path / "ends.pt"), "--classes", ckpt["classes"][0], "--n", "3",
                 "--out", str(out)]) == 0
    records = [json.loads(line) for line in (out / "samples.ndjson").read_text().splitlines()]
    assert [r["drawing"] for r in records] == [[]] * 3 and not list(out.glob("*.png"))
    assert "3 drawing(s) ended before their first point (number 0, 1, 2)" in capsys.readouterr().err
