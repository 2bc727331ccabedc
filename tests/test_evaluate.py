"""evaluate: a classifier that really recognises real sketches, and a report with every documented number."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

import sketchgen
from sketchgen import classifier as C
from sketchgen import evaluate as E
from sketchgen import metrics, models, sample, splits
from sketchgen import report as R
from sketchgen.classfiles import DataError
from sketchgen.cli import main
from sketchgen.models import CheckpointError
from sketchgen.strokes import stroke3_to_strokes
from sketchgen.training import TrainingError

ENTRY_KEYS = {"recognisability", "ceiling", "n_generated", "n_real_test", "test_loss", "n_test_loss", "shape",
              "fid", "precision_recall", "copying"}
AGAINST_REAL_KEYS = {"fid": {"value", "floor", "n_generated", "n_real", "n_floor"},
                     "precision_recall": {"precision", "recall", "k", "n_generated", "n_real"},
                     "copying": {"nearest_train", "test_nearest_train", "closer_than_test", "n_train", "n_test"}}


@pytest.fixture(scope="module")
def classifier(seed_data):
    torch.set_num_threads(1)
    return C.train_classifier(seed_data, epochs=8, seed=0, log=lambda msg: None)


def test_classifier_beats_chance_clearly(classifier, seed_data):
    clf, accuracy = classifier
    assert accuracy > 0.8  # 5 classes: chance is 0.2, always "eye" or "circle" about 0.3
    test = seed_data.indices("test")
    drawings = [stroke3_to_strokes(seed_data.stroke3(i)) for i in test]
    assert C.recognisability(clf, drawings, seed_data.labels[test]) == pytest.approx(accuracy)
    # Any coordinate frame: the same drawings shifted and enlarged are classified the same.
    moved = [[s * 3.5 + 1000 for s in d] for d in drawings]
    assert np.array_equal(C.predict(clf, moved), C.predict(clf, drawings))


def test_classifier_training_is_deterministic(classifier, seed_data):
    clf, accuracy = classifier
    again, accuracy_again = C.train_classifier(seed_data, epochs=8, seed=0, log=lambda msg: None)
    assert accuracy_again == accuracy
    for a, b in zip(clf.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_classifier_file_round_trip(classifier, seed_data, tmp_path):
    clf, _ = classifier
    path = tmp_path / "clf.pt"
    C.save_classifier(clf, seed_data.classes, path)
    assert [p.name for p in tmp_path.iterdir()] == ["clf.pt"]  # atomic: no temporary file left
    assert torch.load(path, weights_only=True)["classes"] == seed_data.classes
    loaded, classes = C.load_classifier(path)
    assert classes == seed_data.classes
    drawings = [stroke3_to_strokes(seed_data.stroke3(i)) for i in range(0, len(seed_data), 7)]
    assert np.array_equal(C.predict(loaded, drawings), C.predict(clf, drawings))
    (tmp_path / "junk.pt").write_bytes(b"\x00junk")
    for bad in (tmp_path / "junk.pt", tmp_path / "missing.pt"):
        with pytest.raises(CheckpointError, match=bad.name):
            C.load_classifier(bad)
    # Links that loop were "no such classifier; train one" (an audit's find): they are there, and cannot be read.
    (tmp_path / "loop1.pt").symlink_to("loop2.pt")
    (tmp_path / "loop2.pt").symlink_to("loop1.pt")
    with pytest.raises(CheckpointError) as error:
        C.load_classifier(tmp_path / "loop1.pt")
    assert str(error.value) == f"{tmp_path / 'loop1.pt'}: cannot be read (Too many levels of symbolic links)"


def test_judging_costs_a_bounded_batch_whatever_the_classifier_file_says(seed_data, tmp_path):
    """Judging a drawing costs its raster size² x channels, both of which a classifier file declares: drawings are
    classified in batches of at most BATCH_VALUES of that, and a file (or a training) declaring more than a few
    times what `classifier train` makes is refused in one line (size 256 with 64 channels asked for 12+ GB, an
    audit's find)."""
    largest = C.Classifier(C.ClassifierConfig(n_classes=len(seed_data.classes), size=64, channels=128))
    batches = []
    largest.features[0].register_forward_hook(lambda conv, args, out: batches.append(out.shape[0]))
    assert len(C.predict(largest, C.real_drawings(seed_data, range(60)))) == 60
    assert sum(batches) == 60 and max(batches) * 128 * 64**2 <= C.BATCH_VALUES
    path = tmp_path / "big.pt"
    C.save_classifier(C.Classifier(C.ClassifierConfig(n_classes=2, size=256, channels=64)), ["circle", "eye"], path)
    with pytest.raises(CheckpointError) as error:
        C.load_classifier(path)
    assert str(error.value) == f"{path}: config size is 256, outside 8 to 64"
    with pytest.raises(C.EvaluationError) as error:
        C.train_classifier(seed_data, epochs=1, size=100, log=lambda msg: None)
    assert str(error.value) == "the classifier's size is 100, outside 8 to 64"


def test_training_the_classifier_renders_a_batch_at_a_time(quickdraw):
    """Each epoch's images are rendered a batch at a time, and the validation and test drawings judged a batch at a
    time: every augmented drawing's image was held, 12 KB a training drawing (an audit's find). The augmented strokes
    are still made first, with the random numbers they always had, so that a seed trains the same classifier."""
    import tracemalloc

    from sketchgen.data import prepare

    data = prepare(["circle", "eye"], quickdraw / "simplified", max_per_class=500, seed=0)
    C.train_classifier(data, epochs=1, log=lambda msg: None)  # what a process allocates once is not measured
    tracemalloc.start()
    try:
        C.train_classifier(data, epochs=1, log=lambda msg: None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    n = len(data.indices("train"))
    assert n > 450 and peak < 6_000 * n + 2e6  # 2.5 MB for 482 drawings (7.0 MB for 1,532; 18.9 MB before)


@pytest.mark.parametrize("kind", models.names())
def test_report_has_the_documented_numbers(tiny_models, classifier, seed_data, kind, tmp_path):
    clf, _ = classifier
    report = E.evaluate_model(tiny_models[kind], (clf, seed_data.classes), seed_data, n_per_class=8, seed=0)
    assert report["model"] == kind and report["n_per_class"] == 8 and report["temperature"] == sample.TEMPERATURE
    cls = models.get(kind)
    assert report["loss"] == cls.loss_description
    # A model that encodes also reports its reconstructions, and a loss of several terms each term.
    extra = {"reconstruction"} if models.capable(cls, models.Encodes) else set()
    extra |= {"test_terms"} if "test_terms" in report["overall"] else set()
    assert list(report["classes"]) == seed_data.classes
    for entry in [*report["classes"].values(), report["overall"]]:
        overall_only = {"below_half", "not_judged"} if entry is report["overall"] else set()
        assert set(entry) == ENTRY_KEYS | extra | overall_only
        assert 0 <= entry["recognisability"] <= 1 and 0 <= entry["ceiling"] <= 1
        assert np.isfinite(entry["test_loss"]) and entry["n_test_loss"] > 0
        for stat in E.SHAPES:
            for source in ("generated", "real"):
                assert set(entry["shape"][stat][source]) == {"mean", "std"}
                assert entry["shape"][stat][source]["mean"] >= 0
        for group, keys in AGAINST_REAL_KEYS.items():  # per class, copying lists each drawing's distance
            assert set(entry[group]) == keys | ({"per_drawing"} if group == "copying" and entry is not report["overall"]
                                                else set()) | ({"pooled", "pooled_floor"} if group == "fid" and
                                                               entry is report["overall"] else set()) \
                | ({"ks"} if group == "precision_recall" and entry is report["overall"] else set())
        assert entry["fid"]["value"] > 0 and 0 <= entry["precision_recall"]["recall"] <= 1
        assert entry["fid"]["n_real"] == entry["n_real_test"] == entry["copying"]["n_test"]
        assert 0 <= entry["copying"]["closer_than_test"] <= 1 and entry["copying"]["nearest_train"] > 0
    assert report["classes"]["eye"]["n_generated"] == 8
    assert len(report["classes"]["eye"]["copying"]["per_drawing"]) == 8
    assert report["overall"]["fid"]["value"] == pytest.approx(np.mean([e["fid"]["value"]
                                                                       for e in report["classes"].values()]))
    assert report["overall"]["fid"]["pooled"] > 0 and report["overall"]["fid"]["n_floor"] == [
        sum(e["fid"]["n_floor"][i] for e in report["classes"].values()) for i in (0, 1)]
    assert report["overall"]["n_generated"] == 8 * len(seed_data.classes)
    assert report["overall"]["n_real_test"] == len(seed_data.indices("test"))
    real_points = np.mean([report["classes"][c]["shape"]["points"]["real"]["mean"] for c in seed_data.classes])
    assert report["overall"]["shape"]["points"]["real"]["mean"] == pytest.approx(real_points)
    if cls.loss_per_drawing:  # per drawing: tens of steps of about a nat or two each
        assert report["overall"]["test_loss"] > 10
    E.write_report(report, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text()) == report


def test_report_refuses_a_classifier_without_the_models_classes(tiny_models, classifier, seed_data):
    clf, _ = classifier
    with pytest.raises(E.EvaluationError, match="does not know"):
        E.evaluate_model(tiny_models["mdn"], (clf, ["cat", "dog", "eye", "square", "circle"]), seed_data, n_per_class=2)


def test_tables_render(tiny_models, classifier, seed_data):
    clf, _ = classifier
    report = E.evaluate_model(tiny_models["mdn"], (clf, seed_data.classes), seed_data, n_per_class=4)
    title, first, target, note, second = R.format_report(report).split("\n\n")
    assert "mdn model" in title and f"temperature {sample.TEMPERATURE}" in title and "FID" in note
    below = [c for c, e in report["classes"].items() if e["recognisability"] < e["ceiling"] / 2]
    assert report["overall"]["below_half"] == below
    share = report["overall"]["recognisability"] / report["overall"]["ceiling"]
    assert target == (f"Overall, its drawings are recognised {share:.2f} times as often as the real test drawings; "
                      f"classes below half of their real drawings' rate: {', '.join(below) or 'none'}.")
    worse = {**report, "classes": {c: {**e, "recognisability": e["ceiling"] * (0.49 if c in ("eye", "apple") else 0.5)}
                                   for c, e in report["classes"].items()}}
    assert R.against_ceiling(worse).endswith(": apple, eye.")  # in the report's class order; exactly half is not below
    for lines, last in ((first.splitlines(), "overall"), (second.splitlines(), "pooled")):
        for name in [*seed_data.classes, last]:
            assert any(line.startswith(name) for line in lines)
        assert len({len(line) for line in lines}) == 1  # aligned columns
    markdown = R.format_report(report, markdown=True).split("\n\n")
    assert markdown[2] == target
    for rows, table in ((1, markdown[1]), (2, markdown[4])):  # overall; overall and pooled
        lines = table.splitlines()
        assert len(lines) == 2 + len(seed_data.classes) + rows
        assert len({line.count("|") for line in lines}) == 1
    # A number that is not 0 never reads as 0 (an FID of 0.03 was printed 0.0; the JSON has it whole).
    assert [R.number(x) for x in (0.03, 0.0, 0.05, 12.34, -0.0004)] == ["0.03", "0.0", "0.1", "12.3", "-0.0004"]
    assert R.number(0.0004, 3) == "0.0004" and R.number(None) == "-"


def test_the_overall_ratio_compares_the_same_classes_and_names_those_it_cannot_judge(tiny_models, classifier,
                                                                                    seed_data, quickdraw, tmp_path):
    """An apple of one drawing has no real test drawing, so no ceiling: the overall ratio divided a mean of
    recognisability over all five classes by a mean of ceilings over the other four, apple was never below half
    however rarely its drawings were recognised, and the overall k was 3 where classes used 2 (an audit's find)."""
    from sketchgen.data import prepare

    mine = tmp_path / "mine"
    mine.mkdir()
    for name in seed_data.classes:
        lines = (quickdraw / "simplified" / f"{name}.ndjson").read_text().splitlines()
        if name == "apple":
            lines = [line for line in lines if '"recognized":true' in line][:1]
        (mine / f"{name}.ndjson").write_text("\n".join(lines) + "\n")
    data = prepare(seed_data.classes, mine, max_per_class=60, seed=0)
    report = E.evaluate_model(tiny_models["mdn"], (classifier[0], seed_data.classes), data, n_per_class=4)
    classes, others = report["classes"], [c for c in seed_data.classes if c != "apple"]
    assert classes["apple"]["ceiling"] is None and E.judged(classes) == others
    assert report["overall"]["not_judged"] == ["apple"] and "apple" not in report["overall"]["below_half"]
    share = sum(classes[c]["recognisability"] for c in others) / sum(classes[c]["ceiling"] for c in others)
    assert R.against_ceiling(report) == (
        f"Overall, its drawings are recognised {share:.2f} times as often as the real test drawings (over the 4 "
        f"judged classes); classes below half of their real drawings' rate: "
        f"{', '.join(E.below_half(classes)) or 'none'}; not judged (no real test drawing, or none recognised): apple.")
    assert report["overall"]["precision_recall"]["ks"] == [2, 3]  # 3 real test drawings of a class of 25: k = 2
    assert report["overall"]["precision_recall"]["k"] == metrics.K  # the k asked for, an int as before
    assert {c: e["precision_recall"]["k"] for c, e in classes.items()} == {"apple": 0, "circle": 3, "eye": 3,
                                                                           "square": 2, "triangle": 2}
    overall_row = R.format_against_real(report).splitlines()[-2].split()
    assert overall_row[0] == "overall" and "2/3" in overall_row


def test_classifier_and_evaluate_commands(tiny_models, quickdraw, tmp_path, capsys):
    clf_path, report_path = tmp_path / "clf.pt", tmp_path / "report.json"
    data = ["--data-dir", str(quickdraw / "simplified"), "--max-per-class", "60"]
    assert main(["classifier", "train", *data, "--epochs", "2", "--out", str(clf_path)]) == 0
    assert "test accuracy" in capsys.readouterr().out
    # One class is nothing to tell apart: such a classifier "recognises" every drawing (it reported 100%).
    assert main(["classifier", "train", *data, "--classes", "circle", "--out", str(tmp_path / "one.pt")]) == 1
    assert capsys.readouterr().err.strip() == ("sketchgen: error: a classifier tells classes apart: give at least 2 "
                                               "classes, not only 'circle'")
    assert not (tmp_path / "one.pt").exists()
    # ... said before any drawing is read (a class of no file here, which preparing would have refused first).
    assert main(["classifier", "train", "--data-dir", str(tmp_path), "--classes", "teapot", "--out",
                 str(tmp_path / "one.pt")]) == 1
    assert capsys.readouterr().err.strip().endswith("give at least 2 classes, not only 'teapot'")
    assert main(["evaluate", "--checkpoint", str(tiny_models["mdn"]), "--classifier", str(clf_path), "--n", "3",
                 *data, "--json", str(report_path)]) == 0
    out = capsys.readouterr().out
    assert "overall" in out and "recognised" in out and "classes below half of their real drawings' rate" in out
    assert set(json.loads(report_path.read_text())["overall"]) == ENTRY_KEYS | {"below_half", "not_judged"}
    # A model checkpoint passed as the classifier: one line, no traceback.
    assert main(["evaluate", "--checkpoint", str(tiny_models["mdn"]), "--classifier", str(tiny_models["seed"]),
                 *data]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sketchgen: error:") and len(err.strip().splitlines()) == 1


def test_classes_too_small_to_validate_or_test_the_classifier_on_are_named(quickdraw, tmp_path, capsys):
    """A class of 1 drawing splits 1/0/0 and one of 3 splits 2/0/1: both are learnt, but the validation accuracy
    that picks the weights kept and the test accuracy are the other classes' alone, and evaluate can give the first
    no ceiling; `classifier train` printed 1.000 for both and said nothing of it (an audit's find)."""
    mine = tmp_path / "mine"
    mine.mkdir()
    teapots = (quickdraw / "simplified" / "teapot.ndjson").read_text().splitlines()
    for name, lines in (("one", teapots[:1]), ("three", teapots[1:4])):
        (mine / f"{name}.ndjson").write_text("\n".join(line.replace('"teapot"', f'"{name}"') for line in lines) + "\n")
    (mine / "circle.ndjson").write_text((quickdraw / "simplified" / "circle.ndjson").read_text())
    assert main(["classifier", "train", "--data-dir", str(mine), "--classes", "circle", "one", "three", "--epochs", "1",
                 "--out", str(tmp_path / "clf.pt")]) == 0
    assert ("note: no validation drawing of 'one', 'three': the accuracy that picks the weights kept leaves them out; "
            "no test drawing of 'one': the test accuracy leaves them out and evaluate gives them no ceiling; give them "
            "more drawings (a class's split keeps 15% each to validate and to test)") in capsys.readouterr().err


def test_evaluate_measures_some_of_a_models_classes_as_the_whole_report_does(tiny_models, classifier, seed_data,
                                                                             tmp_path, capsys):
    """--classes: a model of many classes measured on a few; their test drawings and losses are the whole report's."""
    clf_path = tmp_path / "clf.pt"
    C.save_classifier(classifier[0], seed_data.classes, clf_path)
    reports = {}
    for name, extra in (("all", []), ("some", ["--classes", "square", "apple"])):
        assert main(["evaluate", "--checkpoint", str(tiny_models["mdn"]), "--classifier", str(clf_path), "--n", "2",
                     *extra, "--json", str(tmp_path / f"{name}.json")]) == 0
        reports[name] = json.loads((tmp_path / f"{name}.json").read_text())["classes"]
    assert list(reports["some"]) == ["square", "apple"]
    for name, entry in reports["some"].items():
        assert entry["n_real_test"] == reports["all"][name]["n_real_test"]
        assert entry["test_loss"] == pytest.approx(reports["all"][name]["test_loss"], rel=1e-5)
    capsys.readouterr()
    # Refused before any drawing is read: there is no data here, which preparing would have refused first (or
    # fetched: a model trained without --data-dir downloads what its classes lack).
    nothing = ["--data-dir", str(tmp_path / "nothing")]
    assert main(["evaluate", "--checkpoint", str(tiny_models["mdn"]), "--classifier", str(clf_path),
                 "--classes", "cat", *nothing]) == 1
    assert capsys.readouterr().err.strip() == (f"sketchgen: error: {tiny_models['mdn']} was not trained on cat; it "
                                               "knows: apple, eye, square, triangle, circle")
    two = tmp_path / "judge-of-two.pt"
    C.save_classifier(C.Classifier(C.ClassifierConfig(n_classes=2)), ["square", "eye"], two)
    assert main(["evaluate", "--checkpoint", str(tiny_models["mdn"]), "--classifier", str(two),
                 "--classes", "apple", *nothing]) == 1
    assert capsys.readouterr().err.strip() == ("sketchgen: error: the classifier does not know apple; it was "
                                               "trained on square, eye")


def test_evaluate_takes_the_split_the_model_was_trained_on(tiny_models, classifier, seed_data, tmp_path, capsys):
    """The checkpoint records its data settings: no flag needed, and one that contradicts them is refused."""
    clf_path = tmp_path / "clf.pt"
    C.save_classifier(classifier[0], seed_data.classes, clf_path)
    report_path = tmp_path / "r.json"
    assert main(["evaluate", "--checkpoint", str(tiny_models["seed"]), "--classifier", str(clf_path), "--n", "2",
                 "--json", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    test = seed_data.indices("test")
    assert [e["n_real_test"] for e in report["classes"].values()] == \
        [int((seed_data.labels[test] == c).sum()) for c in range(len(seed_data.classes))]
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(tiny_models["seed"]), "--classifier", str(clf_path),
                 "--max-per-class", "61"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"sketchgen: error: --max-per-class 61 contradicts {tiny_models['seed']}, which was trained with "
                   "--max-per-class 60; leave --max-per-class out to use the model's own split")


def test_a_model_s_split_is_never_read_from_other_files_than_it_trained_on(quickdraw, tmp_path, monkeypatch):
    """A run trained with a relative --data-dir, evaluated from another folder holding other files of the same
    names: before, the other folder's drawings were split and measured as the model's test drawings, silently."""
    lines = (quickdraw / "simplified" / "circle.ndjson").read_text().splitlines()
    for folder, count in (("a", 40), ("b", 80)):
        (tmp_path / folder / "data").mkdir(parents=True)
        (tmp_path / folder / "data" / "circle.ndjson").write_text("\n".join(lines[:count]) + "\n")
    monkeypatch.chdir(tmp_path / "a")
    run = sketchgen.train(classes=["circle"], model="seed", out="run", data_dir="data", max_per_class=40, steps=1,
                          hidden=8, log=lambda line: None)
    ckpt = sketchgen.load(run.best).checkpoint
    assert splits.own_split(run.best, ckpt)["data_dir"] == "data"  # where it trained: the same files
    monkeypatch.chdir(tmp_path / "b")
    with pytest.raises(DataError, match=f"was trained on {tmp_path / 'a' / 'data' / 'circle.ndjson'}, but "
                                        f"{tmp_path / 'b' / 'data' / 'circle.ndjson'} is what its data folder"):
        splits.own_split(run.best, ckpt)
    assert splits.own_split(run.best, ckpt, data_dir="data")["data_dir"] == "data"  # given: the user's choice


def test_a_class_file_changed_since_training_is_noted_and_never_resumed_from(quickdraw, tmp_path, classifier,
                                                                              seed_data):
    """A class file rewritten at the same path (a fuller download, an edit): before, evaluate split its drawings
    and measured them as the model's test drawings, silently, and --resume trained on with them."""
    lines = (quickdraw / "simplified" / "circle.ndjson").read_text().splitlines()
    (tmp_path / "data").mkdir()
    circle = tmp_path / "data" / "circle.ndjson"
    circle.write_text("\n".join(lines[:40]) + "\n")
    run = sketchgen.train(classes=["circle"], model="seed", out=tmp_path / "run", data_dir=tmp_path / "data",
                          max_per_class=40, steps=2, eval_every=1, hidden=8, log=lambda line: None)
    ckpt = sketchgen.load(run.best).checkpoint
    assert ckpt["data"]["digests"] == {"circle": hashlib.sha256(circle.read_bytes()).hexdigest()}
    said: list[str] = []
    before = splits.own_drawings(run.best, ckpt, ["circle"], say=said.append)
    assert said == []
    circle.write_text("\n".join(lines[40:80]) + "\n")  # as many drawings, other ones
    after = splits.own_drawings(run.best, ckpt, ["circle"], say=said.append)
    assert said == [f"note: {circle} has changed since {run.best} was trained (SHA-256): its test drawings here "
                    "are not the model's own, and may include some it trained on"]
    assert len(after) == len(before) and not np.array_equal(after.stroke3(0), before.stroke3(0))
    judge = (classifier[0], seed_data.classes)
    for drawings, changed in ((before, []), (after, [str(circle)])):  # the report says so too, for whoever reads it
        assert E.evaluate_model(run.best, judge, drawings, n_per_class=2)["changed_sources"] == changed
    with pytest.raises(TrainingError, match=f"^{run.last} is from a run on other drawings: {circle} has changed "
                                            r"since it began \(SHA-256\); put the file"):
        sketchgen.train(classes=["circle"], model="seed", out=tmp_path / "run", data_dir=tmp_path / "data",
                        max_per_class=40, steps=4, resume=True, log=lambda line: None)
    # Drawings of other lengths: the model's settings drawn from the data differ too, and were said first, as if a
    # flag had changed ("a run with other model settings: pass the same settings"; found by a helper).
    bears = (quickdraw / "simplified" / "bear.ndjson").read_text().replace('"word":"bear"', '"word":"circle"')
    circle.write_text("\n".join(bears.splitlines()[:40]) + "\n")
    with pytest.raises(TrainingError, match=f"^{run.last} is from a run on other drawings: {circle} has changed "):
        sketchgen.train(classes=["circle"], model="seed", out=tmp_path / "run", data_dir=tmp_path / "data",
                        max_per_class=40, steps=4, resume=True, log=lambda line: None)
    circle.write_text("\n".join(lines[40:80]) + "\n")
    (tmp_path / "other").mkdir()  # the changed drawings in another folder: said as another file, not a change
    (tmp_path / "other" / "circle.ndjson").write_bytes(circle.read_bytes())
    splits.own_drawings(run.best, ckpt, ["circle"], data_dir=tmp_path / "other", say=said.append)
    assert said[-1].startswith(f"note: {tmp_path / 'other' / 'circle.ndjson'} is not {circle}, which {run.best} "
                               "was trained on (SHA-256)")
