"""Shared fixtures: the real QuickDraw drawings beside the checkout, a small prepared set, a tiny trained run.

Every test runs with its own empty download cache and prepared cache, so what the user has cached in
~/.cache never changes a result, and with one thread per process (the machines have 2 shared cores).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the subprocesses the CLI tests start

QUICKDRAW = Path(__file__).resolve().parents[2] / "shared" / "quickdraw"
SIMPLIFIED = QUICKDRAW / "simplified"
RAW = QUICKDRAW / "raw"
FIXTURES = Path(__file__).parent / "fixtures"
MAGENTA_MODELS = QUICKDRAW.parent / "magenta-models"
# The four real models of Magenta's zoo beside the checkout: file stem -> the Quick, Draw! class it draws.
ZOO = {"sheep": "sheep", "rabbit": "rabbit", "palm_tree": "palm tree", "key": "key"}
# The small set most tests share: a mid-size class and a big one, 120 recognized drawings each.
SMALL_CLASSES = ["circle", "eye"]
SMALL_CAP = 120


def assert_same_prepared(a, b) -> None:
    """Two ``data.Prepared`` hold the same classes, labels, split and drawings, array for array."""
    import numpy as np

    assert a.classes == b.classes
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.split, b.split)
    for pa, pb in zip(a.parts, b.parts, strict=True):
        for k in ("points", "offsets", "split"):
            np.testing.assert_array_equal(getattr(pa, k), getattr(pb, k))


@pytest.fixture(scope="session", autouse=True)
def isolated_caches(tmp_path_factory):
    """Empty download and prepared caches for the whole session; no data location from the environment."""
    root = tmp_path_factory.mktemp("caches")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SKETCHGEN_CACHE", str(root / "quickdraw"))
        mp.setenv("SKETCHGEN_PREPARED", str(root / "prepared"))
        for name in ("SKETCHGEN_DATA", "SKETCHGEN_BASE_URL"):
            mp.delenv(name, raising=False)
        yield root


@pytest.fixture(scope="session")
def quickdraw() -> Path:
    """``../shared/quickdraw`` beside the checkout, or skip: the tests need real drawings."""
    if not SIMPLIFIED.is_dir():
        pytest.skip(f"real QuickDraw drawings not found at {QUICKDRAW}")
    return QUICKDRAW


@pytest.fixture(scope="session")
def small_data(quickdraw):
    """circle and eye, at most 120 recognized drawings each, seed 0."""
    from sketchgen.data import prepare

    return prepare(SMALL_CLASSES, quickdraw / "simplified", max_per_class=SMALL_CAP, seed=0)


def tiny_config(**overrides):
    """The seed model's schedule at a size that trains in seconds on one core."""
    from sketchgen.training import TrainConfig

    settings = dict(epochs=3, batch_size=16, seed=0, model_config={"hidden": 64, "embed_dim": 8})
    return TrainConfig(**{**settings, **overrides})


@pytest.fixture(scope="session")
def tiny_run(small_data, tmp_path_factory):
    """A finished 3-epoch training run of the seed model on ``small_data``: (run folder, history)."""
    import torch

    from sketchgen.training import train

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("tiny_run")
    history = train(tiny_config(), small_data, out, log=lambda msg: None)
    return out, history


@pytest.fixture(scope="session")
def seed_data(quickdraw):
    """The 5 seed classes, at most 60 recognized drawings each (apple, square and triangle have about 25), seed 0."""
    from sketchgen.cli import SEED_CLASSES
    from sketchgen.data import prepare

    return prepare(SEED_CLASSES, quickdraw / "simplified", max_per_class=60, seed=0)


# Variants of registered models that tests of a part need beside the models themselves: kind and its settings.
VARIANTS = {"layernorm": ("mdn", {"cell": "layernorm", "epochs": 15, "early_stop": 15})}


def built_once(request, name: str, build) -> Path:
    """A folder that ``build(folder)`` fills once per test run, however many pytest-xdist workers ask for it: the
    first builds it holding a lock, a later one waits for it if need be and uses it (half a minute of training
    a worker no longer repeats). Whatever uses it must not write into it."""
    from sketchgen.fileio import locked

    root = request.getfixturevalue("tmp_path_factory").getbasetemp()
    if hasattr(request.config, "workerinput"):  # an xdist worker's
        root = root.parent  # the run's folder, which holds each worker's
    folder, done = root / name, root / f"{name}.done"
    with locked(folder):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def tiny_models(request) -> dict[str, Path]:
    """``best.pt`` of every registered model at its ``tiny`` size and training, by kind, and of each variant
    (the mdn on the layer-norm cell as "layernorm"), each trained for seconds on ``seed_data``."""
    from sketchgen import models

    runs = {kind: (kind, {}) for kind in models.names()} | VARIANTS

    def build(folder: Path) -> None:
        import torch

        from sketchgen.runs import train_config
        from sketchgen.training import train

        torch.set_num_threads(1)
        seed_data = request.getfixturevalue("seed_data")
        for name, (kind, extra) in runs.items():
            settings = {**models.get(kind).tiny, **extra}
            train(train_config(kind, None, 0, **settings), seed_data, folder / f"tiny_{name}", log=lambda msg: None)

    folder = built_once(request, "tiny_models", build)
    return {name: folder / f"tiny_{name}" / "best.pt" for name in runs}


@pytest.fixture(scope="session")
def zoo_files() -> dict[str, Path]:
    """The shared zoo files by the class each draws, or skip."""
    files = {cls: MAGENTA_MODELS / f"{stem}.gen.json" for stem, cls in ZOO.items()}
    if not all(f.is_file() for f in files.values()):
        pytest.skip(f"Magenta's models not found in {MAGENTA_MODELS}")
    return files


@pytest.fixture(scope="session")
def zoo_models(zoo_files, tmp_path_factory) -> dict[str, Path]:
    """Each zoo file imported with `sketchgen import --format magenta`, by class."""
    from sketchgen.cli import main

    out = tmp_path_factory.mktemp("zoo")
    paths = {}
    for cls, path in zoo_files.items():
        paths[cls] = out / f"{path.name.removesuffix('.gen.json')}.pt"
        assert main(["import", "--format", "magenta", str(path), "--out", str(paths[cls])]) == 0
    return paths


@pytest.fixture(scope="session")
def zoo_data(quickdraw):
    """The zoo's four classes as ../shared/quickdraw has them: 21-25 recognized drawings each, seed 0."""
    from sketchgen.data import prepare

    return prepare(list(ZOO.values()), quickdraw / "simplified", max_per_class=100, seed=0)


@pytest.fixture(scope="session")
def zoo_classifier(zoo_data, tmp_path_factory) -> Path:
    """A classifier file that tells the zoo's four classes apart, trained on their real drawings (~15 s).

    With 15-18 training drawings a class it is a weak judge, but the same one for every drawing it compares.
    """
    import torch

    from sketchgen.classifier import save_classifier, train_classifier

    torch.set_num_threads(1)
    clf, _ = train_classifier(zoo_data, epochs=20, seed=0, log=lambda msg: None)
    path = tmp_path_factory.mktemp("zoo_classifier") / "classifier.pt"
    save_classifier(clf, list(zoo_data.classes), path)
    return path


def ctrl_c_in_step(monkeypatch, n: int) -> None:
    """Ctrl-C while the training's ``n``-th step runs: the flag is read as the next step starts, so step n + 1 is
    the run's last (a fault injected around the real step, which runs)."""
    import os
    import signal

    from sketchgen.training import loop

    real, calls = loop.train_step, []

    def step(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "train_step", step)
