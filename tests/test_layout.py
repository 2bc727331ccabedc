"""The module layout DEVELOPERS.md promises: a drawing flows forward, imports never form a cycle."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "sketchgen"
# The flow, earliest first; a module may import only modules before it (cli and serve sit on top).
FLOW = ["strokes", "fileio", "interop", "download", "cache", "data", "model", "export", "train", "sample", "render",
        "evaluate", "serve", "cli", "__main__"]


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sketchgen":
            parts = node.module.split(".")
            found |= {a.name for a in node.names} if len(parts) == 1 else {parts[1]}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("sketchgen.")}
    return found - {path.stem, "__version__"}


def test_every_module_is_placed_in_the_flow():
    assert {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"} == set(FLOW)


def test_strokes_imports_nothing_of_ours():
    assert imports_of(PACKAGE / "strokes.py") == set()


def test_imports_only_point_backwards_in_the_flow():
    for module in FLOW:
        later = set(FLOW[FLOW.index(module):])
        assert not imports_of(PACKAGE / f"{module}.py") & later, f"{module} imports a module after it in the flow"
