"""Faults tried on purpose, on real drawings and real processes.

* interrupted training: a real ``sketchgen train`` stopped by SIGINT/SIGTERM mid-epoch exits
  cleanly, and ``--resume`` reaches exactly the weights of a run that never stopped;
* a checkpoint write that fails part way (a real file-size limit) leaves the previous one;
* a loss that goes NaN/inf is skipped, counted, and stops training when it keeps happening;
* corrupt, foreign and malicious checkpoints and prepared caches are refused or rebuilt,
  and nothing in them is executed;
* two processes preparing one cache or downloading one class at once (one of them stopped by
  Ctrl-C half way), and a reader racing a writer, never see or leave a half-written file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import pickle
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from http.server import ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from sketchgen import cache
from sketchgen import models as model
from sketchgen.data import prepare
from sketchgen.fileio import atomic_write
from sketchgen.models import CheckpointError
from sketchgen.strokes import MAX_POINTS
from sketchgen.training import MAX_BAD_STEPS, TrainConfig, TrainingError, train, usable

SIMPLIFIED = Path(__file__).resolve().parents[2] / "shared" / "quickdraw" / "simplified"
if not SIMPLIFIED.is_dir():
    pytest.skip(f"QuickDraw samples not found at {SIMPLIFIED}", allow_module_level=True)

# ~350 real drawings of short classes; batches of 4 make an epoch 60 steps (a third of a second),
# so a signal sent when epoch 1 is logged lands well inside a later epoch.
CLASSES = ["circle", "zigzag"]
DATA = ["--classes", *CLASSES, "--data-dir", str(SIMPLIFIED), "--seed", "3"]
TRAIN = [*DATA, "--epochs", "3", "--batch-size", "4", "--max-len", "40", "--hidden", "16"]


def config(kind: str, **changes) -> TrainConfig:
    """The settings `sketchgen train --model KIND` builds from TRAIN's flags."""
    return TrainConfig.for_model(kind, **{"epochs": 3, "batch_size": 4, "max_len": 40, "seed": 3,
                                          "model_config": {"hidden": 16}, **changes})


def prepared():
    """The drawings DATA names, as `sketchgen train` prepares them (the same cache file)."""
    return prepare(CLASSES, SIMPLIFIED, seed=3)


def env(**extra: str) -> dict[str, str]:
    """The environment as the session's fixtures left it (their own caches), one thread per process."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **extra}


def sketchgen(*args, prefix: tuple[str, ...] = ("-m", "sketchgen")) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *prefix, *map(str, args)], capture_output=True, text=True, env=env(),
                          timeout=300)


def one_error_line(run: subprocess.CompletedProcess, code: int = 1) -> str:
    """The run failed with ``code`` and said why in exactly one line, as its last, with no traceback."""
    assert run.returncode == code, run.stderr
    assert "Traceback" not in run.stderr
    return run.stderr.splitlines()[-1]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted runs with TRAIN's settings, one per model, trained (here, on one thread) on first use."""
    torch.set_num_threads(1)

    @functools.cache
    def run(kind: str) -> Path:
        out = tmp_path_factory.mktemp(f"reference-{kind}")
        train(config(kind), prepared(), out, log=lambda msg: None)
        return out

    return run


def assert_same_weights(a: Path, b: Path) -> None:
    sa, sb = torch.load(a, weights_only=True)["state_dict"], torch.load(b, weights_only=True)["state_dict"]
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), f"{a.name}: {name} differs"


def records(run: Path) -> list[dict]:
    """log.jsonl without the wall-clock times."""
    lines = (run / "log.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]


# --- interrupted training -------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "sig"), [(kind, (signal.SIGTERM, signal.SIGINT)[i % 2])
                                           for i, kind in enumerate(model.names())])
def test_signal_mid_epoch_then_resume_reaches_the_uninterrupted_weights(kind, sig, reference, tmp_path):
    """Every registered model, with its own dropout, augmentation, optimiser and schedule (the seed model: dropout
    between two LSTM layers; the mdn: per-batch augmentation; the vae: per-drawing latent noise)."""
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sketchgen", "train", "--model", kind, *TRAIN, "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
    )
    seen = []
    for line in proc.stderr:  # tqdm is off without a terminal: epoch lines are the progress we can see
        seen.append(line)
        if line.startswith("epoch 1:"):
            proc.send_signal(sig)
            break
    stdout, rest = proc.communicate(timeout=120)
    stopped = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, "".join(seen) + rest)
    message = one_error_line(stopped, 130)
    match = re.fullmatch(rf"sketchgen: stopped by {sig.name} in epoch (\d+) at step (\d+) \(step (\d+) of the run\); "
                         rf"resume with --resume \(state in {re.escape(str(out / 'last.pt'))}\)", message)
    assert match, message
    assert stdout == ""

    # last.pt is whole and says where the run stood: inside an epoch, not at its edge.
    ckpt = model.read(out / "last.pt")
    model.load(out / "last.pt")
    steps = math.ceil(len(usable(prepared(), "train", 40)) / 4)
    epoch, step = int(match[1]), int(match[2])
    assert int(match[3]) == (epoch - 1) * steps + step
    assert (ckpt["progress"]["round"], ckpt["progress"]["step"], ckpt["progress"]["global_step"]) == \
        (epoch - 1, step, (epoch - 1) * steps + step)
    assert epoch >= 2 and 0 < step < steps
    assert len(records(out)) == epoch - 1
    assert not list(out.glob(".*.tmp"))

    resumed = sketchgen("train", "--model", kind, *TRAIN, "--out", out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from {out / 'last.pt'} at epoch {epoch}, step {step} (step {match[3]} of the run)" in \
        resumed.stderr
    for name in ("best.pt", "last.pt"):
        assert_same_weights(out / name, reference(kind) / name)
    assert records(out) == records(reference(kind))


def test_resume_refuses_a_different_run_or_a_damaged_checkpoint(reference, tmp_path):
    """Other settings could never reach the uninterrupted weights: refused in one line, like a damaged last.pt."""
    out = tmp_path / "run"
    shutil.copytree(reference("seed"), out)
    before = (out / "last.pt").read_bytes()
    # Named by its flag, with both values (it was "other batch_size": an audit's find, 2026-12-07).
    with pytest.raises(TrainingError,
                       match=r"last\.pt is from a run with other --batch-size \(\d+ there, 8 here\): pass the same"):
        train(config("seed", epochs=5, batch_size=8), prepared(), out, resume=True, log=lambda msg: None)
    with pytest.raises(TrainingError, match=r"with other --init \('' there, 'base\.pt' here\): pass the same"):
        train(config("seed", init="base.pt"), prepared(), out, resume=True, log=lambda msg: None)  # no help: a flag
    with pytest.raises(TrainingError, match="from a run with other classes"):
        train(config("seed"), prepare(["circle", "bear"], SIMPLIFIED, seed=3), out, resume=True, log=lambda msg: None)
    elsewhere = tmp_path / "elsewhere"  # the same drawings, copied: the files it trained on are named (an audit's find)
    elsewhere.mkdir()
    for name in CLASSES:
        shutil.copy(SIMPLIFIED / f"{name}.ndjson", elsewhere)
    circle = re.escape(str((SIMPLIFIED / "circle.ndjson").resolve()))
    with pytest.raises(TrainingError, match=rf"from a run with other data \({circle} trained it, where this is "
                                            rf"{re.escape(str(elsewhere / 'circle.ndjson'))}\): pass the same settings"):
        train(config("seed"), prepare(CLASSES, elsewhere, seed=3), out, resume=True, log=lambda msg: None)
    mdn = tmp_path / "mdn"
    shutil.copytree(reference("mdn"), mdn)
    fewer = prepare(CLASSES, SIMPLIFIED, max_per_class=100, seed=3)  # another offset scale
    with pytest.raises(TrainingError, match=r"from a run with other scale \([\d.]+ there, [\d.]+ here\), data"):
        train(config("mdn"), fewer, mdn, resume=True, log=lambda msg: None)
    # A model setting given again otherwise is named as its flag (it was "other model_config, model settings").
    with pytest.raises(TrainingError, match=r"from a run with other --n-mixtures \(20 there, 5 here\): pass the same"):
        train(config("mdn", model_config={"hidden": 16, "n_mixtures": 5}), prepared(), mdn, resume=True,
              log=lambda msg: None)
    shutil.copy(out / "best.pt", out / "last.pt")
    with pytest.raises(TrainingError, match=r"last\.pt holds no training state to resume \(no optimizer\); train without --resume"):
        train(config("seed", epochs=5), prepared(), out, resume=True, log=lambda msg: None)
    (out / "last.pt").write_bytes(before[:1000])
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(out / 'last.pt'))}: not a readable sketchgen"):
        train(config("seed", epochs=5), prepared(), out, resume=True, log=lambda msg: None)


# --- a write that fails part way ------------------------------------------------------------------


def test_checkpoint_write_failing_part_way_keeps_the_previous_checkpoint(reference, tmp_path):
    """RLIMIT_FSIZE makes the kernel refuse writes past a size: a disk that fills up mid-checkpoint."""
    out = tmp_path / "run"
    shutil.copytree(reference("seed"), out)
    before = {name: (out / name).read_bytes() for name in ("best.pt", "last.pt", "log.jsonl")}
    limit = min(len(before["best.pt"]), len(before["last.pt"])) // 2
    limited = ("-c", "import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, ({0}, {0})); "
                     "from sketchgen.cli import main; sys.exit(main(sys.argv[1:]))".format(limit))
    failed = sketchgen("train", *TRAIN, "--epochs", "6", "--out", out, "--resume", prefix=limited)
    message = one_error_line(failed)
    assert re.fullmatch(rf"sketchgen: error: \[Errno 27\] File too large: could not write {re.escape(str(out))}/"
                        r"(best|last)\.pt; any earlier version of it is intact", message), message
    assert {name: (out / name).read_bytes() for name in before} == before
    assert not list(out.glob(".*.tmp"))
    model.load(out / "best.pt")
    model.load(out / "last.pt")


def test_running_out_of_memory_is_one_line(tmp_path):
    """RLIMIT_AS makes the kernel refuse memory past 2 GB: a batch of 4,096 (the flag's largest) asks for 8 GB in
    one tensor. One line saying what to lower, not PyTorch's allocator traceback; the run it made is gone again."""
    limited = ("-c", "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)); "
                     "from sketchgen.cli import main; sys.exit(main(sys.argv[1:]))")
    failed = sketchgen("train", "--model", "mdn", "--init", "none", "--classes", "apple", "square", "--data-dir",
                       SIMPLIFIED, "--steps", 2, "--batch-size", 4096, "--out", tmp_path / "run", prefix=limited)
    message = one_error_line(failed)
    assert re.fullmatch(r"sketchgen: error: out of memory \(\d+\.\d GB asked for\): a smaller --batch-size or model "
                        "needs less", message), message  # the flags the command has: train has no --n
    assert not (tmp_path / "run").exists()


# --- numerical faults ------------------------------------------------------------------------------


def test_diverging_loss_is_skipped_counted_and_stops_without_touching_best(tmp_path):
    """A learning rate of 1e30, set on resuming a good run, overflows the loss from its second step on.

    Batches of 32 make an epoch 8 steps, so whole epochs of skipped steps are logged before
    MAX_BAD_STEPS (20) in a row stop the run.
    """
    out, data = tmp_path / "run", prepared()
    train(config("seed", epochs=1, batch_size=32), data, out, log=lambda msg: None)
    best = (out / "best.pt").read_bytes()
    steps = math.ceil(len(usable(data, "train", 40)) / 32)
    assert 2 < steps < 10

    notes = []
    with pytest.raises(TrainingError) as error:
        train(config("seed", epochs=10, batch_size=32, lr=1e30), data, out, resume=True, log=notes.append)
    assert "learning rate set to 1e+30 (the run started with 0.001)" in notes
    first_bad = 2 + (MAX_BAD_STEPS - (steps - 1)) // steps
    assert str(error.value) == (f"loss was NaN/inf for {MAX_BAD_STEPS} steps in a row (epoch {first_bad + 1}); "
                                "lower --lr or check the data. best.pt is untouched.")
    logged = records(out)
    assert [r["skipped_steps"] for r in logged] == [0, steps - 1] + [steps] * (first_bad - 2)
    # log.jsonl is strict JSON: a NaN loss is null there.
    assert math.isfinite(logged[0]["val_loss"]) and all(r["val_loss"] is None for r in logged[1:])
    assert (out / "best.pt").read_bytes() == best


# --- corrupt artefacts ---------------------------------------------------------------------------


class Exploit:
    """Unpickling this runs a shell command: the marker file appears if anything executes it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def foreign_checkpoints(good: Path, tmp_path: Path) -> dict[str, Path]:
    """Files that are not usable checkpoints, each the way one turns up in practice (``good`` is one that is)."""
    files, body = {}, good.read_bytes()

    def add(name: str, write) -> None:
        files[name] = tmp_path / f"{name}.pt"
        write(files[name])

    marker = tmp_path / "executed"
    add("truncated", lambda p: p.write_bytes(body[: len(body) // 2]))

    def flipped(p):  # one byte of the weights changed, as a bad disk or copy does: the file's structure intact
        with zipfile.ZipFile(good) as z:
            weights = z.read(max(z.infolist(), key=lambda e: e.file_size))  # stored as is: its bytes are in the file
        damaged = bytearray(body)
        damaged[body.index(weights) + len(weights) // 2] ^= 0xFF
        p.write_bytes(bytes(damaged))

    add("a byte of the weights flipped", flipped)
    add("empty", lambda p: p.write_bytes(b""))
    add("random bytes", lambda p: p.write_bytes(random.Random(0).randbytes(4096)))
    add("html error page", lambda p: p.write_bytes(b"<!doctype html><title>404 Not Found</title>\n"))

    def some_zip(p):
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("notes.txt", "not a checkpoint")

    def numpy_file(p):
        with open(p, "wb") as f:
            np.save(f, np.arange(10))

    add("a zip", some_zip)
    add("a pickle", lambda p: p.write_bytes(pickle.dumps({"kind": "seed", "state_dict": {}})))
    add("numpy file", numpy_file)
    add("other torch object", lambda p: torch.save([torch.zeros(3)], p))
    add("no kind", lambda p: torch.save({"state_dict": {}}, p))
    add("wrong shapes", lambda p: torch.save({**torch.load(good, weights_only=True),
                                               "config": {"n_classes": 3, "hidden": 99}}, p))
    add("exploit via torch.save", lambda p: torch.save({"kind": "seed", "state_dict": Exploit(marker)}, p))
    add("exploit as a raw pickle", lambda p: p.write_bytes(pickle.dumps(Exploit(marker))))
    return files


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's remark on the raw pickle
def test_foreign_and_corrupt_checkpoints_are_refused_without_running_them(reference, tmp_path):
    files = foreign_checkpoints(reference("seed") / "best.pt", tmp_path)
    for name, path in files.items():
        with pytest.raises(CheckpointError) as error:
            model.load(path)
        message = str(error.value)
        assert message.startswith(f"{path}: ") and "\n" not in message, (name, message)
    assert not (tmp_path / "executed").exists()

    # The CLI says it in one line.
    sampled = sketchgen("sample", "--checkpoint", files["exploit via torch.save"], "--out", tmp_path / "s")
    assert re.fullmatch(r"sketchgen: error: .*exploit via torch\.save\.pt: not a readable sketchgen checkpoint "
                        r"\(UnpicklingError\); retrain or pass another", one_error_line(sampled))
    assert not (tmp_path / "executed").exists()


SPECIAL_FILES = """
import contextlib, io, json, sys
import torch
from sketchgen import cli, models
from sketchgen.cli import SHIPPED_CHECKPOINT
from sketchgen.npz import NpzError, read_npz
vae, out, specials = sys.argv[1], sys.argv[2], sys.argv[3:]
torch.manual_seed(0)
net = models.build("vae", n_classes=1, scale=30.0, hidden=16, encoder_hidden=8, latent_size=4, embed_dim=4)
models.save(vae, models.checkpoint_dict(net, ["bear"]))
for special in specials:
    for argv in (["reconstruct", "--checkpoint", vae, "--input", special, "--out", out],
                 ["interpolate", "--checkpoint", vae, "--input", special, "--out", out],
                 ["sample", "--checkpoint", vae, "--around", special, "--out", out],
                 ["sample", "--checkpoint", str(SHIPPED_CHECKPOINT), "--classes", "eye", "--prefix", special,
                  "--out", out],
                 ["import", "--format", "magenta", special, "--out", out + ".pt"]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = cli.main(argv)
        print(json.dumps([argv[0], code, err.getvalue()]), flush=True)
    try:
        read_npz(special)
    except NpzError as e:
        print(json.dumps(["read_npz", 1, f"sketchgen: error: {e}\\n"]), flush=True)
peak = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps(["peak MB", int(peak.split()[1]) // 1024, ""]))
"""


def test_files_that_are_not_regular_are_refused_at_once_by_every_reader(tmp_path):
    """A FIFO with no writer, /dev/zero, /dev/urandom and a folder given to every command that reads a file of
    drawings or a model (and to the .npz reader): each a one-line error naming the file, at once and in bounded
    memory, in one real process. Before, the FIFO hung each command, /dev/zero and /dev/urandom never ended (the
    line reader skipping megabyte after megabyte), and ``import``'s 256 MiB cap read /dev/zero's size as 0."""
    fifo = tmp_path / "drawings.ndjson"
    os.mkfifo(fifo)
    specials = {str(fifo): "not a regular file (a FIFO)", "/dev/zero": "not a regular file (a device)",
                "/dev/urandom": "not a regular file (a device)", str(tmp_path): "a folder, not a"}
    run = subprocess.run([sys.executable, "-c", SPECIAL_FILES, tmp_path / "vae.pt", tmp_path / "out", *specials],
                         capture_output=True, text=True, env=env(), timeout=120)
    assert run.returncode == 0, run.stderr
    results = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(results) == 6 * len(specials) + 1
    for (special, why), row in zip(specials.items(), range(0, 6 * len(specials), 6)):
        for what, code, err in results[row : row + 6]:
            assert code == 1 and err.startswith(f"sketchgen: error: {special}: {why}") and err.count("\n") == 1, \
                (what, special, err)
    assert results[-1][0] == "peak MB" and results[-1][1] < 1000  # torch itself is ~300 MB; /dev/zero took 2.5 GB
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.pt").exists()


def rewrite_meta(folder: Path, change) -> None:
    meta = folder / "meta.json"
    meta.write_text(json.dumps(change(json.loads(meta.read_text()))))


def forge(folder: Path, name: str, array: np.ndarray) -> None:
    """Replace one array file and make meta.json vouch for it (size and sampled digest), as an attacker would."""
    np.save(folder / f"{name}.npy", array, allow_pickle=True)
    vouch(folder, name)


def vouch(folder: Path, name: str, **counts: int) -> None:
    """Make meta.json vouch for the array file now there (size and sampled digest) and say ``counts``."""
    path = folder / f"{name}.npy"
    with path.open("rb") as f:
        sample = cache.sample_digest(f)
    rewrite_meta(folder, lambda m: {**m, **counts, "files": {**m["files"], path.name: {
        "bytes": path.stat().st_size, "sha256": "0" * 64, "sample": sample}}})


def sparse_drawings(folder: Path, n: int) -> None:
    """One point and offsets and split of ``n`` drawings, all but the last empty: sparse files of 160 MB (a few KB on
    disk), each vouched for by meta.json. Checking the offsets took 3.5 GB at 200 million before the refusal."""
    for name, dtype, shape in (("points", np.int16, (1, 3)), ("offsets", np.int64, (n + 1,)), ("split", np.int8, (n,))):
        (folder / f"{name}.npy").unlink()
        array = np.lib.format.open_memmap(folder / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)
        array[-1] = 1 if name == "offsets" else 0  # the offsets span the one point
        array.flush()
        del array
        vouch(folder, name, drawings=n, points=1)


def edit(folder: Path, name: str, change) -> None:
    """Change one array in place (``change(array)``, e.g. ``np.put``) and make meta.json vouch for it."""
    array = np.load(folder / f"{name}.npy")
    change(array)
    forge(folder, name, array)


def longer_first_drawing(folder: Path, n: int) -> None:
    """Drawing 0 made ``n`` points longer, the offsets after it moved on, and meta.json vouching for it all."""
    points, offsets = np.load(folder / "points.npy"), np.load(folder / "offsets.npy")
    points = np.concatenate([np.tile(np.array([[1, 0, 0]], np.int16), (n, 1)), points])
    offsets[1:] += n
    forge(folder, "points", points)
    forge(folder, "offsets", offsets)
    rewrite_meta(folder, lambda m: {**m, "points": len(points)})


def another_class(folder: Path) -> Path:
    """The cache folder of square, beside circle's."""
    return prepare(["square"], SIMPLIFIED, cache_dir=folder.parent).parts[0].folder


def plant(path: Path, make) -> None:
    """Put something else (``make(path)``: a FIFO, a link) where one of the cache's files was."""
    path.unlink()
    make(path)


def sampled_wrong(m: dict) -> dict:
    return {**m, "files": {**m["files"], "points.npy": {**m["files"]["points.npy"], "sample": "0" * 64}}}


OTHER_VERSION, NO_CHECKSUM = "prepared cache from another version", "prepared cache fails its checksum"
UNREADABLE, DAMAGED = "unreadable prepared cache", "damaged prepared cache"
NO_POINTS_FILE = {"bytes": 0, "sha256": "", "sample": ""}  # what an empty points.npy would be, as meta.json says
CACHE_FAULTS = {
    "truncated": (lambda f: (f / "points.npy").write_bytes((f / "points.npy").read_bytes()[:3000]), NO_CHECKSUM),
    "random bytes": (lambda f: (f / "meta.json").write_bytes(random.Random(1).randbytes(3000)), UNREADABLE),
    "another version": (lambda f: rewrite_meta(f, lambda m: {**m, "version": 1}), OTHER_VERSION),
    "meta not an object": (lambda f: rewrite_meta(f, lambda m: [m]), OTHER_VERSION),
    "no source digest": (lambda f: rewrite_meta(f, lambda m: {**m, "source_sha256": None}),
                         rf"{DAMAGED} \(meta.json's source_sha256 is not a SHA-256\)"),
    "wrong digest": (lambda f: rewrite_meta(f, sampled_wrong), NO_CHECKSUM),
    "changed drawing": (lambda f: np.save(f / "points.npy", np.load(f / "points.npy") + 1), NO_CHECKSUM),
    "arrays that do not fit": (lambda f: forge(f, "split", np.zeros(3, np.int8)), DAMAGED),
    # Arrays of the right shapes and a meta.json vouching for them, saying what cannot be: each was used as is.
    "offsets going back": (lambda f: edit(f, "offsets", lambda o: np.put(o, [1, 2], o[[2, 1]])),
                           rf"{DAMAGED} \(drawing 1 has offsets going back\)"),
    "a drawing of no points": (lambda f: edit(f, "offsets", lambda o: np.put(o, 2, o[1])),
                               rf"{DAMAGED} \(drawing 1 has no points\)"),
    "an offset past the points": (lambda f: edit(f, "offsets", lambda o: np.put(o, 5, o[-1] + 1000)),
                                  rf"{DAMAGED} \(drawing 5 has offsets going back\)"),
    "the last offset past the points": (lambda f: edit(f, "offsets", lambda o: np.put(o, -1, o[-1] + 1000)),
                                        rf"{DAMAGED} \(its offsets do not span its points\)"),
    "split 3": (lambda f: edit(f, "split", lambda s: np.put(s, 7, 3)),
                rf"{DAMAGED} \(drawing 7 is in split 3, not 0 to 2\)"),
    "split -1": (lambda f: edit(f, "split", lambda s: np.put(s, 0, -1)),
                 rf"{DAMAGED} \(drawing 0 is in split -1, not 0 to 2\)"),
    "meta counting other drawings": (lambda f: rewrite_meta(f, lambda m: {**m, "drawings": m["drawings"] + 1}),
                                     rf"{DAMAGED} \(meta.json counts other drawings or points"),
    # meta.json itself hostile: each hung, ate memory or was a RecursionError traceback.
    "meta nested 100,000 deep": (lambda f: (f / "meta.json").write_bytes(b"[" * 100_000),
                                 rf"{UNREADABLE} \(RecursionError\)"),
    "meta of 2 MB": (lambda f: rewrite_meta(f, lambda m: {**m, "pad": "x" * (2 << 20)}),
                     rf"{UNREADABLE} \(.*meta.json: 2,09\d,\d{{3}} bytes, more than any prepared cache's meta.json "
                     r"\(1 MiB at most\); refused unread\)"),
    "meta a FIFO": (lambda f: plant(f / "meta.json", os.mkfifo),
                    rf"{UNREADABLE} \(.*meta.json: not a regular file \(a FIFO\)\)"),
    "meta a link to /dev/zero": (lambda f: plant(f / "meta.json", lambda p: p.symlink_to("/dev/zero")),
                                 rf"{DAMAGED} \(meta.json is a symbolic link\)"),
    "points a FIFO meta.json calls empty": (
        lambda f: (plant(f / "points.npy", os.mkfifo),
                   rewrite_meta(f, lambda m: {**m, "files": {**m["files"], "points.npy": NO_POINTS_FILE}})),
        rf"{UNREADABLE} \(.*points.npy: not a regular file \(a FIFO\)\)"),
    "pickled object": (lambda f: forge(f, "split", np.array([Exploit(f.parent / "executed")], dtype=object)),
                       UNREADABLE),
    # What meta.json counts is held to the settings the cache was made with before any array is mapped.
    "20 million drawings in sparse files": (lambda f: sparse_drawings(f, 20_000_000),
                                            rf"{DAMAGED} \(meta.json counts 20000000 drawings of 1 points: its "
                                            r"settings keep 1 to 100000 drawings"),
    # A drawing of more points than any may have cost gigabytes where a batch is padded to it (found by an audit,
    # 2026-12-07); so did a meta.json counting as many, over a sparse file.
    "a drawing of 10,000 points more": (lambda f: longer_first_drawing(f, MAX_POINTS),
                                        rf"{DAMAGED} \(drawing 0 has \d+ points, more than a drawing may have: "
                                        rf"{MAX_POINTS}\)"),
    "meta counting more points than its drawings may have": (
        lambda f: rewrite_meta(f, lambda m: {**m, "points": m["drawings"] * MAX_POINTS + 1}),
        rf"{DAMAGED} \(meta.json counts \d+ drawings of \d+ points: its settings keep 1 to 100000 drawings, each of 1 "
        rf"to {MAX_POINTS} points\)"),
    # Another class's cache, copied in whole or linked: its digests hold, and it was served as this class's.
    "another class's cache copied in": (
        lambda f: [shutil.copy(another_class(f) / n, f / n) for n in ("points.npy", "offsets.npy", "split.npy",
                                                                     "meta.json")],
        r"prepared cache of other drawings or settings \(meta.json's identity is not its folder's\)"),
    "points a link to another class's": (
        lambda f: plant(f / "points.npy", lambda p: p.symlink_to(another_class(f) / "points.npy")),
        rf"{DAMAGED} \(points.npy is a symbolic link\)"),
    # A folder where an array file was: the rebuild could not rename the new file over it ("Is a directory").
    "points a folder": (lambda f: plant(f / "points.npy", lambda p: (p.mkdir(), (p / "mine.txt").write_text("x"))),
                        rf"{UNREADABLE} \(.*points.npy: a folder"),
    "meta a folder": (lambda f: plant(f / "meta.json", Path.mkdir), rf"{UNREADABLE} \(.*meta.json: a folder"),
}


@pytest.mark.parametrize("fault", CACHE_FAULTS)
def test_bad_prepared_cache_is_rebuilt_with_a_note(fault, tmp_path, capsys):
    good = prepare(["circle"], SIMPLIFIED, cache_dir=tmp_path / "cache")
    folder = good.parts[0].folder
    expected = [np.array(getattr(good.parts[0], k)) for k in ("points", "offsets", "split")]
    del good  # its arrays map the files about to be damaged in place
    damage, note = CACHE_FAULTS[fault]
    damage(folder)
    capsys.readouterr()
    rebuilt = prepare(["circle"], SIMPLIFIED, cache_dir=tmp_path / "cache")
    err = capsys.readouterr().err
    assert re.fullmatch(rf"{re.escape(str(folder))}: {note}.*; rebuilding\n", err), err
    for k, array in zip(("points", "offsets", "split"), expected):
        np.testing.assert_array_equal(getattr(rebuilt.parts[0], k), array)
    prepare(["circle"], SIMPLIFIED, cache_dir=tmp_path / "cache")
    assert capsys.readouterr().err == ""  # the rebuilt cache is whole
    assert not (tmp_path / "executed").exists()


def test_the_array_file_checked_is_the_one_mapped(tmp_path, monkeypatch):
    """points.npy replaced by another file of the same size after its digest was checked (another process, at that
    moment): the arrays were then mapped again by name, so the replacement was read as the class's drawings. Each is
    now mapped from the descriptor it was checked on. The replacement is made as the check reads its last block."""
    good = prepare(["circle"], SIMPLIFIED, cache_dir=tmp_path / "cache")
    folder, expected = good.parts[0].folder, np.array(good.parts[0].points)
    del good
    points, other = folder / "points.npy", tmp_path / "other.npy"
    np.save(other, expected + 1)
    checked, pread = points.stat().st_ino, os.pread

    def replaced_while_read(fd, n, at):
        data = pread(fd, n, at)
        if os.fstat(fd).st_ino == checked and at + n >= points.stat().st_size and other.exists():
            os.replace(other, points)
        return data

    monkeypatch.setattr(os, "pread", replaced_while_read)
    again = prepare(["circle"], SIMPLIFIED, cache_dir=tmp_path / "cache")
    assert not other.exists()  # the replacement was made
    np.testing.assert_array_equal(again.parts[0].points, expected)


@pytest.mark.parametrize("planted", ["cache folder", "lock", "dangling lock"])
def test_a_link_planted_in_the_prepared_cache_is_refused_never_written_through(tmp_path, planted):
    """A class's cache folder that is a symbolic link had the rebuilt cache written wherever it pointed; a lock that
    is one was opened (or, dangling, created) through it. A real ``sketchgen prepare`` refuses either in one line."""
    cache_dir, elsewhere, victim = tmp_path / "cache", tmp_path / "elsewhere", tmp_path / "precious.txt"
    folder = prepare(["circle"], SIMPLIFIED, cache_dir=cache_dir).parts[0].folder
    elsewhere.mkdir()
    victim.write_text("precious")
    link = folder if planted == "cache folder" else Path(f"{folder}.lock")
    shutil.rmtree(link) if link.is_dir() else link.unlink()
    link.symlink_to({"cache folder": elsewhere, "lock": victim, "dangling lock": elsewhere / "new"}[planted])
    run = subprocess.run([sys.executable, "-m", "sketchgen", "prepare", "--classes", "circle", "--data-dir",
                          SIMPLIFIED], capture_output=True, text=True, env=env(SKETCHGEN_PREPARED=str(cache_dir)), timeout=300)
    what = "folder" if planted == "cache folder" else "file"
    assert one_error_line(run) == (f"sketchgen: error: {link}: a symbolic link where sketchgen keeps its own {what}; "
                                   "refused: remove the link")
    assert victim.read_text() == "precious" and list(elsewhere.iterdir()) == []


def test_atomic_write_replaces_a_link_never_writes_through_it(tmp_path):
    """The file written is the one named: a link there is replaced, and what it points at is untouched (the
    temporary file is made with O_EXCL and O_NOFOLLOW by mkstemp, so no link can stand in for it either)."""
    victim, path = tmp_path / "precious.txt", tmp_path / "best.pt"
    victim.write_text("precious")
    path.symlink_to(victim)
    with atomic_write(path) as f:
        f.write(b"new")
    assert not path.is_symlink() and path.read_bytes() == b"new" and victim.read_text() == "precious"


# --- concurrent use ------------------------------------------------------------------------------


def test_two_processes_preparing_one_cache(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-m", "sketchgen", "prepare", *DATA], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env(SKETCHGEN_PREPARED=str(tmp_path / "prepared")))
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert outs[0][0] == outs[1][0] and outs[0][0].startswith(f"{len(prepare(CLASSES, SIMPLIFIED, seed=3))} drawings")
    # Neither saw a half-written cache to complain about; one may say it waits while the other prepares a class.
    waited = [line for _, err in outs for line in err.splitlines()]
    assert all(re.fullmatch(r"'\w+': another sketchgen process or thread is preparing it \(it holds .*\.lock\): waiting for it "
                            r"to finish", line) for line in waited), waited
    files = sorted(p.name for p in (tmp_path / "prepared").iterdir())  # a cache folder and a lock per class
    assert [re.sub(r"-[0-9a-f]{16}", "-KEY", f) for f in files] == ["circle-KEY", "circle-KEY.lock",
                                                                    "zigzag-KEY", "zigzag-KEY.lock"], files


def blocked_on_a_lock(pid: int) -> bool:
    """Whether process ``pid`` waits for a file lock (Linux lists waiters in /proc/locks after '->')."""
    return any("->" in line and f" {pid} " in line for line in Path("/proc/locks").read_text().splitlines())


def test_ctrl_c_mid_download_while_another_process_waits(tmp_path):
    """Two `sketchgen download monkey` at once; the first is stopped with Ctrl-C half way through.

    The server (test_download's fault-injecting one) slows the first download to a trickle after half
    the file; the second waits on the class's lock; Ctrl-C stops the first in one line, leaving only
    its .part file; the second then resumes it with a Range request and caches the whole file.
    """
    from test_download import Handler

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # Half the file, then a trickle above the low-speed limit (a stall would be dropped and retried after 30 s,
    # before the Ctrl-C on a loaded machine that takes that long to start the second process).
    httpd.lock, httpd.requests, httpd.faults, httpd.bodies = threading.Lock(), [], ["slow"], {}
    httpd.ignore_range, httpd.released = False, threading.Event()
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/simplified/"
    command = [sys.executable, "-m", "sketchgen", "download", "monkey", "--data-dir", str(tmp_path), "--base-url", url]
    part = tmp_path / ".monkey.ndjson.part"
    try:
        # Ctrl-C as a terminal sends it, whatever the suite's own SIGINT disposition (a shell ignores SIGINT for a
        # job it runs in the background, and a Python started with SIGINT ignored never sees KeyboardInterrupt).
        first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
                                 preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 60
        while not (part.exists() and part.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.05)
        second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
        while not blocked_on_a_lock(second.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert blocked_on_a_lock(second.pid)
        first.send_signal(signal.SIGINT)
        stopped = subprocess.CompletedProcess(command, *[first.wait(60), *first.communicate()])
        done = subprocess.CompletedProcess(command, *[second.wait(60), *second.communicate()])
    finally:
        httpd.released.set()
        httpd.shutdown()
        httpd.server_close()
    assert one_error_line(stopped, 130) == "sketchgen: interrupted"
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "monkey.ndjson").read_bytes() == (SIMPLIFIED / "monkey.ndjson").read_bytes()
    assert [r for _, r in httpd.requests][0] is None and len(httpd.requests) == 2
    assert int(re.fullmatch(r"bytes=(\d+)-", httpd.requests[1][1])[1]) > 0  # resumed, not started over
    assert sorted(p.name for p in tmp_path.iterdir()) == ["monkey.ndjson", "monkey.ndjson.lock"]


def test_a_reader_never_sees_a_half_written_file(tmp_path):
    """A writer process replaces a file 20 times while this process reads it as fast as it can."""
    path = tmp_path / "artefact.bin"
    writer = ("import hashlib, sys\nfrom sketchgen.fileio import atomic_write\n"
              "for i in range(20):\n"
              "    body = bytes([i]) * 1_000_000\n"
              "    with atomic_write(sys.argv[1]) as f:\n"
              "        f.write(hashlib.sha256(body).digest())\n"
              "        for k in range(0, len(body), 100_000):\n"
              "            f.write(body[k:k + 100_000])\n")
    with atomic_write(path) as f:
        body = bytes([255]) * 1000
        f.write(hashlib.sha256(body).digest() + body)
    proc = subprocess.Popen([sys.executable, "-c", writer, str(path)], env=env())
    reads = set()
    while proc.poll() is None:
        data = path.read_bytes()
        assert hashlib.sha256(data[32:]).digest() == data[:32], "read a torn file"
        reads.add(data[32])
    assert proc.returncode == 0
    assert len(reads) > 2  # the reader really raced the writer
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artefact.bin"]
