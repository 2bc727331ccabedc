"""What each ``sketchgen`` subcommand does: a thin shell over the library (``sketchgen.api``), one function each.

A command turns its flags into library calls and writes what the user
asked for. Errors the user can act on (bad data, a missing checkpoint, an
unreachable server) come out as one ``sketchgen: error: ...`` line and exit
status 1; a flag's value that the chosen model does not take, status 2.
"""

from __future__ import annotations

import itertools
import sys
from argparse import ArgumentTypeError
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import numpy as np

from sketchgen import api, runs, splits
from sketchgen.api import SEED_CLASSES, SHIPPED_CHECKPOINT, UsageError
from sketchgen.classfiles import did_you_mean
from sketchgen.cli.outputs import (
    GENERATED,
    INTERPOLATION,
    RECONSTRUCTIONS,
    SAMPLES,
    check_replacing,
    drawing_files,
    drawing_stem,
    file_stem,
    replacing,
    writable,
)
from sketchgen.cli.values import of_field
from sketchgen.errors import counted, flag
from sketchgen.sample import check_prefixes, require_encoder

MAX_EVALUATED = 200_000  # drawings evaluate generates and keeps (~5 KB each): 500 of each of the 345 classes fit


class FlagError(UsageError):
    """A flag's value that the chosen model's setting does not take: refused as argparse refuses one (status 2)."""


def say(msg: str) -> None:
    print(msg, file=sys.stderr)


def data_flags(args) -> dict:
    """The data flags as given (None where not given)."""
    return {"data_dir": args.data_dir, "max_per_class": args.max_per_class, "seed": args.seed}


# --- data --------------------------------------------------------------------------------------


def cmd_classes(args) -> None:
    from sketchgen.classfiles import folder_problem, own_classes

    if args.checkpoint:
        print("\n".join(api.load(args.checkpoint).classes))
    elif args.data_dir:
        if problem := folder_problem(args.data_dir):
            raise UsageError(f"--data-dir {args.data_dir}: {problem}")
        names, skipped = own_classes(args.data_dir)
        for line in skipped:
            say(line)
        if not names:
            raise UsageError(f"--data-dir {args.data_dir}: no <class>.ndjson or .npz file in it or its simplified/ "
                             "folder")
        print("\n".join(names))
    else:
        print("\n".join(api.classes()))


def cmd_download(args) -> None:
    from sketchgen import download

    dest = Path(args.data_dir) if args.data_dir else download.default_cache_dir()
    base_url = download.DEFAULT_BASE_URL if args.base_url is None else args.base_url
    if args.base_url is None:  # Google's bucket holds the 345 and nothing else
        _of_the_345(args.classes, "argument CLASS: unknown class", ", all Google's bucket holds (--base-url: another "
                    "server)")
    for name in args.classes:
        print(download.download_class(name, dest, base_url))


def cmd_prepare(args) -> None:
    from sketchgen.data import SPLITS

    settings = splits.data_settings(**data_flags(args))
    data = splits.prepare(args.classes or SEED_CLASSES, settings, args.workers, args.verify)
    counts = {s: len(data.indices(s)) for s in SPLITS}
    print(f"{counted(len(data), 'drawing')} of {counted(len(data.classes), 'class')}: "
          + ", ".join(f"{n} {s}" for s, n in counts.items()))


def cmd_convert(args) -> None:
    from sketchgen.npz import class_file, write_classes

    out = api.run_path(args.out, "convert")  # a folder, or nothing yet
    data = splits.prepare(args.classes or SEED_CLASSES, splits.data_settings(**data_flags(args)), args.workers)
    for name in data.classes:  # never over the drawings read, nor over a file that is not an earlier dataset
        writable(class_file(out, name), "Sketch-RNN dataset", "--out", reads=tuple(data.settings["sources"].values()),
                 replaces=("npz",), overwrite=("npz-other",), overwriting=args.overwrite)  # Sketch-RNN's own
    for path in write_classes(data, out):
        print(path)


# --- training ----------------------------------------------------------------------------------


def train_run(args, out: Path) -> runs.Run:
    """``runs.train`` with the flags: the data flags, --init, --resume/--overwrite and every setting given."""
    resume = getattr(args, "resume", False)
    settings = training_settings(args)
    if any(getattr(args, name, None) is not None for name in model_flags()):  # else no checkpoint is read for them
        settings.update(model_settings(args, runs.model_kind(args.model, out, resume, getattr(args, "init", None))))
    return runs.train(args.classes, args.model, out, **data_flags(args), workers=args.workers,
                      init=getattr(args, "init", None), resume=resume, overwrite=getattr(args, "overwrite", False),
                      log=say, **settings)


def training_settings(args) -> dict:
    """The training settings given as flags."""
    from sketchgen.training import TrainConfig

    skip = ("model", "model_config", "seed", "init")
    return {f.name: getattr(args, f.name) for f in fields(TrainConfig)
            if f.name not in skip and getattr(args, f.name, None) is not None}


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
        if name not in own or not own[name].metadata.get("help"):
            model = f"--model {kind}" if args.model else f"the {kind} model this run trains (--model chooses another)"
            raise UsageError(f"{flag(name)} does not apply to {model}")
        try:
            settings[name] = of_field(own[name])(text)
        except ArgumentTypeError as e:
            raise FlagError(f"argument {flag(name)}: {e} (for --model {kind})") from None
    return settings


def cmd_train(args) -> None:
    from sketchgen.training import is_main_process

    run = train_run(args, api.run_path(args.out, "train"))  # made by the training, once every flag is checked
    if is_main_process():
        print(run.best)


# --- drawing -----------------------------------------------------------------------------------


# What sample (and demo) write beside samples.ndjson: a PNG and an SVG of each drawing.
SAMPLE_FILES = (".png", ".svg")


def write_drawings(out: Path, drawings, written: list, tag: str = "") -> None:
    """ndjson of all drawings plus a PNG and an SVG each (``drawing_stem``: never a path, never over another
    drawing's file), one drawing at a time (``drawings`` may be lazy), each drawing's word put in ``written``
    (``outputs.taken_back``'s) before its files."""
    from sketchgen import render

    empty = []

    def each():
        for i, d in enumerate(drawings):
            d.key_id = f"{tag}{i}"
            written.append(d.word if d.points else None)  # before its files: one written in part is taken back too
            if d.points:
                stem = drawing_stem(d.word, i, tag)
                render.save_png(d.points, out / f"{stem}.png")
                render.save_svg(d.points, out / f"{stem}.svg")
            else:
                empty.append(i)
            yield d

    api.write_ndjson(each(), out / f"{tag}samples.ndjson")
    if empty:  # kept as lines, so that line i is still drawing i (and its seed)
        say(f"{len(empty)} drawing(s) ended before their first point (number {', '.join(map(str, empty[:5]))}"
            f"{', ...' if len(empty) > 5 else ''}): an empty drawing in {tag}samples.ndjson, no PNG or SVG")


def _of_the_345(names, refusal: str, otherwise: str) -> None:
    """Refuse a name that is not one of the 345 Quick, Draw! classes as argparse refuses a value (exit 2), as
    ``train`` refuses a class no data has: ``refusal`` NAME, close matches, where the 345 are listed, ``otherwise``."""
    known = set(api.classes())
    for name in names:
        if name not in known:
            raise FlagError(f"{refusal} {name!r}.{did_you_mean(name, known)} `sketchgen classes` lists all 345 "
                            f"Quick, Draw! classes{otherwise}")


def loaded(path, command: str, classes=None) -> api.Model:
    """The model a drawing command uses: ``path``, or the shipped model that draws ``classes``, said in one line."""
    if path is not None:
        return api.load(path)
    _of_the_345(classes or (), "argument --classes: no shipped model draws", "; a class of your own needs a model "
                "trained on it (`sketchgen train`), given as --checkpoint")
    model = api.load(classes=classes)
    what = api.BASE_DESCRIPTION if model.path == api.BASE_MODEL else api.SHIPPED_DESCRIPTION
    say(f"{command}: no --checkpoint given; drawing with the shipped model {model.path.name} "
        f"({what}; `sketchgen classes` lists all 345)")
    return model


def given_drawings(path, model: api.Model, most: int | None = None) -> list:
    """The valid drawings of an ndjson file, its first ``most`` where given (bad lines before them reported and
    skipped; the file read no further); no drawing at all is one line."""
    from sketchgen.classfiles import DataError

    drawings = list(itertools.islice(api.read_ndjson(path), most))
    if not drawings:
        raise DataError(f"{path}: no valid drawing")
    try:
        model._labels_of(drawings)  # each a class the model knows
    except UsageError as e:  # the index is the drawing's place among the file's valid ones
        raise DataError(f"{path}: {e}") from None
    return drawings


def cmd_sample(args) -> None:
    from sketchgen.classfiles import DataError
    from sketchgen.data import read_stroke3
    from sketchgen.models import ModelError

    if args.prefix_strokes is not None and not args.prefix:
        raise UsageError("--prefix-strokes keeps the first strokes of each --prefix drawing: give --prefix FILE or "
                         "--prefix test, or leave --prefix-strokes out")
    if args.data_dir is not None and args.prefix != "test":
        raise UsageError("--data-dir is where --prefix test finds the test drawings it starts from: give --prefix "
                         "test, or leave --data-dir out (a model draws its classes without data)")
    model = loaded(args.checkpoint, "sample", args.classes)
    context = model.net.context_length()
    if args.max_len is not None and context is not None and args.max_len >= context:  # cut there, which is said
        say(f"note: --max-len {args.max_len:,} is past the {context:,} positions a drawing of this {model.kind} model "
            "can hold (its start among them): its drawings stop there")
    if args.around:  # every input read and checked before anything is written
        if args.classes or args.prefix:
            raise UsageError("--around takes each drawing's class from its word and draws it whole: "
                             "leave out --classes and --prefix")
        require_encoder(model.net)
        given = given_drawings(args.around, model)
        drawings = model.iter_variations(given, args.n, args.temperature, args.seed)
        words = [d.word for d in given for _ in range(args.n)]  # each drawing's variations in turn
    else:
        wanted = model.labels(args.classes)
        labels = np.repeat(wanted, api.drawings_asked(len(wanted), args.n))
        prefix = None
        if args.prefix:
            heads = splits.test_starts(model, labels, args.prefix_strokes, args.data_dir) if args.prefix == "test" \
                else read_stroke3(args.prefix, args.prefix_strokes)
            if not heads:
                raise DataError(f"{args.prefix}: no valid drawing to complete")
            try:
                check_prefixes(model.net, heads)
            except ModelError as e:  # the index is the drawing's place among the file's valid ones
                raise DataError(f"--prefix {args.prefix}: {e}") from None
            prefix = (lambda i: heads[i]) if args.prefix == "test" else (lambda i: heads[i % len(heads)])
        made = model.generate(labels, args.temperature, args.seed, args.max_len, prefix)
        drawings = (api.Drawing.from_stroke3(s3, model.classes[label], model=model.kind, temperature=args.temperature,
                                             seed=args.seed) for label, s3 in zip(labels, made))
        words = [model.classes[label] for label in labels]
    out = api.run_dir(args.out, "samples")
    with replacing(out, SAMPLES, args.overwrite, drawing_files(*SAMPLE_FILES), words,
                   {"--around": args.around, "--prefix": args.prefix if args.prefix != "test" else None}) as written:
        write_drawings(out, drawings, written)
    print(out)


def cmd_reconstruct(args) -> None:
    from sketchgen import render

    model = api.load(args.checkpoint)
    require_encoder(model.net)
    given = given_drawings(args.input, model)
    out = api.run_dir(args.out, "reconstruct")
    with replacing(out, RECONSTRUCTIONS, args.overwrite, drawing_files(".png"), [d.word for d in given],
                   {"--input": args.input}) as written:
        redrawn = model.reconstruct(given, args.temperature, args.seed)
        for i, (d, r) in enumerate(zip(given, redrawn)):
            written.append(d.word)
            render.side_by_side(d.points, r.points, d.word, out / f"{drawing_stem(d.word, i)}.png",
                                labels=("input", "reconstruction"))
            r.key_id = d.key_id or str(i)
        api.write_ndjson(redrawn, out / RECONSTRUCTIONS)
    print(out)


def cmd_interpolate(args) -> None:
    from sketchgen import render
    from sketchgen.classfiles import DataError

    model = api.load(args.checkpoint)
    require_encoder(model.net)
    given = given_drawings(args.input, model, most=2)
    if len(given) < 2:
        raise DataError(f"{args.input}: 1 valid drawing; interpolate needs two, the first two of the file")
    a, b = given[:2]
    frames = model.interpolate(a, b, args.steps, args.temperature, args.seed)
    out = api.run_dir(args.out, "interpolate")
    for i, f in enumerate(frames):
        f.key_id = str(i)
    # Its files are always these, whatever the earlier interpolate's listing says; it lists its own names, each
    # before it is written, so that one that fails takes back only what it wrote.
    with replacing(out, INTERPOLATION, args.overwrite, lambda words: ("interpolation.png", "interpolation.gif"),
                   (), {"--input": args.input}, own=lambda names: names) as written:
        api.write_ndjson(frames, out / INTERPOLATION)
        written.append("interpolation.png")
        render.strip([a.points, *(f.points for f in frames), b.points], out / "interpolation.png",
                     [f"A: {a.word}", *(f"{f.info['t']:.2f}" for f in frames), f"B: {b.word}"])
        written.append("interpolation.gif")
        render.morph_gif([f.points for f in frames], out / "interpolation.gif")
    print(out)


def cmd_export(args) -> None:
    from sketchgen.interop.magenta import export_magenta

    out = args.out or f"{file_stem(args.class_name, apart=True)}.gen.json"  # in the working folder, beside others
    # An earlier export is replaced; Magenta's own model files (the zoo's, or exports from before 2026-12-07, which
    # said nothing of their maker) only with --overwrite.
    writable(out, "Magenta model file", "--out", reads=(args.checkpoint,), replaces=("magenta",),
             overwrite=("magenta-other",), overwriting=args.overwrite)
    print(export_magenta(args.checkpoint, args.class_name, out))


def cmd_import(args) -> None:
    from sketchgen.interop.magenta import import_magenta

    name = Path(args.file).name
    out = args.out or name.removesuffix(".json").removesuffix(".gen") + ".pt"
    writable(out, "imported checkpoint", "--out", reads=(args.file,), replaces=("imported",))
    ckpt = import_magenta(args.file, out, args.class_name)
    say(f"imported {args.file} ({ckpt['kind']} model, class {ckpt['classes'][0]!r})")
    print(out)


def cmd_serve(args) -> None:
    from sketchgen import serve

    checkpoints = args.checkpoint
    if not checkpoints:
        checkpoints = [loaded(None, "serve").path]
        if api.BASE_MODEL.is_file() and api.BASE_MODEL not in checkpoints:
            checkpoints.append(api.BASE_MODEL)
            say(f"serve: and {api.BASE_MODEL.name} ({api.BASE_DESCRIPTION}) for the classes that one does not know")
    serve.serve(checkpoints, args.host, args.port, args.workers, args.batch, args.allow_host,
                first_wins=not args.checkpoint)


# --- measuring ---------------------------------------------------------------------------------


def cmd_classifier_train(args) -> None:
    from sketchgen.classifier import check_classes, save_classifier, train_classifier

    classes = args.classes or SEED_CLASSES
    check_classes(classes)
    writable(args.out, "classifier", "--out", replaces=("classifier",))
    settings = splits.data_settings(**data_flags(args))
    data = splits.prepare(classes, settings, args.workers)
    clf, accuracy = train_classifier(data, epochs=args.epochs, seed=settings["seed"], log=say)
    save_classifier(clf, classes, args.out)
    print(f"test accuracy {accuracy:.3f} on {len(data.indices('test'))} real drawings; saved {args.out}")


def cmd_evaluate(args) -> None:
    from sketchgen.classifier import load_classifier
    from sketchgen.evaluate import evaluate_model, judges, write_report
    from sketchgen.report import format_report

    model = api.load(args.checkpoint)
    classes = args.classes or model.classes
    if args.json:
        writable(args.json, "report", "--json", reads=(args.checkpoint, args.classifier), replaces=("report",))
    if args.n * len(classes) > MAX_EVALUATED:  # every drawing is kept for FID, precision/recall, copying
        raise UsageError(f"--n {args.n} for {len(classes)} classes is {args.n * len(classes):,} "
                         f"drawings, more than the {MAX_EVALUATED:,} evaluate holds at once: ask for fewer --n "
                         "or --classes")
    model.labels(classes)  # each known to the model and to the judge before a drawing is read (or downloaded)
    judge = load_classifier(args.classifier)
    judges(judge[1], classes)
    drawings = splits.own_drawings(args.checkpoint, model.checkpoint, classes, args.data_dir, args.max_per_class, say)
    report = evaluate_model(model.checkpoint, judge, drawings, args.n, args.temperature,
                            args.seed, classes=args.classes, path=args.checkpoint)
    print(format_report(report))
    if args.json:
        write_report(report, args.json)
        say(f"report written to {args.json}")


def cmd_demo(args) -> None:
    """The README's main job: train the seed model on real data and draw, or draw from the shipped model."""
    from sketchgen import render
    from sketchgen.classfiles import DataError

    if args.fine_tune == "new-classes":  # demo trains the report's model from random weights: nothing to keep
        raise FlagError("argument --fine-tune: new-classes trains only the classes a checkpoint lacks, and demo "
                        "starts from none (sketchgen train --init FILE does)")
    out = api.run_path(args.out, "demo")  # made once every flag is checked: a refused demo leaves no folder
    # Its drawings replace an earlier demo's only with --overwrite (or --resume: the same run, finished), said
    # before it trains; an earlier demo's pictures of other classes go with them, and a demo that fails part way
    # puts the earlier ones back. They were written over, without a word, after the training.
    replaces = args.overwrite or args.resume
    if out.is_dir():
        check_replacing(out, GENERATED, replaces, demo_files, args.classes or SEED_CLASSES)
    try:
        run = train_run(args, out)
        best, data = run.best, run.data
    except DataError as e:
        if args.data_dir:  # the drawings asked for are not there: the shipped model would answer another question
            raise
        say(f"no real data ({e}); drawing from the shipped checkpoint {SHIPPED_CHECKPOINT.name} instead")
        best, data = SHIPPED_CHECKPOINT, None
    out.mkdir(parents=True, exist_ok=True)
    model = api.load(best)
    seed = args.seed or 0
    generated = model.sample(temperature=args.temperature, seed=seed)
    test = data.indices("test") if data is not None else []
    with replacing(out, GENERATED, replaces, demo_files, [d.word for d in generated]) as written:
        write_drawings(out, generated, written, "generated-")
        for label, drawing in enumerate(generated):
            drawing.animate(out / f"{file_stem(drawing.word, apart=True)}-generated.gif")
            if data is None:
                continue
            mine = test[data.labels[test] == label]
            if not len(mine):
                say(f"no test drawing of {drawing.word} (too few drawings to split); no side-by-side picture for it")
                continue
            real = api.Drawing.from_stroke3(data.stroke3(mine[0]), drawing.word)
            render.side_by_side(drawing.points, real.points, drawing.word,
                                out / f"{file_stem(drawing.word, apart=True)}-side_by_side.png")
        sheet = showcase(model, data, out / SHEET, args.temperature, seed)
    say(f"{'trained on real drawings' if data is not None else 'shipped checkpoint'}; "
        f"GIFs, PNGs, SVGs{' and the loss curve' if data is not None else ''}"
        f"{', and ' + sheet.name + ' (the shipped model beside the seed model)' if sheet else ''} are in:")
    print(out)


SHEET = "seed_beside_shipped.png"  # demo's sheet of the seed model beside the shipped one


def demo_files(words) -> Iterator[str]:
    """The files of a demo's drawings of ``words``: each drawing's PNG and SVG, each class's GIF and side-by-side
    picture, and the sheet (``outputs.replacing``'s ``files``)."""
    words = [w for w in words if isinstance(w, str)]
    if words:
        yield SHEET
    yield from drawing_files(*SAMPLE_FILES, tag="generated-")(words)
    for word in dict.fromkeys(words):
        yield from (f"{file_stem(word, apart=True)}-{end}" for end in ("generated.gif", "side_by_side.png"))


def showcase(seed: api.Model, data, path: Path, temperature: float, seed_value: int = 0,
             per_row: int = 6) -> Path | None:
    """One sheet: per class, real test drawings, the seed model's and the shipped model's (where it knows the
    class), so that the demo shows the report's system beside the tool's best. None without a shipped model."""
    from sketchgen import render

    try:
        shipped = api.load(classes=seed.classes)  # the shipped model that draws them all, where one does
    except api.SketchgenError:
        return None
    rows = []
    test = data.indices("test") if data is not None else None
    for label, word in enumerate(seed.classes):
        if data is not None:
            mine = test[data.labels[test] == label][:per_row]
            rows.append((f"{word}: real", [api.Drawing.from_stroke3(data.stroke3(i)).points for i in mine]))
        rows.append((f"{word}: seed model", [d.points for d in seed.sample(word, per_row, temperature, seed_value)]))
        if word in shipped.classes:
            rows.append((f"{word}: shipped {shipped.kind}",
                         [d.points for d in shipped.sample(word, per_row, temperature, seed_value)]))
    render.grid([row for row in rows if row[1]], path)
    return path
