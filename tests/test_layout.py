"""The module layout DEVELOPERS.md promises: a drawing flows forward, imports never form a cycle, and no
code outside ``models/`` names a model kind (what differs between models is asked of the model)."""

from __future__ import annotations

import ast
from pathlib import Path

from sketchgen import models

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "sketchgen"
# The flow, earliest first: a module may import modules of earlier layers, and of its own layer
# (a package) without a cycle. Names are dotted paths below sketchgen; a package stands for all its modules.
FLOW = ["errors", "strokes", "fileio", "launch", "render", "drawing", "download", "npz", "classfiles", "cache", "data",
        "models", "training", "sample", "metrics", "classifier", "interop", "evaluate", "report", "api", "splits", "runs", "serve", "cli",
        "__main__"]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "__init__"


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer(name: str) -> int:
    matches = [i for i, entry in enumerate(FLOW) if name == entry or name.startswith(entry + ".")]
    assert matches, f"sketchgen.{name} has no place in the flow"
    return matches[-1]


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The sketchgen modules a file imports (``from sketchgen.x import y`` counts sketchgen.x.y if that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sketchgen":
            base = node.module.removeprefix("sketchgen").lstrip(".")
            for alias in node.names:
                candidate = f"{base}.{alias.name}" if base else alias.name
                found.add(candidate if candidate in known else base)
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("sketchgen.") for a in node.names if a.name.startswith("sketchgen.")}
    return {f for f in found if f}


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(path, set(mods)) - {name} for name, path in mods.items()}


def test_every_module_is_placed_in_the_flow():
    for name in modules():
        if name != "__init__":
            layer(name)


def test_strokes_imports_nothing_of_ours():
    assert graph()["strokes"] == set()


def test_sampling_and_serving_never_import_training_nor_the_command_line():
    """What draws needs no training loop; the library never reaches up into its shells."""
    edges = graph()
    for name, imported in edges.items():
        if name == "sample" or name.startswith("serve"):
            assert not any(i.startswith("training") for i in imported), f"sketchgen.{name} imports training"
        if not name.startswith("cli") and name != "__main__":
            assert not any(i.startswith("cli") for i in imported), f"sketchgen.{name} imports the command line"


def test_imports_only_point_backwards_in_the_flow():
    for name, imported in graph().items():
        if name == "__init__":
            continue
        for other in imported:
            assert layer(other) <= layer(name), f"sketchgen.{name} imports sketchgen.{other}, which comes after it"


def test_imports_never_form_a_cycle():
    edges = graph()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in edges.get(node, ()):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path + [node, nxt]))
            if nxt in edges and not state.get(nxt):
                visit(nxt, path + [node])
        state[node] = 2

    for node in edges:
        if not state.get(node):
            visit(node, [])


def test_no_model_kind_is_named_outside_models():
    """A comparison with a model's name, or a branch on ``.kind``, belongs in the model, not beside it."""
    kinds = set(models.names())
    for name, path in modules().items():
        if name.startswith("models"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                named = [s.value for s in sides if isinstance(s, ast.Constant) and s.value in kinds]
                assert not named, f"sketchgen.{name}:{node.lineno} compares with the model kind {named[0]!r}"
                for s in sides:
                    of_dtype = isinstance(s, ast.Attribute) and "dtype" in ast.unparse(s.value)  # NumPy's dtype.kind
                    assert not (isinstance(s, ast.Attribute) and s.attr == "kind" and not of_dtype), \
                        f"sketchgen.{name}:{node.lineno} branches on a model's kind"
            if isinstance(node, ast.Dict):
                keyed = [k.value for k in node.keys if isinstance(k, ast.Constant) and k.value in kinds - {"seed"}]
                assert not keyed, f"sketchgen.{name}:{node.lineno} keys a table by the model kind {keyed[0]!r}"


def test_a_model_is_one_file_in_models():
    for kind in models.names():
        cls = models.get(kind)
        assert cls.__module__.startswith("sketchgen.models."), f"{kind} is defined outside models/"
