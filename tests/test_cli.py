"""The ``sketchgen`` command end to end on real drawings: train then sample, the demo with and without
data, and one-line errors."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
import unicodedata

import numpy as np
import pytest
import torch
from PIL import Image

from sketchgen import api, classfiles, cli, data, models, splits
from sketchgen.api import SHIPPED_MODEL
from sketchgen.cli import outputs

SEED_CLASSES = cli.SEED_CLASSES


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def frames(path) -> int:
    with Image.open(path) as image:
        return image.n_frames


def test_a_program_that_calls_main_gets_its_stderr_back_as_it_was():
    """main buffers stderr by the line while it runs (``errors.whole_lines``), so that each line is one write; a
    program that calls it in-process, unbuffered, then lost what it wrote without a newline before ``os._exit``."""
    program = ("import os, sys; from sketchgen.cli import main; main(['classes']); "
               "sys.stderr.write(f'{sys.stderr.line_buffering} {sys.stderr.write_through} working... '); os._exit(0)")
    run = subprocess.run([sys.executable, "-u", "-c", program], capture_output=True, text=True, timeout=120)
    assert run.stderr == "False True working... ", run.stderr


def test_train_then_sample(quickdraw, tmp_path, capsys):
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "--classes", "circle", "eye", "--data-dir", quickdraw / "simplified",
                             "--max-per-class", 100, "--epochs", 2, "--hidden", 64, "--batch-size", 16, "--out", run)
    assert code == 0, err
    assert out.splitlines() == [str(run / "best.pt")]
    assert len((run / "log.jsonl").read_text().splitlines()) == 2
    assert (run / "last.pt").is_file() and Image.open(run / "loss_curve.png").format == "PNG"

    samples = tmp_path / "samples"
    code, out, err = run_cli(capsys, "sample", "--checkpoint", run / "best.pt", "--n", 6, "--seed", 1, "--out", samples)
    assert code == 0, err
    assert out.splitlines() == [str(samples)]
    problems = data.Problems()
    drawings = list(data.read_ndjson(samples / "samples.ndjson", problems=problems))
    assert not problems.counts
    assert [d.word for d in drawings] == ["circle"] * 6 + ["eye"] * 6
    for d in drawings:
        points = np.vstack(d.points)
        assert (points == np.rint(points)).all() and points.min() >= 0 and points.max() <= 255
    # The pen lifts between strokes, as the class asks: all 6 eyes drew 4 to 10 strokes and each circle 1 here, but
    # the weights of 2 epochs differ in their last bits between CPUs, so the bound leaves room.
    circles, eyes = [len(d.points) for d in drawings[:6]], [len(d.points) for d in drawings[6:]]
    assert sum(n > 1 for n in eyes) >= 4 and np.mean(eyes) > np.mean(circles)
    for stem in [f"circle-{i:03d}" for i in range(6)] + [f"eye-{i:03d}" for i in range(6, 12)]:
        assert Image.open(samples / f"{stem}.png").format == "PNG"
        assert (samples / f"{stem}.svg").read_text().lstrip().startswith(("<svg", "<?xml"))


def test_demo_trains_on_real_drawings(quickdraw, tmp_path, capsys):
    run = tmp_path / "demo"
    code, out, err = run_cli(capsys, "demo", "--epochs", 1, "--max-per-class", 50, "--out", run)
    assert code == 0, err
    assert out.splitlines() == [str(run)]
    assert "trained on real drawings" in err
    assert (run / "best.pt").is_file() and (run / "loss_curve.png").is_file()
    for word in SEED_CLASSES:
        assert frames(run / f"{word}-generated.gif") > 1
        with Image.open(run / f"{word}-side_by_side.png") as image:
            assert image.width > image.height  # two drawings beside each other
    assert len(list(data.read_ndjson(run / "generated-samples.ndjson"))) == len(SEED_CLASSES)
    # The sheet of the seed model beside the shipped one: per class real drawings and the seed model's, and the
    # shipped model's drawings of every class it knows.
    shipped = set(models.read(api.shipped_model(SEED_CLASSES))["classes"])
    rows = 2 * len(SEED_CLASSES) + len(shipped & set(SEED_CLASSES))
    with Image.open(run / "seed_beside_shipped.png") as sheet:
        assert sheet.height == 96 * rows and sheet.width > 6 * 96


def test_demo_without_data_draws_from_the_shipped_checkpoint(tmp_path, capsys, monkeypatch):
    if not cli.SHIPPED_CHECKPOINT.is_file():
        pytest.skip(f"the shipped checkpoint {cli.SHIPPED_CHECKPOINT} is not there yet")
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("SKETCHGEN_DATA", str(tmp_path / "empty"))
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "demo")
    assert code == 0, err
    (printed,) = out.splitlines()
    run = tmp_path / printed
    assert printed.startswith("runs/demo-") and run.is_dir()
    assert "shipped checkpoint" in err and not (run / "loss_curve.png").exists()
    for word in SEED_CLASSES:
        assert frames(run / f"{word}-generated.gif") > 1
    assert len(list(run.glob("*-generated-*.png"))) == len(list(run.glob("*.svg"))) == len(SEED_CLASSES)
    assert (run / "seed_beside_shipped.png").is_file()


def test_demo_refuses_what_it_cannot_do_rather_than_draw_something_else(tmp_path, capsys):
    """Found by an audit: demo --data-dir naming a folder without the drawings drew from the shipped model and exited
    0, as if the user had given none; --fine-tune new-classes prepared the data, then asked for an --init demo has
    not got. Without --data-dir and without data, demo still draws from the shipped model (the test above)."""
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "demo", "--data-dir", tmp_path / "empty", "--out", tmp_path / "a")
    assert code == 1 and one_error_line(err) == (f"sketchgen: error: no apple.ndjson or apple.npz in {tmp_path}/empty "
                                                 "(looked in it and its simplified/ folder)")
    code, _, err = run_cli(capsys, "demo", "--fine-tune", "new-classes", "--out", tmp_path / "b")
    assert code == 2 and err.strip() == ("sketchgen demo: error: argument --fine-tune: new-classes trains only the "
                                         "classes a checkpoint lacks, and demo starts from none (sketchgen train "
                                         "--init FILE does)")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_sample_without_a_checkpoint_draws_with_the_shipped_mdn(tmp_path, capsys):
    from sketchgen import models

    net, ckpt = models.load(SHIPPED_MODEL)
    assert net.name == "mdn" and len(ckpt["classes"]) == 29 and SHIPPED_MODEL.stat().st_size < 16 * 2**20
    assert all(v.dtype == torch.float16 for v in models.read(SHIPPED_MODEL)["state_dict"].values())
    code, out, err = run_cli(capsys, "sample", "--classes", "eye", "zigzag", "--n", 3, "--out", tmp_path / "s")
    assert code == 0 and f"drawing with the shipped model {SHIPPED_MODEL.name}" in err
    drawn = list(data.read_ndjson(tmp_path / "s" / "samples.ndjson"))
    assert [d.word for d in drawn] == ["eye"] * 3 + ["zigzag"] * 3
    # A class the 29-class model does not know: the shipped model of all 345 classes draws it.
    from sketchgen.api import BASE_MODEL

    base = models.read(BASE_MODEL)
    assert base["kind"] == "mdn" and len(base["classes"]) == 345 and BASE_MODEL.stat().st_size < 16 * 2**20
    code, out, err = run_cli(capsys, "sample", "--classes", "cat", "eye", "--n", 2, "--out", tmp_path / "c")
    assert code == 0 and "drawing with the shipped model mdn-quickdraw345.pt" in err
    assert [d.word for d in data.read_ndjson(tmp_path / "c" / "samples.ndjson")] == ["cat"] * 2 + ["eye"] * 2


def one_error_line(err: str) -> str:
    assert "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert line.startswith("sketchgen: error: ")
    return line


def test_unknown_class_is_one_line_from_the_real_command(tmp_path):
    """A value of --classes is checked as the command line is parsed: exit 2, nothing prepared."""
    done = subprocess.run([sys.executable, "-m", "sketchgen", "train", "--classes", "eyee", "--out", tmp_path],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2 and not done.stdout
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("sketchgen train: error: argument --classes: unknown class 'eyee'. Did you mean 'eye'")


def test_a_class_no_shipped_model_draws_is_refused_as_train_refuses_one(tmp_path, capsys):
    """`sample` without --checkpoint answered with the library's words (sketchgen.classes(), sketchgen.train) and
    exit 1, where every other command's unknown class is the command line's words and exit 2; a refusal of
    `classifier train` pointed at `sketchgen classifier --help`; `download` of a class Google's bucket cannot hold
    tried the network 4 times."""
    code, out, err = run_cli(capsys, "sample", "--classes", "wine glas", "--out", tmp_path / "s")
    assert (code, out) == (2, "") and err == (
        "sketchgen sample: error: argument --classes: no shipped model draws 'wine glas'. Did you mean 'wine glass', "
        "'wine bottle'? `sketchgen classes` lists all 345 Quick, Draw! classes; a class of your own needs a model "
        "trained on it (`sketchgen train`), given as --checkpoint\n")
    assert not (tmp_path / "s").exists()
    code, out, err = run_cli(capsys, "classifier", "train", "--classes", "wine glas", "--out", tmp_path / "c.pt")
    assert code == 2 and err.endswith("(see sketchgen classifier train --help)\n")
    code, out, err = run_cli(capsys, "download", "wine glas", "--data-dir", tmp_path / "d")  # before: 4 attempts
    assert (code, out) == (2, "") and err.startswith("sketchgen download: error: argument CLASS: unknown class "
                                                     "'wine glas'. Did you mean 'wine glass', 'wine bottle'?")
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("problem", ["missing", "garbage", "foreign class"])
def test_bad_checkpoint_is_one_line(tiny_run, tmp_path, capsys, problem):
    path = {"missing": tmp_path / "nope.pt", "garbage": tmp_path / "garbage.pt",
            "foreign class": tiny_run[0] / "best.pt"}[problem]
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    extra = ["--classes", "dog"] if problem == "foreign class" else []
    code, out, err = run_cli(capsys, "sample", "--checkpoint", path, *extra, "--out", tmp_path / "s")
    assert code == 1 and not out
    line = one_error_line(err)
    assert str(path) in line
    assert {"missing": "no such checkpoint", "garbage": "not a readable", "foreign class": "not trained on"}[problem] in line


def test_bad_data_dir_is_one_line(tmp_path, capsys):
    code, out, err = run_cli(capsys, "train", "--classes", "circle", "--data-dir", tmp_path / "nowhere",
                             "--out", tmp_path / "run")
    assert code == 1 and not out
    assert f"data folder {tmp_path / 'nowhere'}: no such folder" in one_error_line(err)
    (tmp_path / "empty").mkdir()
    code, out, err = run_cli(capsys, "train", "--classes", "circle", "--data-dir", tmp_path / "empty", "--out",
                             tmp_path / "run")
    assert code == 1 and "no circle.ndjson or circle.npz in" in one_error_line(err)
    (tmp_path / "afile").write_text("")
    code, out, err = run_cli(capsys, "train", "--classes", "circle", "--data-dir", tmp_path / "afile", "--out",
                             tmp_path / "run")
    assert code == 1 and "afile: not a folder" in one_error_line(err)
    assert not (tmp_path / "run").exists()


def test_each_model_reads_its_own_flags_and_every_training_setting_is_one():
    """--embed-dim 0 means "grow with the class count" to the mixture models; each training setting has a flag."""
    from dataclasses import fields

    from sketchgen.cli.commands import model_settings, training_settings
    from sketchgen.runs import train_config
    from sketchgen.training import TrainConfig

    parser = cli.build_parser()
    args = parser.parse_args(["train", "--model", "mdn", "--embed-dim", "0", "--optimizer", "adamw",
                              "--weight-decay", "0.1", "--lr-schedule", "cosine", "--warmup", "50", "--grad-clip", "2"])
    cfg = train_config("mdn", None, 0, **training_settings(args), **model_settings(args, "mdn"))
    assert cfg.model_config == {"embed_dim": 0} and (cfg.optimizer, cfg.weight_decay) == ("adamw", 0.1)
    assert (cfg.lr_schedule, cfg.warmup, cfg.grad_clip, cfg.lr_decay) == ("cosine", 50, 2.0, 0.9999)  # mdn's decay
    flags = {a.dest for a in parser._subparsers._group_actions[0].choices["train"]._actions}
    assert {f.name for f in fields(TrainConfig) if f.metadata.get("help")} <= flags
    assert {"lr_schedule", "lr_patience", "lr_decay", "min_lr", "grad_clip", "augment_scale", "augment_drop"} <= flags
    # A run begun with --amp (or --compile) on a GPU, resumed on a CPU: it keeps its own unless told (an audit's find:
    # nothing on the command line could turn them off)
    saved = train_config("mdn", None, 0, amp=True, compile=True)
    for argv, kept in ((["--resume"], True), (["--resume", "--no-amp", "--no-compile"], False)):
        args = parser.parse_args(["train", *argv])
        cfg = train_config(None, vars(saved), 0, **training_settings(args))
        assert (cfg.amp, cfg.compile) == (kept, kept)


def test_a_new_mdn_run_starts_from_the_shipped_base_unless_told_otherwise(quickdraw, tmp_path, capsys):
    """The first line says where a run starts: the layer-norm base of 345 classes by default (a class it never
    saw, such as a class of your own, gets a new row), PyTorch's LSTM's with --cell lstm, random weights with
    --init none or a size no base is."""
    from sketchgen.api import ASSETS

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "apple.ndjson").write_text((quickdraw / "simplified" / "apple.ndjson").read_text())
    teapots = (quickdraw / "simplified" / "teapot.ndjson").read_text().replace('"teapot"', '"my teapot"')
    (mine / "my teapot.ndjson").write_text(teapots)
    argv = ["train", "--model", "mdn", "--classes", "apple", "my teapot", "--data-dir", str(mine), "--steps", "1",
            "--eval-every", "1", "--lr", "1e-9", "--min-lr", "1e-9"]
    for name, extra, says in (("tuned", [], "starting from the shipped base mdn-quickdraw345.pt"),
                              ("lstm", ["--cell", "lstm"], "starting from the shipped base mdn-quickdraw345-lstm.pt"),
                              ("none", ["--init", "none"], "--init none: training from random weights"),
                              ("small", ["--hidden", "64"], "training from random weights: --hidden 64 is not the "
                                                            "shipped base's 512")):
        assert cli.main([*argv, *extra, "--out", str(tmp_path / name)]) == 0
        assert says in capsys.readouterr().err.splitlines()[0]
    for run, name in (("tuned", "mdn-quickdraw345.pt"), ("lstm", "mdn-quickdraw345-lstm.pt")):
        base = models.read(ASSETS / name)
        tuned = models.read(tmp_path / run / "best.pt")
        assert tuned["config"]["cell"] == base["config"]["cell"]
        apple = base["state_dict"]["embed.weight"][base["classes"].index("apple")].float()
        rows = tuned["state_dict"]["embed.weight"].float()
        assert torch.allclose(rows[0], apple, atol=1e-3)  # the class it knows keeps its row (one tiny step)
        assert not torch.allclose(rows[1], apple, atol=1e-3)


def own_classes(quickdraw, tmp_path):
    """A folder of a user's own: 25 teapots under the name teapot-sketches, beside Quick, Draw!'s circles."""
    mine = tmp_path / "mine"
    mine.mkdir()
    lines = (quickdraw / "simplified" / "teapot.ndjson").read_text().splitlines()[:25]
    (mine / "teapot-sketches.ndjson").write_text("\n".join(line.replace('"teapot"', '"teapot-sketches"')
                                                           for line in lines) + "\n")
    (mine / "circle.ndjson").write_text((quickdraw / "simplified" / "circle.ndjson").read_text())
    return mine


def test_fine_tuning_new_classes_only_leaves_what_the_init_draws_bit_for_bit(quickdraw, tmp_path, capsys):
    """--fine-tune new-classes teaches a checkpoint a class without touching anything else: every other weight
    and the known class's row stay bit for bit, through a resume too, so it draws that class exactly as before;
    the new row learns from its own drawings alone. Nothing new to train, or nothing to start from, is refused."""
    mine = own_classes(quickdraw, tmp_path)
    common = ["--model", "mdn", "--data-dir", str(mine), "--eval-every", "3"]
    first, taught = tmp_path / "first", tmp_path / "taught"
    assert cli.main(["train", *common, "--init", "none", "--classes", "circle", "--hidden", "16", "--steps", "6",
                     "--out", str(first)]) == 0
    init = tmp_path / "init.pt"
    shutil.copy(first / "best.pt", init)
    teach = ["train", *common, "--init", str(init), "--fine-tune", "new-classes", "--classes",
             "teapot-sketches", "circle", "--out", str(taught)]
    capsys.readouterr()
    assert cli.main([*teach, "--steps", "3"]) == 0
    init.unlink()  # the run records what it froze: a resume reads --init no more (it failed here, or froze another
    # checkpoint's classes had one taken its place)
    said = capsys.readouterr().err
    assert "--fine-tune new-classes: training only the class rows of teapot-sketches" in said
    assert "class shares of training drawings: teapot-sketches 100.0%, circle 0.0%" in said
    halfway = models.read(taught / "last.pt")["state_dict"]["embed.weight"][0]
    assert cli.main([*teach, "--steps", "6", "--resume"]) == 0
    before, after = models.read(first / "best.pt"), models.read(taught / "last.pt")  # the init's weights (averaged)
    assert after["progress"]["global_step"] == 6 and after["classes"] == ["teapot-sketches", "circle"]
    assert after["frozen_classes"] == models.read(taught / "best.pt")["frozen_classes"] == ["circle"]
    for name, weights in before["state_dict"].items():
        if name == "embed.weight":
            assert torch.equal(after["state_dict"][name][1], weights[0])
            assert not torch.equal(after["state_dict"][name][0], halfway)  # the new row went on learning
        else:
            assert torch.equal(after["state_dict"][name], weights), name
    for run in (first, taught):
        assert cli.main(["sample", "--checkpoint", str(run / "best.pt"), "--classes", "circle", "--n", "3", "--seed",
                         "5", "--out", str(tmp_path / f"drawn-{run.name}")]) == 0
    assert (tmp_path / "drawn-first" / "samples.ndjson").read_bytes() == \
        (tmp_path / "drawn-taught" / "samples.ndjson").read_bytes()
    capsys.readouterr()
    for init, classes, says in ((str(first / "best.pt"), ["circle"], "knows every class of this run"),
                                ("none", ["circle"], "--fine-tune new-classes needs a checkpoint to start from")):
        assert cli.main(["train", *common, "--init", init, "--fine-tune", "new-classes", "--classes", *classes,
                         "--steps", "3", "--out", str(tmp_path / "refused")]) == 1
        (line,) = capsys.readouterr().err.strip().splitlines()[-1:]
        assert says in line, line


def test_a_class_too_small_to_validate_is_named_when_it_trains(quickdraw, tmp_path, capsys):
    """Two drawings split into one to train, none to validate and one to test: the run's validation loss and the
    best weights it keeps say nothing of that class, and train said nothing of it (an audit's find)."""
    mine = own_classes(quickdraw, tmp_path)
    lines = (mine / "teapot-sketches.ndjson").read_text().splitlines()[:2]
    (mine / "tiny.ndjson").write_text("\n".join(line.replace('"teapot-sketches"', '"tiny"') for line in lines) + "\n")
    code, _, err = run_cli(capsys, "train", "--model", "mdn", "--init", "none", "--classes", "tiny", "circle",
                           "--data-dir", mine, "--steps", 2, "--eval-every", 2, "--hidden", 16, "--batch-size", 8,
                           "--workers", 1, "--out", tmp_path / "run")
    assert code == 0, err
    assert "note: no validation drawing of 1 of the classes ('tiny'): the validation loss and the best weights" in err


def test_a_class_of_your_own_trains_and_draws_like_any(quickdraw, tmp_path, capsys):
    """A folder of your drawings under a name of your choosing: listed, trained, drawn; a name no data provides, or
    one that is a path, is refused in one line."""
    mine = own_classes(quickdraw, tmp_path)
    assert cli.main(["classes", "--data-dir", str(mine)]) == 0
    assert capsys.readouterr().out.split("\n")[:2] == ["circle", "teapot-sketches"]
    # Sketch-RNN's prefix names .npz files only: sketchrnn_x.ndjson was listed as x, a class nothing could find.
    shutil.copy(mine / "circle.ndjson", mine / "sketchrnn_x.ndjson")
    assert cli.main(["classes", "--data-dir", str(mine)]) == 0
    assert capsys.readouterr().out.split() == ["circle", "sketchrnn_x", "teapot-sketches"]
    (mine / "sketchrnn_x.ndjson").unlink()
    assert cli.main(["classes", "--data-dir", str(tmp_path / "nowhere")]) == 1  # not an empty list
    assert "nowhere: no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli.main(["classes", "--data-dir", str(tmp_path / "empty")]) == 1
    assert "empty: no <class>.ndjson or .npz file in it" in capsys.readouterr().err
    run = tmp_path / "run"
    assert cli.main(["train", "--model", "mdn", "--init", "none", "--classes", "teapot-sketches", "circle",
                     "--data-dir", str(mine), "--steps", "20", "--eval-every", "10", "--hidden", "16",
                     "--out", str(run)]) == 0
    assert cli.main(["sample", "--checkpoint", str(run / "best.pt"), "--classes", "teapot-sketches", "--n", "2",
                     "--out", str(tmp_path / "drawn")]) == 0
    drawn = [json.loads(line) for line in (tmp_path / "drawn" / "samples.ndjson").read_text().splitlines()]
    assert [d["word"] for d in drawn] == ["teapot-sketches"] * 2  # (after 20 steps, a drawing may be empty)
    capsys.readouterr()
    for name, says in (("teapot-sketch", "unknown class 'teapot-sketch'. Did you mean"), ("../mine/circle", "a path")):
        with pytest.raises(SystemExit) as refused:  # status 2, as argparse refuses a value
            sys.exit(cli.main(["train", "--classes", name, "--data-dir", str(mine), "--out", str(tmp_path / "x")]))
        assert refused.value.code == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert says in line, line


def test_a_class_name_in_any_script_and_either_unicode_form_trains_and_draws(quickdraw, tmp_path, capsys):
    """Persian and emoji names hold zero-width (non-)joiners, which were refused as control characters and passed
    over in silence by `classes`; macOS writes file names decomposed (NFD), so 'café' typed found no café.ndjson and
    every line's word "café" was refused as not its file's. A name is kept as written and found so first, else by
    its composed form: in the data, in a model's classes (the library, the command line, the server), on --resume.
    A bidi override, or joiners alone, are still refused, and said."""
    from sketchgen.serve.sketcher import Sketcher

    mine = own_classes(quickdraw, tmp_path)
    lines = (mine / "teapot-sketches.ndjson").read_text().splitlines()
    cafe, flowers, ohm = "caf\u00e9", "\u06af\u0644\u200c\u0647\u0627", "\u2126"  # ohm: NFC makes it omega
    decomposed = unicodedata.normalize("NFD", cafe)
    for stem in (decomposed, flowers, ohm, "x\u202ey", "\u200d", ".hid"):  # each line's word as its file's name
        (mine / f"{stem}.ndjson").write_text("\n".join(line.replace('"teapot-sketches"', json.dumps(stem))
                                                       for line in lines) + "\n")
    code, out, err = run_cli(capsys, "classes", "--data-dir", mine)
    assert code == 0 and out.split() == sorted(["circle", decomposed, "teapot-sketches", flowers, ohm])
    assert sorted(err.splitlines()) == [f"{mine}/.hid.ndjson: passed over: a hidden name (it starts with '.')",
                                        f"{mine}/\\u200d.ndjson: passed over: an empty name",
                                        f"{mine}/x\\u202ey.ndjson: passed over: it holds U+202E, a control or format "
                                        "character"]
    run = tmp_path / "run"
    train = ["train", "--model", "mdn", "--init", "none", "--data-dir", mine, "--eval-every", 2, "--hidden", 16,
             "--out", run]
    code, _, err = run_cli(capsys, *train, "--classes", cafe, flowers, ohm, "--steps", 2)  # café typed composed
    assert code == 0 and "skipped" not in err, err
    assert models.read(run / "best.pt")["classes"] == [cafe, flowers, ohm]  # as typed; ohm was made omega
    code, _, err = run_cli(capsys, *train, "--classes", decomposed, flowers, ohm, "--steps", 4, "--resume")
    assert code == 0 and models.read(run / "last.pt")["progress"]["global_step"] == 4, err
    code, _, err = run_cli(capsys, "sample", "--checkpoint", run / "best.pt", "--classes", decomposed, flowers,
                           "--n", 2, "--out", tmp_path / "drawn")
    assert code == 0, err
    drawn = [json.loads(line) for line in (tmp_path / "drawn" / "samples.ndjson").read_text().splitlines()]
    assert [d["word"] for d in drawn] == [cafe, cafe, flowers, flowers]  # the model's names
    model = api.load(run / "best.pt")
    start = next(api.read_ndjson(mine / f"{decomposed}.ndjson"))  # its word decomposed, as its file's name
    assert [d.word for d in model.complete(start, classes=decomposed)] == [cafe]
    assert [d.word for d in model.complete(start)] == [cafe]
    assert Sketcher(run / "best.pt", say=lambda line: None).sample({"class": decomposed})["class"] == decomposed
    # evaluate takes the other form too (found by a review).
    code, _, err = run_cli(capsys, "classifier", "train", "--data-dir", mine, "--classes", cafe, flowers,
                           "--epochs", 1, "--out", tmp_path / "judge.pt")
    assert code == 0, err
    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", run / "best.pt", "--classifier", tmp_path / "judge.pt",
                           "--data-dir", mine, "--classes", decomposed, "--n", 2)
    assert code == 0, err
    with (mine / f"{decomposed}.ndjson").open("a") as f:  # the file changed since: said whichever form names it
        f.write(lines[0].replace('"teapot-sketches"', json.dumps(decomposed)) + "\n")
    for form in (cafe, decomposed):
        said: list[str] = []
        splits.own_drawings(run / "best.pt", models.read(run / "best.pt"), [form], data_dir=mine, say=said.append)
        assert any("has changed since" in line for line in said), (form, said)
    (mine / f"{cafe}.ndjson").write_text((mine / "circle.ndjson").read_text())  # the same name composed: a twin
    code, out, err = run_cli(capsys, "classes", "--data-dir", mine)
    assert code == 0 and out.split().count(cafe) == 1 and out.split().count(decomposed) == 1
    assert f"'{decomposed}' (NFD) and '{cafe}' (NFC): one name in 2 Unicode forms, each a class read under its own " \
        "form alone: rename all but one" in err.splitlines()
    with pytest.raises(SystemExit) as refused:  # status 2, as argparse refuses a value
        cli.main(["sample", "--checkpoint", str(run / "best.pt"), "--classes", cafe, decomposed])
    assert refused.value.code == 2 and f"class '{decomposed}' is named twice" in capsys.readouterr().err


def test_a_run_refused_for_its_data_leaves_no_folder_it_made(quickdraw, tmp_path, capsys):
    """--max-len 2 keeps no drawing: refused in one line, and the folder the run made is gone again; a folder the
    user made stays."""
    made_by_user = tmp_path / "mine"
    made_by_user.mkdir()
    for out in (tmp_path / "runs" / "new", made_by_user):
        code, _, err = run_cli(capsys, "train", "--model", "mdn", "--init", "none", "--classes", "apple", "square",
                               "--data-dir", quickdraw / "simplified", "--steps", 2, "--max-len", 2, "--out", out)
        assert code == 1 and err.strip().splitlines()[-1].startswith("sketchgen: error: no training or validation")
    assert not (tmp_path / "runs" / "new").exists() and list(made_by_user.iterdir()) == []


def test_a_class_of_your_own_named_all_is_chosen_by_an_at_file(quickdraw, tmp_path, capsys):
    """`--classes all` means the 345 in every command (`sample --classes all` draws each with the shipped base; it
    was refused as a class the base was not trained on); a class of your own named all is listed in an @FILE, where
    no word is special, and trains and draws like any other."""
    mine = tmp_path / "mine"
    mine.mkdir()
    lines = (quickdraw / "simplified" / "circle.ndjson").read_text().splitlines()[:25]
    (mine / "all.ndjson").write_text("".join(json.dumps({**json.loads(line), "word": "all"}) + "\n" for line in lines))
    (tmp_path / "list.txt").write_text("all\n")
    run = tmp_path / "run"
    assert cli.main(["train", "--model", "mdn", "--init", "none", "--classes", f"@{tmp_path / 'list.txt'}",
                     "--data-dir", str(mine), "--steps", "3", "--eval-every", "3", "--hidden", "16",
                     "--out", str(run)]) == 0
    assert models.read(run / "best.pt")["classes"] == ["all"]
    assert cli.main(["sample", "--checkpoint", str(run / "best.pt"), "--classes", f"@{tmp_path / 'list.txt'}",
                     "--n", "2", "--out", str(tmp_path / "drawn")]) == 0
    drawn = [json.loads(line) for line in (tmp_path / "drawn" / "samples.ndjson").read_text().splitlines()]
    assert [d["word"] for d in drawn] == ["all", "all"]
    code, _, err = run_cli(capsys, "sample", "--checkpoint", run / "best.pt", "--classes", "all", "--out",
                           tmp_path / "refused")
    assert code == 1 and "was not trained on The Eiffel Tower" in err and not (tmp_path / "refused").exists()
    code, _, err = run_cli(capsys, "sample", "--classes", "all", "--out", tmp_path / "every")
    assert code == 0, err
    drawn = [json.loads(line)["word"] for line in (tmp_path / "every" / "samples.ndjson").read_text().splitlines()]
    assert drawn == classfiles.categories()
    # The library alike ("all" was a class name there): the string on its own is the 345, a list holds names.
    base, own = api.load(classes="all"), api.load(run / "best.pt")
    assert base.path == api.BASE_MODEL and [base.classes[i] for i in base.labels("all")] == classfiles.categories()
    assert own.labels(["all"]) == [0] and [d.word for d in own.sample(["all"], n=2)] == ["all", "all"]
    with pytest.raises(api.UsageError, match="was not trained on The Eiffel Tower"):
        own.sample("all")


def test_demo_names_its_files_even_for_a_class_name_near_the_file_systems_limit(quickdraw, tmp_path, capsys):
    word = "日" * 78  # 234 bytes, the most a class name has (classfiles.name_problem); over file_stem's 200
    mine = tmp_path / "mine"
    mine.mkdir()
    lines = (quickdraw / "simplified" / "circle.ndjson").read_text().splitlines()[:60]
    (mine / f"{word}.ndjson").write_text("".join(json.dumps({**json.loads(line), "word": word}) + "\n"
                                                 for line in lines))
    run = tmp_path / "demo"
    code, out, err = run_cli(capsys, "demo", "--data-dir", mine, "--classes", word, "--epochs", 1, "--out", run)
    assert code == 0, err
    stem = "_" * 78  # fileio.safe_name's: ASCII only, a character each, then a digest of the name
    (gif,) = run.glob(f"{stem}-*-generated.gif")
    assert frames(gif) > 1 and len(list(run.glob(f"{stem}-*-side_by_side.png"))) == 1


def test_demo_replaces_an_earlier_demos_drawings_only_when_told_and_checks_first(quickdraw, tmp_path, capsys):
    """Found by an audit: demo wrote over an earlier demo's drawings without a word (the shipped model's, with no
    data), `--overwrite` left an earlier demo's pictures of other classes beside the new run, a folder at a
    picture's name was found after the training, and the classes '-x' and '_-x' shared their pictures."""
    drawn = ["demo", "--data-dir", quickdraw / "simplified", "--epochs", 1, "--max-per-class", 30]
    run = tmp_path / "demo"
    assert run_cli(capsys, *drawn, "--classes", "circle", "eye", "--out", run)[0] == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.suffix in (".png", ".gif", ".svg", ".ndjson")}
    code, _, err = run_cli(capsys, *drawn, "--classes", "circle", "--out", run)
    assert code == 1 and one_error_line(err) == (f"sketchgen: error: {run} holds the drawings of an earlier command "
                                                 "(generated-samples.ndjson): pass --overwrite to replace them, or "
                                                 "another --out")
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.name in before} == before
    assert run_cli(capsys, *drawn, "--classes", "circle", "--out", run, "--overwrite")[0] == 0
    assert not list(run.glob("eye-*")) and (run / "circle-generated.gif").is_file()
    other = tmp_path / "other"
    (other / "circle-generated.gif").mkdir(parents=True)
    code, _, err = run_cli(capsys, *drawn, "--classes", "circle", "--out", other)
    assert code == 1 and "training" not in err and one_error_line(err) == (
        f"sketchgen: error: --out {other}: circle-generated.gif there is a folder, where this command writes a "
        "file: move it, or give another --out")
    assert sorted(p.name for p in other.iterdir()) == ["circle-generated.gif"]


def test_demo_without_data_replaces_an_earlier_demos_drawings_only_when_told(tmp_path, capsys, monkeypatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("SKETCHGEN_DATA", str(tmp_path / "empty"))
    run = tmp_path / "demo"
    assert run_cli(capsys, "demo", "--out", run)[0] == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    code, _, err = run_cli(capsys, "demo", "--out", run, "--seed", 5)
    assert code == 1 and one_error_line(err) == (f"sketchgen: error: {run} holds the drawings of an earlier command "
                                                 "(generated-samples.ndjson): pass --overwrite to replace them, or "
                                                 "another --out")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert run_cli(capsys, "demo", "--out", run, "--seed", 5, "--overwrite")[0] == 0
    assert {p.name for p in run.iterdir()} == set(before)
    assert (run / "generated-samples.ndjson").read_bytes() != before["generated-samples.ndjson"]


def test_a_sample_that_cannot_write_says_which_file_and_leaves_the_folder_as_it_was(tmp_path, capsys):
    """A folder where a drawing's PNG goes: the earlier samples.ndjson was removed, new drawings written, then the
    refusal named samples.ndjson ("[Errno None] ...: could not write samples.ndjson; any earlier version of it is
    intact"). Now every file is checked before anything is removed or written, a full disk (RLIMIT_FSIZE in a real
    process) is said once, of the file it stopped, and the drawings written are taken back with the list unwritten."""
    out = tmp_path / "drawn"
    drawn = ["sample", "--checkpoint", SHIPPED_MODEL, "--classes", "eye"]
    assert run_cli(capsys, *drawn, "--n", 2, "--out", out)[0] == 0
    (out / "eye-002.png").mkdir()
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    code, _, err = run_cli(capsys, *drawn, "--n", 3, "--out", out, "--overwrite")
    assert code == 1 and one_error_line(err) == (f"sketchgen: error: --out {out}: eye-002.png there is a folder, "
                                                 "where this command writes a file: move it, or give another --out")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    limited = ("import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, ({0}, {0})); "
               "from sketchgen.cli import main; sys.exit(main(sys.argv[1:]))")
    # 100 bytes: the first PNG fails; 8,000: every PNG and SVG (under 3 KB) is written, then the list (23 KB) fails.
    for limit, n, stopped in ((100, 3, r"eye-00\d\.png"), (8000, 30, "samples.ndjson")):
        full = tmp_path / f"full-{limit}"
        done = subprocess.run([sys.executable, "-c", limited.format(limit), *map(str, drawn), "--n", str(n),
                               "--out", str(full)], capture_output=True, text=True, timeout=300)
        assert done.returncode == 1
        assert re.fullmatch(rf"sketchgen: error: \[Errno 27\] File too large: could not write {re.escape(str(full))}/"
                            rf"{stopped}; any earlier version of it is intact", one_error_line(done.stderr))
        assert list(full.iterdir()) == []


def test_a_sample_overwrite_that_cannot_write_puts_the_earlier_drawings_back(tmp_path, capsys):
    """`--overwrite` removed the earlier drawings first, so a full disk part way lost them as well as the new ones.
    Now they are moved aside (renames, into a hidden folder of --out) and put back when the command fails, in a
    real process stopped by RLIMIT_FSIZE at its first PNG and at its list; once it succeeds they are gone."""
    out = tmp_path / "drawn"
    drawn = ["sample", "--checkpoint", SHIPPED_MODEL, "--classes", "eye", "--out", out]
    assert run_cli(capsys, *drawn, "--n", 3)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert len(before) == 7
    limited = ("import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, ({0}, {0})); "
               "from sketchgen.cli import main; sys.exit(main(sys.argv[1:]))")
    for limit, stopped in ((100, r"eye-00\d\.png"), (8000, "samples.ndjson")):
        done = subprocess.run([sys.executable, "-c", limited.format(limit), *map(str, drawn), "--n", "30",
                               "--overwrite"], capture_output=True, text=True, timeout=300)
        assert re.fullmatch(rf"sketchgen: error: \[Errno 27\] File too large: could not write {re.escape(str(out))}/"
                            rf"{stopped}; any earlier version of it is intact", one_error_line(done.stderr))
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert run_cli(capsys, *drawn, "--n", 2, "--seed", 1, "--overwrite")[0] == 0
    after = sorted(p.name for p in out.iterdir())
    assert after == ["eye-000.png", "eye-000.svg", "eye-001.png", "eye-001.svg", "samples.ndjson"]
    assert (out / "eye-000.png").read_bytes() != before["eye-000.png"]


def test_a_drawing_command_killed_part_way_has_the_earlier_drawings_put_back_by_the_next(tmp_path, capsys):
    """`kill -9` (or a second Ctrl-C while they were put back) left the earlier drawings moved aside in a hidden
    folder of --out, for good and without a word. Now the next drawing command into the folder puts them back first,
    and one started while another draws there is refused: a real `sample --overwrite` stopped with SIGSTOP once it
    has written some of its drawings, then killed."""
    out = tmp_path / "drawn"
    drawn = ["sample", "--checkpoint", SHIPPED_MODEL, "--classes", "eye", "--out", out]
    assert run_cli(capsys, *drawn, "--n", 3)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    killed = subprocess.Popen([sys.executable, "-m", "sketchgen", *map(str, drawn), "--n", "300", "--seed", "1",
                               "--overwrite"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(24000):  # its drawings are made first; 240 s at most for them and ten of their files
            if (out / "eye-010.png").exists() or killed.poll() is not None:
                break
            time.sleep(0.01)
        killed.send_signal(signal.SIGSTOP)
        assert killed.poll() is None, killed.stderr.read()
        (aside,) = [p.name for p in out.iterdir() if p.name.startswith(".sketchgen-replaced-")]
        code, _, err = run_cli(capsys, *drawn, "--n", 1, "--overwrite")
        assert code == 1 and one_error_line(err) == (f"sketchgen: error: --out {out}: another command is drawing into "
                                                     "it now; wait until it ends, or give another --out")
    finally:
        killed.kill()
        killed.wait()
    assert (out / aside / "samples.ndjson").read_bytes() == before["samples.ndjson"]  # moved aside, not put back
    code, _, err = run_cli(capsys, *drawn, "--n", 2)
    assert code == 1 and err.splitlines() == [
        f"sketchgen: put back in {out} the earlier drawings that a command stopped part way had moved aside ({aside})",
        f"sketchgen: error: {out} holds the drawings of an earlier command (samples.ndjson): pass --overwrite to "
        "replace them, or another --out"]
    # The folder as it was: the killed command's own files at names no earlier file had (which no listing names)
    # and the temporary files it was writing are removed too, as its plan names them (they stayed until 2026-12-07).
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # One stopped while it removed the earlier drawings had succeeded: what it left is removed, nothing put back.
    (out / ".sketchgen-removing-samples.ndjson-x").mkdir()
    (out / ".sketchgen-removing-samples.ndjson-x" / "eye-000.png").write_bytes(b"earlier")
    assert run_cli(capsys, *drawn, "--n", 2, "--seed", 2, "--overwrite")[0] == 0
    assert not [p for p in out.iterdir() if p.name.startswith(".sketchgen-")]
    assert (out / "eye-000.png").read_bytes() not in (b"earlier", before["eye-000.png"])


def test_without_a_lock_a_folder_a_command_was_stopped_in_is_refused(tmp_path, capsys, monkeypatch):
    """On a filesystem without flock (some network ones), what a stopped command left aside was neither put back nor
    refused: the next command with the lock replayed its plan over the drawings written meanwhile (a review's find).
    Without the lock, such a folder is refused; a folder without one is drawn into as before."""
    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(outputs.fcntl, "flock", no_locks)  # the filesystem's, not ours
    out, drawn = tmp_path / "drawn", ["sample", "--checkpoint", SHIPPED_MODEL, "--classes", "eye", "--n", 1]
    assert run_cli(capsys, *drawn, "--out", out)[0] == 0
    (out / ".sketchgen-replaced-samples.ndjson-stopped").mkdir()
    code, _, err = run_cli(capsys, *drawn, "--out", out, "--overwrite")
    assert code == 1 and one_error_line(err) == (
        f"sketchgen: error: --out {out} holds .sketchgen-replaced-samples.ndjson-stopped, a drawing command's that is "
        "running or was stopped, and this filesystem cannot lock the folder to tell which: give another --out")
    assert (out / ".sketchgen-replaced-samples.ndjson-stopped").is_dir()


def test_what_a_stopped_command_said_it_would_write_is_all_that_is_removed(tmp_path, capsys):
    """The files a drawing command stopped for good wrote are removed by the next one as its plan names them, and
    nothing else: the plan is read as any file is, so a name that is a path, a folder, a line that is no name, and
    a name of sketchgen's own folders are passed over."""
    out, victim = tmp_path / "drawn", tmp_path / "victim.png"
    aside = out / ".sketchgen-replaced-samples.ndjson-stopped"
    aside.mkdir(parents=True)
    victim.write_bytes(b"not ours")
    for name in ("cat-007.png", "samples.ndjson", ".cat-007.svg.abc123_x.tmp", "notes.txt", ".sketchgen-keep"):
        (out / name).write_bytes(b"the stopped command's")
    (out / "sub").mkdir()
    (aside / ".sketchgen-writes").write_text("\n".join(['"cat-007.png"', '"cat-007.svg"', '"../victim.png"', '"sub"',
                                                        '{"not": "a name"}', '"cat-0', str(victim),
                                                        '".sketchgen-keep"']))
    code, _, err = run_cli(capsys, "sample", "--checkpoint", SHIPPED_MODEL, "--classes", "eye", "--n", 1, "--out", out)
    assert code == 0 and err == f"sketchgen: removed from {out} the 3 files that a command stopped part way had " \
                                "written\n"
    assert sorted(p.name for p in out.iterdir()) == [".sketchgen-keep", "eye-000.png", "eye-000.svg", "notes.txt",
                                                      "samples.ndjson", "sub"]
    assert victim.read_bytes() == b"not ours" and (out / "notes.txt").read_bytes() == b"the stopped command's"


def test_put_back_never_removes_an_earlier_listing_nor_draws_over_it(tmp_path, capsys):
    """Found by review: stopped while it put the earlier files back, a command could leave the earlier listing back
    in --out and some of its drawings still aside; the next command took that listing for the stopped command's,
    removed it and drew without --overwrite. The listing now goes back last, so a restore stopped part way leaves
    it aside with what it lists; and a folder someone put where ours go is no cause to remove anything."""
    out = tmp_path / "drawn"
    drawn = ["sample", "--checkpoint", SHIPPED_MODEL, "--classes", "eye", "--out", out]
    assert run_cli(capsys, *drawn, "--n", 3)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    refused = (f"sketchgen: error: {out} holds the drawings of an earlier command (samples.ndjson): pass --overwrite "
               "to replace them, or another --out")
    aside = out / ".sketchgen-replaced-samples.ndjson-x"  # a restore stopped part way: the listing still aside
    aside.mkdir()
    for name in ("eye-002.png", "samples.ndjson"):
        os.replace(out / name, aside / name)
    code, _, err = run_cli(capsys, *drawn, "--n", 1)
    assert code == 1 and err.splitlines() == [f"sketchgen: put back in {out} the earlier drawings that a command "
                                              f"stopped part way had moved aside ({aside.name})", refused]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    (out / ".sketchgen-replaced-samples.ndjson-y" / "keep").mkdir(parents=True)  # someone's folder
    for _ in range(2):
        code, _, err = run_cli(capsys, *drawn, "--n", 1)
        assert code == 1 and one_error_line(err) == refused
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_interpolate_replaces_an_earlier_interpolation_only_with_overwrite_and_never_its_input(
        quickdraw, tiny_models, tmp_path, capsys):
    """interpolate wrote over the interpolation in --out without a word, its own --input among them. Now as sample
    and reconstruct do: refused unless --overwrite; and no drawing command writes over or removes its input."""
    two = tmp_path / "two.ndjson"
    simplified = quickdraw / "simplified"
    with (simplified / "circle.ndjson").open() as a, (simplified / "eye.ndjson").open() as b:
        two.write_text(a.readline() + b.readline())
    vae, out = tiny_models["vae"], tmp_path / "morph"
    argv = ["interpolate", "--checkpoint", vae, "--input", two, "--out", out]
    assert run_cli(capsys, *argv, "--steps", 3)[0] == 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(first) == ["interpolation.gif", "interpolation.ndjson", "interpolation.png"]
    code, _, err = run_cli(capsys, *argv, "--steps", 4)
    assert code == 1 and one_error_line(err) == (f"sketchgen: error: {out} holds the drawings of an earlier command "
                                                 "(interpolation.ndjson): pass --overwrite to replace them, or another "
                                                 "--out")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    assert run_cli(capsys, *argv, "--steps", 4, "--overwrite")[0] == 0
    assert len((out / "interpolation.ndjson").read_text().splitlines()) == 4
    for command, listing in (("interpolate", "interpolation.ndjson"), ("reconstruct", "reconstructions.ndjson")):
        own = out / listing
        shutil.copy(two, own)
        for extra in ([], ["--overwrite"]):
            code, _, err = run_cli(capsys, command, "--checkpoint", vae, "--input", own, "--out", out, *extra)
            assert code == 1 and one_error_line(err) == (f"sketchgen: error: --input {own} is the {listing} this "
                                                         f"command writes in --out {out}: give another --out")
        assert own.read_bytes() == two.read_bytes()


def test_an_interpolate_that_cannot_write_leaves_the_folder_as_it_was(quickdraw, tiny_models, tmp_path, capsys):
    """A real process stopped by RLIMIT_FSIZE at its list, in a folder holding files of the names it writes that no
    listing names (a user's own interpolation.png and .gif: the failed command removed both), and at its strip, in
    one holding an earlier interpolation that it replaces with --overwrite: each left byte for byte."""
    two = tmp_path / "two.ndjson"
    with (quickdraw / "simplified" / "circle.ndjson").open() as a, (quickdraw / "simplified" / "eye.ndjson").open() as b:
        two.write_text(a.readline() + b.readline())
    argv = ["interpolate", "--checkpoint", tiny_models["vae"], "--input", two, "--steps", 3]
    made = tmp_path / "made"
    assert run_cli(capsys, *argv, "--out", made)[0] == 0
    sizes = {p.name: p.stat().st_size for p in made.iterdir()}
    assert sizes["interpolation.ndjson"] + 100 < sizes["interpolation.png"]
    mine, earlier = tmp_path / "mine", tmp_path / "earlier"
    mine.mkdir()
    for name in ("interpolation.png", "interpolation.gif"):
        (mine / name).write_bytes(b"my own " + name.encode())
    shutil.copytree(made, earlier)
    limited = ("import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, ({0}, {0})); "
               "from sketchgen.cli import main; sys.exit(main(sys.argv[1:]))")
    for out, extra, limit, stopped in ((mine, [], 100, "interpolation.ndjson"),
                                       (earlier, ["--overwrite"], sizes["interpolation.ndjson"] + 100, "interpolation.png")):
        before = {p.name: p.read_bytes() for p in out.iterdir()}
        done = subprocess.run([sys.executable, "-c", limited.format(limit), *map(str, argv), "--out", str(out), *extra],
                              capture_output=True, text=True, timeout=300)
        assert one_error_line(done.stderr) == (f"sketchgen: error: [Errno 27] File too large: could not write "
                                               f"{out / stopped}; any earlier version of it is intact")
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def first_line(quickdraw, cls: str) -> str:
    with (quickdraw / "simplified" / f"{cls}.ndjson").open() as f:
        return f.readline()


def test_a_drawing_command_never_replaces_another_command_s_drawings(quickdraw, tiny_models, tmp_path, capsys):
    """reconstruct into a folder holding sample's drawings wrote its eye-000.png over sample's without a word (each
    command checked only its own listing). Now refused in one line, the folder as it was; where no name is shared
    (a circle first), both commands' drawings stay side by side, as before."""
    out, given = tmp_path / "drawn", tmp_path / "given.ndjson"
    assert run_cli(capsys, "sample", "--checkpoint", tiny_models["mdn"], "--classes", "eye", "--n", 2,
                   "--out", out)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    reconstruct = ["reconstruct", "--checkpoint", tiny_models["vae"], "--input", given, "--out", out]
    for extra in ([], ["--overwrite"]):
        given.write_text(first_line(quickdraw, "eye"))
        code, _, err = run_cli(capsys, *reconstruct, *extra)
        assert code == 1 and one_error_line(err) == (f"sketchgen: error: --out {out} holds the drawings of another "
                                                     "command (samples.ndjson), eye-000.png among them, which this "
                                                     "command writes: give another --out")
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    given.write_text(first_line(quickdraw, "circle"))
    assert run_cli(capsys, *reconstruct)[0] == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([*before, "circle-000.png", "reconstructions.ndjson"])
    assert all((out / name).read_bytes() == data for name, data in before.items())


def test_an_output_that_cannot_be_made_is_refused_before_the_work(zoo_files, tmp_path, capsys):
    """Found by an audit: evaluate --json under a file (or with a 300-character name) ran the whole evaluation, then
    failed to write. Every single-file output is looked at first: a file above it, a name too long."""
    export = ["export", "--checkpoint", zoo_files["sheep"], "--format", "magenta", "--class", "sheep", "--out"]
    a_file = tmp_path / "a file"
    a_file.write_text("x")
    for out, says in ((a_file / "sub" / "x.gen.json", f"{a_file} is a file, not a folder"),
                      (tmp_path / ("x" * 250 + ".json"), "a name of 255 bytes, longer than a file's may be")):
        code, _, err = run_cli(capsys, *export, out)
        assert code == 1 and one_error_line(err) == f"sketchgen: error: --out {out}: {says}"
    assert run_cli(capsys, *export, tmp_path / "new" / "folders" / "sheep.gen.json")[0] == 0  # made, as before
    undecodable = tmp_path / os.fsdecode(b"\xff.gen.json")  # a name of bytes, as Linux allows: written, as before
    assert run_cli(capsys, *export, undecodable)[0] == 0 and os.path.getsize(undecodable) > 0
    longest = tmp_path / ("x" * 232 + ".gen.json")  # 241 bytes: atomic_write's temporary name still fits 255
    assert run_cli(capsys, *export, longest)[0] == 0


def test_a_json_file_of_a_million_values_at_an_output_is_refused_at_the_cost_of_its_bytes(zoo_files, tmp_path, capsys):
    """What an output would replace is looked at first, and a JSON file was parsed whole to see whether it is a report
    or a model file: 64 MB of "{}," took 1.9 GB (an audit's find). Its values are counted first."""
    bomb = tmp_path / "bomb.json"
    bomb.write_bytes(b"[" + b"{}," * 1_000_000 + b"{}]")
    tracemalloc.start()
    try:
        code, _, err = run_cli(capsys, "export", "--checkpoint", zoo_files["sheep"], "--format", "magenta", "--class",
                               "sheep", "--out", bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 1 and one_error_line(err) == (f"sketchgen: error: --out {bomb} holds another file; writing the "
                                                 "Magenta model file there would lose it: give another --out")
    assert peak < 4 * bomb.stat().st_size + (32 << 20), peak  # the model read beside it: 3 MB of JSON


def test_evaluate_and_export_replace_only_a_file_of_the_kind_they_write(tiny_models, zoo_files, tmp_path, capsys):
    """evaluate --json and export --out replaced any file that parses as JSON (a Magenta zoo model, a project's
    package.json) without a word. Each replaces only what it writes, an earlier report or exported model file; any
    other is refused in one line and left as it was (Magenta's own model file is replaced by export --overwrite)."""
    from sketchgen.classifier import Classifier, ClassifierConfig, save_classifier

    judge, mdn = tmp_path / "judge.pt", tiny_models["mdn"]
    save_classifier(Classifier(ClassifierConfig(n_classes=len(SEED_CLASSES))), SEED_CLASSES, judge)
    rabbit, mine = tmp_path / "rabbit.gen.json", tmp_path / "package.json"
    shutil.copy(zoo_files["rabbit"], rabbit)
    mine.write_text('{"name": "mine", "version": "1.0.0"}\n')
    report, exported = tmp_path / "report.json", tmp_path / "eye.gen.json"
    evaluate = ["evaluate", "--checkpoint", mdn, "--classifier", judge, "--n", 2, "--classes", "eye", "--json"]
    export = ["export", "--checkpoint", mdn, "--format", "magenta", "--class", "eye", "--out"]
    for _ in range(2):  # the second replaces the first's file
        assert run_cli(capsys, *evaluate, report)[0] == 0
        assert run_cli(capsys, *export, exported)[0] == 0
    kept = {p: p.read_bytes() for p in (rabbit, mine, report, exported)}
    zoo = "a Magenta model file not marked as sketchgen's export (Magenta's own, or one exported before 2026-12-07)"
    for argv, path, holds in ((evaluate, rabbit, zoo), (evaluate, mine, "another JSON file"),
                              (evaluate, exported, "a Magenta model file"), (export, mine, "another JSON file"),
                              (export, report, "an evaluate report"), (export, rabbit, zoo)):
        code, _, err = run_cli(capsys, *argv, path)
        what, flag = ("report", "--json") if argv is evaluate else ("Magenta model file", "--out")
        hint = ", or pass --overwrite to replace it" if argv is export and path == rabbit else ""
        assert code == 1 and one_error_line(err) == (f"sketchgen: error: {flag} {path} holds {holds}; writing the "
                                                     f"{what} there would lose it: give another {flag}{hint}")
    assert {p: p.read_bytes() for p in kept} == kept
    for path in (mine, report):  # --overwrite replaces a model file of Magenta's, and nothing else
        assert run_cli(capsys, *export, path, "--overwrite")[0] == 1
    assert run_cli(capsys, *export, rabbit, "--overwrite")[0] == 0
    assert rabbit.read_bytes() == exported.read_bytes() and {p: p.read_bytes() for p in (mine, report)} == \
        {p: kept[p] for p in (mine, report)}


def test_no_file_named_after_a_class_starts_with_a_dash(tiny_models, tmp_path, capsys, monkeypatch):
    """A checkpoint's class named --help was drawn into --help-000.png, which a command given the folder's files
    (`rm *`) reads as an option, and exported by default to --help.gen.json. Such a name now starts with '_'."""
    ckpt = models.read(tiny_models["mdn"])
    ckpt["classes"] = ["--help", "-x", *ckpt["classes"][2:]]
    models.save(tmp_path / "dashes.pt", ckpt)
    out = tmp_path / "drawn"
    assert run_cli(capsys, "sample", "--checkpoint", tmp_path / "dashes.pt", "--n", 2, "--out", out)[0] == 0
    names = sorted(p.name for p in out.iterdir())
    assert not any(n.startswith("-") for n in names)
    assert {"_--help-000.png", "_-x-002.svg"} <= set(names)
    assert [json.loads(line)["word"] for line in (out / "samples.ndjson").read_text().splitlines()][:4] == \
        ["--help", "--help", "-x", "-x"]
    monkeypatch.chdir(tmp_path)
    code, printed, err = run_cli(capsys, "export", "--checkpoint", "dashes.pt", "--format", "magenta", "--class=--help")
    assert code == 0, err
    assert re.fullmatch(r"_--help-[0-9a-f]{8}\.gen\.json", printed.strip()) and (tmp_path / printed.strip()).is_file()
