"""Checkpoints written by sketchgen 0.1.0 still load, and give the same files as 0.1.0 made from them.

The fixtures (tests/fixtures/README.md says how 0.1.0 made each) are compared byte for byte through the
command line a user types, so any change to generation, sampling streams, fitting or export shows here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sketchgen.cli import SHIPPED_CHECKPOINT, main

FIXTURES = Path(__file__).parent / "fixtures"


def run(*argv) -> None:
    assert main([str(a) for a in argv]) == 0


@pytest.mark.parametrize("kind", ["seed", "mdn"])
def test_samples_from_a_010_checkpoint_are_unchanged(tmp_path, kind):
    run("sample", "--checkpoint", FIXTURES / f"v010-{kind}.pt", "--n", 3, "--seed", 1, "--out", tmp_path)
    assert (tmp_path / "samples.ndjson").read_bytes() == (FIXTURES / f"v010-{kind}-samples.ndjson").read_bytes()


@pytest.mark.parametrize("kind", ["seed", "mdn"])
def test_completions_from_a_010_checkpoint_are_unchanged(tmp_path, quickdraw, kind):
    prefix = tmp_path / "prefix.ndjson"
    prefix.write_bytes(b"".join((quickdraw / "simplified" / "eye.ndjson").open("rb").readlines()[:2]))
    run("sample", "--checkpoint", FIXTURES / f"v010-{kind}.pt", "--n", 2, "--seed", 3, "--classes", "eye",
        "--prefix", prefix, "--prefix-strokes", 2, "--out", tmp_path / "out")
    expected = (FIXTURES / f"v010-{kind}-completions.ndjson").read_bytes()
    assert (tmp_path / "out" / "samples.ndjson").read_bytes() == expected


def test_the_shipped_checkpoint_draws_as_it_did(tmp_path):
    run("sample", "--checkpoint", SHIPPED_CHECKPOINT, "--n", 2, "--seed", 0, "--out", tmp_path)
    assert (tmp_path / "samples.ndjson").read_bytes() == (FIXTURES / "shipped-seed-samples.ndjson").read_bytes()


def test_export_of_a_010_checkpoint_is_unchanged(tmp_path):
    out = tmp_path / "circle.gen.json"
    run("export", "--checkpoint", FIXTURES / "v010-mdn.pt", "--format", "magenta", "--class", "circle", "--out", out)
    assert out.read_bytes() == (FIXTURES / "v010-mdn-circle.gen.json").read_bytes()
