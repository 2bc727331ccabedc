"""The release a user installs: ``python -m build`` makes a wheel, without a deprecation warning, that installs into
a clean virtual environment and draws from the wheel alone, its shipped models and web page included."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import sketchgen

ROOT = Path(__file__).resolve().parents[1]
# About 30 s on 2 busy cores: a build, a venv, an install, two processes that import PyTorch.
pytestmark = pytest.mark.release


def run(*command, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """A command, never under this checkout's PYTHONPATH (it would import sketchgen from the source tree)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{command[:3]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of what a release holds (the build writes beside its sources), with this
    environment's setuptools, offline."""
    tmp = tmp_path_factory.mktemp("release")
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    built = run(sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", tmp / "dist", source)
    assert "deprecat" not in (built.stdout + built.stderr).lower()  # project.license as a table was
    (path,) = (tmp / "dist").glob("*.whl")
    return path


def test_the_wheel_holds_the_package_its_assets_and_its_licence(wheel):
    version = sketchgen.__version__
    assert wheel.name == f"sketchgen-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        metadata = whl.read(f"sketchgen-{version}.dist-info/METADATA").decode()
    shipped = {f"sketchgen/{p.relative_to(ROOT / 'src' / 'sketchgen')}" for folder in ("assets", "web")
               for p in (ROOT / "src" / "sketchgen" / folder).iterdir()}
    assert shipped <= names and len(shipped) >= 6  # the two models, the class list, the page's three files
    assert {"sketchgen/py.typed", "sketchgen/api.py", f"sketchgen-{version}.dist-info/licenses/LICENSE"} <= names
    assert not [n for n in names if "__pycache__" in n or not n.startswith(("sketchgen/", "sketchgen-"))]
    for line in (f"Version: {version}", "License-Expression: MIT", "License-File: LICENSE",
                 "Requires-Dist: torch==2.13.0"):
        assert line in metadata.splitlines()


def test_the_wheel_installs_into_a_clean_environment_and_draws(wheel, tmp_path):
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python, bin_dir = venv / "bin" / "python", venv / "bin"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip())
    # This environment's third-party packages (PyTorch and the rest, not downloaded again) as plain folders: the
    # .pth files in them, the editable install of this checkout among them, are not run, so sketchgen can only
    # come from the wheel.
    site.joinpath("dependencies.pth").write_text(
        "".join(f"{p}\n" for p in sorted({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")})))
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run(bin_dir / "sketchgen", "sample", "--classes", "eye", "--n", "1", "--out", elsewhere / "out", cwd=elsewhere)
    (line,) = (elsewhere / "out" / "samples.ndjson").read_text().splitlines()
    assert json.loads(line)["word"] == "eye" and len(json.loads(line)["drawing"]) > 1

    code = ("import importlib.metadata, sketchgen; print(sketchgen.__file__); "
            "print(importlib.metadata.version('sketchgen')); print(sketchgen.load().sample('eye'))")
    where, version, drawn = run(python, "-c", code, cwd=elsewhere).stdout.splitlines()
    assert Path(where).is_relative_to(site / "sketchgen")
    assert version == sketchgen.__version__
    assert drawn.startswith("[Drawing('eye', ") and drawn.endswith(" points)]")
