"""What a command may write over: never a checkpoint with another kind of file, never two commands' drawings mixed.

A run's ``last.pt`` and ``best.pt`` hold weeks of work: ``import``, ``export``
and ``evaluate --json`` refuse to write over a checkpoint (or over the very
file they read), and ``import`` replaces only an earlier import. A drawing
command's folder holds one command's drawings: given a folder where an
earlier ``sample`` (or ``reconstruct``) wrote, it refuses, or with
``--overwrite`` first removes exactly the files that earlier command wrote
(those its ndjson lists), so no old PNG stays beside a new ndjson.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sketchgen.api import UsageError
from sketchgen.fileio import FileRefused, open_regular, read_lines, replaceable, safe_name

MAX_LINE = 4 << 20  # one drawing's line, as data reads them


def _contents(path: Path) -> str | None:
    """What ``path`` is, as far as sketchgen is concerned: None (nothing there), "checkpoint", "imported" (a
    checkpoint an import wrote), "classifier", "json", "npz" (a Sketch-RNN dataset), or "other"."""
    from sketchgen import models
    from sketchgen.classifier import CLASSIFIER_FILE
    from sketchgen.npz import is_dataset

    if not os.path.lexists(path):
        return None
    try:
        ckpt = models.read_file(path)
    except models.CheckpointError:
        if is_dataset(path):
            return "npz"
        try:
            with open_regular(path, 64 << 20) as f:
                json.load(f)
            return "json"
        except (FileRefused, ValueError, UnicodeDecodeError):
            return "other"
    if ckpt.get("kind") == CLASSIFIER_FILE:
        return "classifier"
    return "imported" if ckpt.get("imported") and "train" not in ckpt else "checkpoint"


def writable(out: str | os.PathLike, writes: str, flag: str, reads: tuple = (), replaces: tuple[str, ...] = ()) -> None:
    """Refuse, in one line, to write ``writes`` at ``out`` (given as ``flag``) over any of ``reads`` (the files
    the command reads) or over an existing file unless what it holds is in ``replaces`` (``_contents``)."""
    out = Path(out)
    if any(os.path.lexists(r) and os.path.lexists(out) and os.path.samefile(out, r) for r in reads):
        raise UsageError(f"{flag} {out} is the file this command reads: write the {writes} elsewhere")
    try:
        replaceable(out)  # a folder or a FIFO is not "another file": say what it is
    except FileRefused as e:
        raise UsageError(f"{flag} {e}") from None
    holds = _contents(out)
    if holds is not None and holds not in replaces:
        what = {"checkpoint": "a model checkpoint (a run's weights and training state)",
                "imported": "an imported model checkpoint", "classifier": "a classifier",
                "json": "another JSON file"}.get(holds, "another file")
        raise UsageError(f"{flag} {out} holds {what}; writing the {writes} there would lose it: give another {flag}")


def fresh_folder(out: Path, listing: str, overwrite: bool, tag: str = "") -> None:
    """Refuse a folder holding an earlier drawing command's ``listing`` (its ndjson) unless ``overwrite``; then
    remove that ndjson and the PNG and SVG of each drawing it lists."""
    earlier = out / listing
    if not os.path.lexists(earlier):
        return
    if not overwrite:
        raise UsageError(f"{out} holds the drawings of an earlier command ({listing}): pass --overwrite to replace "
                         "them, or another --out")
    if os.path.islink(earlier):  # not one we wrote: its list names no file of ours to remove
        earlier.unlink()
        return
    with open_regular(earlier, None, "list of drawings") as f:
        for i, line in enumerate(read_lines(f, MAX_LINE)):
            try:
                word = json.loads(line)["word"] if line else None
            except (ValueError, KeyError, TypeError, RecursionError):  # a line nested too deep for the parser
                continue
            if isinstance(word, str):
                for suffix in (".png", ".svg"):
                    (out / f"{safe_name(word)}-{tag}{i:03d}{suffix}").unlink(missing_ok=True)
    earlier.unlink()
