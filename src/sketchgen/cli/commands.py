"""What each ``sketchgen`` subcommand does: a thin shell over the library, one function per command.

Errors the user can act on (bad data, a missing checkpoint, an unreachable
server) come out as one ``sketchgen: error: ...`` line and exit status 1.
"""

from __future__ import annotations

import sys
import time
from argparse import ArgumentTypeError
from dataclasses import fields
from pathlib import Path

import numpy as np

from sketchgen.cli.values import device, of_field

SEED_CLASSES = ["apple", "eye", "square", "triangle", "circle"]
ASSETS = Path(__file__).resolve().parents[1] / "assets"
SHIPPED_CHECKPOINT = ASSETS / "seed-quickdraw5.pt"
# The model that draws well, shipped: what `sample` and `serve` draw with when given no checkpoint.
SHIPPED_MODEL = ASSETS / "mdn-quickdraw26.pt"
DEFAULT_MAX_PER_CLASS = 100_000
CHUNK = 500  # drawings generated, then written, at a time
MAX_DRAWINGS = 1_000_000  # drawings one sample command writes (two files each)
MAX_EVALUATED = 200_000  # drawings evaluate generates and keeps (~5 KB each): 500 of each of the 345 classes fit


class UsageError(Exception):
    """Flags that contradict each other or a checkpoint; one line."""


class FlagError(UsageError):
    """A flag's value that the chosen model's setting does not take: refused as argparse refuses one (status 2)."""


def say(msg: str) -> None:
    print(msg, file=sys.stderr)


def run_dir(out: str | None, prefix: str) -> Path:
    path = Path(out) if out else Path("runs") / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- data settings: given, recorded in a checkpoint, or the defaults ------------------------------


def given_data(args) -> dict:
    """The data flags as given (None where not given)."""
    return {"data_dir": args.data_dir, "max_per_class": args.max_per_class, "seed": args.seed}


def data_settings(given: dict, recorded: dict | None = None, where: str = "") -> dict:
    """What to prepare (data_dir, max_per_class, seed): the flags given, else what ``recorded`` holds, else defaults.

    A flag that contradicts the recorded settings is refused: the split would not be the one the model saw.
    """
    if recorded is None:
        return {"data_dir": given["data_dir"], "max_per_class": given["max_per_class"] or DEFAULT_MAX_PER_CLASS,
                "seed": given["seed"] or 0}
    for key in ("max_per_class", "seed"):
        if given.get(key) is not None and given[key] != recorded[key]:
            flag = "--" + key.replace("_", "-")
            raise UsageError(f"{flag} {given[key]} contradicts {where}, which was trained with {flag} {recorded[key]}; "
                             f"leave {flag} out to use the model's own split")
    data_dir = given["data_dir"] if given.get("data_dir") is not None else recorded["data_dir"]
    return {"data_dir": data_dir, "max_per_class": recorded["max_per_class"], "seed": recorded["seed"]}


def own_split(path, ckpt: dict, given: dict) -> dict:
    """The data settings of a checkpoint's own split: those it records, else (a checkpoint of 0.1.0, or one
    imported from another tool's file, trained on none of our drawings) the flags given and the defaults."""
    recorded = ckpt.get("data")
    if recorded is None:
        imported = ckpt.get("imported")
        if imported:
            say(f"{path} was imported from {imported['file']} ({imported['format']}): it learnt from that model's own "
                "drawings, none of ours, so its test drawings are the test split of those the data rule finds "
                "(Quick, Draw! drawings it may have seen in training)")
        else:
            say(f"{path} records no data settings (sketchgen 0.1.0): using --max-per-class and the seed its "
                "training used, as given")
        recorded = {"data_dir": None, "max_per_class": given.get("max_per_class") or DEFAULT_MAX_PER_CLASS,
                    "seed": ckpt.get("train", {}).get("seed", 0)}
    return data_settings(given, recorded, str(path))


def prepare_for(classes: list[str], settings: dict, workers: int | None = None, verify: bool = False):
    """``data.prepare`` with these settings; ``workers`` and ``verify`` change how, never what."""
    from sketchgen.data import prepare

    return prepare(classes, settings["data_dir"], settings["max_per_class"], settings["seed"], workers=workers,
                   verify=verify)


# --- commands ----------------------------------------------------------------------------------


def cmd_classes(args) -> None:
    from sketchgen.data import categories

    print("\n".join(categories()))


def cmd_download(args) -> None:
    from sketchgen import download

    dest = Path(args.data_dir) if args.data_dir else download.default_cache_dir()
    base_url = download.DEFAULT_BASE_URL if args.base_url is None else args.base_url
    for name in args.classes:
        print(download.download_class(name, dest, base_url))


def cmd_prepare(args) -> None:
    from sketchgen.data import SPLITS

    data = prepare_for(args.classes or SEED_CLASSES, data_settings(given_data(args)), args.workers, args.verify)
    counts = {s: len(data.indices(s)) for s in SPLITS}
    print(f"{len(data)} drawings of {len(data.classes)} classes: " + ", ".join(f"{n} {s}" for s, n in counts.items()))


def train_config(args, saved: dict | None, seed: int):
    """The TrainConfig of the flags: the model's defaults (or a resumed run's settings), then every flag given."""
    from sketchgen import models
    from sketchgen.training import TrainConfig
    from sketchgen.training.config import with_budget

    kind = args.model or (saved["model"] if saved else None) or init_kind(getattr(args, "init", None)) \
        or models.default()
    base = {k: v for k, v in saved.items()} if saved else {**models.get(kind).train_defaults}
    model_config = {**base.get("model_config", {}), **model_settings(args, kind)}
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
                 if f.name not in ("model", "model_config", "seed") and getattr(args, f.name, None) is not None}
    cfg = TrainConfig(**{**with_budget(base, overrides), "model": kind, "seed": seed, "model_config": model_config})
    if saved and args.device is None:  # the run's own device: one this machine may not have
        try:
            device(cfg.device)
        except ArgumentTypeError as e:
            raise UsageError(f"the run trained on {cfg.device[:40]}: {e}; pass --device cpu to continue it here") from None
    return cfg


def init_kind(path: str | None) -> str | None:
    """The model kind of the checkpoint ``--init`` names (None without one)."""
    from sketchgen import models

    return models.read(path)["kind"] if path else None


def train_run(args, classes: list[str] | None, out: Path):
    """Prepare, train, write the loss curve; return (best checkpoint path, prepared data).

    With ``--resume``, the run's own settings are the defaults. Under torchrun every process runs this;
    only rank 0 speaks and writes.
    """
    from sketchgen import render
    from sketchgen.training import is_main_process, train
    from sketchgen.training.checkpoints import read_last

    resume = getattr(args, "resume", False)
    last = read_last(out / "last.pt") if resume and (out / "last.pt").is_file() else None
    if last is not None and classes is not None and classes != last["classes"]:
        raise UsageError(f"--classes differ from the run in {out} ({', '.join(last['classes'][:5])}...); "
                         "leave --classes out to resume it, or pass --overwrite to start again")
    classes = classes or (last["classes"] if last else SEED_CLASSES)
    settings = data_settings(given_data(args), last and last.get("data"), f"the run in {out}")
    data = prepare_for(classes, settings, args.workers)
    cfg = train_config(args, last and last["train"], settings["seed"])
    main = is_main_process()
    if main:
        say(f"training {cfg.model} on {len(data.indices('train'))} drawings of {len(classes)} classes -> {out}")
    history = train(cfg, data, out, resume=resume, overwrite=getattr(args, "overwrite", False), log=say)
    if main:
        render.loss_curve(history, out / "loss_curve.png")
    return out / "best.pt", data


def cmd_train(args) -> None:
    from sketchgen.training import is_main_process

    best, _ = train_run(args, args.classes, run_dir(args.out, "train"))
    if is_main_process():
        print(best)


def write_drawings(out: Path, net, classes, labels, drawings, tag: str, **info) -> None:
    """ndjson of all drawings plus a PNG and an SVG each, one drawing at a time (``drawings`` may be a generator).

    A file's name is the class name made safe (``fileio.safe_name``: never a path) and the drawing's number, so
    no class name, whatever a checkpoint holds, writes outside ``out`` or over another drawing's file.
    """
    from sketchgen import render
    from sketchgen.data import ndjson_record, write_ndjson
    from sketchgen.fileio import safe_name
    from sketchgen.strokes import quickdraw_strokes

    def records():
        for i, (label, s3) in enumerate(zip(labels, drawings)):
            word = classes[label]
            picture = quickdraw_strokes(s3)
            stem = f"{safe_name(word)}-{tag}{i:03d}"
            if picture:
                render.save_png(picture, out / f"{stem}.png")
                render.save_svg(picture, out / f"{stem}.svg")
            yield ndjson_record(word, picture, key_id=f"{tag}{i}", model=net.name, **info)

    write_ndjson(records(), out / f"{tag}samples.ndjson")


def known_labels(path, ckpt: dict, wanted: list[str] | None) -> list[int]:
    """The labels of ``wanted`` classes (default all) in a checkpoint, or one line naming those it lacks."""
    from sketchgen.models import CheckpointError
    from sketchgen.models.checkpoint import listing

    label = {c: i for i, c in enumerate(ckpt["classes"])}
    unknown = [c for c in (wanted or []) if c not in label]
    if unknown:
        raise CheckpointError(f"{path} was not trained on {listing(unknown)}; it knows: {listing(ckpt['classes'])}")
    return [label[c] for c in (wanted or ckpt["classes"])]


def in_chunks(net, labels: np.ndarray, temperature: float, seed: int, max_len: int | None, prefix=None):
    """The drawings of ``sample.generate`` for ``labels``, the same ones, made CHUNK at a time.

    A drawing's seed depends only on its place (``seed + i * DRAWING_STRIDE``), so chunk k starting at
    drawing a is a call with seed ``seed + a * DRAWING_STRIDE``; memory stays one chunk's, whatever --n asks.
    ``prefix(i)``: drawing i's prefix.
    """
    from sketchgen.sample import DRAWING_STRIDE, generate

    for a in range(0, len(labels), CHUNK):
        part = labels[a : a + CHUNK]
        prefixes = [prefix(i) for i in range(a, a + len(part))] if prefix else None
        yield from generate(net, part, temperature, seed + a * DRAWING_STRIDE, max_len, prefixes)


def shipped_model(command: str) -> Path:
    """The shipped model, for a command given no checkpoint, said in one line."""
    from sketchgen.models import CheckpointError

    if not SHIPPED_MODEL.is_file():
        raise CheckpointError(f"no --checkpoint given and no shipped model at {SHIPPED_MODEL}: pass a best.pt written "
                              "by train, or train one: sketchgen train --model mdn --out runs/mdn")
    say(f"{command}: no --checkpoint given; drawing with the shipped model {SHIPPED_MODEL.name} "
        "(an mdn trained on 26 Quick, Draw! classes; `sketchgen classes` lists all 345)")
    return SHIPPED_MODEL


def known_drawings(path, checkpoint, ckpt: dict) -> tuple[list, list[np.ndarray], np.ndarray]:
    """The valid drawings of an ndjson file (bad lines reported and skipped), their stroke-3 and labels; a class
    the checkpoint does not know, or no drawing at all, is one line."""
    from sketchgen.data import DataError, read_ndjson
    from sketchgen.models.checkpoint import listing
    from sketchgen.strokes import strokes_to_stroke3

    drawings = list(read_ndjson(path))
    if not drawings:
        raise DataError(f"{path}: no valid drawing")
    label = {c: i for i, c in enumerate(ckpt["classes"])}
    for i, d in enumerate(drawings):
        if d.word not in label:
            raise DataError(f"{path}: drawing {i + 1} is a {d.word[:40]!r}, a class {checkpoint} was not trained on; "
                            f"it knows: {listing(ckpt['classes'])}")
    return drawings, [strokes_to_stroke3(d.strokes) for d in drawings], np.array([label[d.word] for d in drawings])


def cmd_sample(args) -> None:
    from sketchgen import models
    from sketchgen.data import DataError, read_stroke3
    from sketchgen.sample import require_encoder, variations

    if args.checkpoint is None:
        args.checkpoint = shipped_model("sample")
    net, ckpt = models.load(args.checkpoint)
    if args.around:
        if args.classes or args.prefix:
            raise UsageError("--around takes each drawing's class from its word and draws it whole: "
                             "leave out --classes and --prefix")
        require_encoder(net)
        _, given, labels = known_drawings(args.around, args.checkpoint, ckpt)
        if len(given) * args.n > MAX_DRAWINGS:
            raise UsageError(f"--n {args.n} around {len(given):,} drawings is {len(given) * args.n:,} drawings, "
                             f"more than {MAX_DRAWINGS:,} in one command: ask for fewer --n or give fewer drawings")
        drawings, rows = variations(net, given, labels, args.n, args.temperature, args.seed)
        out = run_dir(args.out, "samples")
        write_drawings(out, net, ckpt["classes"], labels[rows], drawings, "", temperature=args.temperature,
                       seed=args.seed)
        print(out)
        return
    labels = np.repeat(known_labels(args.checkpoint, ckpt, args.classes), args.n)
    if len(labels) > MAX_DRAWINGS:
        raise UsageError(f"--n {args.n} for {len(labels) // max(args.n, 1)} classes is {len(labels):,} drawings, "
                         f"more than {MAX_DRAWINGS:,} in one command: ask for fewer --n or --classes")
    prefix = None
    if args.prefix:
        heads = test_split_starts(args, ckpt, labels) if args.prefix == "test" else \
            read_stroke3(args.prefix, args.prefix_strokes)
        if not heads:
            raise DataError(f"{args.prefix}: no valid drawing to complete")
        prefix = (lambda i: heads[i]) if args.prefix == "test" else (lambda i: heads[i % len(heads)])
    out = run_dir(args.out, "samples")
    drawings = in_chunks(net, labels, args.temperature, args.seed, args.max_len, prefix)
    write_drawings(out, net, ckpt["classes"], labels, drawings, "", temperature=args.temperature, seed=args.seed)
    print(out)


def test_split_starts(args, ckpt: dict, labels: np.ndarray) -> list[np.ndarray]:
    """``--prefix test``: the model's own test drawings of each label's class (cut to --prefix-strokes), in turn."""
    from sketchgen import strokes
    from sketchgen.data import DataError

    if ckpt.get("data") is None and not ckpt.get("imported"):
        raise DataError(f"{args.checkpoint} records no data settings (written by sketchgen 0.1.0): "
                        "pass --prefix FILE.ndjson instead of --prefix test")
    classes = ckpt["classes"]
    data = prepare_for(classes, own_split(args.checkpoint, ckpt, {"data_dir": args.data_dir}))
    test = data.indices("test")
    starts, used, cut = [], {}, {}
    for label in labels:
        mine = test[data.labels[test] == label]
        if not len(mine):
            raise DataError(f"no test drawing of {classes[label]!r} to complete")
        k = used.get(int(label), 0)
        used[int(label)] = k + 1
        i = int(mine[k % len(mine)])
        if i not in cut:  # each test drawing cut once, however many drawings start from it
            cut[i] = strokes.strokes_to_stroke3(strokes.stroke3_to_strokes(data.stroke3(i))[: args.prefix_strokes])
        starts.append(cut[i])
    return starts


def cmd_reconstruct(args) -> None:
    from sketchgen import models, render
    from sketchgen.data import ndjson_record, write_ndjson
    from sketchgen.fileio import safe_name
    from sketchgen.sample import reconstruct, require_encoder
    from sketchgen.strokes import quickdraw_strokes

    net, ckpt = models.load(args.checkpoint)
    require_encoder(net)
    inputs, given, labels = known_drawings(args.input, args.checkpoint, ckpt)
    redrawn = reconstruct(net, given, labels, args.temperature, args.seed)
    out = run_dir(args.out, "reconstruct")
    records = []
    for i, (d, s3, r) in enumerate(zip(inputs, given, redrawn)):
        picture = quickdraw_strokes(r)
        render.side_by_side(quickdraw_strokes(s3), picture, d.word, out / f"{safe_name(d.word)}-{i:03d}.png",
                            labels=("input", "reconstruction"))
        records.append(ndjson_record(d.word, picture, key_id=d.key_id or str(i), model=net.name,
                                     temperature=args.temperature, seed=args.seed))
    write_ndjson(records, out / "reconstructions.ndjson")
    print(out)


def cmd_interpolate(args) -> None:
    from sketchgen import models, render
    from sketchgen.data import DataError, ndjson_record, write_ndjson
    from sketchgen.sample import interpolate, require_encoder
    from sketchgen.strokes import quickdraw_strokes

    net, ckpt = models.load(args.checkpoint)
    require_encoder(net)
    inputs, given, labels = known_drawings(args.input, args.checkpoint, ckpt)
    if len(inputs) < 2:
        raise DataError(f"{args.input}: 1 valid drawing; interpolate needs two, the first two of the file")
    frames, ts = interpolate(net, given, labels, args.steps, args.temperature, args.seed)
    pictures = [quickdraw_strokes(f) for f in frames]
    a, b = inputs[0].word, inputs[1].word
    out = run_dir(args.out, "interpolate")
    write_ndjson([ndjson_record(a if t < 0.5 else b, p, key_id=str(i), model=net.name, t=round(float(t), 6),
                                temperature=args.temperature, seed=args.seed)
                  for i, (p, t) in enumerate(zip(pictures, ts))], out / "interpolation.ndjson")
    render.strip([quickdraw_strokes(given[0]), *pictures, quickdraw_strokes(given[1])], out / "interpolation.png",
                 [f"A: {a}", *(f"{t:.2f}" for t in ts), f"B: {b}"])
    render.morph_gif(pictures, out / "interpolation.gif")
    print(out)


def cmd_convert(args) -> None:
    from sketchgen.npz import write_classes

    data = prepare_for(args.classes or SEED_CLASSES, data_settings(given_data(args)), args.workers)
    for path in write_classes(data, args.out):
        print(path)


def cmd_export(args) -> None:
    from sketchgen.fileio import safe_name
    from sketchgen.interop.magenta import export_magenta

    name = args.class_name if Path(args.class_name).name == args.class_name else safe_name(args.class_name)
    print(export_magenta(args.checkpoint, args.class_name, args.out or f"{name}.gen.json"))  # in the working folder


def cmd_import(args) -> None:
    from sketchgen.interop.magenta import import_magenta

    name = Path(args.file).name
    out = args.out or name.removesuffix(".json").removesuffix(".gen") + ".pt"
    ckpt = import_magenta(args.file, out, args.class_name)
    say(f"imported {args.file} ({ckpt['kind']} model, class {ckpt['classes'][0]!r})")
    print(out)


def cmd_serve(args) -> None:
    from sketchgen import serve

    checkpoints = args.checkpoint or [shipped_model("serve")]
    serve.serve(checkpoints, args.host, args.port, args.workers, args.batch, args.allow_host)


def cmd_classifier_train(args) -> None:
    from sketchgen.classifier import save_classifier, train_classifier

    classes = args.classes or SEED_CLASSES
    settings = data_settings(given_data(args))
    data = prepare_for(classes, settings, args.workers)
    clf, accuracy = train_classifier(data, epochs=args.epochs, seed=settings["seed"], log=say)
    save_classifier(clf, classes, args.out)
    print(f"test accuracy {accuracy:.3f} on {len(data.indices('test'))} real drawings; saved {args.out}")


def cmd_evaluate(args) -> None:
    from sketchgen import models
    from sketchgen.evaluate import evaluate_model, write_report
    from sketchgen.report import format_report

    ckpt = models.read(args.checkpoint)
    if args.n * len(ckpt["classes"]) > MAX_EVALUATED:  # every drawing is kept for FID, precision/recall, copying
        raise UsageError(f"--n {args.n} for {len(ckpt['classes'])} classes is {args.n * len(ckpt['classes']):,} "
                         f"drawings, more than the {MAX_EVALUATED:,} evaluate holds at once: ask for fewer --n")
    settings = own_split(args.checkpoint, ckpt, {"data_dir": args.data_dir, "max_per_class": args.max_per_class})
    report = evaluate_model(args.checkpoint, args.classifier, prepare_for(ckpt["classes"], settings), args.n,
                            args.temperature, args.seed)
    print(format_report(report))
    if args.json:
        write_report(report, args.json)
        say(f"report written to {args.json}")


def cmd_demo(args) -> None:
    """The README's main job: train the seed model on real data and draw, or draw from the shipped model."""
    from sketchgen import models, render
    from sketchgen.data import DataError
    from sketchgen.sample import generate
    from sketchgen.strokes import quickdraw_strokes

    out = run_dir(args.out, "demo")
    try:
        best, data = train_run(args, args.classes, out)
    except DataError as e:
        say(f"no real data ({e}); drawing from the shipped checkpoint {SHIPPED_CHECKPOINT.name} instead")
        best, data = SHIPPED_CHECKPOINT, None
    net, ckpt = models.load(best)
    classes = ckpt["classes"]
    labels = np.arange(len(classes))
    generated = generate(net, labels, temperature=args.temperature, seed=args.seed or 0)
    write_drawings(out, net, classes, labels, generated, "generated-")
    pictures = [quickdraw_strokes(s3) for s3 in generated]
    test = data.indices("test") if data is not None else []
    for label, picture in zip(labels, pictures):
        word = classes[label]
        render.animate_gif(picture, out / f"{word}-generated.gif")
        if data is None:
            continue
        mine = test[data.labels[test] == label]
        if not len(mine):
            say(f"no test drawing of {word} (too few drawings to split); no side-by-side picture for it")
            continue
        render.side_by_side(picture, quickdraw_strokes(data.stroke3(mine[0])), word, out / f"{word}-side_by_side.png")
    say(f"{'trained on real drawings' if data is not None else 'shipped checkpoint'}; "
        f"GIFs, PNGs, SVGs{' and the loss curve' if data is not None else ''} are in:")
    print(out)


def model_flags() -> dict[str, dict]:
    """Every registered model's flag settings: name -> {model kind: its dataclass field}."""
    from sketchgen import models

    merged: dict[str, dict] = {}
    for model in models.registered():
        for f in fields(model.Config):
            if f.metadata.get("help"):
                merged.setdefault(f.name, {})[model.name] = f
    return merged


def model_settings(args, kind: str) -> dict:
    """The model settings given as flags, each parsed and checked as the ``kind`` model's own setting."""
    from sketchgen import models

    own = {f.name: f for f in fields(models.get(kind).Config)}
    settings = {}
    for name in model_flags():
        text = getattr(args, name, None)
        if text is None:
            continue
        flag = "--" + name.replace("_", "-")
        if name not in own or not own[name].metadata.get("help"):
            raise UsageError(f"{flag} does not apply to --model {kind}")
        try:
            settings[name] = of_field(own[name])(text)
        except ArgumentTypeError as e:
            raise FlagError(f"argument {flag}: {e} (for --model {kind})") from None
    return settings
