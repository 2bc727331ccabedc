"""The ``sketchgen`` command: a thin shell over the library, one function per subcommand.

Errors the user can act on (bad data, a missing checkpoint, an unreachable
server) come out as one ``sketchgen: error: ...`` line and exit status 1,
never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

SEED_CLASSES = ["apple", "eye", "square", "triangle", "circle"]
ASSETS = Path(__file__).parent / "assets"
SHIPPED_CHECKPOINT = ASSETS / "seed-quickdraw5.pt"


def _say(msg: str) -> None:
    print(msg, file=sys.stderr)


def _integer(low: int, high: int | None = None):
    """An argparse ``type``: an integer from ``low`` (to ``high``), so a bad value is a usage error, not a traceback."""

    def parse(text: str) -> int:
        value = int(text)
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {low} or more, not {value}" if high is None
                                             else f"must be from {low} to {high}, not {value}")
        return value

    parse.__name__ = "int"  # argparse names it in "invalid int value: 'x'"
    return parse


POSITIVE, COUNT, PORT = _integer(1), _integer(0), _integer(0, 65535)


def _classes(args, default=None) -> list[str]:
    """Class names from ``--classes`` (names, ``all``, or @FILE with one name a line), checked."""
    from sketchgen.data import DataError, categories, check_classes

    names = args.classes or default or SEED_CLASSES
    if names == ["all"]:
        return categories()
    out = []
    for n in names:
        if not n.startswith("@"):
            out.append(n)
            continue
        try:
            text = Path(n[1:]).read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{n[1:]}: not a text file of class names ({e.reason} at byte {e.start})") from None
        out += [line.strip() for line in text.splitlines() if line.strip()]
    return check_classes(out)


def _run_dir(args, prefix: str) -> Path:
    out = Path(args.out) if args.out else Path("runs") / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    return out


# --- commands ----------------------------------------------------------------------------------


def cmd_classes(args) -> None:
    from sketchgen.data import categories

    print("\n".join(categories()))


def cmd_download(args) -> None:
    from sketchgen import download

    dest = Path(args.data_dir) if args.data_dir else download.default_cache_dir()
    base_url = download.DEFAULT_BASE_URL if args.base_url is None else args.base_url
    for name in _classes(args):
        path = download.download_class(name, dest, base_url)
        print(path)


def cmd_prepare(args) -> None:
    from sketchgen.data import SPLITS, prepare

    data = prepare(_classes(args), args.data_dir, args.max_per_class, args.seed, workers=args.workers, verify=args.verify)
    counts = {s: len(data.indices(s)) for s in SPLITS}
    print(f"{len(data)} drawings of {len(data.classes)} classes: " + ", ".join(f"{n} {s}" for s, n in counts.items()))


def _train(args, classes: list[str], out: Path):
    """Prepare, train, write the loss curve; return (best checkpoint path, prepared data).

    Under torchrun every process runs this; only rank 0 speaks and writes.
    """
    from sketchgen import render
    from sketchgen.data import prepare
    from sketchgen.train import TrainConfig, is_main_process, train

    data = prepare(classes, args.data_dir, args.max_per_class, args.seed, workers=args.workers)
    overrides = {k: getattr(args, k) for k in ("epochs", "batch_size", "lr", "seed", "max_len", "device", "amp", "compile")
                 if getattr(args, k, None) is not None}
    model_config = {k: getattr(args, k) for k in ("hidden", "dropout") if getattr(args, k, None) is not None}
    if model_config:
        overrides["model_config"] = model_config
    cfg = TrainConfig.for_model(getattr(args, "model", "seed"), **overrides)
    main = is_main_process()
    if main:
        _say(f"training {cfg.model} on {len(data.indices('train'))} drawings of {len(classes)} classes -> {out}")
    history = train(cfg, data, out, resume=getattr(args, "resume", False), log=_say)
    if main:
        render.loss_curve(history, out / "loss_curve.png")
    return out / "best.pt", data


def cmd_train(args) -> None:
    from sketchgen.train import is_main_process

    best, _ = _train(args, _classes(args), _run_dir(args, "train"))
    if is_main_process():
        print(best)


def _write_drawings(out: Path, net, classes, labels, drawings, tag: str, **info) -> list[list]:
    """ndjson of all drawings plus a PNG and an SVG each; returns the drawings as 0-255 strokes."""
    from sketchgen import render
    from sketchgen.data import ndjson_record, write_ndjson
    from sketchgen.strokes import quickdraw_strokes

    records, pictures = [], []
    for i, (label, s3) in enumerate(zip(labels, drawings)):
        word = classes[label]
        picture = quickdraw_strokes(s3)
        pictures.append(picture)
        stem = f"{word.replace(' ', '_')}-{tag}{i:03d}"
        if picture:
            render.save_png(picture, out / f"{stem}.png")
            render.save_svg(picture, out / f"{stem}.svg")
        records.append(ndjson_record(word, picture, key_id=f"{tag}{i}", model=net.kind, **info))
    write_ndjson(records, out / f"{tag}samples.ndjson")
    return pictures


def cmd_sample(args) -> None:
    from sketchgen import model
    from sketchgen.data import DataError
    from sketchgen.data import read_stroke3
    from sketchgen.sample import generate

    net, ckpt = model.load(args.checkpoint)
    classes = ckpt["classes"]
    wanted = args.classes or classes
    unknown = [c for c in wanted if c not in classes]
    if unknown:
        raise model.CheckpointError(f"{args.checkpoint} was not trained on {unknown}; it knows: {', '.join(classes)}")
    labels = np.repeat([classes.index(c) for c in wanted], args.n)
    prefixes = None
    if args.prefix:
        heads = read_stroke3(args.prefix, args.prefix_strokes)
        if not heads:
            raise DataError(f"{args.prefix}: no valid drawing to complete")
        prefixes = [heads[i % len(heads)] for i in range(len(labels))]
    drawings = generate(net, labels, args.temperature, args.seed, args.max_len, prefixes)
    out = _run_dir(args, "samples")
    _write_drawings(out, net, classes, labels, drawings, "", temperature=args.temperature, seed=args.seed)
    print(out)


def cmd_convert(args) -> None:
    from sketchgen.data import prepare
    from sketchgen.interop import write_classes

    for path in write_classes(prepare(_classes(args), args.data_dir, args.max_per_class, args.seed, workers=args.workers),
                              args.out):
        print(path)


def cmd_export(args) -> None:
    from sketchgen.export import export_magenta

    print(export_magenta(args.checkpoint, args.class_name, args.out or f"{args.class_name}.gen.json"))


def cmd_serve(args) -> None:
    from sketchgen import serve
    from sketchgen.model import CheckpointError

    if not args.checkpoint:
        found = sorted(Path("runs").glob("*/best.pt"))
        raise CheckpointError("no --checkpoint given: pass a best.pt written by train"
                              + (f" (here: {', '.join(map(str, found[:3]))})" if found else "")
                              + f" or the shipped seed model {SHIPPED_CHECKPOINT},"
                              + " or train one: sketchgen train --model mdn --out runs/mdn")
    serve.serve(args.checkpoint, args.host, args.port, args.workers, args.batch)


def cmd_classifier_train(args) -> None:
    from sketchgen.data import prepare
    from sketchgen.evaluate import save_classifier, train_classifier

    classes = _classes(args)
    data = prepare(classes, args.data_dir, args.max_per_class, args.seed, workers=args.workers)
    clf, accuracy = train_classifier(data, epochs=args.epochs, seed=args.seed, log=_say)
    save_classifier(clf, classes, args.out)
    print(f"test accuracy {accuracy:.3f} on {len(data.indices('test'))} real drawings; saved {args.out}")


def cmd_evaluate(args) -> None:
    from sketchgen import model
    from sketchgen.data import prepare
    from sketchgen.evaluate import evaluate_model, format_report, write_report

    ckpt = model.read_checkpoint(args.checkpoint)
    # The model's own test split: its classes, its training seed, and the cap it was trained with.
    data = prepare(ckpt["classes"], args.data_dir, args.max_per_class, ckpt.get("train", {}).get("seed", 0))
    report = evaluate_model(args.checkpoint, args.classifier, data, args.n, args.temperature, args.seed)
    print(format_report(report))
    if args.json:
        write_report(report, args.json)
        _say(f"report written to {args.json}")


def cmd_demo(args) -> None:
    """The README's main job: train the seed model on real data and draw, or draw from the shipped model."""
    from sketchgen import model, render
    from sketchgen.data import DataError
    from sketchgen.sample import generate
    from sketchgen.strokes import quickdraw_strokes

    out = _run_dir(args, "demo")
    try:
        best, data = _train(args, _classes(args), out)
    except DataError as e:
        _say(f"no real data ({e}); drawing from the shipped checkpoint {SHIPPED_CHECKPOINT.name} instead")
        best, data = SHIPPED_CHECKPOINT, None
    net, ckpt = model.load(best)
    classes = ckpt["classes"]
    labels = np.arange(len(classes))
    generated = generate(net, labels, temperature=args.temperature, seed=args.seed)
    pictures = _write_drawings(out, net, classes, labels, generated, "generated-")
    test = data.indices("test") if data is not None else []
    for label, picture in zip(labels, pictures):
        word = classes[label]
        render.animate_gif(picture, out / f"{word}-generated.gif")
        if data is None:
            continue
        mine = test[data.labels[test] == label]
        if not len(mine):
            _say(f"no test drawing of {word} (too few drawings to split); no side-by-side picture for it")
            continue
        render.side_by_side(picture, quickdraw_strokes(data.stroke3(mine[0])), word, out / f"{word}-side_by_side.png")
    _say(f"{'trained on real drawings' if data is not None else 'shipped checkpoint'}; "
         f"GIFs, PNGs, SVGs{' and the loss curve' if data is not None else ''} are in:")
    print(out)


# --- parser --------------------------------------------------------------------------------------


def _add_data_flags(p) -> None:
    p.add_argument("--classes", nargs="+", metavar="C",
                   help="class names (quote names with spaces), 'all', or @FILE with one name per line "
                        f"(default: {' '.join(SEED_CLASSES)})")
    p.add_argument("--data-dir", help="folder of <class>.ndjson or Sketch-RNN <class>.npz files (default: "
                                      "$SKETCHGEN_DATA, the download cache, ../shared/quickdraw, or a small downloaded slice)")
    p.add_argument("--max-per-class", type=POSITIVE, default=100_000,
                   help="recognized drawings kept per class (default %(default)s)")
    p.add_argument("--seed", type=COUNT, default=0, help="seed for the split, shuffling, initialisation and sampling")
    p.add_argument("--workers", type=POSITIVE, help="processes preparing classes not yet cached (default: the cores "
                                                    "this process may use; under torchrun local rank 0 prepares)")


def _add_train_flags(p) -> None:
    p.add_argument("--epochs", type=POSITIVE, help="maximum epochs (default 30; early stopping after 3 without improvement)")
    p.add_argument("--batch-size", type=POSITIVE, help="drawings per batch (default 64)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default 1e-3)")
    p.add_argument("--max-len", type=POSITIVE, help="drop drawings with more points than this (default 250)")
    p.add_argument("--device", help="torch device, e.g. cpu or cuda (default cpu; under torchrun, cuda means "
                                    "each process's own GPU)")
    p.add_argument("--amp", action="store_true", help="bf16 mixed precision (autocast) for the model on a GPU (default off)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model; pays off on a GPU for long runs (default off)")
    p.add_argument("--out", help="run folder for checkpoints, log and loss curve (default runs/<command>-<time>; "
                                 "give it under torchrun so that all processes agree)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sketchgen", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="train the seed model on the 5 seed classes and draw (or draw from the shipped model)")
    _add_data_flags(p)
    _add_train_flags(p)
    p.add_argument("--temperature", type=float, default=0.4, help="sampling temperature for the mdn model (default 0.4)")
    # A few minutes on 2 cores: eye alone has ~5,000 drawings in ../shared/quickdraw.
    p.set_defaults(func=cmd_demo, max_per_class=1000)

    p = sub.add_parser("classes", help="list the 345 QuickDraw class names")
    p.set_defaults(func=cmd_classes)

    p = sub.add_parser("download", help="download QuickDraw simplified ndjson files into the cache")
    p.add_argument("classes", nargs="+", metavar="CLASS", help="class names, e.g. cat 'The Eiffel Tower'")
    p.add_argument("--data-dir", help="where to store the files (default: the download cache)")
    p.add_argument("--base-url", default=None, help="where the <class>.ndjson files are served (default: Google's bucket)")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("prepare", help="filter, cap, split and cache drawings as arrays (train does this itself)")
    _add_data_flags(p)
    p.add_argument("--verify", action="store_true",
                   help="check every byte of each class's cache against its SHA-256 and rebuild any that fail "
                        "(opening checks only sizes and sampled blocks)")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("train", help="train a model")
    _add_data_flags(p)
    _add_train_flags(p)
    p.add_argument("--model", choices=["seed", "mdn"], default="seed", help="seed: the report's MSE LSTM; mdn: Sketch-RNN's mixture decoder")
    p.add_argument("--hidden", type=POSITIVE, help="LSTM hidden size (default 256 seed, 512 mdn)")
    p.add_argument("--dropout", type=float, help="dropout rate (default 0.3 seed, 0.1 mdn)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="generate drawings (ndjson, PNG, SVG) from a checkpoint")
    p.add_argument("--checkpoint", required=True, help="a .pt file written by train")
    p.add_argument("--classes", nargs="+", metavar="C", help="classes to draw (default: all the model knows)")
    p.add_argument("--n", type=COUNT, default=1, help="drawings per class (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--temperature", type=float, default=0.4, help="mdn sampling temperature (default 0.4)")
    p.add_argument("--max-len", type=POSITIVE,
                   help="most points generated per drawing, after any prefix (default: the model's own)")
    p.add_argument("--prefix", help="ndjson file of partial drawings to complete")
    p.add_argument("--prefix-strokes", type=POSITIVE, help="keep only the first N strokes of each prefix drawing")
    p.add_argument("--out", help="output folder (default runs/samples-<time>)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("convert", help="write prepared drawings as Sketch-RNN's .npz dataset files, one per class")
    _add_data_flags(p)
    p.add_argument("--to", choices=["npz"], required=True,
                   help="npz: Sketch-RNN's format (train/valid/test object arrays of int16 stroke-3)")
    p.add_argument("--out", required=True, help="folder to write the <class>.npz files into")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("export", help="write one class of an mdn checkpoint as a model file for @magenta/sketch")
    p.add_argument("--checkpoint", required=True, help="a .pt file of an mdn model written by train")
    p.add_argument("--format", choices=["magenta"], required=True,
                   help="magenta: the .gen.json that @magenta/sketch's SketchRNN loads")
    p.add_argument("--class", dest="class_name", required=True, metavar="CLASS",
                   help="the class to export (the library draws one class per model file)")
    p.add_argument("--out", help="file to write (default <CLASS>.gen.json)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("serve", help="a local web page: watch the model draw, or start a drawing and let it finish")
    p.add_argument("--checkpoint", help="a .pt file written by train (an mdn model draws best)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)")
    p.add_argument("--port", type=PORT, default=8000, help="TCP port (default 8000; 0 picks a free one)")
    p.add_argument("--workers", type=POSITIVE, default=1,
                   help="batches generated at once, one core each; more requests wait their turn (default 1)")
    p.add_argument("--batch", type=POSITIVE, default=64,
                   help="the most requests generated together as one batch (default 64; 1 generates one at a time)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("classifier", help="the sketch classifier that evaluate uses as its judge")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser("train", help="train a small CNN on rasterised real drawings; prints its test accuracy")
    _add_data_flags(p)
    p.add_argument("--epochs", type=POSITIVE, default=20, help="training epochs; the best on validation is kept (default 20)")
    p.add_argument("--out", required=True, help="the classifier file to write (.pt)")
    p.set_defaults(func=cmd_classifier_train)

    p = sub.add_parser("evaluate", help="measure a model: recognisability by the classifier, test loss, shape statistics")
    p.add_argument("--checkpoint", required=True, help="a .pt file written by train")
    p.add_argument("--classifier", required=True, help="a .pt file written by `sketchgen classifier train`")
    p.add_argument("--n", type=COUNT, default=500, help="generated drawings per class (default 500)")
    p.add_argument("--temperature", type=float, default=0.4, help="mdn sampling temperature (default 0.4)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0); the split uses the checkpoint's own seed")
    p.add_argument("--data-dir", help="where the checkpoint's classes are read from (default: the same rule as train)")
    p.add_argument("--max-per-class", type=POSITIVE, default=100_000,
                   help="the --max-per-class the model was trained with, so its test split is the same (default 100000)")
    p.add_argument("--json", metavar="OUT.json", help="also write the report as JSON to this file")
    p.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    from sketchgen.data import DataError
    from sketchgen.download import DownloadError
    from sketchgen.evaluate import EvaluationError
    from sketchgen.model import CheckpointError
    from sketchgen.strokes import StrokeError
    from sketchgen.train import Interrupted, TrainingError

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except Interrupted as e:
        _say(f"sketchgen: {e}")
        return 130
    except KeyboardInterrupt:  # Ctrl-C outside training's own handler: nothing half-written to save
        _say("sketchgen: interrupted")
        return 130
    except (DataError, DownloadError, CheckpointError, EvaluationError, StrokeError, TrainingError, OSError) as e:
        _say(f"sketchgen: error: {e}")
        return 1
    return 0
