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


def _classes(args, default=None) -> list[str]:
    """Class names from ``--classes`` (names, ``all``, or @FILE with one name a line), checked."""
    from sketchgen.data import categories, check_classes

    names = args.classes or default or SEED_CLASSES
    if names == ["all"]:
        return categories()
    out = []
    for n in names:
        out += [line.strip() for line in Path(n[1:]).read_text().splitlines() if line.strip()] if n.startswith("@") else [n]
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
    for name in _classes(args):
        path = download.download_class(name, dest, args.base_url)
        print(path)


def cmd_prepare(args) -> None:
    from sketchgen.data import SPLITS, prepare

    data = prepare(_classes(args), args.data_dir, args.max_per_class, args.seed)
    counts = {s: len(data.indices(s)) for s in SPLITS}
    print(f"{len(data)} drawings of {len(data.classes)} classes: " + ", ".join(f"{n} {s}" for s, n in counts.items()))


def _train(args, classes: list[str], out: Path):
    """Prepare, train, write the loss curve; return (best checkpoint path, prepared data)."""
    from sketchgen import render
    from sketchgen.data import prepare
    from sketchgen.train import TrainConfig, train

    data = prepare(classes, args.data_dir, args.max_per_class, args.seed)
    overrides = {k: getattr(args, k) for k in ("epochs", "batch_size", "lr", "seed", "max_len", "device")
                 if getattr(args, k, None) is not None}
    if getattr(args, "hidden", None):
        overrides["model_config"] = {"hidden": args.hidden}
    cfg = TrainConfig.for_model(getattr(args, "model", "seed"), **overrides)
    _say(f"training {cfg.model} on {len(data.indices('train'))} drawings of {len(classes)} classes -> {out}")
    history = train(cfg, data, out, resume=getattr(args, "resume", False), log=_say)
    render.loss_curve(history, out / "loss_curve.png")
    return out / "best.pt", data


def cmd_train(args) -> None:
    best, _ = _train(args, _classes(args), _run_dir(args, "train"))
    print(best)


def _write_drawings(out: Path, net, classes, labels, drawings, tag: str, **info) -> list[list]:
    """ndjson of all drawings plus a PNG and an SVG each; returns the drawings as 0-255 strokes."""
    from sketchgen import render
    from sketchgen.sample import ndjson_record, to_strokes, write_ndjson

    records, pictures = [], []
    for i, (label, s3) in enumerate(zip(labels, drawings)):
        word = classes[label]
        picture = to_strokes(s3)
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
    from sketchgen.sample import generate, read_prefix

    net, ckpt = model.load(args.checkpoint)
    classes = ckpt["classes"]
    wanted = args.classes or classes
    unknown = [c for c in wanted if c not in classes]
    if unknown:
        raise model.CheckpointError(f"{args.checkpoint} was not trained on {unknown}; it knows: {', '.join(classes)}")
    labels = np.repeat([classes.index(c) for c in wanted], args.n)
    prefixes = None
    if args.prefix:
        heads = read_prefix(args.prefix, args.prefix_strokes)
        if not heads:
            raise model.CheckpointError(f"{args.prefix}: no valid drawing to complete")
        prefixes = [heads[i % len(heads)] for i in range(len(labels))]
    drawings = generate(net, labels, args.temperature, args.seed, args.max_len, prefixes)
    out = _run_dir(args, "samples")
    _write_drawings(out, net, classes, labels, drawings, "", temperature=args.temperature, seed=args.seed)
    print(out)


def cmd_demo(args) -> None:
    """The README's main job: train the seed model on real data and draw, or draw from the shipped model."""
    from sketchgen import model, render
    from sketchgen.data import DataError
    from sketchgen.sample import generate, to_strokes
    from sketchgen.strokes import stroke3_to_strokes

    out = _run_dir(args, "demo")
    classes = SEED_CLASSES
    try:
        best, data = _train(args, classes, out)
    except DataError as e:
        _say(f"no real data ({e}); drawing from the shipped checkpoint {SHIPPED_CHECKPOINT.name} instead")
        best, data = SHIPPED_CHECKPOINT, None
    net, ckpt = model.load(best)
    labels = np.arange(len(classes))
    generated = generate(net, labels, temperature=args.temperature, seed=args.seed)
    pictures = _write_drawings(out, net, classes, labels, generated, "generated-")
    for label, picture in zip(labels, pictures):
        word = classes[label]
        render.animate_gif(picture, out / f"{word}-generated.gif")
        if data is not None:
            test = data.indices("test")
            real = data.stroke3(test[data.labels[test] == label][0])
            render.side_by_side(picture, to_strokes(real), word, out / f"{word}-side_by_side.png")
    _say(f"{'trained on real drawings' if data is not None else 'shipped checkpoint'}; "
         f"GIFs, PNGs, SVGs{' and the loss curve' if data is not None else ''} are in:")
    print(out)


# --- parser --------------------------------------------------------------------------------------


def _add_data_flags(p) -> None:
    p.add_argument("--classes", nargs="+", metavar="C",
                   help="class names (quote names with spaces), 'all', or @FILE with one name per line "
                        f"(default: {' '.join(SEED_CLASSES)})")
    p.add_argument("--data-dir", help="folder of <class>.ndjson files (default: $SKETCHGEN_DATA, the download "
                                      "cache, ../shared/quickdraw, or a small downloaded slice)")
    p.add_argument("--max-per-class", type=int, default=100_000, help="recognized drawings kept per class (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed for the split, shuffling, initialisation and sampling")


def _add_train_flags(p) -> None:
    p.add_argument("--epochs", type=int, help="maximum epochs (default 30; early stopping after 3 without improvement)")
    p.add_argument("--batch-size", type=int, help="drawings per batch (default 64)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default 1e-3)")
    p.add_argument("--max-len", type=int, help="drop drawings with more points than this (default 250)")
    p.add_argument("--device", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--out", help="run folder for checkpoints, log and loss curve (default runs/<command>-<time>)")


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
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("train", help="train a model")
    _add_data_flags(p)
    _add_train_flags(p)
    p.add_argument("--model", choices=["seed", "mdn"], default="seed", help="seed: the report's MSE LSTM; mdn: Sketch-RNN's mixture decoder")
    p.add_argument("--hidden", type=int, help="LSTM hidden size (default 256 seed, 512 mdn)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="generate drawings (ndjson, PNG, SVG) from a checkpoint")
    p.add_argument("--checkpoint", required=True, help="a .pt file written by train")
    p.add_argument("--classes", nargs="+", metavar="C", help="classes to draw (default: all the model knows)")
    p.add_argument("--n", type=int, default=1, help="drawings per class (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--temperature", type=float, default=0.4, help="mdn sampling temperature (default 0.4)")
    p.add_argument("--max-len", type=int, help="most points per drawing (default: the model's own)")
    p.add_argument("--prefix", help="ndjson file of partial drawings to complete")
    p.add_argument("--prefix-strokes", type=int, help="keep only the first N strokes of each prefix drawing")
    p.add_argument("--out", help="output folder (default runs/samples-<time>)")
    p.set_defaults(func=cmd_sample)
    return parser


def main(argv: list[str] | None = None) -> int:
    from sketchgen.data import DataError
    from sketchgen.download import DownloadError
    from sketchgen.model import CheckpointError
    from sketchgen.strokes import StrokeError
    from sketchgen.train import Interrupted, TrainingError

    args = build_parser().parse_args(argv)
    if getattr(args, "base_url", 0) is None:
        from sketchgen.download import DEFAULT_BASE_URL

        args.base_url = DEFAULT_BASE_URL
    try:
        args.func(args)
    except Interrupted as e:
        _say(f"sketchgen: {e}")
        return 130
    except (DataError, DownloadError, CheckpointError, StrokeError, TrainingError, OSError) as e:
        _say(f"sketchgen: error: {e}")
        return 1
    return 0
