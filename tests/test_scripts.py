"""The shipping scripts package only the run their recipe asks for: scripts/train_shipped_mdn.py --from-run; and
every name the scripts and benchmarks take from sketchgen exists (they run for an hour before some of them import)."""

import ast
import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sketchgen import models
from sketchgen.api import SHIPPED_CHECKPOINT, SHIPPED_MODEL

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "train_shipped_mdn.py"


def package(run: Path, out: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--from-run", str(run), "--out", str(out), *flags],
                          capture_output=True, text=True, timeout=120)


def test_from_run_packages_the_shipped_recipe_and_refuses_another(quickdraw, tmp_path):
    """The shipped model's own checkpoint passes the 29-class recipe's checks (classes, cell, validation weights,
    schedule) and comes back with the same weights; the same run with another schedule, or offered as the
    26-class model, is refused in one line and writes nothing. (The recipe's classes come from ../shared.)"""
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(SHIPPED_MODEL, run / "best.pt")
    done = package(run, tmp_path / "again.pt")
    assert done.returncode == 0, done.stderr
    again, shipped = models.read(tmp_path / "again.pt"), models.read(SHIPPED_MODEL)
    assert again["classes"] == shipped["classes"] and again["train"] == shipped["train"]
    assert all(torch.equal(again["state_dict"][k], v) for k, v in shipped["state_dict"].items())

    ckpt = torch.load(run / "best.pt", weights_only=True)
    ckpt["train"]["lr_schedule"] = "decay"
    torch.save(ckpt, run / "best.pt")
    refused = package(run, tmp_path / "decay.pt")
    assert refused.returncode != 0 and not (tmp_path / "decay.pt").exists()
    assert refused.stderr.strip().splitlines() == [f"{run}: trained with --lr-schedule decay, not the recipe's cosine"]

    refused = package(run, tmp_path / "as26.pt", "--model", "26")
    assert refused.returncode != 0 and not (tmp_path / "as26.pt").exists()
    assert refused.stderr.strip().splitlines() == [
        f"{run}: not an mdn with the lstm cell trained on the 26 classes asked for"]


def run(script: str, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / script), *flags], capture_output=True, text=True, timeout=60)


def test_train_embedded_refuses_before_training_in_one_line(tmp_path):
    """A checkpoint at --out (another run's best.pt) is left as it was unless --overwrite is given, and a data folder
    that is not there is said in one line, before any training; neither leaves a traceback."""
    best = tmp_path / "best.pt"
    shutil.copy(SHIPPED_CHECKPOINT, best)
    refused = run("scripts/train_embedded.py", "--out", str(best))
    assert refused.returncode == 1 and best.read_bytes() == SHIPPED_CHECKPOINT.read_bytes()
    assert refused.stderr.strip().splitlines() == [
        f"error: --out {best} holds a model checkpoint (a run's weights and training state); writing the checkpoint "
        "there would lose it: give another --out, or pass --overwrite to replace it"]

    refused = run("scripts/train_embedded.py", "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "new.pt"))
    assert refused.returncode == 1 and not (tmp_path / "new.pt").exists()
    assert refused.stderr.strip().splitlines() == [f"error: data folder {tmp_path / 'none'}: no such folder"]


@pytest.mark.parametrize("script, flag, value", [
    ("bench/bench_port.py", "--port", "{tmp}/none"),  # was a TypeError minutes later, once the data was converted
    ("bench/bench_prepare.py", "--tmp", "{tmp}/none/x"),
    ("bench/bench_models.py", "--threads", "0"),  # benchlib's --threads (and --repeats), in every benchmark
    ("bench/bench_models.py", "--variant", "x=vae:[1]"),
    ("bench/load_serve.py", "--requests", "0"),
])
def test_a_benchmark_refuses_a_bad_value_in_one_line_before_it_runs(tmp_path, script, flag, value):
    """Refused as the command line is parsed, exit 2, one line naming the flag, nothing run (not even the machine
    line): not a traceback, nor a number from no measurement, after minutes of work."""
    done = run(script, flag, value.format(tmp=tmp_path))
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith(f"{Path(script).name}: error: argument {flag}: ")


def test_every_name_the_scripts_and_benchmarks_take_from_sketchgen_exists():
    """Each ``from sketchgen... import name`` (in a function too) and each ``module.name`` read off a sketchgen module
    so imported, in scripts/ and bench/: a name renamed in the library fails here, not at the end of a long run."""
    missing = []
    for path in sorted([*(ROOT / "scripts").glob("*.py"), *(ROOT / "bench").glob("*.py")]):
        tree = ast.parse(path.read_text(), str(path))
        modules = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sketchgen":
                module = importlib.import_module(node.module)
                for alias in node.names:
                    if hasattr(module, alias.name):
                        value = getattr(module, alias.name)
                    else:
                        try:
                            value = importlib.import_module(f"{node.module}.{alias.name}")
                        except ImportError:
                            missing.append(f"{path.name}:{node.lineno} {node.module}.{alias.name}")
                            continue
                    if type(value) is type(ast):
                        modules[alias.asname or alias.name] = value
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
                if not hasattr(modules[node.value.id], node.attr):
                    missing.append(f"{path.name}:{node.lineno} {node.value.id}.{node.attr}")
    assert missing == []
