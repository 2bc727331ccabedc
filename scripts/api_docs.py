"""Write docs/api.md, the library's reference, from the public names' docstrings and type hints.

    python scripts/api_docs.py          # rewrites docs/api.md; tests/test_api_docs.py fails while it is stale

Every name in ``sketchgen.__all__`` is listed - functions, then classes with
their attributes, properties and public methods, then the exceptions - each
with its signature as written in the source and its docstring. A public name,
method or property without a docstring, or a parameter or return without a
type hint, stops it with one line naming what is missing: the reference can
never quietly skip part of the library.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

import sketchgen

OUT = Path(__file__).resolve().parents[1] / "docs" / "api.md"


class Undocumented(Exception):
    """A public name without its docstring or type hints."""


class _Hint:
    """An annotation as written in the source (``from __future__ import annotations`` keeps them as strings)."""

    def __init__(self, text: str):
        self.text = text.strip("'\"")

    def __repr__(self) -> str:
        return self.text


def doc(obj: object, where: str) -> str:
    text = inspect.getdoc(obj)
    if not text:
        raise Undocumented(f"{where} has no docstring")
    return text


def signature(func, where: str) -> str:
    """``(a: int = 1, *, b: str) -> bool``, every hint required (``self`` and ``cls`` excepted)."""
    sig = inspect.signature(func)
    params = []
    for p in sig.parameters.values():
        if p.name in ("self", "cls"):
            continue
        if p.annotation is inspect.Parameter.empty:
            raise Undocumented(f"{where}: parameter {p.name} has no type hint")
        params.append(p.replace(annotation=_Hint(p.annotation)))
    if sig.return_annotation is inspect.Signature.empty:
        raise Undocumented(f"{where} has no return type hint")
    return str(sig.replace(parameters=params, return_annotation=_Hint(sig.return_annotation)))


def function(name: str, func) -> list[str]:
    return [f"### `sketchgen.{name}{signature(func, name)}`", "", doc(func, name), ""]


def members(cls: type) -> list[str]:
    """A class's attributes (its annotations, a dataclass's fields among them), properties and public methods."""
    lines = []
    hints = {k: v for k, v in vars(cls).get("__annotations__", {}).items() if not k.startswith("_")}
    if hints:
        lines += ["Attributes:", ""] + [f"- `{k}: {_Hint(v)!r}`" for k, v in hints.items()] + [""]
    for attr, value in vars(cls).items():
        if attr.startswith("_"):
            continue
        where = f"{cls.__name__}.{attr}"
        if isinstance(value, property):
            hint = inspect.signature(value.fget).return_annotation
            if hint is inspect.Signature.empty:
                raise Undocumented(f"{where} has no return type hint")
            lines += [f"#### `{where}: {_Hint(hint)!r}` (property)", "", doc(value, where), ""]
        elif isinstance(value, (classmethod, staticmethod)):
            kind = type(value).__name__
            lines += [f"#### `{where}{signature(value.__func__, where)}` ({kind})", "", doc(value, where), ""]
        elif inspect.isfunction(value):
            lines += [f"#### `{where}{signature(value, where)}`", "", doc(value, where), ""]
    return lines


def render() -> str:
    """The whole of docs/api.md."""
    objects = {name: getattr(sketchgen, name) for name in sketchgen.__all__}
    errors = [n for n, o in objects.items() if isinstance(o, type) and issubclass(o, BaseException)]
    classes = [n for n, o in objects.items() if isinstance(o, type) and n not in errors]
    functions = [n for n, o in objects.items() if inspect.isfunction(o)]
    missing = set(objects) - set(errors) - set(classes) - set(functions)
    if missing:
        raise Undocumented(f"sketchgen.{min(missing)} is neither a function nor a class")
    lines = ["# The sketchgen library", "",
             "<!-- Written by scripts/api_docs.py from the docstrings; edit those, then run it again. -->", "",
             doc(sketchgen, "sketchgen"), "", "## Functions", ""]
    for name in functions:
        lines += function(name, objects[name])
    lines += ["## Classes", ""]
    for name in classes:
        lines += [f"### `class sketchgen.{name}`", "", doc(objects[name], name), "", *members(objects[name])]
    lines += ["## Errors", ""]
    for name in errors:
        base = objects[name].__bases__[0].__name__
        lines += [f"### `class sketchgen.{name}({base})`", "", doc(objects[name], name), ""]
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()  # --help says what it does, and no more
    try:
        text = render()
    except Undocumented as e:
        print(f"api_docs: {e}", file=sys.stderr)
        return 1
    OUT.write_text(text)
    print(OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
