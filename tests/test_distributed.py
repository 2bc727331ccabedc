"""Scale: big files converted in batches, one model over many classes, several processes training as one.

The distributed test launches ``torchrun`` with 2 CPU processes (gloo, one
thread each) and a single process side by side on the same real drawings and
global batches, and asserts they end with the same weights: DDP's gradient
averaging plus the loss normalised over the whole global batch must equal
single-process training. Dropout is 0 for the comparison (masks are drawn
per rank, so with dropout the two runs would be equally valid but different);
augmentation stays on, being drawn per drawing, not per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from sketchgen import cli, strokes
from sketchgen.classfiles import categories
from sketchgen.data import prepare
from sketchgen.models.base import default_embed_dim
from sketchgen.training import usable

CLASSES = ["bear", "circle"]
CAP = 50


# The vae's KL floor is decided on the whole global batch's mean: at this tolerance the first round's steps are
# mostly under the floor and the second's mostly above, so a rank deciding on its own share would go astray.
KL_TOLERANCE = 0.03
MODEL_FLAGS = {"mdn": [], "vae": ["--encoder-hidden", "8", "--latent-size", "4", "--kl-tolerance", str(KL_TOLERANCE)]}


def _launch(out, batch_size, quickdraw, kind, nproc=0) -> subprocess.Popen:
    """``sketchgen train`` of a tiny model, alone or under torchrun with ``nproc`` processes."""
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
                if nproc else [sys.executable])
    args = ["-m", "sketchgen", "train", "--model", kind, "--classes", *CLASSES, "--data-dir", str(quickdraw / "simplified"),
            "--max-per-class", str(CAP), "--epochs", "2", "--batch-size", str(batch_size), "--hidden", "16",
            "--dropout", "0", "--lr", "5e-3", *MODEL_FLAGS[kind], "--out", str(out)]
    return subprocess.Popen(launcher + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_batched_conversion_equals_one_drawing_at_a_time(quickdraw):
    """``prepare`` converts drawings in batches for speed; each must come out exactly as on its own."""
    drawings = [strokes.parse_drawing(json.loads(line)["drawing"])
                for name in CLASSES for line in (quickdraw / "simplified" / f"{name}.ndjson").open()]
    for start in range(0, len(drawings), 37):
        batch = drawings[start : start + 37]
        rows, lengths = strokes.drawings_to_stroke3(batch)
        ends = np.cumsum(lengths)
        for d, a, b in zip(batch, ends - lengths, ends):
            np.testing.assert_array_equal(rows[a:b], strokes.strokes_to_stroke3(d))


@pytest.mark.parametrize("kind", ["mdn", "vae"])
def test_two_processes_reach_the_weights_of_one(quickdraw, tmp_path, kind):
    # A global batch size that leaves a last batch of one drawing: rank 1 then has none and must still
    # take part in the gradient exchange without changing the result.
    data = prepare(CLASSES, quickdraw / "simplified", max_per_class=CAP, seed=0)  # cached for the subprocesses
    n = len(usable(data, "train", 250))
    batch_size = next(b for b in range(8, n) if n % b == 1)

    runs = {"one": _launch(tmp_path / "one", batch_size, quickdraw, kind),
            "two": _launch(tmp_path / "two", batch_size, quickdraw, kind, nproc=2)}
    outputs = {name: p.communicate(timeout=240) for name, p in runs.items()}
    for name, p in runs.items():  # a rank's own last words, before torchrun's summary fills the tail
        said = [line for line in outputs[name][1].splitlines() if "rror" in line or "terminate" in line]
        assert p.returncode == 0, f"{name}: {chr(10).join(said)[-3000:]}\n{outputs[name][1][-1500:]}"

    one = torch.load(tmp_path / "one" / "last.pt", weights_only=True)
    two = torch.load(tmp_path / "two" / "last.pt", weights_only=True)
    assert one["progress"]["round"] == two["progress"]["round"] == 2
    for name, weights in one["state_dict"].items():
        torch.testing.assert_close(two["state_dict"][name], weights, rtol=1e-4, atol=1e-5, msg=name)

    # The same validation losses drove both runs' schedules; rank 0 alone logged and wrote.
    logs = [[json.loads(line) for line in (tmp_path / run / "log.jsonl").read_text().splitlines()] for run in ("one", "two")]
    assert len(logs[0]) == len(logs[1]) == 2
    for a, b in zip(*logs):
        assert abs(a["val_loss"] - b["val_loss"]) < 1e-5 * abs(a["val_loss"])
    stdout, stderr = outputs["two"]
    assert stdout.split() == [str(tmp_path / "two" / "best.pt")]
    assert stderr.count(f"training {kind} on") == 1 and stderr.count("epoch 2:") == 1
    if kind == "vae":
        first, second = (r["train_kl"] for r in logs[0])
        assert first < KL_TOLERANCE < second


def test_one_model_on_thirty_classes_from_a_file(quickdraw, tmp_path):
    names = categories()[:30]
    listing = tmp_path / "classes.txt"
    listing.write_text("\n".join(names) + "\n")
    out = tmp_path / "run"
    status = cli.main(["train", "--model", "mdn", "--classes", f"@{listing}", "--data-dir", str(quickdraw / "simplified"),
                       "--max-per-class", "10", "--epochs", "1", "--hidden", "16", "--out", str(out)])
    assert status == 0
    ckpt = torch.load(out / "best.pt", weights_only=True)
    assert ckpt["classes"] == names
    # The class embedding grows with the class count (the 5-class default would be 18 wide).
    assert ckpt["config"]["embed_dim"] == default_embed_dim(30) == 44


# torchrun's variables for process 1 of a 2-process run on one machine, each case below spoiling one.
TORCHRUN = {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
RUN_ALONE = "start sketchgen with torchrun, which sets it, or unset WORLD_SIZE, RANK and LOCAL_RANK to run one process"


# Cases that could reach no process group however they were read (a WORLD_SIZE that is no number, a RANK without
# one): checked by the command run in this process.
UNJOINABLE = [
    ({"WORLD_SIZE": "abc"}, "WORLD_SIZE='abc' is not a whole number from 1 to 65536"),
    ({"WORLD_SIZE": ""}, "WORLD_SIZE='' is not a whole number from 1 to 65536"),
    ({"WORLD_SIZE": "1.5"}, "WORLD_SIZE='1.5' is not a whole number from 1 to 65536"),
    ({"WORLD_SIZE": "-1"}, "WORLD_SIZE='-1' is not a whole number from 1 to 65536"),
    ({"WORLD_SIZE": "99999999999999999999"}, "WORLD_SIZE='99999999999999999999' is not a whole number from 1 to 65536"),
    ({"RANK": "1"}, "RANK='1' is not a whole number from 0 to 0 (ranks are below WORLD_SIZE, here 1)"),
]
# The rest, let through, would join (or wait for) a process group: each runs in a process of its own.
JOINABLE = [
    ({"WORLD_SIZE": "2"}, "WORLD_SIZE is 2 but RANK is not set"),
    ({**TORCHRUN, "RANK": "abc"}, "RANK='abc' is not a whole number from 0 to 1 (ranks are below WORLD_SIZE, here 2)"),
    ({**TORCHRUN, "LOCAL_RANK": "x"},
     "LOCAL_RANK='x' is not a whole number from 0 to 1 (a local rank is at most RANK, here 1)"),
    ({**TORCHRUN, "RANK": "0"}, "LOCAL_RANK='1' is not a whole number from 0 to 0 (a local rank is at most RANK, here 0)"),
    ({**TORCHRUN, "RANK": "2"}, "RANK='2' is not a whole number from 0 to 1 (ranks are below WORLD_SIZE, here 2)"),
    ({**TORCHRUN, "MASTER_PORT": "http"}, "MASTER_PORT='http' is not a whole number from 1 to 65535"),
]


def train_argv(quickdraw, out) -> list[str]:
    return ["train", "--classes", "apple", "square", "--data-dir", str(quickdraw / "simplified"), "--steps", "2",
            "--init", "none", "--out", str(out)]


@pytest.mark.parametrize("env, problem", UNJOINABLE)
def test_torchruns_numbers_are_checked_before_anything_starts(quickdraw, tmp_path, monkeypatch, capsys, env, problem):
    """Each is input like a flag: refused in one line naming it, before any drawing is read (a WORLD_SIZE outside
    torchrun failed inside PyTorch)."""
    for name in TORCHRUN:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(train_argv(quickdraw, tmp_path / "rk")) == 1
    assert capsys.readouterr().err.splitlines() == [f"sketchgen: error: {problem}: {RUN_ALONE}"]
    assert not (tmp_path / "rk").exists()


@pytest.mark.parametrize("env, problem", JOINABLE)
def test_torchruns_variables_are_checked_before_anything_starts(quickdraw, tmp_path, env, problem):
    """Each is input like a flag: refused in one line naming it, before any drawing is read or any process group
    joined (a process given them outside torchrun waited for a rank 0 that never came)."""
    alone = {k: v for k, v in os.environ.items() if k not in TORCHRUN}
    run = subprocess.run([sys.executable, "-m", "sketchgen", *train_argv(quickdraw, tmp_path / "rk")],
                         env={**alone, **env}, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and run.stderr.splitlines() == [f"sketchgen: error: {problem}: {RUN_ALONE}"], run.stderr
    assert not (tmp_path / "rk").exists()
