"""Checkpoints written by sketchgen 0.1.0 still load, and draw what 0.1.0 drew from them.

The fixtures (tests/fixtures/README.md says how 0.1.0 made each) are compared through the command line a
user types, so any change to generation, sampling streams, fitting or export shows here. What integer or
correctly rounded arithmetic decides is compared exactly, on every CPU: the words and keys, how many
strokes and points each drawing has (where each pen lift and each end fell), and the export's int16
weights (one division and rounding each). Coordinates come out of an LSTM in float32, whose kernels differ
between CPUs (oneDNN and ATen pick them by instruction set, and sum in other orders): each is held to
within ``COORDINATE_TOLERANCE`` of 0.1.0's.

Stroke and point counts are exact on every CPU only if no sampled choice (a pen lift, a mixture component)
falls near a tie. Measured on 2026-12-07 over every choice these commands make (3,754): the nearest is
1.1e-5 of the cumulative total away from flipping, and the AVX2 and SSE4.1 kernels move the boundaries
by at most 1.0e-7, so the margin is over 100 times what the kernels differ by.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sketchgen.cli import SHIPPED_CHECKPOINT, main

FIXTURES = Path(__file__).parent / "fixtures"
# The fixtures were made on a CPU with AVX-512. Between this machine's AVX2 kernels and its SSE4.1 ones
# (ATEN_CPU_CAPABILITY=default, DNNL_MAX_CPU_ISA=SSE41) the shipped model's fitted coordinates move by at most
# 1.2e-4 of a unit; its 37.49999 there is 37.50001 here. Rounding to QuickDraw's integer grid turns a change
# that small into 0 or 1 unit, now and then; more than 1 would be a change in what the model draws.
COORDINATE_TOLERANCE = 1


# 0.1.0 sampled at 0.4 unless told otherwise; today's default is lower (sample.TEMPERATURE), so the commands
# below ask for 0.1.0's temperature as a user who wants its drawings back would.
OLD_TEMPERATURE = ("--temperature", 0.4)


def run(*argv) -> None:
    assert main([str(a) for a in argv]) == 0


def assert_draws_as(written: Path, fixture: Path) -> None:
    """The same drawings, line for line: every field but the coordinates exactly, the coordinates within
    ``COORDINATE_TOLERANCE``."""
    got = [json.loads(line) for line in written.read_text().splitlines()]
    want = [json.loads(line) for line in fixture.read_text().splitlines()]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert {k: v for k, v in g.items() if k != "drawing"} == {k: v for k, v in w.items() if k != "drawing"}
        assert [[len(axis) for axis in stroke] for stroke in g["drawing"]] == \
               [[len(axis) for axis in stroke] for stroke in w["drawing"]]
        for stroke_g, stroke_w in zip(g["drawing"], w["drawing"]):
            for axis_g, axis_w in zip(stroke_g, stroke_w):
                assert all(abs(a - b) <= COORDINATE_TOLERANCE for a, b in zip(axis_g, axis_w)), (axis_g, axis_w)


@pytest.mark.parametrize("kind", ["seed", "mdn"])
def test_samples_from_a_010_checkpoint_are_unchanged(tmp_path, kind):
    run("sample", "--checkpoint", FIXTURES / f"v010-{kind}.pt", "--n", 3, "--seed", 1, *OLD_TEMPERATURE,
        "--out", tmp_path)
    assert_draws_as(tmp_path / "samples.ndjson", FIXTURES / f"v010-{kind}-samples.ndjson")


@pytest.mark.parametrize("kind", ["seed", "mdn"])
def test_completions_from_a_010_checkpoint_are_unchanged(tmp_path, quickdraw, kind):
    prefix = tmp_path / "prefix.ndjson"
    prefix.write_bytes(b"".join((quickdraw / "simplified" / "eye.ndjson").open("rb").readlines()[:2]))
    run("sample", "--checkpoint", FIXTURES / f"v010-{kind}.pt", "--n", 2, "--seed", 3, "--classes", "eye",
        "--prefix", prefix, "--prefix-strokes", 2, *OLD_TEMPERATURE, "--out", tmp_path / "out")
    assert_draws_as(tmp_path / "out" / "samples.ndjson", FIXTURES / f"v010-{kind}-completions.ndjson")


def test_the_shipped_checkpoint_draws_as_it_did(tmp_path):
    run("sample", "--checkpoint", SHIPPED_CHECKPOINT, "--n", 2, "--seed", 0, *OLD_TEMPERATURE, "--out", tmp_path)
    assert_draws_as(tmp_path / "samples.ndjson", FIXTURES / "shipped-seed-samples.ndjson")


def test_export_of_a_010_checkpoint_is_unchanged(tmp_path):
    """Byte for byte what 0.1.0 wrote, but for the info key that marks the file as sketchgen's export (2026-12-07),
    so that export replaces it and not Magenta's own model file."""
    out = tmp_path / "circle.gen.json"
    run("export", "--checkpoint", FIXTURES / "v010-mdn.pt", "--format", "magenta", "--class", "circle", "--out", out)
    info, *rest = json.loads(out.read_bytes())
    assert info.pop("exported_by") == "sketchgen"
    assert json.dumps([info, *rest]).encode() == (FIXTURES / "v010-mdn-circle.gen.json").read_bytes()
