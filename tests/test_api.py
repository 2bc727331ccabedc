"""The library (``import sketchgen``) on real drawings: what it loads, that it draws what the command line draws for
the same seeds, what a Drawing turns into, training, and that every bad input is one line of a SketchgenError."""

from __future__ import annotations

import io
import json
import os
import pydoc
import re
import stat
import subprocess
import sys
import tracemalloc
import xml.etree.ElementTree as ET
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FIXTURES
from PIL import Image

import sketchgen
from sketchgen import models
from sketchgen.api import CHUNK
from sketchgen.cli import SEED_CLASSES, main
from sketchgen.fileio import FileRefused, replaceable
from sketchgen.sample import DRAWING_STRIDE


def drawn(path: Path) -> list[tuple[str, list]]:
    """(word, drawing field) of each line of an ndjson file the command line wrote."""
    return [(r["word"], r["drawing"]) for r in map(json.loads, path.read_text().splitlines())]


def fields(drawings) -> list[tuple[str, list]]:
    return [(d.word, d.to_record()["drawing"]) for d in drawings]


def in_frame(d: sketchgen.Drawing) -> bool:
    """Integer points in QuickDraw's 0-255 frame, touching its top-left corner, as files hold them."""
    points = np.concatenate(d.points)
    return (np.array_equal(points, np.rint(points)) and points.min() >= 0 and points.max() <= 255
            and np.array_equal(points.min(axis=0), [0, 0]))


@pytest.fixture(scope="module")
def shipped() -> sketchgen.Model:
    return sketchgen.load()


@pytest.fixture(scope="module")
def eyes(quickdraw) -> list[sketchgen.Drawing]:
    """The first four real eyes of ../shared/quickdraw, as read_ndjson gives them."""
    return list(islice(sketchgen.read_ndjson(quickdraw / "simplified" / "eye.ndjson"), 4))


@pytest.fixture(scope="module")
def vae_run(quickdraw, tmp_path_factory):
    """A tiny vae trained for seconds through the library on real circles and eyes, with the log it wrote."""
    log = []
    settings = {**models.get("vae").tiny, "steps": 60, "eval_every": 30}  # its tiny size, on a step budget
    run = sketchgen.train(classes=["circle", "eye"], model="vae", out=tmp_path_factory.mktemp("vae"),
                          data_dir=quickdraw, max_per_class=60, log=log.append, **settings)
    return run, log


# --- loading -----------------------------------------------------------------------------------


def test_load_gives_the_shipped_model_by_default(shipped):
    assert (shipped.kind, len(shipped.classes), shipped.latent_dim, shipped.encodes) == ("mdn", 29, 0, False)
    assert {"eye", "wine glass", "face"} <= set(shipped.classes)


def test_load_takes_a_checkpoint_of_every_model(tiny_models):
    for kind in models.names():
        model = sketchgen.load(tiny_models[kind])
        assert (model.kind, model.classes) == (kind, SEED_CLASSES)
        assert (model.latent_dim > 0) == model.encodes
        drawings = model.sample(n=2)
        assert [d.word for d in drawings] == [c for c in SEED_CLASSES for _ in range(2)]
        assert all(in_frame(d) for d in drawings if d.points)


def test_load_takes_a_magenta_model_file_directly(zoo_files, tmp_path):
    model = sketchgen.load(zoo_files["sheep"])
    assert (model.kind, model.classes, model.latent_dim) == ("mdn", ["sheep"], 0)
    sheep = model.sample("sheep", n=2, seed=4)
    assert main(["sample", "--checkpoint", str(zoo_files["sheep"]), "--n", "2", "--seed", "4", "--out",
                 str(tmp_path)]) == 0
    assert fields(sheep) == drawn(tmp_path / "samples.ndjson")
    assert all(len(d.points) > 1 for d in sheep)


def test_importing_sketchgen_waits_for_no_pytorch():
    code = "import sys, sketchgen; sketchgen.Drawing; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_the_package_offers_its_public_names_and_nothing_else():
    """Its submodules aside (Python adds each one imported), nothing the package uses itself shows as public."""
    offered = {name for name in dir(sketchgen) if not name.startswith("_")
               and getattr(getattr(sketchgen, name), "__name__", None) != f"sketchgen.{name}"}
    assert offered == set(sketchgen.__all__), f"dir(sketchgen) differs from __all__: {offered ^ set(sketchgen.__all__)}"


def test_help_lists_every_public_name():
    text = pydoc.render_doc(sketchgen, renderer=pydoc.plaintext)
    missing = [name for name in sketchgen.__all__ if not re.search(rf"\b{name}\b\(", text)]
    assert not missing, f"help(sketchgen) does not list {missing}"


# --- drawing: the same drawings as the command line --------------------------------------------


def test_sample_draws_what_the_command_line_draws_for_the_same_seed(shipped, tmp_path):
    drawings = shipped.sample(["eye", "wine glass"], n=3, seed=7, temperature=0.5)
    assert [d.word for d in drawings] == ["eye"] * 3 + ["wine glass"] * 3
    assert main(["sample", "--classes", "eye", "wine glass", "--n", "3", "--seed", "7", "--temperature", "0.5",
                 "--out", str(tmp_path)]) == 0
    assert fields(drawings) == drawn(tmp_path / "samples.ndjson")
    assert all(in_frame(d) for d in drawings)
    assert len({json.dumps(f) for _, f in fields(drawings)}) == 6  # each drawing its own
    again = shipped.sample("wine glass", n=1, seed=7 + 3 * DRAWING_STRIDE, temperature=0.5)  # drawing 3's own seed
    assert fields(again) == fields(drawings[3:4])


def test_complete_keeps_the_start_exactly_and_draws_what_sample_prefix_draws(shipped, eyes, tmp_path):
    real = eyes[0]
    done = shipped.complete(real, n=3, seed=5, strokes=2)
    assert [d.word for d in done] == ["eye"] * 3
    for d in done:
        assert [(list(x), list(y)) for x, y in d.strokes[:2]] == [(list(x), list(y)) for x, y in real.strokes[:2]]
    assert max(len(d.points) for d in done) > 2  # the model went on
    sketchgen.write_ndjson([real], tmp_path / "start.ndjson")
    assert main(["sample", "--classes", "eye", "--n", "3", "--seed", "5", "--prefix", str(tmp_path / "start.ndjson"),
                 "--prefix-strokes", "2", "--out", str(tmp_path / "cli")]) == 0
    fitted = [sketchgen.Drawing.from_stroke3(d.stroke3, d.word) for d in done]
    assert fields(fitted) == drawn(tmp_path / "cli" / "samples.ndjson")


def test_a_start_at_the_edge_of_what_a_drawing_may_hold_is_refused_as_such(shipped):
    """The model's strokes after a start at (16383, 16383) go past the edge: the refusal named a point the caller
    never gave (an audit's find); it says why now. A start well inside is completed."""
    edge = sketchgen.Drawing.from_strokes([([16383], [16383])], "bear")
    with pytest.raises(sketchgen.SketchgenError, match=r"^a completion: stroke 1 point 0 is .* \(a start near the "
                                                        r"\+-16383 edge can take the model's strokes past it: move"):
        shipped.complete(edge, n=4)
    assert len(shipped.complete(sketchgen.Drawing.from_strokes([([100], [100])], "bear"), n=2)) == 2


def test_complete_draws_a_start_as_the_class_asked_for(shipped, eyes):
    as_face = shipped.complete(eyes[:2], classes="face", seed=1)
    each = shipped.complete(eyes[:2], classes=["face", "eye"], seed=1)
    assert [d.word for d in as_face] == ["face", "face"] and [d.word for d in each] == ["face", "eye"]
    assert fields(each[:1]) == fields(as_face[:1])


# --- a model that encodes: the vae -------------------------------------------------------------


def test_train_returns_the_run_and_its_best_checkpoint_loads(vae_run):
    run, log = vae_run
    assert run.best.is_file() and run.last.is_file() and (run.out / "loss_curve.png").is_file()
    assert [r["step"] for r in run.history] == [30, 60] and all(np.isfinite(r["val_loss"]) for r in run.history)
    assert log[0] == f"training vae on {len(run.data.indices('train'))} drawings of 2 classes -> {run.out}"
    best = min(r["val_loss"] for r in run.history)
    assert repr(run) == f"<sketchgen run in {run.out}: 2 validations, best validation loss {best:.4f}>"
    model = run.load()
    tiny = models.get("vae").tiny
    assert (model.kind, model.classes, model.encodes, model.latent_dim) == ("vae", ["circle", "eye"], True,
                                                                              tiny["latent_size"])


def test_reconstruct_variations_and_interpolate_draw_what_the_commands_draw(vae_run, eyes, tmp_path):
    model = vae_run[0].load()
    given = tmp_path / "given.ndjson"
    sketchgen.write_ndjson(eyes[:2], given)

    redrawn = model.reconstruct(eyes[:2], seed=2)
    assert [d.word for d in redrawn] == ["eye", "eye"] and all(in_frame(d) for d in redrawn if d.points)
    # Made CHUNK at a time (it was all at once, without bound): drawing i is still what it is alone, with its seed.
    many = model.reconstruct(eyes[:1] * (CHUNK + 2), seed=2)
    assert fields(many[CHUNK + 1 :]) == fields(model.reconstruct(eyes[0], seed=2 + (CHUNK + 1) * DRAWING_STRIDE))
    assert main(["reconstruct", "--checkpoint", str(vae_run[0].best), "--input", str(given), "--seed", "2",
                 "--out", str(tmp_path / "r")]) == 0
    assert fields(redrawn) == drawn(tmp_path / "r" / "reconstructions.ndjson")

    varied = model.variations(eyes[:2], n=3, seed=4)
    assert [d.word for d in varied] == ["eye"] * 6
    assert main(["sample", "--checkpoint", str(vae_run[0].best), "--around", str(given), "--n", "3", "--seed", "4",
                 "--out", str(tmp_path / "v")]) == 0
    assert fields(varied) == drawn(tmp_path / "v" / "samples.ndjson")

    frames = model.interpolate(eyes[0], eyes[1], steps=4, seed=3)
    assert [d.info["t"] for d in frames] == pytest.approx([0, 1 / 3, 2 / 3, 1], abs=1e-6)
    assert main(["interpolate", "--checkpoint", str(vae_run[0].best), "--input", str(given), "--steps", "4",
                 "--seed", "3", "--out", str(tmp_path / "i")]) == 0
    assert fields(frames) == drawn(tmp_path / "i" / "interpolation.ndjson")
    assert sum(len(d.points) for d in redrawn + varied + frames) > 0  # the model drew, not only ended


def test_a_model_without_an_encoder_refuses_to_encode(shipped, eyes):
    for call in (lambda: shipped.reconstruct(eyes[0]), lambda: shipped.variations(eyes[0]),
                 lambda: shipped.interpolate(eyes[0], eyes[1])):
        with pytest.raises(sketchgen.SketchgenError, match=r"^a mdn model has no encoder: .*\(train a vae model\)$"):
            call()


# --- Drawing, grids, GIFs, files ---------------------------------------------------------------


def test_drawing_from_strokes_round_trips_through_ndjson(tmp_path):
    strokes = [([10, 80, 80], [20, 20, 90]), (np.array([5.0, 6.0]), np.array([7.0, 8.0]))]
    d = sketchgen.Drawing.from_strokes(strokes, "square", key_id="k1")
    assert (d.word, d.key_id, len(d), len(d.points)) == ("square", "k1", 5, 2)
    assert [(list(x), list(y)) for x, y in d.strokes] == [([10, 80, 80], [20, 20, 90]), ([5, 6], [7, 8])]
    record = json.loads(d.to_ndjson())
    assert (record["word"], record["key_id"], record["drawing"]) == ("square", "k1", [[[10, 80, 80], [20, 20, 90]],
                                                                                     [[5, 6], [7, 8]]])
    sketchgen.write_ndjson([d, d], tmp_path / "two.ndjson")
    back = list(sketchgen.read_ndjson(tmp_path / "two.ndjson"))
    assert fields(back) == fields([d, d]) and back[0].key_id == "k1"
    raw_form = sketchgen.Drawing.from_strokes([([1, 2], [3, 4], [0, 17])], "square")  # a raw stroke's times ignored
    assert [(list(x), list(y)) for x, y in raw_form.strokes] == [([1, 2], [3, 4])]


def test_a_line_too_long_to_write_names_what_makes_it_so(vae_run):
    """A field of 5 MB is named; a million small fields were blamed on the drawing, the largest of them (an audit's
    find). Neither is written: the reader would skip the line."""
    stroke = [([1, 2], [3, 4])]
    for extra, says in (({"big": "x" * 5_000_000}, "its field 'big' says too much"),
                        ({f"k{i}": i for i in range(300_000)}, "its 300,005 fields say too much")):
        with pytest.raises(sketchgen.SketchgenError, match=rf"more than the 1,048,576 a line may have: {says}$"):
            sketchgen.Drawing.from_strokes(stroke, "eye", **extra).to_ndjson()
    with pytest.raises(sketchgen.SketchgenError, match=r"^b must be a sketchgen.Drawing, not 5$"):
        vae_run[0].load().interpolate(sketchgen.Drawing.from_strokes(stroke, "eye"), 5)


def test_a_drawing_shows_as_svg_and_png(eyes, tmp_path):
    d = eyes[0]
    for svg, size in ((d.to_svg(), "256"), (d._repr_svg_(), "160")):
        root = ET.fromstring(svg)
        assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("width") == size
        assert len(root.findall(".//{http://www.w3.org/2000/svg}path")) == len(d.points)
    d.to_png(tmp_path / "eye.png", size=64)
    with Image.open(tmp_path / "eye.png") as im:
        assert im.format == "PNG" and im.size == (64, 64)
        assert np.asarray(im.convert("L")).min() < 100  # ink on white


def test_a_grid_shows_as_png_and_saves(eyes, tmp_path):
    square, row = sketchgen.grid(eyes, columns=2), sketchgen.grid(eyes, columns=4)
    with Image.open(io.BytesIO(square._repr_png_())) as two, Image.open(io.BytesIO(row._repr_png_())) as four:
        assert two.format == four.format == "PNG"
        assert four.width > two.width and four.height < two.height  # 2 rows of 2 against 1 row of 4
    square.save(tmp_path / "grid.png")
    with Image.open(tmp_path / "grid.png") as saved, Image.open(io.BytesIO(square._repr_png_())) as shown:
        assert saved.size == shown.size


def test_animate_writes_a_gif_drawn_stroke_by_stroke(eyes, tmp_path):
    assert sketchgen.animate(eyes[:2], tmp_path / "eyes.gif") == tmp_path / "eyes.gif"
    eyes[0].animate(tmp_path / "one.gif")
    for gif in ("eyes.gif", "one.gif"):
        with Image.open(tmp_path / gif) as im:
            assert im.format == "GIF" and im.n_frames > len(eyes[0].points)


def writers(eyes) -> dict:
    """Each of the library's writers of a file, by name, as a call on the path to write."""
    return {"to_png": lambda p: eyes[0].to_png(p), "animate": lambda p: eyes[0].animate(p),
            "Grid.save": lambda p: sketchgen.grid(eyes[:2]).save(p), "sketchgen.animate":
            lambda p: sketchgen.animate(eyes[:2], p), "write_ndjson": lambda p: sketchgen.write_ndjson(eyes[:2], p)}


def test_a_file_that_cannot_be_written_is_named_as_given(eyes, tmp_path):
    """Under a file, or a name too long: a NotADirectoryError, or an OSError naming the temporary file
    (`.aaa….png.e5g4cr4n.tmp`), not the path given (found by an audit). Still an OSError, as Python's own writers
    raise, now naming the path."""
    (tmp_path / "afile").write_text("")
    for where, reason in ((tmp_path / "afile" / "x.png", f"{tmp_path / 'afile'} is not a folder"),
                          (tmp_path / ("a" * 250 + ".png"), "File name too long")):
        for name, write in writers(eyes).items():
            with pytest.raises(OSError) as refused:
                write(where)
            assert str(refused.value).endswith(f"] {reason}: could not write {where}"), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
    # What the output's own check leaves to the writing is a missing folder, a file above, a name too long: a link
    # that loops (or a folder not to be entered) is still said at once, before any work (found by a review).
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        replaceable(tmp_path / "loop" / "x.png")
    with pytest.raises(OSError, match="File name too long"):  # a whole path past PATH_MAX, each name short
        replaceable(tmp_path.joinpath(*["d" * 200] * 25, "x.png"))


def test_every_writer_refuses_a_link_to_a_fifo_a_device_or_a_folder_and_leaves_it(eyes, tmp_path):
    """An audit's find: a FIFO or a device given to a writer was refused, but a link to one was replaced by the
    file written (as root, ``to_png('/dev/stdout')`` made /dev/stdout a regular file for the whole machine). Each
    writer now refuses it in one line, and the link, and what it leads to, are as they were."""
    os.mkfifo(tmp_path / "fifo")
    targets = {"a FIFO": tmp_path / "fifo", "a device": Path("/dev/null"), "a folder": tmp_path}
    for kind, target in targets.items():
        link = tmp_path / f"to {kind}"
        link.symlink_to(target)  # the link is what would be replaced, never /dev/null itself
        said = f"{str(link)!r}: a link to a folder, not a file; give the file's name" if kind == "a folder" else \
            f"{link}: not a regular file (a link to {kind}); refused: writing would replace it"
        for name, write in writers(eyes).items():
            with pytest.raises(FileRefused) as refused:
                write(link)
            assert str(refused.value) == said, name
            assert link.is_symlink() and link.readlink() == target, name
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo").st_mode) and stat.S_ISCHR(os.lstat("/dev/null").st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", *(f"to {kind}" for kind in targets)]  # nothing left


def test_read_ndjson_reads_raw_drawings_simplified_into_the_frame(quickdraw):
    raw = list(islice(sketchgen.read_ndjson(quickdraw / "raw" / "face.ndjson"), 3))
    assert len(raw) == 3 and all(d.word == "face" and in_frame(d) for d in raw)
    with open(quickdraw / "raw" / "face.ndjson") as f:
        source = json.loads(f.readline())["drawing"]
    assert len(raw[0].points) == len(source)  # a stroke each, thinned
    assert len(raw[0]) < sum(len(s[0]) for s in source)


def test_read_ndjson_reports_each_bad_line_on_stderr_and_keeps_the_good(capsys):
    good = list(sketchgen.read_ndjson(FIXTURES / "bad_lines.ndjson"))
    assert [d.key_id for d in good] == ["good-1", "good-2", "wrong-word", "good-3"]  # any word: none was asked for
    reported = capsys.readouterr().err.splitlines()
    where = re.escape(str(FIXTURES / "bad_lines.ndjson"))
    assert [int(re.fullmatch(rf"{where}:(\d+): [^:]+ \(skipped\)", line)[1]) for line in reported[:-1]] == \
        [2, 3, 5, 8, 9, 10, 11, 13]
    assert re.fullmatch(rf"{where}: 8 bad lines skipped: .+", reported[-1])  # the summary the README promises


# --- bad input: one line, one exception type ---------------------------------------------------


BAD_DRAWINGS = {
    "no strokes": [],
    "not a list": "abc",
    "lengths differ": [([1, 2, 3], [1, 2])],
    "a string coordinate": [(["a", "b"], [1, 2])],
    "NaN": [([1, float("nan")], [1, 2])],
    "None": None,
}


@pytest.mark.parametrize("strokes", BAD_DRAWINGS.values(), ids=BAD_DRAWINGS.keys())
def test_garbage_strokes_are_a_drawing_error(strokes):
    with pytest.raises(sketchgen.DrawingError, match=r"^not a drawing: [^\n]+$"):
        sketchgen.Drawing.from_strokes(strokes, "eye")


def refusals(shipped, tiny_models, vae, eyes, tmp_path) -> dict:
    """Bad input through every door of the library, by what is wrong with it."""
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(tiny_models["mdn"].read_bytes()[:5000])
    damaged_magenta = tmp_path / "damaged.gen.json"
    damaged_magenta.write_text((FIXTURES / "v010-mdn-circle.gen.json").read_text()[:3000])
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    broken = tmp_path / "broken"
    broken.symlink_to(tmp_path / "nowhere")
    train = {"classes": ["eye"], "out": tmp_path / "run", "steps": 1}
    eye = eyes[0]
    return {
        "an unknown class": lambda: shipped.sample("unicorn"),
        "a class as a number": lambda: shipped.sample(5),
        "n below 0": lambda: shipped.sample("eye", n=-1),
        "n not whole": lambda: shipped.sample("eye", n=1.5),
        "temperature 0": lambda: shipped.sample("eye", temperature=0),
        "temperature NaN": lambda: shipped.sample("eye", temperature=float("nan")),
        "temperature a word": lambda: shipped.sample("eye", temperature="hot"),
        "a negative seed": lambda: shipped.sample("eye", seed=-1),
        "a seed beyond 64 bits": lambda: shipped.sample("eye", seed=2**70),
        "max_len 0": lambda: shipped.sample("eye", max_len=0),
        "max_len a word": lambda: shipped.sample("eye", max_len="long"),
        "strokes 0": lambda: shipped.complete(eye, strokes=0),
        "strokes a word": lambda: shipped.complete(eye, strokes="two"),
        "a word not a drawing": lambda: shipped.complete("eye"),
        "no drawings": lambda: shipped.complete([]),
        "a drawing of an unknown class": lambda: shipped.complete(sketchgen.Drawing.from_strokes([([1, 2], [1, 2])],
                                                                                                "unicorn")),
        "more classes than drawings": lambda: shipped.complete(eye, classes=["eye", "face"]),
        "interpolate steps 1": lambda: vae.interpolate(eye, eye, steps=1),
        "interpolate steps a word": lambda: vae.interpolate(eye, eye, steps="ten"),
        "interpolate a non-drawing": lambda: vae.interpolate(eye, [eye]),
        "variations n below 0": lambda: vae.variations(eye, n=-2),
        "n of every class past the limit": lambda: shipped.sample(n=10**6),
        "completions past the limit": lambda: shipped.complete([eye, eye], n=10**6),
        "variations past the limit": lambda: vae.variations([eye, eye], n=10**6),
        "generate a negative label": lambda: list(shipped.generate([-1])),
        "generate a label past its classes": lambda: list(shipped.generate([10**6])),
        "generate a class name": lambda: list(shipped.generate(["eye"])),
        "generate a fraction of a class": lambda: list(shipped.generate([0.5])),
        "generate a bool as a class": lambda: list(shipped.generate([True])),
        "generate labels as a number": lambda: list(shipped.generate(5)),
        "generate labels as a word": lambda: list(shipped.generate("eye")),
        "a prefix that is no function": lambda: list(shipped.generate([0], prefix=5)),
        "a NaN prefix": lambda: list(shipped.generate([0], prefix=lambda i: np.full((3, 3), np.nan))),
        "a prefix of pairs": lambda: list(shipped.generate([0], prefix=lambda i: np.ones((3, 2)))),
        "a prefix far out of frame": lambda: list(shipped.generate([0], prefix=lambda i: [[1e300, 0, 1]])),
        "a word that is no string": lambda: sketchgen.Drawing.from_strokes([([1, 2], [1, 2])], 5),
        "an empty grid": lambda: sketchgen.grid([]),
        "a grid of numbers": lambda: sketchgen.grid([1, 2]),
        "nothing to animate": lambda: sketchgen.animate([], tmp_path / "x.gif"),
        "a missing checkpoint": lambda: sketchgen.load(tmp_path / "nowhere.pt"),
        "a folder as checkpoint": lambda: sketchgen.load(tmp_path),
        "a damaged checkpoint": lambda: sketchgen.load(damaged),
        "a file that is no checkpoint": lambda: sketchgen.load(a_file),
        "a damaged Magenta file": lambda: sketchgen.load(damaged_magenta),
        "a number as path": lambda: sketchgen.load(5),
        "an unknown device": lambda: sketchgen.load(tiny_models["seed"], device="gpu"),
        "classes as a number": lambda: sketchgen.load(classes=5),
        "classes beside a checkpoint": lambda: sketchgen.load(tiny_models["seed"], classes=["eye"]),
        "a class no shipped model draws": lambda: sketchgen.load(classes=["kat"]),
        "no class to load a model for": lambda: sketchgen.load(classes=[]),
        "an empty path": lambda: sketchgen.load(""),
        "more than 100,000 of a class": lambda: shipped.sample("eye", n=100_001),
        "a handmade drawing's stroke-3": lambda: sketchgen.Drawing("eye", [np.array([1, 2, 3])]).stroke3,
        "a handmade drawing to complete": lambda: shipped.complete(sketchgen.Drawing("eye", [np.array([1, 2, 3])])),
        "a handmade drawing in a grid": lambda: sketchgen.grid([sketchgen.Drawing("eye", [np.ones(3)])]).save(
            tmp_path / "g.png"),
        "a NaN in a handmade drawing": lambda: sketchgen.grid([sketchgen.Drawing("eye", [np.full((2, 2), np.nan)])]),
        "a handmade drawing whose word is a number": lambda: sketchgen.grid([sketchgen.Drawing(5, [np.ones((2, 2))])]),
        "an empty drawing to encode": lambda: vae.reconstruct(sketchgen.Drawing.from_points([], "eye")),
        "an empty drawing to vary": lambda: vae.variations([eye, sketchgen.Drawing.from_stroke3(np.zeros((0, 3)))]),
        "a folder to read": lambda: list(sketchgen.read_ndjson(tmp_path)),
        "a folder to write": lambda: sketchgen.write_ndjson([eye], tmp_path),
        "a FIFO to write": lambda: sketchgen.write_ndjson([eye], fifo),
        "a number as a path to read": lambda: sketchgen.read_ndjson(5),
        "a number as a path to write": lambda: sketchgen.write_ndjson([eye], 5),
        "numbers to write as drawings": lambda: sketchgen.write_ndjson([eye, 1, 2], tmp_path / "w.ndjson"),
        "a number to write as drawings": lambda: sketchgen.write_ndjson(5, tmp_path / "w.ndjson"),
        "bytes as a PNG's path": lambda: eye.to_png(str(tmp_path / "x.png").encode()),
        "bytes as a GIF's path": lambda: sketchgen.animate(eye, str(tmp_path / "x.gif").encode()),
        "bytes as a grid's path": lambda: sketchgen.grid([eye]).save(str(tmp_path / "x.png").encode()),
        "out a number": lambda: sketchgen.train(**{**train, "out": 5}),
        "out a broken link": lambda: sketchgen.train(**{**train, "out": broken}),
        "data_dir a number": lambda: sketchgen.train(**train, data_dir=5),
        "init a number": lambda: sketchgen.train(**train, init=5),
        "a missing file to read": lambda: list(sketchgen.read_ndjson(tmp_path / "nowhere.ndjson")),
        "train an unknown class": lambda: sketchgen.train(**{**train, "classes": ["dragonfly"]}),
        "train a class twice": lambda: sketchgen.train(**{**train, "classes": ["eye", "eye"]}),
        "train no classes": lambda: sketchgen.train(**{**train, "classes": []}),
        "train an unknown model": lambda: sketchgen.train(**train, model="gpt"),
        "a setting no model has": lambda: sketchgen.train(**train, wings=2),
        "a setting of another model": lambda: sketchgen.train(**train, model="seed", n_mixtures=3),
        "steps below 0": lambda: sketchgen.train(**{**train, "steps": -1}),
        "steps a word": lambda: sketchgen.train(**{**train, "steps": "many"}),
        "hidden 0": lambda: sketchgen.train(**train, model="mdn", hidden=0),
        "lr NaN": lambda: sketchgen.train(**train, lr=float("nan")),
        "max_per_class 0": lambda: sketchgen.train(**train, max_per_class=0),
        "a negative training seed": lambda: sketchgen.train(**train, seed=-1),
        "a training device this machine lacks": lambda: sketchgen.train(**train, device="cuda:7"),
        "resume and overwrite": lambda: sketchgen.train(**train, resume=True, overwrite=True),
        "resume a number": lambda: sketchgen.train(**train, resume=1),
        "overwrite a word": lambda: sketchgen.train(**train, overwrite="yes"),
        "log a number": lambda: sketchgen.train(**train, log=5),
        "an empty class name to draw": lambda: shipped.sample(""),
        "no classes to draw": lambda: shipped.sample([]),
        "generate, refused at the call (not at the first drawing)": lambda: shipped.generate([-1]),
        "variations without an encoder, refused at the call": lambda: shipped.iter_variations(eye),
        "an empty class name to complete as": lambda: shipped.complete(eye, classes=""),
        "fit a word": lambda: sketchgen.Drawing.from_stroke3(np.zeros((2, 3)), fit="no"),
        "a stroke of ten million points": lambda: sketchgen.Drawing.from_strokes([([0] * 10**7, [0] * 10**7)]),
        "xs and ys given as points": lambda: sketchgen.Drawing.from_points([[[1, 2, 3], [10, 20, 30]]]),
        "out is a file": lambda: sketchgen.train(**{**train, "out": a_file}),
        "a missing init": lambda: sketchgen.train(**train, init=tmp_path / "nowhere.pt"),
        "a missing data folder": lambda: sketchgen.train(**train, data_dir=tmp_path / "nowhere"),
        # Found by an audit (2026-12-07): a bare ValueError ("embedded null byte") from each, and no bound at all.
        "a NUL in a checkpoint's path": lambda: sketchgen.load("eye\0.pt"),
        "a NUL in a path to read": lambda: list(sketchgen.read_ndjson("eye\0")),
        "a NUL in a path to write": lambda: sketchgen.write_ndjson([eye], "eye\0"),
        "a NUL in a PNG's path": lambda: eye.to_png("eye\0.png"),
        "a NUL in a GIF's path": lambda: sketchgen.animate(eye, "eye\0.gif"),
        "a NUL in a grid's path": lambda: sketchgen.grid([eye]).save("g\0.png"),
        "a NUL in init": lambda: sketchgen.train(**train, init="a\0b"),
        "a NUL in out": lambda: sketchgen.train(**{**train, "out": "x\0"}),
        "more than 1,000,000 drawings to reconstruct": lambda: vae.reconstruct([eye] * 1_000_001),
        # Each "" was taken for "not given": the shared drawings, runs/train-<time>, the seed model.
        "an empty data_dir": lambda: sketchgen.train(**train, data_dir=""),
        "an empty out": lambda: sketchgen.train(**{**train, "out": ""}),
        "an empty model": lambda: sketchgen.train(**train, model=""),
        "classes to complete as an array of numbers": lambda: shipped.complete([eye, eye], classes=np.array([1, 2])),
        # Found by an audit of values (2026-12-07): each of the first five was a drawing (ASCII codes, dict keys, a
        # set's order, True as 1), the rest a TypeError, a wrapped offset, a GIF of NaN, or an ndjson key lost.
        "bytes as a stroke's xs": lambda: sketchgen.Drawing.from_strokes([(b"12", b"34")], "eye"),
        "a dict as a stroke's xs": lambda: sketchgen.Drawing.from_strokes([({5: "a"}, {7: "c"})], "eye"),
        "a set as a stroke's xs": lambda: sketchgen.Drawing.from_strokes([({30, 1, 200}, {4, 5, 6})], "eye"),
        "True among a stroke's numbers": lambda: sketchgen.Drawing.from_strokes([([1, True], [0, 1])], "eye"),
        "True among from_points' numbers": lambda: sketchgen.Drawing.from_points([[[1, True], [2, 3]]], "eye"),
        "a 0-d array as strokes": lambda: sketchgen.Drawing.from_points(np.array(5)),
        "a 0-d tensor as strokes": lambda: sketchgen.Drawing.from_points(torch.tensor(5)),
        "a tensor that needs its grad as a stroke's xs": lambda: sketchgen.Drawing.from_strokes(
            [(torch.tensor([1.0, 2.0], requires_grad=True), [1, 2])]),
        "a uint64 offset that wraps around": lambda: sketchgen.Drawing.from_stroke3(
            np.array([[5, 0, 0], [2**64 - 1, 0, 1]], dtype=np.uint64), fit=False),
        "a number naming what is said of a drawing": lambda: sketchgen.Drawing(
            "eye", [np.ones((2, 2))], info={5: "int", "5": "str"}).to_ndjson(),
        "info None": lambda: sketchgen.Drawing("eye", [np.ones((2, 2))], info=None),
        "points a number": lambda: sketchgen.Drawing("eye", 5),
        "a NaN to animate": lambda: sketchgen.animate(sketchgen.Drawing("eye", [np.full((2, 2), np.nan)]),
                                                      tmp_path / "nan.gif"),
        "a flat stroke to animate": lambda: sketchgen.animate(sketchgen.Drawing("eye", [np.ones(3)]),
                                                              tmp_path / "flat.gif"),
    }


def test_every_bad_input_is_one_line_of_a_sketchgen_error(shipped, tiny_models, vae_run, eyes, tmp_path):
    """Never another exception type, never a traceback's worth of text, and nothing trained or written."""
    for what, call in refusals(shipped, tiny_models, vae_run[0].load(), eyes, tmp_path).items():
        try:
            call()
        except sketchgen.SketchgenError as e:
            message = str(e)
            assert message and "\n" not in message and len(message) < 400, f"{what}: {message!r}"
        except Exception as e:  # the point: any other type is the failure
            raise AssertionError(f"{what}: {type(e).__module__}.{type(e).__name__}: {e}") from e
        else:
            raise AssertionError(f"{what}: accepted")
    assert not (tmp_path / "run").exists()  # refused before the run's folder was made
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo").st_mode)  # not replaced by a regular file
    assert not (tmp_path / "w.ndjson").exists() and not (tmp_path / "g.png").exists()  # nothing half-written
    assert not (tmp_path / "nan.gif").exists() and not (tmp_path / "flat.gif").exists()


def test_loading_and_training_leave_torchs_random_state_as_it_was(tiny_models, vae_run, quickdraw, tmp_path):
    """A notebook's torch.manual_seed(0) and the numbers after it are its own: load built the weights at random
    before loading them, and train seeded torch, each changing what the caller drew next."""
    torch.manual_seed(0)
    expected = torch.rand(3)
    for call in (lambda: sketchgen.load(), lambda: sketchgen.load(tiny_models["transformer"]),
                 lambda: sketchgen.train(classes=["circle"], model="seed", out=tmp_path / "run", data_dir=quickdraw,
                                         max_per_class=20, steps=2, hidden=8, log=lambda line: None)):
        torch.manual_seed(0)
        call()
        assert torch.equal(torch.rand(3), expected)


def test_loading_neither_draws_from_nor_sets_torchs_random_state(tiny_models, monkeypatch):
    """Every thread of a process shares torch's random state: load saved and put it back around building the model,
    so a load in one thread wound back the numbers another had drawn meanwhile (an audit's find, 2026-12-07). It
    builds with shapes only now, and never sets the state."""
    def set_state(state):
        raise AssertionError("load set torch's random state")

    monkeypatch.setattr(torch, "set_rng_state", set_state)
    torch.manual_seed(0)
    expected = torch.rand(3)
    for source in (None, *tiny_models.values(), FIXTURES / "v010-mdn-circle.gen.json"):  # Magenta's: imported
        torch.manual_seed(0)
        sketchgen.load(source)
        assert torch.equal(torch.rand(3), expected)


def test_refusals_name_what_is_wrong(shipped, eyes, tmp_path):
    checks = [(lambda: shipped.sample("eye", n=-1), sketchgen.UsageError, "n must be a whole number from 0"),
              (lambda: shipped.sample("eye", seed=1.5), sketchgen.UsageError, "seed must be a whole number"),
              (lambda: shipped.sample("unicorn"), sketchgen.UsageError,  # as complete's (an audit's find)
               "was not trained on unicorn; it knows: bear"),
              (lambda: shipped.complete(eyes[0], classes="unicorn"), sketchgen.UsageError,
               "was not trained on unicorn; it knows: bear"),  # it was "drawing 1 is a 'unicorn'"
              (lambda: shipped.sample("cat"), sketchgen.UsageError, "was not trained on cat "
               "(sketchgen.load(classes=['cat']) loads the shipped model that draws them); it knows: bear"),
              (lambda: sketchgen.load(classes=["eye", "kat"]), sketchgen.UsageError,
               "no shipped model draws 'kat': they draw the 345 Quick, Draw! classes (sketchgen.classes() lists them). "
               "Did you mean 'hat', 'cat', 'bat'?"),
              (lambda: sketchgen.train(classes=["eye"], model="mdn", out=tmp_path, wings=2), sketchgen.SettingError,
               "wings is not a setting of a mdn model"),
              (lambda: shipped.complete(eyes[0], classes=["eye", "face"]), sketchgen.UsageError,
               "2 classes for 1 drawings")]
    for call, kind, words in checks:
        with pytest.raises(kind, match=re.escape(words)):
            call()


def test_a_bad_setting_is_refused_before_the_starting_point_is_said(tmp_path):
    """``cell="gru"`` printed "training from random weights: --cell gru is not the shipped base's ..." and then the
    refusal (an audit's find): the note waits until the settings are known to be good."""
    said = []
    with pytest.raises(sketchgen.SettingError, match="cell is 'gru', not one of lstm, layernorm"):
        sketchgen.train(classes=["eye"], model="mdn", out=tmp_path / "run", cell="gru", log=said.append)
    assert said == [] and not (tmp_path / "run").exists()


def test_generate_refuses_a_label_that_is_no_class_index_naming_it(shipped):
    """``Model.generate`` is public: -1 or 10**6 was an IndexError deep in torch, a name a ValueError, and 0.5 or
    True quietly drew class 0 or 1."""
    last = len(shipped.classes) - 1
    for bad in (-1, last + 1, 10**6, 0.5, np.float64(1.0), True, np.bool_(False), "eye", None, [0]):
        with pytest.raises(sketchgen.UsageError, match=rf"^labels\[2\], a class index, must be a whole number from 0 "
                                                       rf"to {last}, not {re.escape(repr(bad)[:40])}$"):
            list(shipped.generate([0, last, bad], max_len=1))
    for bad in (5, "eye", np.zeros((2, 2), dtype=int), {0, 1}):
        with pytest.raises(sketchgen.UsageError, match=r"^labels must be a sequence of class indices \(model\.labels"):
            list(shipped.generate(bad, max_len=1))
    as_list = list(shipped.generate([3, last], seed=2, max_len=5))  # good labels, in any form, draw as before
    for same in (np.array([3, last]), np.array([3, last], dtype=np.uint8), (np.int32(3), last), range(3, last + 1, last - 3)):
        assert all(np.array_equal(a, b) for a, b in zip(as_list, shipped.generate(same, seed=2, max_len=5), strict=True))


def test_numpy_numbers_as_settings_draw_and_write_as_plain_ones(shipped, eyes, vae_run, tmp_path):
    """A seed or temperature taken from NumPy (np.int64 passes every check) draws what the plain number draws, and
    each drawing records the plain number: NumPy's would not be written as JSON."""
    vae = vae_run[0].load()
    for make in (lambda seed, t: shipped.sample("eye", 2, temperature=t, seed=seed),
                 lambda seed, t: shipped.complete(eyes[:1], strokes=1, temperature=t, seed=seed),
                 lambda seed, t: vae.reconstruct(eyes[:2], temperature=t, seed=seed),
                 lambda seed, t: vae.variations(eyes[:1], 2, temperature=t, seed=seed),
                 lambda seed, t: vae.interpolate(eyes[0], eyes[1], 3, temperature=t, seed=seed)):
        plain, numpy = make(3, 0.5), make(np.int64(3), np.float32(0.5))  # np.float32 was "not a number"
        assert all(type(d.info["seed"]) is int and type(d.info["temperature"]) is float for d in numpy)
        sketchgen.write_ndjson(numpy, tmp_path / "numpy.ndjson")
        sketchgen.write_ndjson(plain, tmp_path / "plain.ndjson")
        assert (tmp_path / "numpy.ndjson").read_bytes() == (tmp_path / "plain.ndjson").read_bytes()
    sketchgen.write_ndjson(plain[0], tmp_path / "one.ndjson")  # one drawing, as animate and complete take one
    assert (tmp_path / "one.ndjson").read_text() == plain[0].to_ndjson() + "\n"


def test_too_many_drawings_are_refused_before_memory_is_spent_on_them(shipped, eyes):
    """n of each class or drawing is multiplied out only once the product is checked: sample(n=10**6) of the 345-class
    model made 345 million labels (2.9 GB) before its refusal, complete([d] * 1000, n=10**6) a MemoryError."""
    calls = {"sample": lambda: shipped.sample(n=10**5), "complete": lambda: shipped.complete(eyes[:1] * 20, n=10**5)}
    for what, call in calls.items():
        tracemalloc.start()  # NumPy reports its arrays to it
        try:
            with pytest.raises(sketchgen.UsageError, match=r"^\d+(,\d{3})+ drawings asked for, more than 1,000,000 in one "
                                                           "call: ask for fewer$"):
                call()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 4 * 2**20, f"{what}: {peak:,} bytes at most before the refusal"
    assert len(shipped.complete(eyes[:2], n=2, max_len=1)) == 4  # a product within the limit is drawn


@pytest.mark.parametrize("pen", [7, -1, 0.5])
def test_a_pen_other_than_0_or_1_is_refused_in_stroke3_and_in_a_prefix(shipped, pen):
    """An audit's find: from_stroke3 took a pen of 7 for a lift and one of -1 or 0.5 for none, and generate fed a
    prefix's pen 7 to the model as it was. Each is now refused in one line naming the row; the model's own drawings,
    which from_stroke3 takes, have pens of 0 and 1 only."""
    s3 = np.array([[1, 1, 0], [2, 2, pen], [3, 3, 1]])
    says = re.escape(f"stroke-3 row 1's pen is {pen:g}, not 0 (down) or 1 (lifted after the point)")
    for fit in (True, False):
        with pytest.raises(sketchgen.DrawingError, match=f"^{says}$"):
            sketchgen.Drawing.from_stroke3(s3, fit=fit)
    with pytest.raises(sketchgen.DrawingError, match=rf"^prefix\(0\) is not the start of a drawing: {says}$"):
        list(shipped.generate([0], prefix=lambda i: s3))
    s3[1, 2] = 1
    assert [len(p) for p in sketchgen.Drawing.from_stroke3(s3, fit=False).points] == [2, 1]
    drawn = list(shipped.generate([0, 1], seed=3)) + list(shipped.generate([0], prefix=lambda i: s3))
    assert all(set(np.unique(d[:, 2])) <= {0, 1} for d in drawn)


def test_too_many_points_are_refused_before_a_stroke_is_copied(tmp_path):
    """An audit's find: every door of a drawing's points copied each stroke to float64 before counting it, so 50
    million uint8 points (100 MB) took 800 MB and 3 s before their refusal. Counted first, they take nothing."""
    many = np.zeros((5_000_000, 2), np.uint8)  # 10 MB here; 80 MB as the floats it was copied to
    calls = {"from_points": lambda: sketchgen.Drawing.from_points([many], "eye"),
             "from_points, the total": lambda: sketchgen.Drawing.from_points([many[:6000], many[:6000]], "eye"),
             "stroke3": lambda: sketchgen.Drawing("eye", [many]).stroke3,
             "to_svg": lambda: sketchgen.Drawing("eye", [many]).to_svg(),
             "to_png": lambda: sketchgen.Drawing("eye", [many]).to_png(tmp_path / "many.png")}
    for what, call in calls.items():
        tracemalloc.start()  # NumPy reports its arrays to it
        try:
            with pytest.raises(sketchgen.DrawingError, match=r"^more than the 10,000 points a drawing may have "
                                                             r"\(stroke [01]\)$"):
                call()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 8 * 2**20, f"{what}: {peak:,} bytes at most before the refusal"
    assert not (tmp_path / "many.png").exists()


@pytest.mark.parametrize("field, says", [("train", "train is not a dict of training settings"),
                                         ("data", "data settings are not the dict training writes"),
                                         ("frozen_classes", "frozen_classes are not some of its classes, each once")])
def test_a_checkpoint_whose_training_fields_are_none_is_refused_in_one_line(tiny_models, tmp_path, capsys, field, says):
    """The checks let a train or data of None through, and evaluate's ``ckpt.get("train", {}).get(...)`` failed on it
    with an AttributeError; nothing writes None there (a model without them, imported or of 0.1.0, has no such key)."""
    path = tmp_path / f"{field}-none.pt"
    torch.save({**torch.load(tiny_models["mdn"], weights_only=True), field: None}, path)
    with pytest.raises(models.CheckpointError, match=f"^{re.escape(str(path))}: {says}$"):
        sketchgen.load(path)
    assert main(["evaluate", "--checkpoint", str(path), "--classifier", str(path), "--n", "5"]) == 1
    assert capsys.readouterr().err == f"sketchgen: error: {path}: {says}\n"


# --- the README's first lines ------------------------------------------------------------------


def test_the_readme_opens_with_five_lines_of_python_that_run(tmp_path, monkeypatch):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert readme.index("```python") < readme.index("## The command line") and len(code.splitlines()) == 5
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    with Image.open(tmp_path / "eyes.png") as im:
        assert im.format == "PNG"
