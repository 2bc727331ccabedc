"""sketchgen: class-conditional pen-stroke sketch generation on Google Quick, Draw!, from the command line.

The parser is here, what each command does is in ``commands``, and every
value is checked where it is parsed (``values``). ``--model`` and the model
flags come from the registered models (``sketchgen.models``).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import MISSING, fields

from sketchgen import api, splits
from sketchgen.api import SEED_CLASSES, SHIPPED_CHECKPOINT
from sketchgen.cli import commands as C
from sketchgen.cli import values as V
from sketchgen.cli.commands import FlagError, model_flags, say
from sketchgen.errors import flag, one_line
from sketchgen.sample import MAX_TEMPERATURE, TEMPERATURE

__all__ = ["SEED_CLASSES", "SHIPPED_CHECKPOINT", "build_parser", "main"]

# What --seed seeds where a command only prepares drawings.
KEPT_AND_SPLIT = "the drawings a class over --max-per-class keeps, and the split"
# What every --classes takes besides names (V.ClassList reads them).
CLASS_FORMS = "'all' (the 345), or @FILE with one name per line, where 'all' is a class of your own"


def _add_temperature(p) -> None:
    p.add_argument("--temperature", type=V.TEMPERATURE, default=TEMPERATURE,
                   help=f"sampling temperature, above 0, at most {MAX_TEMPERATURE:g} (default {TEMPERATURE})")


# A few minutes on 2 cores: eye alone has ~5,000 drawings in ../shared/quickdraw.
DEMO_MAX_PER_CLASS = 1000


def _add_data_flags(p, seed: str, max_per_class: int = splits.DEFAULT_MAX_PER_CLASS) -> None:
    """--classes, --data-dir, --max-per-class, --seed (``seed``: what it seeds) and --workers."""
    p.add_argument("--classes", nargs="+", metavar="C", action=V.ClassList,
                   help=f"class names (quote names with spaces): Quick, Draw!'s, or your own from --data-dir; "
                        f"{CLASS_FORMS} (default: {' '.join(SEED_CLASSES)})")
    p.set_defaults(known_classes=True)  # each a class the data has, checked once --data-dir is known
    p.add_argument("--data-dir", type=V.path, help="folder of <class>.ndjson or Sketch-RNN <class>.npz files (default: "
                                      "$SKETCHGEN_DATA, the download cache, ../shared/quickdraw, or a small downloaded slice)")
    p.add_argument("--max-per-class", type=V.MAX_PER_CLASS,
                   help=f"recognized drawings kept per class (default {max_per_class})")
    p.add_argument("--seed", type=V.SEED, help=f"seed for {seed} (default 0)")
    p.add_argument("--workers", type=V.POSITIVE, help="processes preparing classes not yet cached (default and at most: "
                                                      "the cores this process may use; under torchrun local rank 0 "
                                                      "prepares)")


def _model_defaults(name: str, defaults: dict) -> str:
    """'seed 30, mdn 0' for a TrainConfig field, from each model's default settings (``defaults``: model name ->
    TrainConfig), or one value where all agree."""
    values = {model: config.__dict__[name] for model, config in defaults.items()}
    if len(set(map(str, values.values()))) == 1:
        return str(next(iter(values.values())))
    return ", ".join(f"{model} {v}" for model, v in values.items())


def _add_train_flags(p, model: str | None = None) -> None:
    """Every training setting with help is a flag, taking what the setting's bounds allow (the bounds a resumed
    run's saved value is held to), its default each model's own (``model``'s, for a command that trains only it)."""
    from sketchgen import models
    from sketchgen.training import TrainConfig

    names = [model] if model else [m.name for m in models.registered()]
    defaults = {name: TrainConfig.for_model(name) for name in names}  # once, not once for each flag
    for f in fields(TrainConfig):
        if f.metadata.get("help"):
            p.add_argument(flag(f.name), type=V.of_field(f), metavar=V.metavar(f),
                           help=f"{f.metadata['help']} (default: {_model_defaults(f.name, defaults)})")
    p.add_argument("--device", type=V.device, help="torch device, e.g. cpu or cuda (default cpu; under torchrun, cuda means "
                                                   "each process's own GPU)")
    # --no-amp, --no-compile: a run resumed keeps its own unless told (one begun on a GPU may go on on a CPU)
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 mixed precision (autocast) for the model's products: faster on a GPU and on a CPU "
                        "with bf16 instructions (AVX512_BF16, AMX), many times slower on one without; drawings about as "
                        "good (default off; a resumed run's own)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the model; pays off on a GPU for long runs (default off; a resumed run's own)")
    p.add_argument("--out", type=V.path, help="run folder for checkpoints, log and loss curve (default "
                                              "runs/<command>-<time>; give it under torchrun so that all processes agree)")
    again = p.add_mutually_exclusive_group()  # continuing a run and replacing it cannot both be meant
    again.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint, "
                                                             "with its own settings unless flags change them; "
                                                             "with no checkpoint there yet, start it (and say so)")
    again.add_argument("--overwrite", action="store_true", help="replace the run --out holds, if any, instead of refusing")


def _add_model_flags(p) -> None:
    """--model, and each model's own settings as flags: a name several models share is one flag, whose value is
    checked against the chosen model's setting once the model is known (``commands.model_settings``)."""
    from sketchgen import models

    p.add_argument("--model", choices=models.names(),
                   help="; ".join(f"{m.name}: {m.summary}" for m in models.registered())
                   + f" (default {models.default()})")
    for name, owners in model_flags().items():
        by_help: dict[str, list[str]] = {}  # one help text, and each model that has it with its default
        for kind, f in owners.items():
            default = f.default if f.default is not MISSING else f.default_factory()
            by_help.setdefault(f.metadata["help"], []).append(f"{kind} {default}")
        text = "; ".join(f"{help} (default: {', '.join(defaults)})" for help, defaults in by_help.items())
        p.add_argument(flag(name), type=V.of_fields(list(owners.values())),
                       metavar=V.metavar(next(iter(owners.values()))), help=text)


def _add_encoding_flags(p, metavar: str, what: str, seed: str) -> None:
    """What the commands of a model that encodes drawings share: the checkpoint, the drawings, how to draw."""
    p.add_argument("--checkpoint", type=V.path, required=True,
                   help="a .pt file of a model that encodes drawings (--model vae)")
    p.add_argument("--input", type=V.path, required=True, metavar=metavar,
                   help=f"QuickDraw ndjson, simplified or raw: {what}")
    _add_temperature(p)
    p.add_argument("--seed", type=V.SEED, default=0, help=f"{seed} (default 0)")
    p.add_argument("--out", type=V.path, help=f"output folder (default runs/{p.prog.split()[-1]}-<time>)")


def _add_overwrite(p, what: str) -> None:
    """A drawing command's --overwrite: ``what`` an earlier run of it wrote in --out is otherwise refused."""
    p.add_argument("--overwrite", action="store_true",
                   help=f"replace the {what} an earlier {p.prog.split()[-1]} wrote in --out (refused without it)")


def build_parser() -> V.Parser:
    from sketchgen import models

    parser = V.Parser(prog="sketchgen", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="train the seed model on the 5 seed classes and draw (or draw from the shipped model)")
    _add_data_flags(p, "the split, shuffling, initialisation and sampling", DEMO_MAX_PER_CLASS)
    _add_train_flags(p, models.default())  # demo trains the default model (model=None below), and only it
    _add_temperature(p)
    p.set_defaults(func=C.cmd_demo, max_per_class=DEMO_MAX_PER_CLASS, model=None)

    p = sub.add_parser("classes", help="list the 345 QuickDraw class names, the classes a checkpoint knows, or those "
                                       "a folder of your own drawings holds")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--checkpoint", type=V.path, help="list the classes this checkpoint (or Magenta .gen.json) draws")
    where.add_argument("--data-dir", type=V.path, help="list the classes this folder's <class>.ndjson (or .npz) files hold")
    p.set_defaults(func=C.cmd_classes)

    p = sub.add_parser("download", help="download QuickDraw simplified ndjson files into the cache")
    p.add_argument("classes", nargs="+", metavar="CLASS", action=V.ClassList,
                   help="class names, e.g. cat 'The Eiffel Tower', 'all', or @FILE with one name per line")
    p.add_argument("--data-dir", type=V.path, help="where to store the files (default: the download cache)")
    p.add_argument("--base-url", type=V.base_url, default=None,
                   help="the http(s) address under which the <class>.ndjson files are served (default: Google's "
                        "bucket)")
    p.set_defaults(func=C.cmd_download)

    p = sub.add_parser("prepare", help="filter, cap, split and cache drawings as arrays (train does this itself)")
    _add_data_flags(p, KEPT_AND_SPLIT)
    p.add_argument("--verify", action="store_true",
                   help="check every byte of each class's cache against its SHA-256 and rebuild any that fail "
                        "(opening checks only sizes and sampled blocks)")
    p.set_defaults(func=C.cmd_prepare)

    p = sub.add_parser("train", help="train a model")
    _add_data_flags(p, "the split, shuffling, initialisation and sampling")
    _add_model_flags(p)
    _add_train_flags(p)
    p.add_argument("--init", type=V.path, metavar="CHECKPOINT",
                   help="start from this checkpoint's weights (one of train's, an imported model, or a Magenta "
                        ".gen.json, read as import reads it) where they fit, with the settings its weights were "
                        "trained for (the mixture model's offset scale too); says what it could not take over. "
                        "--model defaults to its kind. 'none': random weights (default: a model with a shipped base, "
                        "the mdn, starts from it)")
    p.set_defaults(func=C.cmd_train)

    p = sub.add_parser("sample", help="generate drawings (ndjson, PNG, SVG) from a checkpoint")
    p.add_argument("--checkpoint", type=V.path, help="a .pt file written by train or import, or a Magenta .gen.json "
                                                     f"(default: the shipped mdn model, {api.SHIPPED_MODEL.name}, or "
                                                     f"for a class it does not know the base of all 345, "
                                                     f"{api.BASE_MODEL.name})")
    p.add_argument("--classes", nargs="+", metavar="C", action=V.ClassList,
                   help=f"classes to draw: names, {CLASS_FORMS} (default: all the model knows)")
    p.add_argument("--n", type=V.integer(1, V.DRAWINGS_MAX), default=1, help="drawings per class (default 1)")
    p.add_argument("--seed", type=V.SEED, default=0, help="random seed (default 0)")
    _add_temperature(p)
    p.add_argument("--max-len", type=V.LENGTH,
                   help="most points generated per drawing, after any prefix (default: the model's own)")
    p.add_argument("--prefix", type=V.path, help="ndjson file of started drawings: the command's drawing i (through the classes "
                                    "in turn) starts from the file's drawing i modulo their count and is finished as its "
                                    "class; or 'test' for the model's own test drawings of each class")
    p.add_argument("--prefix-strokes", type=V.LENGTH,
                   help="keep only the first N strokes of each prefix drawing (default: every stroke)")
    p.add_argument("--around", type=V.path, metavar="DRAWINGS.ndjson",
                   help="a model that encodes drawings (vae): --n variations of each drawing of this file, its latent "
                        "drawn from the drawing's posterior, its class the drawing's word (default: latents from the prior)")
    p.add_argument("--data-dir", type=V.path, help="with --prefix test: where the model's classes are read from "
                                      "(default: where it was trained from)")
    p.add_argument("--out", type=V.path, help="output folder (default runs/samples-<time>)")
    _add_overwrite(p, "drawings")
    p.set_defaults(func=C.cmd_sample)

    p = sub.add_parser("reconstruct", help="a model that encodes drawings (vae): redraw each drawing of a file")
    _add_encoding_flags(p, "DRAWINGS.ndjson", "each drawing's word must be a class the model knows", "random seed")
    _add_overwrite(p, "reconstructions")
    p.set_defaults(func=C.cmd_reconstruct)

    p = sub.add_parser("interpolate", help="a model that encodes drawings (vae): morph one drawing into another")
    _add_encoding_flags(p, "TWO.ndjson", "its first two drawings are the ends (classes the model knows)",
                        "random seed, the same for every step")
    p.add_argument("--steps", type=V.integer(2, 1000), default=10,
                   help="drawings from the first to the second, both ends included (default 10)")
    _add_overwrite(p, "interpolation")
    p.set_defaults(func=C.cmd_interpolate)

    p = sub.add_parser("convert", help="write prepared drawings as Sketch-RNN's .npz dataset files, one per class")
    _add_data_flags(p, KEPT_AND_SPLIT)
    p.add_argument("--to", choices=["npz"], required=True,
                   help="npz: Sketch-RNN's format (train/valid/test object arrays of int16 stroke-3)")
    p.add_argument("--out", type=V.path, required=True,
                   help="folder to write the <class>.npz files into; an earlier convert's file there is replaced, "
                        "any other file refused")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a Sketch-RNN dataset at --out that convert did not write (Sketch-RNN's own, or one "
                        "converted before 2026-12-07); other files are never replaced")
    p.set_defaults(func=C.cmd_convert)

    p = sub.add_parser("export", help="write one class of an mdn checkpoint as a model file for @magenta/sketch")
    p.add_argument("--checkpoint", type=V.path, required=True,
                   help="a .pt file of an mdn model, written by train or import, or a Magenta .gen.json "
                        "(exported again, as sketchgen's export)")
    p.add_argument("--format", choices=["magenta"], required=True,
                   help="magenta: the .gen.json that @magenta/sketch's SketchRNN loads")
    p.add_argument("--class", dest="class_name", required=True, metavar="CLASS",
                   help="the class to export (the library draws one class per model file)")
    p.add_argument("--out", type=V.path, help="file to write (default <CLASS>.gen.json); an earlier export there is "
                   "replaced, any other file refused")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a Magenta model file at --out that sketchgen did not export (Magenta's own, or an "
                        "export from before 2026-12-07); other files are never replaced")
    p.set_defaults(func=C.cmd_export)

    p = sub.add_parser("import", help="write another tool's model file as a sketchgen checkpoint (Magenta's Sketch-RNN "
                                      "zoo); sample, serve, evaluate and train --init then use it")
    p.add_argument("file", type=V.path, metavar="FILE", help="the model file, e.g. sheep.gen.json from Magenta's zoo")
    p.add_argument("--format", choices=["magenta"], required=True,
                   help="magenta: a decoder-only Sketch-RNN .gen.json as @magenta/sketch loads it")
    p.add_argument("--class", dest="class_name", metavar="CLASS",
                   help="the class it draws (default: its info.name, with _ read as a space where that names a "
                        "Quick, Draw! class: palm_tree is 'palm tree')")
    p.add_argument("--out", type=V.path, help="the checkpoint to write (default: FILE's name without .gen.json, plus .pt)")
    p.set_defaults(func=C.cmd_import)

    p = sub.add_parser("serve", help="a local web page: watch the model draw, or start a drawing and let it finish")
    p.add_argument("--checkpoint", action="append", metavar="PATH", type=V.path,
                   help="a .pt file written by train (an mdn model draws best) or a Magenta .gen.json, or a "
                        "folder: every such file in it; repeat it to serve several models on one page (default: the "
                        f"shipped mdn model, {api.SHIPPED_MODEL.name}, and the base of all 345, "
                        f"{api.BASE_MODEL.name}, for the classes the first does not know)")
    p.add_argument("--host", type=V.host, default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME", type=V.HOST_NAME,
                   help="another name the page may be reached by (the Host header; default: only the --host address "
                        "and localhost, against DNS rebinding; '*' allows any); repeatable")
    p.add_argument("--port", type=V.PORT, default=8000, help="TCP port (default 8000; 0 picks a free one)")
    p.add_argument("--workers", type=V.integer(1, 64), default=1,
                   help="batches generated at once per model, one core each; more requests wait their turn (default 1)")
    p.add_argument("--batch", type=V.integer(1, 4096), default=64,
                   help="the most requests generated together as one batch (default 64; 1 generates one at a time)")
    p.set_defaults(func=C.cmd_serve)

    p = sub.add_parser("classifier", help="the sketch classifier that evaluate uses as its judge")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser("train", help="train a small CNN on rasterised real drawings; prints its test accuracy")
    _add_data_flags(p, "the split, the classifier's initialisation and its batches")
    p.add_argument("--epochs", type=V.integer(1, 10_000), default=20,
                   help="training epochs; the best on validation is kept (default 20)")
    p.add_argument("--out", type=V.path, required=True, help="the classifier file to write (.pt)")
    p.set_defaults(func=C.cmd_classifier_train)

    p = sub.add_parser("evaluate", help="measure a model: recognisability by the classifier, test loss, shape statistics, "
                                       "FID, precision/recall, copying")
    p.add_argument("--checkpoint", type=V.path, required=True,
                   help="a .pt file written by train or import, or a Magenta .gen.json")
    p.add_argument("--classifier", type=V.path, required=True, help="a .pt file written by `sketchgen classifier train`")
    p.add_argument("--n", type=V.DRAWINGS, default=500, help="generated drawings per class (default 500)")
    _add_temperature(p)
    p.add_argument("--seed", type=V.SEED, default=0, help="sampling seed (default 0); the split is the checkpoint's own")
    p.add_argument("--classes", nargs="+", metavar="C", action=V.ClassList,
                   help=f"measure these of the model's classes only: names, {CLASS_FORMS} (default: all it knows; "
                        "give a few to measure a model of 345 classes on them alone)")
    p.add_argument("--data-dir", type=V.path,
                   help="where the checkpoint's classes are read from (default: where it was trained from)")
    p.add_argument("--max-per-class", type=V.MAX_PER_CLASS,
                   help="only for checkpoints that do not record it (of sketchgen 0.1.0, and imported models): the "
                        "--max-per-class that picks their test drawings, as the model was trained with (default "
                        f"{splits.DEFAULT_MAX_PER_CLASS}; a checkpoint that records one refuses another)")
    p.add_argument("--json", type=V.path, metavar="OUT.json", help="also write the report as JSON to this file")
    p.set_defaults(func=C.cmd_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    from sketchgen.errors import whole_lines

    put_back = whole_lines()  # a program that calls main gets its stderr back as it was
    try:
        return _run(argv)
    finally:
        put_back()


def _run(argv: list[str] | None) -> int:
    from sketchgen.errors import SketchgenError
    from sketchgen.strokes import StrokeError
    from sketchgen.training import Interrupted

    if hasattr(sys.stdout, "reconfigure"):  # a path Linux allows but UTF-8 cannot write (b"\xff") is printed
        sys.stdout.reconfigure(errors="backslashreplace")  # escaped, as stderr prints it, not as a traceback
    args = build_parser().parse_args(argv)
    command = " ".join(filter(None, (args.command, getattr(args, "action", None))))  # `classifier train`
    problem = V.check_known(args)
    if problem:
        say(one_line(f"sketchgen {command}: error: {problem} (see sketchgen {command} --help)"))
        return 2
    try:
        args.func(args)
    except FlagError as e:  # a flag's value the chosen model does not take: as argparse refuses one
        say(one_line(f"sketchgen {command}: error: {e}"))
        return 2
    except Interrupted as e:
        say(one_line(f"sketchgen: {e}"))
        return 130
    except KeyboardInterrupt:  # Ctrl-C outside training's own handler: nothing half-written to save
        say("sketchgen: interrupted")
        return 130
    except BrokenPipeError:  # the reader stopped reading (`sketchgen classes | head`): nothing left to say
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so that exit's flush of stdout does not fail again
        return 0
    except (SketchgenError, StrokeError, OSError) as e:
        say(one_line(f"sketchgen: error: {e}"))
        return 1
    except (MemoryError, RuntimeError) as e:
        if not _out_of_memory(e):
            raise
        smaller = "--batch-size or model" if hasattr(args, "batch_size") else "model"  # sample: 500 at a time, any --n
        say(f"sketchgen: error: out of memory{_asked(e)}: a smaller {smaller} needs less")
        return 1
    return 0


def _out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` is an allocation that failed: NumPy's and Python's MemoryError, PyTorch's RuntimeError from
    its CPU allocator, or its OutOfMemoryError on a GPU."""
    import torch

    return isinstance(e, (MemoryError, torch.OutOfMemoryError)) or "can't allocate memory" in str(e)


def _asked(e: BaseException) -> str:
    """`` (N GB asked for)`` where the error says how much, else nothing."""
    import re

    found = re.search(r"allocate (\d+) bytes", str(e)) or re.search(r"allocate ([\d.]+) GiB", str(e))
    if not found:
        return ""
    gb = float(found.group(1)) / 1e9 if "bytes" in found.group(0) else float(found.group(1)) * 2**30 / 1e9
    return f" ({gb:.1f} GB asked for)"
