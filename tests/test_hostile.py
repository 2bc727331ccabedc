"""Hostile input, tried as a hostile user would: checkpoints, command-line values, and runs that must not mix.

1. **A checkpoint is untrusted, every field of it.** Checkpoint dicts with any field spoiled (missing, of
   any type, NaN, huge, nested junk, tensors of other dtypes, shapes, layouts or devices, strided views,
   class lists of other lengths) load and work, or are refused in one line naming the file and the field,
   through ``models.load``, ``sketchgen sample``/``export``/``evaluate``, serve's ``Sketcher`` and
   ``--resume`` (optimizer, schedule and progress spoiled too). Class names never reach the file system
   as paths. Files that would cost memory out of proportion (a stride-0 model, a zip bomb, a pickle of
   millions of objects, a FIFO, a sparse 3 GB file) are refused at a measured cost.
2. **Every command-line value is checked when parsed**: any string on every flag of every subcommand
   (from the real parser) exits 0, 1 or 2 with one line starting ``sketchgen``, never a traceback.
3. **Work is never lost or mixed**: two real trainings into one folder, ``--overwrite`` against a running
   one, ``kill -9`` mid-write, a kill between ``last.pt`` and ``log.jsonl``, a full disk under the log, a
   run whose validation is never finite.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import io
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SIMPLIFIED, tiny_config
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sketchgen import cli, models
from sketchgen.fileio import safe_name
from sketchgen.models import CheckpointError
from sketchgen.models.checkpoint import FORMAT
from sketchgen.sample import generate
from sketchgen.strokes import quickdraw_strokes
from sketchgen.training import TrainingError, train
from sketchgen.training.checkpoints import append_log, run_folder
from sketchgen.training.config import MAX_VALIDATIONS

HOSTILE = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def quiet(msg: str) -> None:
    pass


def refused_in_one_line(error: Exception, path) -> str:
    """The refusal names the file first and is one line."""
    message = str(error)
    assert message.startswith(f"{path}: ") or message.startswith(f"{path} "), message
    assert "\n" not in message, message
    return message


def run_cli(*argv) -> tuple[int, str, str]:
    """``sketchgen ARGV`` in this process: (exit status, stdout, stderr); any other exception propagates."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main([str(a) for a in argv])
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


# --- 1. checkpoints ---------------------------------------------------------------------------------


def fresh(kind: str, classes=("circle", "eye")) -> dict:
    """A checkpoint dict of an untrained small model, with every field training adds."""
    config = {"seed": {"hidden": 8, "embed_dim": 4, "layers": 2, "lengths": [7] * len(classes)},
              "mdn": {"hidden": 8, "n_mixtures": 20}}[kind]
    torch.manual_seed(0)
    net = models.build(kind, n_classes=len(classes), **config)
    return models.checkpoint_dict(net, list(classes), epoch=3, round=3, step=30, val_loss=0.25,
                                  history=[{"epoch": 1, "step": 10, "train_loss": 0.5, "val_loss": float("nan"),
                                            "class_share": {c: 0.5 for c in classes}}],
                                  train={"model": kind, "seed": 0, "max_len": 250, "lr": 1e-3, "amp": False,
                                         "model_config": {"hidden": 8}},
                                  data={"data_dir": None, "max_per_class": 120, "seed": 0,
                                        "sources": {c: f"/data/{c}.ndjson" for c in classes},
                                        "digests": {c: hashlib.sha256(c.encode()).hexdigest() for c in classes}})


GOOD = {kind: fresh(kind) for kind in ("seed", "mdn")}

# What a field may be replaced with: every JSON-ish type, the numbers that break arithmetic, the strings that
# break paths and lines, and containers of junk.
JUNK = st.one_of(
    st.none(), st.booleans(),
    st.sampled_from([0, -1, 1, 2, 2**31, 2**63, 2**64, -(2**63), 10**6, 10**30]),
    st.integers(),
    st.floats(),  # NaN and inf included
    st.sampled_from(["", ".", "..", "../../escape", "/etc/passwd", "a\x00b", "a\nb", "x" * 10_000, "seed", "mdn",
                     "lstm", "layernorm"]),
    st.text(max_size=12),
    st.lists(st.one_of(st.integers(-3, 10**6), st.text(max_size=3), st.none()), max_size=4),
    st.dictionaries(st.text(max_size=4), st.one_of(st.integers(), st.text(max_size=3)), max_size=3),
    st.builds(lambda n: torch.zeros(n), st.integers(0, 4)),
)


def _tensor_spoils(t: torch.Tensor) -> dict:
    """Tensors that stand where ``t`` stood: other dtypes, shapes, layouts, devices, values."""
    big = t.double() * 1e300
    return {
        "int": t.long(), "bool": t.bool(), "complex": t.to(torch.complex64), "half": t.half(),
        "nan": t.clone().fill_(float("nan")), "inf": t.clone().fill_(float("inf")), "huge": t * 1e37 + 1e30,
        "float64 beyond float32": big, "zero": torch.zeros_like(t), "grown": torch.zeros(t.shape[0] + 1, *t.shape[1:]),
        "flat": t.flatten(), "scalar": torch.tensor(1.0), "stride 0": torch.zeros(1).expand(t.shape),
        "view of a shared storage": t.clone(), "sparse": t.to_sparse(), "meta": torch.empty(t.shape, device="meta"),
        "transposed": t.t() if t.dim() == 2 else t,
    }


def spoiled(kind: str, where: str, key, how) -> dict:
    """GOOD[kind] with one field spoiled: deleted, or replaced by ``how`` (a value, or a tensor spoil's name)."""
    d = copy.deepcopy(GOOD[kind])
    parent = d if where == "top" else d[where]
    if where == "classes":
        key %= len(parent)
    elif key not in parent and where != "top" and sum(map(ord, key)) % 3:  # mostly a field it has, else a new one
        key = sorted(parent, key=str)[sum(map(ord, key)) % len(parent)]
    if how == "delete":
        parent.pop(key) if isinstance(parent, list) else parent.pop(key, None)
    elif where == "state_dict" and isinstance(how, str) and how in _tensor_spoils(torch.zeros(2, 2)):
        parent[key] = _tensor_spoils(parent[key])[how]
        if how == "view of a shared storage":  # every weight a view of one storage: the file holds one tensor
            whole = parent[key]
            for k, v in parent.items():
                if v.numel() <= whole.numel():
                    parent[k] = whole.flatten()[: v.numel()].view(v.shape)
    else:
        parent[key] = how
    return d


CLASS_LISTS = {"one more": ["circle", "eye", "dog"], "one fewer": ["circle"], "named twice": ["eye", "eye"],
               "10,000 names": [f"class {i}" for i in range(10_000)], "not a list": "circle eye",
               "a path": ["../../../tmp/x", "/etc/cron.d/x"]}


def spoils() -> st.SearchStrategy:
    kinds = st.sampled_from(["seed", "mdn"])
    top = st.tuples(kinds, st.just("top"), st.sampled_from(["format", "kind", "config", "classes", "state_dict",
                                                              "data", "train", "epoch", "round", "step", "val_loss",
                                                              "history", "unknown extra"]),
                    st.one_of(st.just("delete"), JUNK))
    inner = st.tuples(kinds, st.sampled_from(["config", "data", "train"]), st.text(max_size=12),
                      st.one_of(st.just("delete"), JUNK))
    weights = st.tuples(kinds, st.just("state_dict"), st.sampled_from(sorted(GOOD["mdn"]["state_dict"])),
                        st.sampled_from(["delete", *_tensor_spoils(torch.zeros(2, 2))]))
    names = st.tuples(kinds, st.just("classes"), st.integers(0, 1), st.one_of(st.just("delete"), JUNK))
    lists = st.tuples(kinds, st.just("top"), st.just("classes"), st.sampled_from(list(CLASS_LISTS.values())))
    return st.one_of(top, inner, weights, names, lists)


def assert_usable(net, ckpt: dict, path: Path, tmp: Path) -> None:
    """A checkpoint that loads works: serve takes it, finite drawings in the 0-255 frame, files only inside --out."""
    from sketchgen.serve import Sketcher

    Sketcher(path)
    drawings = generate(net, np.arange(len(ckpt["classes"])), 0.4, 0, max_len=12)
    for s3 in drawings:
        assert np.isfinite(s3).all()
        for stroke in quickdraw_strokes(s3):
            assert stroke.min() >= 0 and stroke.max() <= 255
    out = tmp / "out"
    code, _, err = run_cli("sample", "--checkpoint", path, "--out", out, "--n", "1", "--max-len", "12")
    assert code == 0, err
    assert all(f.parent == out for f in out.rglob("*"))
    assert sorted(tmp.iterdir()) == sorted([path, out])


@HOSTILE
@given(spoil=spoils())
@example(spoil=("seed", "top", "classes", CLASS_LISTS["one more"]))
@example(spoil=("mdn", "state_dict", "head.bias", "float64 beyond float32"))
@example(spoil=("seed", "state_dict", "lstm.weight_hh_l0", "stride 0"))
@example(spoil=("mdn", "state_dict", "embed.weight", "view of a shared storage"))
@example(spoil=("mdn", "state_dict", "head.weight", "huge"))
@example(spoil=("seed", "config", "hidden", 8000))
@example(spoil=("mdn", "config", "max_len", 10**6))
@example(spoil=("seed", "config", "lengths", [100_000, 100_000]))
@example(spoil=("seed", "train", "max_len", "x"))
@example(spoil=("mdn", "top", "history", [{"epoch": float("nan")}]))
@example(spoil=("mdn", "data", "data_dir", "a\x00b"))
@example(spoil=("mdn", "data", "digests", {"circle": "0" * 64}))
@example(spoil=("seed", "data", "digests", {"circle": "x" * 64, "eye": "0" * 64}))
@example(spoil=("mdn", "top", "format", "\n"))
def test_any_spoiled_checkpoint_works_or_is_refused_in_one_line(spoil, tmp_path_factory):
    kind, where, key, how = spoil
    tmp = tmp_path_factory.mktemp("spoiled")
    path = tmp / "spoiled.pt"
    torch.save(spoiled(kind, where, key, how), path)
    try:
        net, ckpt = models.load(path)
    except CheckpointError as e:
        refused_in_one_line(e, path)
        return
    assert_usable(net, ckpt, path, tmp)


def test_a_refusal_is_one_line_whatever_the_path_or_value_holds(tmp_path):
    """The file's own name may hold a newline, as may the value it quotes: the error's text escapes both."""
    path = tmp_path / "two\nlines.pt"
    torch.save({**GOOD["mdn"], "format": "1\n2"}, path)
    with pytest.raises(CheckpointError) as caught:
        models.load(path)
    assert str(caught.value) == (f"{tmp_path}/two\\nlines.pt: format 1\\n2 is not one this sketchgen reads "
                                 f"(1 to {FORMAT}); a newer sketchgen wrote it?")


@pytest.mark.parametrize("key, value", [("max_per_class", 10**30), ("max_per_class", 0), ("seed", 2**70),
                                        ("seed", -1)])
def test_a_data_setting_out_of_range_is_named_with_its_value(tmp_path, key, value):
    """A cap of 10**30 was refused as "a negative seed or a cap below 1" (an audit's find): each is named now."""
    path = tmp_path / "spoiled.pt"
    torch.save(spoiled("mdn", "data", key, value), path)
    with pytest.raises(CheckpointError) as caught:
        models.load(path)
    bounds = "1 to" if key == "max_per_class" else "a count from 0 to"
    assert str(caught.value) == f"{path}: data setting {key} is {value}, not {bounds} {2**63 - 1}"


@pytest.mark.parametrize("extra, says", [
    ({f"val_t{i}": 1.0 for i in range(1000)}, r"history names more than 48 values, where training writes a few"),
    ({"class_share": {"eye": float("nan")}}, r"history record 1: class_share is not class names and finite numbers"),
])
def test_a_history_that_costs_the_loss_curve_minutes_or_breaks_the_log_is_refused(tmp_path, extra, says):
    """Found by an audit of run folders: 1,000 names in one record of a 112 KB last.pt took --resume 2 minutes and
    2.4 GB (the loss curve draws a panel for each term); a NaN class share ended the log's rewrite in a traceback."""
    path = tmp_path / "spoiled.pt"
    record = {"epoch": 1, "step": 10, "train_loss": 1.0, "val_loss": 1.0, **extra}
    torch.save(spoiled("mdn", "top", "history", [record]), path)
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(path))}: {says}"):
        models.load(path)


def test_spoiled_weights_are_each_refused_naming_the_weight(tmp_path):
    """Every way a tensor can be wrong is refused, and the message names it; float16 and one zero weight load."""
    for name in _tensor_spoils(torch.zeros(2, 2)):
        path = tmp_path / f"{name}.pt"
        torch.save(spoiled("mdn", "state_dict", "head.weight", name), path)
        if name in ("half", "zero"):
            models.load(path)
            continue
        with pytest.raises(CheckpointError) as error:
            models.load(path)
        message = refused_in_one_line(error.value, path)
        assert "head.weight" in message or "weights share their storage" in message, (name, message)


def hostile_names() -> st.SearchStrategy:
    printable = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=100)
    return st.lists(st.one_of(printable.filter(str.isprintable),
                              st.sampled_from(["..", ".", "../..", "/", "/etc/passwd", "../../x", "a/../../b", "~",
                                               "-rf", ".hidden", "CON", "x" * 100, "y" * 99 + "/"])),
                    min_size=2, max_size=2, unique=True)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(names=hostile_names())
def test_no_class_name_writes_outside_the_output_folder(names, tmp_path_factory):
    """Class names reach file names only through ``fileio.safe_name``: one plain file in --out, never a path."""
    tmp = tmp_path_factory.mktemp("names")
    path, out = tmp / "named.pt", tmp / "out"
    d = fresh("seed", tuple(names))
    torch.save(d, path)
    code, stdout, err = run_cli("sample", "--checkpoint", path, "--out", out, "--n", "2", "--max-len", "6")
    assert code == 0, err
    assert sorted(tmp.iterdir()) == [path, out]
    written = sorted(f.name for f in out.iterdir())
    stems = {f"{safe_name(c)}-{i:03d}" for i, c in enumerate(np.repeat(names, 2))}
    assert set(written) <= {f"{s}.{ext}" for s in stems for ext in ("png", "svg")} | {"samples.ndjson"}
    assert all(f.is_file() and not f.is_symlink() for f in out.iterdir())
    recorded = [json.loads(line)["word"] for line in (out / "samples.ndjson").read_text().splitlines()]
    assert recorded == list(np.repeat(names, 2))  # the names themselves, as data


def test_export_writes_its_default_file_in_the_working_folder(tmp_path, monkeypatch):
    """export's default file is named after the class: a class named as a path gets a safe name there."""
    d = fresh("mdn", ("../../escape", "eye"))
    torch.save(d, tmp_path / "m.pt")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    code, out, err = run_cli("export", "--checkpoint", tmp_path / "m.pt", "--format", "magenta", "--class",
                             "../../escape")
    assert code == 0, err
    assert re.fullmatch(r"_\.\._\.\._escape-[0-9a-f]{8}\.gen\.json", out.strip()) and os.listdir() == [out.strip()]
    assert sorted(os.listdir(tmp_path)) == ["m.pt", "work"]


@given(st.text(max_size=200))
def test_safe_name_is_always_one_plain_file_name(text):
    name = safe_name(text)
    assert name and "/" not in name and "\0" not in name and name not in (".", "..") and not name.startswith(".")
    assert (Path("/out") / name).parent == Path("/out")


def peak_rss(paths: list[Path]) -> list[tuple[str, float]]:
    """(outcome, peak RSS in MB so far) after loading each of ``paths`` in turn, in one fresh process."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent (pytest) across exec.
    code = ("import re, sys; from pathlib import Path; from sketchgen import models\n"
            "for path in sys.argv[1:]:\n"
            "    try:\n        models.load(path); print('loaded')\n"
            "    except models.CheckpointError as e:\n        print('refused:', e)\n"
            "    print(int(re.search(r'VmHWM:\\s+(\\d+)', Path('/proc/self/status').read_text())[1]) / 1024)")
    done = subprocess.run([sys.executable, "-c", code, *map(str, paths)], capture_output=True, text=True, env=env(),
                          timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    return [(outcome, float(rss)) for outcome, rss in zip(lines[::2], lines[1::2])]


def seed_claiming(hidden: int) -> tuple[dict, dict]:
    """The head of a seed checkpoint of ``hidden`` units, and its weights' shapes (read off the meta device)."""
    with torch.device("meta"):
        net = models.build("seed", n_classes=2, hidden=hidden, embed_dim=4, layers=2, lengths=[5, 6])
    return ({"format": 2, "kind": "seed", "config": {**vars(net.cfg)}, "classes": ["a", "b"]},
            {k: v.shape for k, v in net.state_dict().items()})


def big_model_claims(tmp: Path) -> dict[str, Path]:
    """Small files that claim big models, each in another way."""
    files = {"stride-0 views of one float, hidden 8000 (2 GB)": tmp / "stride0.pt",
             "a zip bomb: 200 MB of zeros deflated": tmp / "bomb.pt"}
    head, shapes = seed_claiming(8000)
    torch.save({**head, "state_dict": {k: torch.zeros(1).expand(s) for k, s in shapes.items()}}, tmp / "stride0.pt")
    head, shapes = seed_claiming(2000)
    torch.save({**head, "state_dict": {k: torch.zeros(s) for k, s in shapes.items()}}, tmp / "raw.pt")
    with zipfile.ZipFile(tmp / "raw.pt") as src, \
            zipfile.ZipFile(tmp / "bomb.pt", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as dst:
        for info in src.infolist():
            with src.open(info) as f, dst.open(info.filename, "w") as g:
                shutil.copyfileobj(f, g, 2**24)
    (tmp / "raw.pt").unlink()
    files["a history of a million entries"] = _pickle_of(tmp / "history.pt", 1_000_000)
    files["a pickle of ten million objects"] = _pickle_of(tmp / "objects.pt", 10_000_000)
    return files


def _pickle_of(path: Path, n: int) -> Path:
    """A torch.save archive whose pickle is a checkpoint dict with a history of ``n`` empty dicts (2 bytes each)."""
    torch.save({"a": 1}, path)
    body = (b"\x80\x02}q\x00(X\x04\x00\x00\x00kindX\x04\x00\x00\x00seedX\x07\x00\x00\x00history]q\x01("
            + b"}" * n + b"eu.")
    with zipfile.ZipFile(path) as z:
        records = {i.filename: z.read(i) for i in z.infolist()}
    with zipfile.ZipFile(path, "w") as z:
        for name, data in records.items():
            z.writestr(name, body if name.endswith("/data.pkl") else data)
    return path


def test_files_that_claim_a_huge_model_are_refused_without_allocating_it(tmp_path):
    """A few MB claiming 2 GB of weights, or millions of pickled objects: refused within 150 MB of a good load.

    The peak only grows, so each refusal's peak is measured after the good checkpoint's, in one process.
    """
    good = tmp_path / "good.pt"
    torch.save(GOOD["seed"], good)
    claims = big_model_claims(tmp_path)
    (first, baseline), *rest = peak_rss([good, *claims.values()])
    assert first == "loaded"
    for (name, path), (outcome, rss) in zip(claims.items(), rest):
        assert path.stat().st_size < 32 * 2**20, name
        assert outcome.startswith(f"refused: {path}: "), (name, outcome)
        assert rss - baseline < 150, (name, rss, baseline)


def test_files_that_cannot_be_read_at_a_bounded_cost_are_refused_unread(tmp_path):
    fifo = tmp_path / "fifo.pt"
    os.mkfifo(fifo)  # opening it would block until a writer came
    sparse = tmp_path / "sparse.pt"
    with open(sparse, "wb") as f:
        f.truncate(3 * 2**30)  # 3 GB that take no disk
    for path, why in ((fifo, "not a regular file"), (Path("/dev/zero"), "not a regular file"), (tmp_path, "a folder"),
                      (sparse, "3,221,225,472 bytes, more than any checkpoint (2048 MiB at most); refused unread")):
        with pytest.raises(CheckpointError, match=re.escape(why)) as error:
            models.load(path)
        refused_in_one_line(error.value, path)


def test_a_history_that_repeats_one_record_is_refused_at_a_bounded_cost(tiny_models, tmp_path):
    """A pickle may refer to one dict many times: 3,000 records sharing one class_share of 1,000 entries make a
    file of 60 kB whose history, written out, is 3 million values. Before, every command walked them all (a
    10 MB file of the kind took hours); now they are counted as written out and refused past MAX_PICKLE_OPS."""
    ckpt = torch.load(tiny_models["mdn"], weights_only=True)
    share = {f"c{i}": 0.5 for i in range(1000)}
    ckpt["history"] = [{"epoch": i / 10, "step": i + 1, "train_loss": 1.0, "val_loss": 1.0, "class_share": share}
                       for i in range(3000)]
    torch.save(ckpt, tmp_path / "shared.pt")
    assert (tmp_path / "shared.pt").stat().st_size < 2_000_000
    with pytest.raises(CheckpointError, match=r"history holds more than 2,000,000 values \(its records refer to the "
                                              r"same ones again and again\)"):
        models.read(tmp_path / "shared.pt")


def test_hostile_checkpoints_through_every_command(tmp_path):
    """sample, export and evaluate refuse in one line (exit 1); serve's Sketcher raises CheckpointError."""
    from sketchgen.serve import Sketcher

    cases = {"more names than embeddings": ("mdn", "top", "classes", CLASS_LISTS["one more"]),
             "NaN weights": ("mdn", "state_dict", "head.weight", "nan"),
             "huge weights": ("mdn", "state_dict", "lstm.weight_hh_l0", "huge"),
             "all zero": ("mdn", "state_dict", "head.weight", "zero")}
    for name, spoil in cases.items():
        path = tmp_path / f"{name}.pt"
        d = spoiled(*spoil)
        if name == "all zero":
            d["state_dict"] = {k: torch.zeros_like(v) for k, v in d["state_dict"].items()}
        torch.save(d, path)
        for argv in (["sample", "--checkpoint", path, "--out", tmp_path / "s"],
                     ["export", "--checkpoint", path, "--format", "magenta", "--class", "circle",
                      "--out", tmp_path / "x.gen.json"],
                     ["evaluate", "--checkpoint", path, "--classifier", path, "--n", "1"]):
            code, out, err = run_cli(*argv)
            assert code == 1 and not out, (name, argv[0], err)
            (line,) = err.strip().splitlines()
            assert line.startswith(f"sketchgen: error: {path}: "), line
        with pytest.raises(CheckpointError):
            Sketcher(path)
    assert not (tmp_path / "x.gen.json").exists() and not (tmp_path / "s").exists()


def test_evaluate_refuses_more_drawings_than_it_can_hold(tmp_path):
    torch.save(fresh("seed", ("circle", "eye", "dog")), tmp_path / "m.pt")
    code, out, err = run_cli("evaluate", "--checkpoint", tmp_path / "m.pt", "--classifier", tmp_path / "m.pt",
                             "--n", "100000")
    assert code == 1 and not out
    assert err.strip() == ("sketchgen: error: --n 100000 for 3 classes is 300,000 drawings, more than the 200,000 "
                           "evaluate holds at once: ask for fewer --n or --classes")


def test_an_export_is_never_all_zeros(tmp_path):
    """Weights too small for the library's int16 would export a model that draws nothing: refused."""
    d = copy.deepcopy(GOOD["mdn"])
    d["state_dict"] = {k: v * 1e-6 if "weight" in k else v for k, v in d["state_dict"].items()}
    path = tmp_path / "faint.pt"
    torch.save(d, path)
    code, out, err = run_cli("export", "--checkpoint", path, "--format", "magenta", "--class", "eye",
                             "--out", tmp_path / "eye.gen.json")
    assert code == 1 and "rounds to zero everywhere" in err and not (tmp_path / "eye.gen.json").exists()
    torch.save(GOOD["mdn"], path)
    assert run_cli("export", "--checkpoint", path, "--format", "magenta", "--class", "eye",
                   "--out", tmp_path / "eye.gen.json")[0] == 0


def test_a_hostile_classifier_is_refused_in_one_line(tmp_path):
    from sketchgen.classifier import (
        Classifier,
        ClassifierConfig,
        load_classifier,
        save_classifier,
    )

    path = tmp_path / "clf.pt"
    save_classifier(Classifier(ClassifierConfig(n_classes=2)), ["circle", "eye"], path)
    good = torch.load(path, weights_only=True)
    for change in ({"config": {"n_classes": 2, "channels": 100_000}}, {"config": {"n_classes": "2"}},
                   {"classes": ["circle"]}, {"classes": ["circle", "../x\n"]},
                   {"state_dict": {**good["state_dict"], "head.1.weight": torch.zeros(128, 1).expand(128, 512)}},
                   {"state_dict": {k: v.fill_(-1.0) if k.endswith("running_var") else v
                                   for k, v in copy.deepcopy(good["state_dict"]).items()}}):
        torch.save({**good, **change}, path)
        with pytest.raises(CheckpointError) as error:
            load_classifier(path)
        refused_in_one_line(error.value, path)


# --- --resume with a spoiled last.pt ----------------------------------------------------------------


def _state(d: dict, where: tuple):
    for key in where[:-1]:
        d = d[key]
    return d, where[-1]


RESUME_SPOILS = {
    ("optimizer",): ["x", {}, {"state": [], "param_groups": []}],
    ("optimizer", "param_groups", 0, "lr"): ["x", float("nan"), -1.0, 1e9],
    ("optimizer", "param_groups", 0, "betas"): ["ab", (2.0, 2.0), (0.9,)],
    ("optimizer", "param_groups", 0, "capturable"): [True],
    ("optimizer", "param_groups", 0, "params"): [[99], []],
    ("optimizer", "state", 0, "step"): [torch.tensor(-3.0), "5", torch.tensor(float("nan")), torch.zeros(3)],
    ("optimizer", "state", 0, "exp_avg"): [torch.zeros(3), torch.zeros(1).expand(4), torch.zeros(2, dtype=torch.long)],
    ("optimizer", "state", 0, "exp_avg_sq"): ["neg"],
    ("optimizer", "state", 999): [{"step": torch.tensor(1.0)}],
    ("scheduler",): ["x", {"step": "not a method"}, {"optimizer": None}],
    ("scheduler", "patience"): ["x", -1, 2.5],
    ("scheduler", "factor"): [2.0, 0.0],
    ("scheduler", "mode"): ["sideways"],
    ("scheduler", "best"): [float("nan"), "x"],
    ("scheduler", "_last_lr"): ["x", [1.0, 2.0]],
    ("progress",): ["x", {}],
    ("progress", "round"): [-1, 10**30, 2],
    ("progress", "step"): [10**6, 1],
    ("progress", "global_step"): [1, 10**6],
    ("progress", "best"): ["x", float("nan"), 0.0],
    ("progress", "bad_rounds"): [2],
    ("progress", "history"): [[1, "a"], [{}], "x", [{"epoch": 1}] * 3],
    ("progress", "sums"): [{"mse": "x"}, {"mse": [float("nan"), 1.0]}, {"invented term": [1.0, 1.0]}],
    ("progress", "bad_run"): [10**6],
    ("progress", "weights"): ["x", {"mse": "x"}, {"mse": [float("nan"), None]}, {"mse": [1.0, "x"]},
                              {"invented term": [1.0, None]}],
    ("progress", "extra"): [1],
    ("train", "batch_size"): [0, -5, 10**9, "64"],
    ("train", "lr"): [float("nan"), 0.0],
    ("train", "device"): ["", "a\x00b", "x" * 100],
    ("train", "model"): ["evil"],
    ("train", "lr_schedule"): ["zzz"],
    ("train", "max_len"): [10**9],
    ("train", "model_config"): [{"hidden": "x"}, {"bogus": 1}, {"n_classes": 9}, "x"],
    ("train", "prefetch"): [10**9],
    ("train", "unknown"): [1],
}


def test_resume_refuses_every_spoiled_training_state_in_one_line(tiny_run, small_data, tmp_path):
    """About 75 spoiled fields of last.pt: each refused naming last.pt, before any of it is used; nothing
    in the folder changes."""
    good = torch.load(tiny_run[0] / "last.pt", weights_only=True)
    tried = 0
    for where, values in RESUME_SPOILS.items():
        for value in values:
            out = tmp_path / f"run{tried}"
            shutil.copytree(tiny_run[0], out)
            d = copy.deepcopy(good)
            parent, key = _state(d, where)
            parent[key] = parent[key].neg() - 1 if value == "neg" else value
            torch.save(d, out / "last.pt")
            before = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file() and f.name != ".sketchgen-train.lock"}
            with pytest.raises((TrainingError, CheckpointError)) as error:
                train(tiny_config(epochs=4), small_data, out, resume=True, log=quiet)
            message = refused_in_one_line(error.value, out / "last.pt")
            assert "Traceback" not in message
            after = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file() and f.name != ".sketchgen-train.lock"}
            assert after == before, (where, value)
            shutil.rmtree(out)
            tried += 1
    assert tried > 70


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from([("progress", "skipped"), ("progress", "bad_rounds"), ("progress", "global_step"),
                        ("scheduler", "num_bad_epochs"), ("scheduler", "cooldown"), ("scheduler", "eps"),
                        ("train", "epochs"), ("train", "early_stop"), ("train", "grad_clip"), ("train", "seed"),
                        ("optimizer", "param_groups", 0, "eps"), ("optimizer", "state", 1, "step")]), JUNK)
def test_resume_with_any_value_in_a_field_trains_or_refuses_in_one_line(tiny_run, small_data, tmp_path_factory,
                                                                         where, value):
    out = tmp_path_factory.mktemp("resume") / "run"
    shutil.copytree(tiny_run[0], out)
    d = torch.load(out / "last.pt", weights_only=True)
    parent, key = _state(d, where)
    parent[key] = value
    torch.save(d, out / "last.pt")
    try:
        history = train(tiny_config(epochs=4), small_data, out, resume=True, log=quiet)
    except (TrainingError, CheckpointError) as e:
        refused_in_one_line(e, out / "last.pt")
        return
    assert len(history) == 4 and all(math.isfinite(r["val_loss"]) for r in history)
    logged = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in logged] == [1, 2, 3, 4]


def test_resume_from_the_command_line_refuses_a_spoiled_last_pt_in_one_line(tiny_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    d = torch.load(out / "last.pt", weights_only=True)
    d["optimizer"]["param_groups"][0]["lr"] = "fast"
    torch.save(d, out / "last.pt")
    done = subprocess.run([sys.executable, "-m", "sketchgen", "train", "--resume", "--out", str(out),
                           "--data-dir", str(SIMPLIFIED)], capture_output=True, text=True, env=env(), timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr and not done.stdout
    assert done.stderr.splitlines()[-1] == (f"sketchgen: error: {out / 'last.pt'}: optimizer state learning rate 'fast' "
                                            "is not a rate; train again with --overwrite")


# --- 2. command-line values -------------------------------------------------------------------------


def _commands(parser, prefix=()) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found = {}
            for name, sub in action.choices.items():
                found.update(_commands(sub, (*prefix, name)))
            return found
    return {" ".join(prefix): parser}


COMMANDS = _commands(cli.build_parser())
# Values that break parsers, arithmetic, devices and paths.
NASTY = ["nan", "NaN", "inf", "-inf", "-1", "0", "-0", "1e309", "1e-320", "9" * 30, str(2**63), str(2**64), "0x10",
         " 5", "５", "1_000", "", " ", "\n", "cuda", "cuda:7", "cuda:-1", "tpu", "cpu:1", "meta", "mps", "@", "@/dev/zero",
         "@/tmp", "@/nonexistent", "all", "1.5", "true", "a\x00b", "-", "=", "%s", "%(prog)s", "--"]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A working folder and the arguments that make each command fail fast once its flags are parsed."""
    root = tmp_path_factory.mktemp("cli")
    (root / "empty").mkdir()
    (root / "a file").write_text("x")
    missing, empty = str(root / "missing.pt"), str(root / "empty")
    base = {"demo": ["--data-dir", empty, "--out", str(root / "a file")], "classes": [],
            "download": ["--data-dir", str(root / "a file" / "sub"), "cat"],
            "prepare": ["--data-dir", empty], "train": ["--data-dir", empty],
            "sample": ["--checkpoint", missing], "convert": ["--data-dir", empty, "--to", "npz", "--out", "o"],
            "export": ["--checkpoint", missing, "--format", "magenta", "--class", "cat"],
            "serve": ["--checkpoint", missing], "classifier train": ["--data-dir", empty, "--out", "c.pt"],
            "evaluate": ["--checkpoint", missing, "--classifier", missing],
            "import": [str(root / "missing.gen.json"), "--format", "magenta"],
            "reconstruct": ["--checkpoint", missing, "--input", str(root / "missing.ndjson")],
            "interpolate": ["--checkpoint", missing, "--input", str(root / "missing.ndjson")]}
    assert set(base) == set(COMMANDS)
    return root, base


# Flags whose accepted values would start real work elsewhere: the network, a demo run.
LEFT_OUT = {("demo", "--out"), ("download", "--data-dir"), ("download", "--base-url")}


def flags_of(name: str) -> list[str]:
    return [a.option_strings[-1] for a in COMMANDS[name]._actions
            if a.option_strings and a.dest != "help" and (name, a.option_strings[-1]) not in LEFT_OUT]


def flag_values():
    def for_command(name):
        value = st.one_of(st.sampled_from(NASTY), st.text(max_size=10))
        return st.tuples(st.just(name), st.lists(st.tuples(st.sampled_from(flags_of(name)), value), min_size=1,
                                                 max_size=2))
    return st.sampled_from(sorted(n for n in COMMANDS if flags_of(n))).flatmap(for_command)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(flag_values())
@example(("train", [("--lr", "nan")]))
def test_any_value_on_any_flag_is_one_line_never_a_traceback(sandbox, monkeypatch, command_and_flags):
    root, base = sandbox
    monkeypatch.chdir(root)
    name, flags = command_and_flags
    argv = [*name.split(), *base[name]]
    for flag, value in flags:
        action = next(a for a in COMMANDS[name]._actions if flag in a.option_strings)
        if action.nargs == 0:
            argv.append(flag)
            continue
        if getattr(action.type, "__name__", "") == "path" and (value.startswith(("/", "~")) or ".." in value):
            value = "x" + value.replace("..", "__").lstrip("/~")  # within the sandbox: a path flag may create it
        argv.append(f"{flag}={value}")
    code, _, err = run_cli(*argv)
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    if code:
        assert len(lines) == 1 and lines[0].startswith("sketchgen"), (argv, err)


@pytest.mark.parametrize(("argv", "says"), [
    (["train", "--lr", "nan"], "argument --lr: must be a finite number in (0, 10], not nan"),
    (["train", "--lr", "0"], "argument --lr: must be a finite number in (0, 10]"),
    (["train", "--dropout", "inf"], "argument --dropout: must be a finite number"),
    # A setting several models share is checked against the chosen model's own bounds, once it is known.
    (["train", "--embed-dim", "0"], "argument --embed-dim: must be from 1 to 4096, not 0 (for --model seed)"),
    (["train", "--model", "mdn", "--embed-dim", "-1"], "argument --embed-dim: must be from 0 to 4096"),
    (["train", "--lr-schedule", "linear"], "argument --lr-schedule: 'linear' is not one of plateau, decay, cosine"),
    (["sample", "--checkpoint", "x", "--temperature", "-1"], "argument --temperature: must be a finite number"),
    (["sample", "--checkpoint", "x", "--temperature", "0"], "argument --temperature: must be a finite number"),
    (["sample", "--checkpoint", "x", "--seed", str(2**64)], "argument --seed: must be from 0 to 9223372036854775807"),
    (["train", "--device", "cuda:7"], "argument --device: cuda:7 asked for, but this machine has"),
    (["train", "--device", "tpu"], "argument --device: 'tpu' is not a torch device"),
    (["train", "--device", ""], "argument --device: '' is not a torch device"),
    (["train", "--max-len", "1000000"], "argument --max-len: must be from 1 to 10000"),
    (["train", "--batch-size", "100000"], "argument --batch-size: must be from 1 to 4096"),
    (["train", "--steps", "10000000000"], "argument --steps: must be from 0 to 1000000000"),
    (["sample", "--checkpoint", "x", "--n", "1000000"], "argument --n: must be from 1 to 100000"),
    (["sample", "--checkpoint", "x", "--n", "0"], "argument --n: must be from 1 to 100000"),
    (["serve", "--allow-host", "a b"], "argument --allow-host: 'a b' is not a host name"),
    (["train", "--init", ""], "argument --init: '' is not a path"),
    (["sample", "--checkpoint", "x", "--prefix-strokes", "0"], "argument --prefix-strokes: must be from 1 to 10000"),
    (["serve", "--workers", "1000"], "argument --workers: must be from 1 to 64"),
    (["serve", "--batch", "100000"], "argument --batch: must be from 1 to 4096"),
    (["serve", "--host", ""], "argument --host: '' is not a host name"),
    (["train", "--classes", "cat", "cat"], "argument --classes: class 'cat' is named twice"),
    (["train", "--classes", "all", "all"], "argument --classes: 'all' stands alone"),
    (["train", "--classes", "@/dev/zero"], "argument --classes: @/dev/zero: cannot read class names (not a regular"),
    (["train", "--classes", "@/nonexistent"], "argument --classes: @/nonexistent: cannot read class names (no such file"),
    (["train", "--resume", "--overwrite"], "argument --overwrite: not allowed with argument --resume"),
    (["train", "--out", ""], "argument --out: '' is not a path"),
    (["export", "--checkpoint", "x", "--format", "magenta", "--class=--"], "argument --class: expected one argument"),
])
def test_bad_values_are_refused_as_parsed(argv, says, tmp_path, monkeypatch):
    """Refused before any work: one line, and nothing written (train --embed-dim 0 left an empty runs/train-<time>)."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(*argv)
    assert code == 2 and not out
    (line,) = err.strip().splitlines()
    assert re.match(rf"sketchgen( {argv[0]})?: error: {re.escape(says)}", line), line
    assert not list(tmp_path.iterdir())


def test_drawings_made_in_chunks_are_the_drawings_of_one_call():
    """sample generates and writes chunk by chunk (memory one chunk's whatever --n); chunk k is a call with the
    seed its first drawing has in one call, so 1,100 drawings over three chunks are exactly one call's."""
    from sketchgen.api import CHUNK, Model

    ckpt = models.checkpoint.validate(GOOD["seed"], "good")
    net = models.checkpoint.build(ckpt)
    labels = np.repeat([0, 1], 550)
    whole = generate(net, labels, 0.4, 7, max_len=5)
    chunked = list(Model(net, ckpt, "good").generate(labels, 0.4, 7, 5))
    assert len(labels) > 2 * CHUNK and len(chunked) == len(whole)
    assert all(np.array_equal(a, b) for a, b in zip(whole, chunked))


def test_variations_made_in_chunks_are_the_variations_of_one_call(tiny_models, seed_data):
    """sample --around FILE --n N makes about CHUNK drawings at a time however many N x drawings are (it built all
    of them at once before writing any: 3.8 GB for 10 drawings x 100,000); the drawings are one call's."""
    from sketchgen import api, sample

    model = api.load(tiny_models["vae"])
    test = seed_data.indices("test")[:3]
    given = [api.Drawing.from_stroke3(seed_data.stroke3(i), seed_data.classes[seed_data.labels[i]]) for i in test]
    n = api.CHUNK // 2 + 1  # two drawings' variations are more than a chunk: one drawing a chunk
    made = model.iter_variations(given, n=n, seed=3)
    first = [next(made) for _ in range(n)]  # the first drawing's, made before the others exist
    whole, rows = sample.variations(model.net, [d.stroke3 for d in given], seed_data.labels[test], n, seed=3)
    expected = (api.Drawing.from_stroke3(w, "") for w in whole)
    assert all(np.array_equal(d.stroke3, w.stroke3) for d, w in zip(first + list(made), expected, strict=True))


def test_class_list_files_are_read_at_a_bounded_cost(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "empty").write_text("\n \n")
    (tmp_path / "latin1").write_bytes("café\n".encode("latin-1"))
    (tmp_path / "twice").write_text("cat\ndog\ncat\n")
    (tmp_path / "unreadable").write_text("cat\n")
    (tmp_path / "unreadable").chmod(0)
    cases = {"fifo": "not a regular file", "empty": "lists no class names", "latin1": "invalid continuation byte",
             "twice": "class 'cat' is named twice", ".": "a folder, not a file"}
    if os.geteuid():  # root reads any file
        cases["unreadable"] = "Permission denied"
    for name, says in cases.items():
        code, _, err = run_cli("prepare", "--classes", f"@{tmp_path / name}")
        assert code == 2 and says in err and len(err.strip().splitlines()) == 1, (name, err)
    (tmp_path / "fine").write_text("cat\n\n  dog \n")
    code, _, err = run_cli("prepare", "--classes", f"@{tmp_path / 'fine'}", "--data-dir", tmp_path)
    assert code == 1 and "no cat.ndjson" in err  # parsed: cat and dog, then no data


def test_a_resumed_run_trained_on_a_missing_device_says_how_to_continue(tiny_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    d = torch.load(out / "last.pt", weights_only=True)
    d["train"]["device"] = "cuda:3"
    torch.save(d, out / "last.pt")
    code, _, err = run_cli("train", "--resume", "--out", out, "--data-dir", SIMPLIFIED)
    assert code == 1
    assert err.strip().splitlines()[-1].startswith("sketchgen: error: the run trained on cuda:3: cuda:3 asked for")
    assert err.strip().endswith("pass --device cpu to continue it here")


# --- 3. work is never lost or mixed -----------------------------------------------------------------


TINY = ["--classes", "circle", "zigzag", "--data-dir", str(SIMPLIFIED), "--max-per-class", "40", "--batch-size", "8"]


def start_training(out: Path, *extra: str) -> subprocess.Popen:
    """A real ``sketchgen train`` that runs until stopped (an epoch budget, the most a run may have, that it does
    not reach in the seconds a test takes)."""
    return subprocess.Popen([sys.executable, "-m", "sketchgen", "train", *TINY, "--hidden", "16", "--epochs",
                             str(MAX_VALIDATIONS), "--early-stop", str(MAX_VALIDATIONS), "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())


def wait_for(condition, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def sketchgen(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sketchgen", *map(str, argv)], capture_output=True, text=True,
                          env=env(), timeout=300)


def test_a_second_training_into_a_running_folder_is_told_who_holds_it(tmp_path):
    """Two real trainings: the second (plain, then --overwrite, then --resume) is refused naming the first's
    pid; the first's lock and files are untouched, and it stops cleanly."""
    out = tmp_path / "run"
    first = start_training(out)
    try:
        wait_for(lambda: (out / "last.pt").exists())
        holder = f"sketchgen train (pid {first.pid} on {socket.gethostname()})"
        assert (out / ".sketchgen-train.lock").read_text().strip() == holder
        seconds = [subprocess.Popen([sys.executable, "-m", "sketchgen", "train", *TINY, "--hidden", "16", "--epochs",
                                     "1", "--out", str(out), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, env=env())
                   for extra in ([], ["--overwrite"], ["--resume"])]
        for second in seconds:
            stdout, stderr = second.communicate(timeout=300)
            assert second.returncode == 1 and not stdout and "Traceback" not in stderr
            assert stderr.splitlines()[-1] == (f"sketchgen: error: {out} is in use by {holder}: wait for it, "
                                               "or train into another --out")
        assert (out / ".sketchgen-train.lock").read_text().strip() == holder
        assert (out / "last.pt").exists() and first.poll() is None
    finally:
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=120)
    assert first.returncode == 130 and "resume with --resume" in err.splitlines()[-1]
    models.load(out / "last.pt")
    again = sketchgen("train", *TINY, "--hidden", "16", "--epochs", "1", "--out", out, "--overwrite")
    assert again.returncode == 0, again.stderr  # the lock went with the process that held it


def test_a_link_planted_as_a_run_folder_s_lock_or_log_is_refused_never_written_through(tmp_path):
    """The lock was opened with "a+" and truncated, then given the holder's name: a link there had the file it
    points at emptied and overwritten (or, dangling, created). Now a real ``sketchgen train`` refuses it in one
    line; so do the lock and ``append_log`` (log.jsonl) for a dangling link."""
    victim, absent = tmp_path / "precious.txt", tmp_path / "absent.txt"
    victim.write_text("precious\n")
    out = tmp_path / "run"
    out.mkdir()
    (out / ".sketchgen-train.lock").symlink_to(victim)
    run = sketchgen("train", *TINY, "--hidden", "16", "--epochs", "1", "--out", out)
    assert run.returncode == 1 and not run.stdout and "Traceback" not in run.stderr
    assert run.stderr.splitlines()[-1] == (f"sketchgen: error: {out / '.sketchgen-train.lock'}: a symbolic link where "
                                           "sketchgen keeps its own file; refused: remove the link")
    assert victim.read_text() == "precious\n" and sorted(p.name for p in out.iterdir()) == [".sketchgen-train.lock"]
    (out / ".sketchgen-train.lock").unlink()
    (out / ".sketchgen-train.lock").symlink_to(absent)
    with pytest.raises(OSError, match="a symbolic link where sketchgen keeps its own file"):
        with run_folder(out, resume=False, overwrite=False, log=quiet):
            pass
    (out / "log.jsonl").symlink_to(absent)
    with pytest.raises(OSError, match=f"^{re.escape(str(out / 'log.jsonl'))}: a symbolic link where sketchgen"):
        append_log(out / "log.jsonl", {"epoch": 1})
    assert not absent.exists()


def test_kill_9_mid_write_leaves_only_a_temporary_file_which_the_next_run_removes(tmp_path):
    """SIGKILL the moment a checkpoint's temporary file appears: every whole file is still whole, and the
    resumed run removes the temporary file and finishes with a complete, strict log."""
    out = tmp_path / "run"
    # A larger model makes each checkpoint write take long enough to be caught in the act.
    run = start_training(out, "--model", "mdn", "--hidden", "512")
    try:
        wait_for(lambda: (out / "last.pt").exists())  # a kill in the first last.pt write leaves nothing to resume
        caught = []
        deadline = time.monotonic() + 180
        while not caught and time.monotonic() < deadline and run.poll() is None:
            caught = list(out.glob(".*.tmp"))
        os.kill(run.pid, signal.SIGKILL)
    finally:
        run.communicate(timeout=60)
    assert caught, "no checkpoint write caught"
    assert [p.name for p in out.glob(".*.tmp")], sorted(p.name for p in out.iterdir())
    for name in ("best.pt", "last.pt"):
        models.load(out / name)
    done = len(torch.load(out / "last.pt", weights_only=True)["progress"]["history"])
    resumed = sketchgen("train", *TINY, "--model", "mdn", "--hidden", "512", "--out", out, "--resume",
                        "--epochs", done + 1)
    assert resumed.returncode == 0, resumed.stderr
    assert not list(out.glob(".*.tmp"))
    history = torch.load(out / "last.pt", weights_only=True)["progress"]["history"]
    logged = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in logged] == [r["epoch"] for r in history] == list(range(1, done + 2))


@pytest.mark.parametrize("damage", ["line lost", "half a line", "no log"])
def test_a_kill_between_last_pt_and_its_log_line_loses_nothing(small_data, tmp_path, damage):
    """last.pt is written, then log.jsonl: a kill -9 between them (or mid-line) left the log an epoch short.
    Resuming rewrites it from last.pt's history: the same log as a run that never stopped."""
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    train(tiny_config(epochs=3), small_data, whole, log=quiet)
    train(tiny_config(epochs=2), small_data, broken, log=quiet)
    lines = (broken / "log.jsonl").read_text().splitlines(keepends=True)
    (broken / "log.jsonl").write_text({"line lost": lines[0], "half a line": lines[0] + lines[1][:20],
                                       "no log": ""}[damage])
    if damage == "no log":
        (broken / "log.jsonl").unlink()
    train(tiny_config(epochs=3), small_data, broken, resume=True, log=quiet)

    def log(run):
        return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
                for line in (run / "log.jsonl").read_text().splitlines()]

    assert log(broken) == log(whole)


def test_a_resume_into_a_folder_without_last_pt(small_data, tmp_path):
    """Nothing there: it starts fresh. A run there without last.pt: refused, nothing touched."""
    notes = []
    train(tiny_config(epochs=1), small_data, tmp_path / "new", resume=True, log=notes.append)
    assert any("nothing to resume" in n for n in notes)
    run = tmp_path / "new"
    (run / "last.pt").unlink()
    before = {f.name: f.read_bytes() for f in run.iterdir() if f.is_file()}
    with pytest.raises(TrainingError, match=r"holds a run \(best\.pt, log\.jsonl\) but no last\.pt to resume it from: "
                                            r"pass --overwrite"):
        train(tiny_config(epochs=2), small_data, run, resume=True, log=quiet)
    assert {f.name: f.read_bytes() for f in run.iterdir() if f.is_file()} == before


def test_a_log_line_that_cannot_be_written_is_taken_back(tiny_run, tmp_path):
    """RLIMIT_FSIZE (the kernel refusing writes past a size, as a full disk does) mid-line: log.jsonl keeps
    its earlier lines, strict JSON, and no half line."""
    log = tmp_path / "log.jsonl"
    shutil.copy(tiny_run[0] / "log.jsonl", log)
    before = log.read_bytes()
    code = ("import resource, sys, json; from pathlib import Path; from sketchgen.training.checkpoints import append_log\n"
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({len(before) + 10}, {len(before) + 10}))\n"
            "try:\n    append_log(Path(sys.argv[1]), json.loads(Path(sys.argv[1]).read_text().splitlines()[0]))\n"
            "except OSError as e:\n    print(e)")
    done = subprocess.run([sys.executable, "-c", code, str(log)], capture_output=True, text=True, env=env(), timeout=120)
    assert done.stdout.strip() == f"[Errno 27] File too large: could not write {log}; its earlier lines are intact"
    assert log.read_bytes() == before
    append_log(log, {"epoch": 4, "val_loss": float("nan")})  # and the next write is a whole strict line
    assert json.loads(log.read_text().splitlines()[-1]) == {"epoch": 4, "val_loss": None}


def test_a_run_whose_validation_is_never_finite_exits_non_zero_and_prints_no_path(tmp_path):
    """The CLI's --lr stops at 10, so the divergence (lr 1e30, as test_faults uses) is set in the library;
    the rest is the real command."""
    code = ("import sys; from sketchgen import runs; from sketchgen.cli import main\n"
            "config = runs.train_config\n"
            "def diverging(*a, **k):\n    cfg = config(*a, **k); cfg.lr = 1e30; return cfg\n"
            "runs.train_config = diverging\nsys.exit(main(sys.argv[1:]))")
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-c", code, "train", *TINY, "--hidden", "8", "--epochs", "1",
                           "--out", str(out)], capture_output=True, text=True, env=env(), timeout=300)
    assert done.returncode == 1 and done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == ("sketchgen: error: no validation loss was finite, so no best.pt was "
                                            "written: lower --lr or check the data")
    assert not (out / "best.pt").exists()
    assert all(json.loads(line)["val_loss"] is None for line in (out / "log.jsonl").read_text().splitlines())


def test_outputs_aimed_at_a_run_never_replace_it_nor_mix_with_it(tiny_models, zoo_files, tmp_path, capsys):
    """import, export and evaluate --json refuse to write over a checkpoint or their own input; a folder holding
    an earlier sample's drawings is refused, or with --overwrite cleared of exactly those files first."""
    from sketchgen.cli import main

    run = tmp_path / "run"
    run.mkdir()
    last = run / "last.pt"
    last.write_bytes(tiny_models["mdn"].read_bytes())
    before = last.read_bytes()

    def refused(argv, says):
        assert main([str(a) for a in argv]) == 1
        err = capsys.readouterr().err
        (line,) = err.strip().splitlines()[-1:]
        assert says in line and len(err.strip().splitlines()) == 1, err

    refused(["import", "--format", "magenta", zoo_files["sheep"], "--out", last], "holds a model checkpoint")
    refused(["export", "--checkpoint", last, "--format", "magenta", "--class", "eye", "--out", last],
            "is the file this command reads")
    refused(["evaluate", "--checkpoint", last, "--classifier", last, "--json", last], "is the file this command reads")
    refused(["evaluate", "--checkpoint", last, "--classifier", last, "--json", tiny_models["seed"]],
            "holds a model checkpoint")
    assert last.read_bytes() == before
    os.mkfifo(tmp_path / "fifo")  # each said as what it is (both were "holds another file")
    refused(["import", "--format", "magenta", zoo_files["sheep"], "--out", run],
            f"--out {str(run)!r}: a folder, not a file; give the file's name")
    refused(["export", "--checkpoint", last, "--format", "magenta", "--class", "eye", "--out", tmp_path / "fifo"],
            f"--out {tmp_path / 'fifo'}: not a regular file (a FIFO); refused")
    imported = tmp_path / "sheep.pt"  # an earlier import is what an import may replace
    for _ in range(2):
        assert main(["import", "--format", "magenta", str(zoo_files["sheep"]), "--out", str(imported)]) == 0
    out = tmp_path / "drawn"
    assert main(["sample", "--checkpoint", str(last), "--classes", "eye", "--n", "3", "--out", str(out)]) == 0
    capsys.readouterr()
    (out / "mine.txt").write_text("not sketchgen's")
    refused(["sample", "--checkpoint", last, "--classes", "circle", "--out", out], "holds the drawings of an earlier")
    assert main(["sample", "--checkpoint", str(last), "--classes", "circle", "--out", str(out), "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["circle-000.png", "circle-000.svg", "mine.txt", "samples.ndjson"]
    with (out / "samples.ndjson").open("a") as f:  # a line nested too deep for the JSON parser is skipped
        f.write("[" * 200_000 + "\n")
    assert main(["sample", "--checkpoint", str(last), "--classes", "eye", "--out", str(out), "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["eye-000.png", "eye-000.svg", "mine.txt", "samples.ndjson"]
    elsewhere = tmp_path / "elsewhere.ndjson"  # a planted link is not read as a list of our files: only it goes
    elsewhere.write_text(json.dumps({"word": "cat"}) + "\n")
    (out / "cat-000.png").write_text("not sketchgen's either")
    (out / "samples.ndjson").unlink()
    (out / "samples.ndjson").symlink_to(elsewhere)
    assert main(["sample", "--checkpoint", str(last), "--classes", "eye", "--out", str(out), "--overwrite"]) == 0
    assert elsewhere.is_file() and not (out / "samples.ndjson").is_symlink() and (out / "cat-000.png").is_file()
