"""docs/api.md is what scripts/api_docs.py writes from the docstrings today, and the script refuses to leave out a
docstring or a type hint."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import sketchgen

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def api_docs():
    spec = importlib.util.spec_from_file_location("api_docs", ROOT / "scripts" / "api_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_api_md_is_up_to_date(api_docs):
    assert api_docs.render() == (ROOT / "docs" / "api.md").read_text(), \
        "docs/api.md is out of date: run python scripts/api_docs.py"


def test_every_public_name_and_method_is_in_it(api_docs):
    text = api_docs.render()
    for name in sketchgen.__all__:
        assert f"sketchgen.{name}" in text
    for method in ("Model.sample(", "Model.complete(", "Model.reconstruct(", "Model.interpolate(",
                   "Drawing.from_strokes(", "Drawing.to_svg(", "Drawing.to_png(", "Drawing.to_ndjson(", "Grid.save("):
        assert f"#### `{method}" in text


def test_a_missing_docstring_or_type_hint_stops_it(api_docs, monkeypatch):
    monkeypatch.setattr(sketchgen.Model.sample, "__doc__", None)
    with pytest.raises(api_docs.Undocumented, match="^Model.sample has no docstring$"):
        api_docs.render()
    monkeypatch.undo()
    monkeypatch.setattr(sketchgen.Drawing.to_svg, "__annotations__", {"return": "str"})
    with pytest.raises(api_docs.Undocumented, match="^Drawing.to_svg: parameter size has no type hint$"):
        api_docs.render()
