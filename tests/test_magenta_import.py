"""Magenta's zoo in sketchgen: the four shared model files import, export back exactly, draw, complete, evaluate,
serve and fine-tune; damaged and foreign model files are refused in one line, before anything is allocated.

The browser library's side (the same distributions, drawings as recognisable) is in tests/test_magenta.py.
"""

from __future__ import annotations

import base64
import http.client
import json
import math
import os
import shutil
import threading
import tracemalloc
import unicodedata

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sketchgen
from sketchgen import models, runs, strokes
from sketchgen.cli import main
from sketchgen.data import prepare, write_ndjson
from sketchgen.drawing import Drawing
from sketchgen.errors import one_line
from sketchgen.interop.magenta import import_magenta, magenta_model, read_magenta
from sketchgen.sample import generate
from sketchgen.serve import Sketcher, SketchServer
from sketchgen.training import dataset_loss, usable
from sketchgen.training.checkpoints import take_over

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.function_scoped_fixture])


def int16(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), "<i2").astype(np.int64)


def run_import(path, out, *flags: str) -> int:
    return main(["import", "--format", "magenta", str(path), "--out", str(out), *flags])


def one_line_error(capsys, after_progress: bool = False) -> str:
    """The error of a refused command: its only line on stderr (or its last, after the lines of progress)."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert (after_progress or len(lines) == 1) and lines[-1].startswith("sketchgen: error: "), lines
    assert not any("Traceback" in line for line in lines)
    return lines[-1]


# --- import and export back -----------------------------------------------------------------------------------


def test_every_zoo_file_imports_and_exports_back_to_its_own_weights(zoo_files, zoo_models, tmp_path):
    """int16 for int16 (the issue allows one step; all four come back with none) and the same scale_factor."""
    for name, path in zoo_files.items():
        original = json.loads(path.read_text())
        ckpt = models.read(zoo_models[name])
        assert ckpt["classes"] == [name] and ckpt["imported"] == {"format": "magenta", "file": path.name}
        assert ckpt["config"]["scale"] == original[0]["scale_factor"]
        assert ckpt["config"]["max_len"] == original[0]["max_seq_len"]
        out = tmp_path / f"{name}.gen.json"
        assert main(["export", "--checkpoint", str(zoo_models[name]), "--format", "magenta", "--class", name,
                     "--out", str(out)]) == 0
        info, dims, weights = json.loads(out.read_text())
        assert dims == original[1]
        assert info["scale_factor"] == original[0]["scale_factor"]
        assert info["max_seq_len"] == original[0]["max_seq_len"]
        steps = max(int(np.abs(int16(a) - int16(b)).max()) for a, b in zip(weights, original[2]))
        assert steps <= 1, f"{name}: an int16 weight came back {steps} steps away"
        # The zoo file itself given to export (refused as "not torch's zip format" until 2026-12-07): the same file.
        again = tmp_path / f"{name}-again.gen.json"
        assert main(["export", "--checkpoint", str(path), "--format", "magenta", "--class", name,
                     "--out", str(again)]) == 0
        assert again.read_bytes() == out.read_bytes()


def test_the_class_is_the_zoo_name_as_a_quickdraw_class_unless_given(zoo_models, tiny_zoo_file, tmp_path, capsys):
    assert models.read(zoo_models["palm tree"])["classes"] == ["palm tree"]  # info.name is "palm_tree"
    assert run_import(tiny_zoo_file, tmp_path / "t.pt", "--class", "tree") == 0
    assert models.read(tmp_path / "t.pt")["classes"] == ["tree"]
    doc = json.loads(tiny_zoo_file.read_text())
    doc[0]["name"] = "The_Mona_Lisa"  # any case, as long as it names a class
    (tmp_path / "mona.gen.json").write_text(json.dumps(doc))
    assert run_import(tmp_path / "mona.gen.json", tmp_path / "m.pt") == 0
    assert models.read(tmp_path / "m.pt")["classes"] == ["The Mona Lisa"]
    del doc[0]["name"]
    (tmp_path / "anon.gen.json").write_text(json.dumps(doc))
    capsys.readouterr()
    assert run_import(tmp_path / "anon.gen.json", tmp_path / "a.pt") == 1
    assert "has no name: say which class it draws with --class" in one_line_error(capsys)
    assert run_import(tmp_path / "anon.gen.json", tmp_path / "a.pt", "--class", "cat") == 0
    capsys.readouterr()
    for bad, why in (("", "an empty name"), ("../cat", "a path, not a name")):  # not "has no name"
        assert run_import(tmp_path / "anon.gen.json", tmp_path / "b.pt", "--class", bad) == 1
        assert f"--class {bad!r} is not a class name ({why})" in one_line_error(capsys)
    assert not (tmp_path / "b.pt").exists()


# --- drawing, completing, evaluating and serving an imported model -------------------------------------------


def test_imported_models_draw_in_python(zoo_files, zoo_models, tmp_path):
    for name, path in zoo_models.items():
        out = tmp_path / name
        assert main(["sample", "--checkpoint", str(path), "--n", "2", "--seed", "1", "--out", str(out)]) == 0
        records = [json.loads(line) for line in (out / "samples.ndjson").read_text().splitlines()]
        assert [r["word"] for r in records] == [name, name] and all(r["drawing"] for r in records)
        net, _ = models.load(path)
        # The generation limit is the file's max_seq_len (its longest training drawing), where the rabbit often
        # stops in the library too; every model ends some drawings itself.
        ends = [len(d) for d in generate(net, [0] * 10, 0.4, seed=0)]
        assert min(ends) < net.cfg.max_len == json.loads(zoo_files[name].read_text())[0]["max_seq_len"], ends


def test_imported_models_finish_a_started_drawing(zoo_models, zoo_data, tmp_path, capsys):
    test = zoo_data.indices("test")
    sheep = zoo_data.stroke3(test[zoo_data.labels[test] == zoo_data.classes.index("sheep")][0])
    start = strokes.strokes_to_stroke3(strokes.stroke3_to_strokes(sheep)[:2])
    net, _ = models.load(zoo_models["sheep"])
    for done in generate(net, [0, 0], 0.4, seed=0, prefixes=[start, start]):
        assert np.array_equal(done[: len(start)], start) and len(done) > len(start)
    prefix = tmp_path / "start.ndjson"
    write_ndjson([Drawing.from_points(strokes.stroke3_to_strokes(start), "sheep", key_id="start")], prefix)
    assert main(["sample", "--checkpoint", str(zoo_models["sheep"]), "--prefix", str(prefix), "--n", "2",
                 "--out", str(tmp_path / "file")]) == 0
    # Its own test drawings: an import records no split of ours, so the data rule's drawings are split as usual.
    assert main(["sample", "--checkpoint", str(zoo_models["sheep"]), "--prefix", "test", "--prefix-strokes", "2",
                 "--n", "2", "--out", str(tmp_path / "test")]) == 0
    assert "imported from sheep.gen.json" in capsys.readouterr().err
    assert len((tmp_path / "test" / "samples.ndjson").read_text().splitlines()) == 2


def test_evaluate_an_imported_model_on_the_shared_drawings_of_its_class(zoo_models, zoo_files, zoo_classifier,
                                                                        tmp_path, capsys):
    """The import, and the .gen.json itself as load reads it (evaluate read it again as a .pt and refused it,
    after preparing the data): the same report."""
    reports = {}
    for name, checkpoint in (("import", zoo_models["sheep"]), ("file", zoo_files["sheep"])):
        reports[name] = tmp_path / f"{name}.json"
        assert main(["evaluate", "--checkpoint", str(checkpoint), "--classifier", str(zoo_classifier),
                     "--n", "20", "--json", str(reports[name])]) == 0
        assert "imported from sheep.gen.json" in capsys.readouterr().err
    sheep, same = (json.loads(reports[name].read_text())["classes"]["sheep"] for name in ("import", "file"))
    assert sheep["n_real_test"] >= 2 and math.isfinite(sheep["test_loss"])
    assert sheep["recognisability"] >= 0.6, sheep  # 0.92 of 100 drawings, measured with the same judge
    assert same == sheep


def test_serve_an_imported_model(zoo_models, zoo_data):
    sketcher = Sketcher(zoo_models["key"])
    server = SketchServer(sketcher, "127.0.0.1", 0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        conn = http.client.HTTPConnection(*server.server_address, timeout=60)
        conn.request("POST", "/api/sample", body=json.dumps({"class": "key", "seed": 2}),
                     headers={"Content-Type": "application/json"})
        reply = conn.getresponse()
        assert reply.status == 200
        drawing = strokes.parse_drawing(json.loads(reply.read())["strokes"])
        assert drawing and max(float(np.max(s)) for s in drawing) <= 255
        conn.close()
    finally:
        server.shutdown()
        server.server_close()
    test = zoo_data.indices("test")
    key = zoo_data.stroke3(test[zoo_data.labels[test] == zoo_data.classes.index("key")][0])
    user = strokes.drawing_field(strokes.quickdraw_strokes(key)[:1])
    finished = sketcher.complete({"class": "key", "strokes": user, "seed": 1})
    assert finished["n_prefix"] == 1 and len(finished["strokes"]) >= 1


# --- fine-tuning ------------------------------------------------------------------------------------------------


def test_fine_tune_an_imported_model_on_the_shared_drawings_of_its_class(zoo_models, tmp_path, capsys):
    """Its weights, its offset scale and sizes are taken over (no --model: the init's kind), and training moves
    them: after two small steps its validation loss is near the imported model's own (measured 0.09 against
    -0.03 nats a step: the zoo's sharpest components, sigmas of e^-15, are the first thing a step blurs), far
    below where the same model starts from random weights (2.99)."""
    out = tmp_path / "sheep"
    assert main(["train", "--init", str(zoo_models["sheep"]), "--classes", "sheep", "--steps", "2",
                 "--eval-every", "2", "--batch-size", "16", "--lr", "1e-5", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"--init {zoo_models['sheep']}: started from 7 of the model's 7 weight tensors\n" in err
    imported, _ = models.load(zoo_models["sheep"])
    tuned, ckpt = models.load(out / "best.pt")
    for key in ("scale", "hidden", "embed_dim", "log_sigma_limit"):
        assert ckpt["config"][key] == imported.cfg.__dict__[key], key
    assert ckpt["train"]["init"] == str(zoo_models["sheep"])
    moved = [k for k, v in tuned.state_dict().items() if not torch.equal(v, imported.state_dict()[k])]
    assert "lstm.weight_hh_l0" in moved and "head.weight" in moved
    data = prepare(["sheep"], None, 100_000, 0)  # the split train used: the data rule's, the default cap and seed
    valid = usable(data, "valid", 250)
    own = dataset_loss(imported, data, valid, 64)[0]
    torch.manual_seed(0)
    fresh = dataset_loss(models.build("mdn", **ckpt["config"]), data, valid, 64)[0]
    assert ckpt["val_loss"] < own + 0.5 < fresh - 1, (ckpt["val_loss"], own, fresh)


def test_a_magenta_file_given_to_init_trains_as_its_import_does(zoo_files, zoo_models, tmp_path, capsys):
    """`sketchgen.load` reads a .gen.json as it is, so one given to --init was a natural try; it was refused as "not
    a readable sketchgen checkpoint (not torch's zip format); retrain or pass another". Now it is read as the import
    reads it: the same weights after two steps as from the imported checkpoint, and the file named as the init."""
    sheep = zoo_files["sheep"]
    flags = ["--classes", "sheep", "--steps", "2", "--eval-every", "2", "--batch-size", "16", "--lr", "1e-5"]
    assert main(["train", "--init", str(sheep), *flags, "--out", str(tmp_path / "json")]) == 0
    assert f"--init {sheep}: started from 7 of the model's 7 weight tensors\n" in capsys.readouterr().err
    assert main(["train", "--init", str(zoo_models["sheep"]), *flags, "--out", str(tmp_path / "pt")]) == 0
    from_json, from_pt = (models.read(tmp_path / run / "best.pt") for run in ("json", "pt"))
    assert from_json["train"]["init"] == str(sheep) and from_json["config"] == from_pt["config"]
    assert runs.train_config(None, None, 0, init=str(sheep)).model == "mdn"  # the library's kind too
    assert all(torch.equal(w, from_pt["state_dict"][k]) for k, w in from_json["state_dict"].items())
    # A flag of another model is refused as not this run's model's, which no --model named here.
    assert main(["train", "--init", str(sheep), *flags, "--heads", "2", "--out", str(tmp_path / "heads")]) == 1
    assert capsys.readouterr().err.strip().endswith(
        "--heads does not apply to the mdn model this run trains (--model chooses another)")


def test_a_magenta_file_named_in_capitals_loads_as_any(zoo_files, tmp_path):
    """SHEEP.GEN.JSON was read as a torch checkpoint: 'not torch's zip format'."""
    shutil.copy(zoo_files["sheep"], tmp_path / "SHEEP.GEN.JSON")
    assert sketchgen.load(tmp_path / "SHEEP.GEN.JSON").classes == ["sheep"]


def test_new_classes_alone_from_a_one_class_import_are_refused_as_training_nothing(zoo_files, tmp_path, capsys):
    """An import's class input is zero (one class needs none), so under --fine-tune new-classes, which trains the
    new class rows alone, no step changed anything: the run reported success with the same loss at every step."""
    out = tmp_path / "taught"
    assert main(["train", "--init", str(zoo_files["sheep"]), "--fine-tune", "new-classes", "--classes", "sheep", "eye",
                 "--max-per-class", "40", "--steps", "3", "--eval-every", "1", "--batch-size", "8",
                 "--out", str(out)]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "sketchgen: error: the first step gave none of the weights this run trains a gradient, so no step would "
        "change them: --init's model makes no use of the class rows this trains (an imported one-class model's "
        "class input is zero): train with --fine-tune all")
    assert not out.exists()


def test_fine_tune_on_other_classes_says_what_starts_from_scratch(zoo_models, tmp_path, capsys):
    assert main(["train", "--init", str(zoo_models["sheep"]), "--classes", "sheep", "rabbit", "--steps", "1",
                 "--batch-size", "8", "--out", str(tmp_path / "two")]) == 0
    err = capsys.readouterr().err
    assert "started from 7 of the model's 7 weight tensors; from scratch: the embed.weight rows of rabbit " \
           "(classes it was not trained on)" in err
    assert main(["train", "--init", str(zoo_models["sheep"]), "--classes", "sheep", "--hidden", "16", "--steps", "1",
                 "--batch-size", "8", "--out", str(tmp_path / "small")]) == 0
    err = capsys.readouterr().err
    assert "started from 2 of the model's 7 weight tensors; from scratch: lstm.weight_ih_l0 (2048x6 there, " \
           "64x6 here)" in err
    assert main(["train", "--init", str(zoo_models["sheep"]), "--classes", "sheep", "--cell", "layernorm", "--steps",
                 "1", "--batch-size", "8", "--out", str(tmp_path / "other cell")]) == 0
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("--init")]
    assert said[0].endswith("; not used: lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0 "
                            "(this model has no such weights)"), said


def test_init_rows_follow_class_names(tiny_models):
    """A class both know keeps its embedding row wherever it sits; a new class keeps its fresh one."""
    ckpt = models.read(tiny_models["mdn"])
    net = models.build("mdn", n_classes=2, **{k: ckpt["config"][k] for k in ("embed_dim", "hidden", "scale")})
    fresh = net.embed.weight[1].clone()
    line = take_over(net, ["eye", "zigzag"], ckpt, "tiny.pt")
    assert torch.equal(net.embed.weight[0], ckpt["state_dict"]["embed.weight"][ckpt["classes"].index("eye")])
    assert torch.equal(net.embed.weight[1], fresh)
    assert line.endswith("from scratch: the embed.weight rows of zigzag (classes it was not trained on)")


def test_a_run_started_from_a_checkpoint_resumes_without_it(tiny_models, tmp_path, capsys):
    init = tmp_path / "init.pt"
    init.write_bytes(tiny_models["mdn"].read_bytes())
    out = tmp_path / "run"
    flags = ["--classes", "eye", "circle", "--max-per-class", "40", "--batch-size", "16", "--eval-every", "2",
             "--out", str(out)]
    assert main(["train", "--init", str(init), "--steps", "2", *flags]) == 0
    # The same command again with --resume, the init spelt another way: it was "a run with other init".
    assert main(["train", "--resume", "--init", f"{tmp_path}/./init.pt", "--steps", "3", *flags]) == 0
    capsys.readouterr()  # another setting is refused before anything is said of what the resumed run would train
    assert main(["train", "--resume", "--fine-tune", "new-classes", "--steps", "4", *flags]) == 1
    err = capsys.readouterr().err
    assert "training only the class rows" not in err and err.strip().splitlines()[-1].endswith(
        "last.pt is from a run with other --fine-tune ('all' there, 'new-classes' here): pass the same settings with "
        "--resume, or --overwrite to start over")
    init.unlink()  # the run's own settings hold what it took from the init; its weights are in last.pt
    assert main(["train", "--resume", "--steps", "4", *flags]) == 0  # (step 4 was not trained before 2026-12-07)
    assert [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()] == [2, 3, 4]
    flags[-1] = str(tmp_path / "fresh")  # --init none, which a run records as no init, given again to resume
    assert main(["train", "--model", "mdn", "--init", "none", "--hidden", "16", "--steps", "2", *flags]) == 0
    assert main(["train", "--init", "none", "--resume", "--steps", "4", *flags]) == 0
    assert "resumed from" in capsys.readouterr().err
    assert models.read(out / "best.pt")["config"]["scale"] == models.read(tiny_models["mdn"])["config"]["scale"]


def test_init_refuses_another_kind_or_a_missing_file(tiny_models, zoo_models, tmp_path, capsys):
    assert main(["train", "--model", "seed", "--init", str(zoo_models["sheep"]), "--classes", "sheep",
                 "--out", str(tmp_path / "a")]) == 1
    assert "holds a mdn model; a seed model cannot start from its weights" in one_line_error(capsys, True)
    assert main(["train", "--init", str(tmp_path / "nothing.pt"), "--classes", "sheep",
                 "--out", str(tmp_path / "b")]) == 1
    assert "no such checkpoint" in one_line_error(capsys)


# --- damaged and foreign files ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_zoo_file(tmp_path_factory):
    """A valid decoder-only model file as the zoo writes them (mode 2, version 6), with an LSTM of 8 units."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("tiny_zoo")
    net = models.build("mdn", n_classes=1, hidden=8, scale=60.9)
    models.save(root / "cat.pt", models.checkpoint_dict(net, ["cat"]))
    info, dims, weights = magenta_model(root / "cat.pt", "cat")
    path = root / "cat.gen.json"
    path.write_text(json.dumps([{"mode": 2, "version": 6, "max_seq_len": 110, "name": "cat",
                                 "scale_factor": info["scale_factor"]}, dims, weights]))
    return path


def refused(capsys, path, out) -> str:
    assert run_import(path, out) == 1
    assert not out.exists()
    return one_line_error(capsys)


def spoiled(doc, how):
    doc = json.loads(json.dumps(doc))
    how(doc)
    return doc


def _vae(doc):
    doc[1][:0] = [[4, 32]] * 12
    doc[2][:0] = [doc[2][2]] * 12


def _latent(doc):
    doc[1][2] = [5 + 128, 32]
    doc[2][2] = base64.b64encode(bytes(2 * 133 * 32)).decode()


HUGE = 10**7  # LSTM units a file may claim: its declared weights would take exabytes
SPOILS = {
    "truncated base64": (lambda d: d[2].__setitem__(3, d[2][3][:-8]),
                         "recurrent kernel holds 676 base64 characters; 256 int16 values of shape [8, 32] take 684"),
    "a weight of the wrong byte count": (lambda d: d[2].__setitem__(4, d[2][4] + "AAAA"), "LSTM bias holds 92 base64"),
    "not base64": (lambda d: d[2].__setitem__(1, "!" * len(d[2][1])), "the output bias is not valid base64"),
    "a weight that is no string": (lambda d: d[2].__setitem__(0, 5), "output kernel is a int, not a base64 string"),
    "a wrong shape": (lambda d: d[1].__setitem__(3, [7, 32]), "LSTM recurrent kernel has shape [7, 32]; a model of 8"),
    "a shape of no numbers": (lambda d: d[1].__setitem__(1, ["123"]), "the output bias's shape ['123'] is not"),
    "another mixture": (lambda d: d[1].__setitem__(0, [8, 63]),
                        "output kernel gives [63] outputs; the library reads 123"),
    "huge declared shapes": (lambda d: d.__setitem__(1, [[HUGE, 123], [123], [5, 4 * HUGE], [HUGE, 4 * HUGE],
                                                          [4 * HUGE]]), "base64 characters; 1230000000 int16 values"),
    # An audit's find (2026-12-07, later): an OverflowError traceback from every command that read one, serve too.
    "LSTM units of 400 digits": (lambda d: d[1].__setitem__(0, [10**400, 123]),
                                 "0000 is not one or two positive integers of at most 268,435,456"),
    "a VAE (17 weights)": (_vae, "a Sketch-RNN VAE (mode 2, 17 weights"),
    "a VAE by its mode": (lambda d: d[0].__setitem__("mode", 0), "a Sketch-RNN VAE (mode 0, 5 weights"),
    "a decoder of a latent": (_latent, "a decoder conditioned on a latent vector (a VAE's)"),
    "an unknown mode": (lambda d: d[0].__setitem__("mode", "hyper"),
                        "info.mode 'hyper' is not a Sketch-RNN model type"),
    "a boolean mode": (lambda d: d[0].__setitem__("mode", True), "info.mode 'True' is not"),
    "four weights": (lambda d: (d[1].pop(), d[2].pop()), "4 weights; a decoder-only Sketch-RNN model has 5"),
    "shapes and weights apart": (lambda d: d[1].pop(), "4 shapes for 5 weights"),
    "scale_factor NaN": (lambda d: d[0].__setitem__("scale_factor", float("nan")), "info.scale_factor nan is not"),
    "scale_factor negative": (lambda d: d[0].__setitem__("scale_factor", -60.9), "info.scale_factor -60.9 is not"),
    "scale_factor zero": (lambda d: d[0].__setitem__("scale_factor", 0), "info.scale_factor 0 is not a positive"),
    "scale_factor infinite": (lambda d: d[0].__setitem__("scale_factor", 1e400), "info.scale_factor inf is not"),
    "scale_factor huge": (lambda d: d[0].__setitem__("scale_factor", 1e300), "config scale is 1e+300, outside"),
    "scale_factor a string": (lambda d: d[0].__setitem__("scale_factor", "60.9"), "info.scale_factor 60.9 is not"),
    "scale_factor missing": (lambda d: d[0].pop("scale_factor"), "info.scale_factor None is not a positive number"),
    "max_seq_len a string": (lambda d: d[0].__setitem__("max_seq_len", "long"), "info.max_seq_len long is not"),
    "max_seq_len negative": (lambda d: d[0].__setitem__("max_seq_len", -5), "info.max_seq_len -5 is not"),
    "max_seq_len fractional": (lambda d: d[0].__setitem__("max_seq_len", 1.5), "info.max_seq_len 1.5 is not"),
    "max_seq_len a newline": (lambda d: d[0].__setitem__("max_seq_len", "\n"), "info.max_seq_len \\n is not"),
    "max_seq_len huge": (lambda d: d[0].__setitem__("max_seq_len", 10**9), "config max_len is 1000000000, outside"),
    "name not a string": (lambda d: d[0].__setitem__("name", 42), "info.name is a int, not a string"),
    # An audit's finds (2026-12-07): an OverflowError traceback for each number, a class no command could name.
    "scale_factor an integer of 400 digits": (lambda d: d[0].__setitem__("scale_factor", 10**400),
                                              "info.scale_factor 1000000000000000000000000000000000000000 is not"),
    "max_seq_len an integer of 400 digits": (lambda d: d[0].__setitem__("max_seq_len", 10**400),
                                             "info.max_seq_len 1000000000000000000000000000000000000000 is not"),
    "a name that is a path": (lambda d: d[0].__setitem__("name", ".."), "info.name '..' is not a class name"),
    "a name no checkpoint holds": (lambda d: d[0].__setitem__("name", "x" * 300),
                                   "info.name 'xxxx"),
    "info not an object": (lambda d: d.__setitem__(0, [1, 2]), "info (the array's first entry) is a list"),
    "shapes not a list": (lambda d: d.__setitem__(1, {}), "the shapes and weights (the array's second"),
}


@pytest.mark.parametrize("fault", list(SPOILS))
def test_a_spoilt_model_file_is_refused_in_one_line(fault, tiny_zoo_file, tmp_path, capsys):
    how, words = SPOILS[fault]
    path = tmp_path / "spoilt.gen.json"
    path.write_text(json.dumps(spoiled(json.loads(tiny_zoo_file.read_text()), how)))
    err = refused(capsys, path, tmp_path / "out.pt")
    assert words in err and str(path) in err


def test_a_weight_at_int16_s_least_value_imports_and_exports_back(tiny_zoo_file, tmp_path, capsys):
    """-32768 is -10.0003 to the library: it imported and drew, but export refused it as beyond +-10 ("reaches
    10.00"), from the file and from its import (an audit's find). It goes back as it came."""
    doc = json.loads(tiny_zoo_file.read_text())
    bias = bytearray(base64.b64decode(doc[2][4]))
    bias[:2] = (-32768).to_bytes(2, "little", signed=True)
    doc[2][4] = base64.b64encode(bytes(bias)).decode()
    path = tmp_path / "cat.gen.json"
    path.write_text(json.dumps(doc))
    out = tmp_path / "again.gen.json"
    assert main(["export", "--checkpoint", str(path), "--format", "magenta", "--class", "cat", "--out", str(out)]) == 0
    assert json.loads(out.read_text())[2] == doc[2]


@pytest.mark.parametrize("name", ["a\nb.gen.json", "tab\there.gen.json", b"bad\xff.gen.json"])
def test_a_good_model_file_under_any_name_imports(tiny_zoo_file, tmp_path, name):
    """A file whose name held a newline, a tab or a byte that is no UTF-8 was refused, its contents blamed: "imported
    is not the format and file name an import writes" (an audit's find). The name is kept as a message shows it."""
    path = tmp_path / os.fsdecode(name)
    shutil.copy(tiny_zoo_file, path)
    assert main(["import", "--format", "magenta", str(path), "--out", str(tmp_path / "k.pt")]) == 0
    assert models.load(tmp_path / "k.pt")[1]["imported"]["file"] == one_line(path.name)


def test_export_finds_a_class_in_either_unicode_form(tiny_zoo_file, tmp_path):
    """A model's class is found written in either form by every command (docs/reliability.md), but export looked
    for it as written: a class imported decomposed, asked for composed, was "not trained on 'café'; it knows: café"
    (an audit's find). The export names the class as the model does."""
    decomposed, composed = unicodedata.normalize("NFD", "café"), unicodedata.normalize("NFC", "café")
    imported, out = tmp_path / "cafe.pt", tmp_path / "cafe.gen.json"
    assert main(["import", "--format", "magenta", str(tiny_zoo_file), "--class", decomposed, "--out", str(imported)]) == 0
    assert main(["export", "--checkpoint", str(imported), "--format", "magenta", "--class", composed, "--out",
                 str(out)]) == 0
    assert json.loads(out.read_text())[0]["name"] == decomposed
    assert json.loads(out.read_text())[2] == json.loads(tiny_zoo_file.read_text())[2]


def test_exports_of_two_classes_never_share_a_default_file_name(tmp_path, monkeypatch, capsys):
    """A user's own classes '-x' and '_-x' were both exported to '_-x.gen.json', the second replacing the first
    without a word (an audit's find): a class whose name is made file-safe gets a digest of it, as drawings do."""
    torch.manual_seed(0)
    net = models.build("mdn", n_classes=3, hidden=8)
    models.save(tmp_path / "own.pt", models.checkpoint_dict(net, ["-x", "_-x", "cat"]))
    monkeypatch.chdir(tmp_path)
    written = []
    for name in ("-x", "_-x", "cat"):
        assert main(["export", "--checkpoint", "own.pt", "--format", "magenta", f"--class={name}"]) == 0
        written.append(capsys.readouterr().out.strip())
    assert len(set(written)) == 3 and written[1:] == ["_-x.gen.json", "cat.gen.json"], written
    assert [json.loads((tmp_path / w).read_text())[0]["name"] for w in written] == ["-x", "_-x", "cat"]


@pytest.mark.parametrize("content, words", [
    (b"", "not JSON"),
    (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "not JSON"),
    (b"[" * 100_000, "not JSON"),
    (b'{"mode": 2}', "a .gen.json is a JSON array [info, shapes, weights]"),
    (b"[1, 2]", "a .gen.json is a JSON array [info, shapes, weights]"),
])
def test_foreign_files_are_refused_in_one_line(content, words, tmp_path, capsys):
    path = tmp_path / "foreign.gen.json"
    path.write_bytes(content)
    assert words in refused(capsys, path, tmp_path / "out.pt")


def test_a_real_file_cut_short_or_missing_is_refused(zoo_files, tmp_path, capsys):
    path = tmp_path / "cut.gen.json"
    path.write_bytes(zoo_files["sheep"].read_bytes()[:1_000_000])
    assert "not JSON" in refused(capsys, path, tmp_path / "a.pt")
    assert "no such Sketch-RNN model file" in refused(capsys, tmp_path / "absent.gen.json", tmp_path / "b.pt")
    assert "a folder, not a Sketch-RNN model file" in refused(capsys, tmp_path, tmp_path / "c.pt")


def test_a_file_of_a_million_json_values_is_refused_before_it_is_parsed(tmp_path):
    """An audit's find: 120 MB of "{}," (under the 256 MiB a file may have) took 3.3 GB to parse, each 3 bytes a
    64-byte dict, before it was found not to be a model. A model file holds a few dozen values; their commas and
    brackets are counted first, so refusing costs the file's bytes, not twenty times them."""
    path = tmp_path / "many.gen.json"
    path.write_bytes(b'{"a":[' + b"{}," * 1_000_000 + b"{}]}")
    tracemalloc.start()
    try:
        with pytest.raises(models.CheckpointError, match=r"many\.gen\.json: not a Sketch-RNN model: it holds some "
                                                         r"2,000,00\d JSON values, where a model file holds a few dozen$"):
            read_magenta(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * path.stat().st_size, f"refusing it took {peak} bytes"


def test_huge_declared_shapes_allocate_nothing(tiny_zoo_file, tmp_path):
    path = tmp_path / "huge.gen.json"
    path.write_text(json.dumps(spoiled(json.loads(tiny_zoo_file.read_text()), SPOILS["huge declared shapes"][0])))
    tracemalloc.start()
    try:
        with pytest.raises(models.CheckpointError, match="base64 characters"):
            read_magenta(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"refusing it took {peak} bytes"


json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                       max_size=4), max_leaves=8)


def _places(node, path=()):
    """Every place in a parsed file that a value sits at, as a path of keys and indices."""
    yield path
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _places(item, path + (i,))
    elif isinstance(node, dict):
        for key, item in node.items():
            yield from _places(item, path + (key,))


@FUZZ
@given(data=st.data())
def test_any_damage_to_a_model_file_imports_or_is_refused_in_one_line(data, tiny_zoo_file, tmp_path):
    """A value anywhere replaced by any JSON value, or a weight's text cut and spliced: either a checkpoint every
    reader accepts comes out, or a CheckpointError of one line naming the file, and no other exception."""
    doc = json.loads(tiny_zoo_file.read_text())
    place = data.draw(st.sampled_from(list(_places(doc))[1:]))
    parent = doc
    for key in place[:-1]:
        parent = parent[key]
    old = parent[place[-1]]
    if isinstance(old, str) and len(old) > 8 and data.draw(st.booleans()):
        cut, splice = data.draw(st.integers(0, len(old))), data.draw(st.text("AQgw+/=!\n", max_size=6))
        parent[place[-1]] = old[:cut] + splice + old[cut + data.draw(st.integers(0, 8)):]
    else:
        parent[place[-1]] = data.draw(json_values)
    path, out = tmp_path / "fuzz.gen.json", tmp_path / "fuzz.pt"
    path.write_text(json.dumps(doc))
    out.unlink(missing_ok=True)
    try:
        import_magenta(path, out)
    except models.CheckpointError as e:
        assert "\n" not in str(e) and str(e).startswith(str(path)) and not out.exists()
    else:
        models.load(out)
