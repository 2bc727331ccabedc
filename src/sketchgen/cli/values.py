"""Command-line values, each checked where it is parsed: a bad one is one line and exit status 2.

Every numeric flag has a type here that refuses what would fail later inside
torch or NumPy, allocate without bound, or mean nothing (NaN, inf, a negative
rate, a seed beyond 64 bits); a training flag's bounds are its TrainConfig
field's (``setting``), the ones a resumed run's saved value is checked
against. ``--device`` must name a device this machine has; a path is never
empty or holds a NUL; ``--classes`` lists (names, ``all``, ``@FILE``) are read
and checked as they are parsed. ``Parser`` prints argparse's refusals as one
line, without the usage block.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import MISSING, Field, fields

from sketchgen import api, splits
from sketchgen.errors import one_line
from sketchgen.fileio import read_bytes
from sketchgen.sample import MAX_TEMPERATURE
from sketchgen.strokes import MAX_POINTS


class Parser(argparse.ArgumentParser):
    """argparse, with a refusal as one line naming the flag (the usage is a ``--help`` away)."""

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else [str(a) for a in args]
        for arg in args:  # argparse drops an explicit "--" value and hands the flag's type a list instead
            if arg.startswith("--") and arg.endswith("=--"):
                self.error(f"argument {arg[:-3]}: expected one argument, not '--'")
        return super().parse_known_args(args, namespace)

    def error(self, message: str):
        sys.stderr.write(one_line(f"{self.prog}: error: {message} (see {self.prog} --help)") + "\n")
        sys.exit(2)


def _typed(name: str, parse):
    parse.__name__ = name  # argparse names it in "invalid int value: 'x'"
    return parse


def integer(low: int, high: int):
    """An integer from ``low`` to ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, not {value}")
        return value

    return _typed("int", parse)


def real(low: float, high: float, above: bool = False, below: bool = False):
    """A finite number from ``low`` to ``high`` (``above``/``below``: excluding that end)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number") from None
        if not math.isfinite(value) or value < low or value > high or (above and value == low) or (below and value == high):
            lo, hi = "(" if above else "[", ")" if below else "]"
            raise argparse.ArgumentTypeError(f"must be a finite number in {lo}{low:g}, {high:g}{hi}, not {text[:40]}")
        return value

    return _typed("float", parse)


def choice(options) -> callable:
    """One of ``options``."""

    def parse(text: str) -> str:
        if text not in options:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not one of {', '.join(options)}")
        return text

    return _typed("choice", parse)


def of_field(f: Field):
    """The type of a flag for a settings dataclass field (``models.base.setting``): its choices, or its bounds."""
    choices = f.metadata.get("choices")
    if choices:
        return choice(list(choices() if callable(choices) else choices))
    low, high = f.metadata["low"], f.metadata["high"]
    default = f.default if f.default is not MISSING else f.default_factory()
    if isinstance(default, float):
        return real(low, high, above=f.metadata.get("above", False))
    return integer(int(low), int(high))


def metavar(f: Field) -> str:
    """How the help shows a setting's value: its choices, or its name."""
    choices = f.metadata.get("choices")
    return "{" + ",".join(choices() if callable(choices) else choices) + "}" if choices else f.name.upper()


def of(cls, name: str):
    """The type of a flag for the dataclass field ``cls.name``."""
    return of_field(next(f for f in fields(cls) if f.name == name))


def of_fields(owners: list[Field]):
    """A value that one of several models' settings of one name could take (the loosest bounds, every choice),
    kept as its text: whose setting it is, and so its own bounds, is known once the model is (``of_field``)."""
    values = [f.metadata for f in owners]
    choices = [c for m in values if m.get("choices") for c in (m["choices"]() if callable(m["choices"]) else m["choices"])]
    if choices:
        check = choice(list(dict.fromkeys(choices)))
    else:
        low, high = min(m["low"] for m in values), max(m["high"] for m in values)
        default = owners[0].default if owners[0].default is not MISSING else owners[0].default_factory()
        check = real(low, high, above=all(m.get("above") for m in values)) if isinstance(default, float) \
            else integer(int(low), int(high))

    def parse(text: str) -> str:
        check(text)
        return text

    return _typed(check.__name__, parse)


def path(text: str) -> str:
    """A file or folder name: not empty, no NUL (which no file system allows)."""
    if not text or "\0" in text:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a path")
    return text


def base_url(text: str) -> str:
    """Where class files are served (``download.checked_base_url``)."""
    from sketchgen.download import DownloadError, checked_base_url

    try:
        return checked_base_url(text)
    except DownloadError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def host(text: str) -> str:
    """An address to listen on: a name or an IP, never empty (which would mean every interface)."""
    if not text or not text.isprintable() or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a host name or address (0.0.0.0 opens all)")
    return text


def device(text: str) -> str:
    """A torch device this machine has (``training.distributed.check_device``)."""
    from sketchgen.training.distributed import check_device

    try:
        return check_device(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


MAX_LIST_BYTES = 16 * 2**20  # an @FILE of class names: 100,000 names of 100 characters, and more


class ClassList(argparse.Action):
    """``--classes``: names, ``all`` alone (the 345 QuickDraw classes, in every command), or @FILE with one name a
    line, where no word is special (a class of your own named ``all``).

    Expanded and checked as parsed: an @FILE that is unreadable, not a regular file (a folder, a FIFO that
    would block, /dev/zero that never ends), larger than MAX_LIST_BYTES, not UTF-8 or empty, a class named
    twice, a name that cannot name a class (a path, a control character): each one line, exit 2. Whether a
    name is a class the data has (one of the 345, or a file of the user's own) is known once --data-dir is:
    ``check_known``, after parsing.
    """

    def __call__(self, parser, namespace, values, option_string=None):
        from sketchgen.classfiles import ALL, categories, name_problem, named_twice

        where = f"argument {option_string or self.metavar}"
        if ALL in values:
            if len(values) > 1:
                parser.error(f"{where}: '{ALL}' stands alone, without other names")
            return setattr(namespace, self.dest, categories())
        names = []
        for value in values:
            names += _listed(value[1:], parser, where) if value.startswith("@") else [value]
        bad = next((n for n in names if name_problem(n)), None)
        if bad is not None:
            parser.error(f"{where}: {bad[:40]!r} is not a class name ({name_problem(bad)})")
        twice = named_twice(names)
        if twice is not None:
            parser.error(f"{where}: class {twice[:40]!r} is named twice")
        setattr(namespace, self.dest, names)


def check_known(args) -> str | None:
    """Why the --classes given are not all classes the data has (one line), or None: what ClassList defers
    until --data-dir is known."""
    from sketchgen.classfiles import DataError, check_classes

    if not getattr(args, "known_classes", False) or not args.classes:
        return None
    try:
        check_classes(args.classes, args.data_dir)
    except DataError as e:
        return f"argument --classes: {e}"
    return None


def _listed(name: str, parser, where: str) -> list[str]:
    """The names an @FILE lists, one a line, read at a bounded cost."""
    try:
        path(name)
        text = read_bytes(name, MAX_LIST_BYTES, "file").decode("utf-8-sig")  # a BOM allowed, as in ndjson files
    except (OSError, ValueError, argparse.ArgumentTypeError) as e:
        reason = e.reason if isinstance(e, UnicodeDecodeError) else str(e).removeprefix(f"{name}: ")
        parser.error(f"{where}: @{name[:200]}: cannot read class names ({reason})")
    listed = [line.strip() for line in text.splitlines() if line.strip()]
    if not listed:
        parser.error(f"{where}: @{name[:200]} lists no class names (one per line)")
    return listed


def host_name(text: str) -> str:
    """A name a server may be reached by, as a Host header gives it: a host name, an IP address ([...] for IPv6),
    '*.domain' for its subdomains, or '*' for any."""
    name = text.lower()
    bare = name.removeprefix("*.") if name != "*" else "x"
    if bare.startswith("[") and bare.endswith("]"):
        bare = bare[1:-1].replace(":", "")
    if not bare or len(name) > 253 or not all(c.isascii() and (c.isalnum() or c in ".-") for c in bare):
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a host name, an address, '*.domain' or '*'")
    return name


HOST_NAME = _typed("host name", host_name)
POSITIVE = integer(1, 10**9)
SEED = integer(0, api.SEED_MAX)
PORT = integer(0, 65535)
LENGTH = integer(1, MAX_POINTS)  # points per drawing: far beyond any real one (the longest QuickDraw drawings have ~1,000)
DRAWINGS_MAX = api.MAX_EACH  # drawings per class in one command, as in one call of the library
DRAWINGS = integer(0, DRAWINGS_MAX)
MAX_PER_CLASS = integer(1, splits.MAX_PER_CLASS)
TEMPERATURE = real(0.0, MAX_TEMPERATURE, above=True)
