"""The one exception type of sketchgen's refusals: ``except SketchgenError`` catches every one of them.

Each says in one line what is wrong - the file and line, the field, the flag,
the setting - and what to do; the command line prints it as ``sketchgen:
error: ...``. Each module raises a kind of its own (``DataError``,
``CheckpointError``, ``ModelError``, ``TrainingError``, ...), all subclasses
of this one. (``strokes`` imports nothing of ours: its ``StrokeError`` reaches
users as a ``DrawingError``.)
"""

import io
import sys
from collections.abc import Callable

import numpy as np


def flag(name: str) -> str:
    """How a refusal names a setting: its command-line flag, ``val_weights`` as ``--val-weights``."""
    return "--" + name.replace("_", "-")


def whole_lines() -> Callable[[], None]:
    """Make each line written to stderr one write, as a pool's workers and their parent share it; what puts it back.

    Unbuffered (``PYTHONUNBUFFERED``, ``python -u``: common in containers), Python writes ``print``'s text and its
    newline apart, so two processes' notes came out run together on one line and an empty one."""
    stream = sys.stderr
    if not isinstance(stream, io.TextIOWrapper):
        return lambda: None
    before = {"line_buffering": stream.line_buffering, "write_through": stream.write_through}
    stream.reconfigure(line_buffering=True, write_through=False)
    return lambda: stream.reconfigure(**before)


def counted(n: int, noun: str) -> str:
    """"1 class", "2 classes", "1 drawing": a count for a message, its noun in the number it takes."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}{'es' if noun.endswith(('s', 'sh', 'ch', 'x')) else 's'}"


def one_line(text: str) -> str:
    """``text`` with every newline or other unprintable character escaped (a path may hold any of them)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def whole_number(name: str, value: object, low: int, high: int, error: type[Exception]) -> int:
    """``value`` if it is a whole number (not a bool) from ``low`` to ``high``, else ``error``, one line naming
    ``name``: the library's and the pictures' counts and sizes are checked alike."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise error(f"{name} must be a whole number from {low:,} to {high:,}, not {value!r:.40}")
    return int(value)


class SketchgenError(Exception):
    """Something sketchgen was asked to do that it will not or cannot do; one line saying why.

    The library raises nothing else for bad input: ``UsageError`` (values, and requests that contradict each
    other), ``SettingError``, ``DrawingError``, and the data's, checkpoints', models' and training's own kinds
    (``DataError``, ``CheckpointError``, ``ModelError``, ``TrainingError``). Files that cannot be written raise
    ``OSError``, as Python's own functions do.

    Its text is one line whatever went into it: a path or a value quoted from a file may hold a newline. The
    command line and the library share these messages, which name a setting by its flag: ``--batch-size`` is
    ``batch_size=``, ``--resume`` is ``resume=True``.
    """

    def __str__(self) -> str:
        return one_line(super().__str__())


class DrawingError(SketchgenError, ValueError):
    """Strokes that are not a drawing (empty, of mismatched lengths, not numbers), or no drawing where drawings are
    needed; one line saying which."""
