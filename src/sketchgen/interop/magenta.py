"""Magenta's Sketch-RNN model files (``.gen.json``): written for its browser library, read from its model zoo.

The library (npm ``@magenta/sketch`` 0.2.0, ``es5/sketch_rnn/model.js``) runs Sketch-RNN's decoder
on its own: stroke-5 input -> TensorFlow's basic LSTM cell -> a linear layer to 3 pen logits and
6 x 20 mixture parameters (pi, mu_x, mu_y, sigma_x, sigma_y, rho). Its model file is the JSON
``[info, weightDims, weightStrings]`` with five weights, in this order:

    output kernel (H, 123), output bias (123), LSTM input kernel (5, 4H),
    LSTM recurrent kernel (H, 4H), LSTM bias (4H)

each stored row-major as int16 ``round(w / 10 * 32767)`` (so every weight must lie within +-10) in
little-endian base64, as the library reads it back into an ``Int16Array``.

This module knows the file; the model knows its weights (``SketchModel.magenta_weights``: the
mixture decoder folds its class embedding into the bias and reorders its gates; a model the
library cannot run says so; ``from_magenta`` is the way back, asked of the model the registry
names as the importer of Magenta's files). ``info.scale_factor`` is the model's offset scale: the library
divides pixel offsets by ``scale_factor / pixelFactor``, so one of its pixels is ``pixelFactor``
QuickDraw units (2 unless the page calls ``setPixelFactor``). What the file cannot express is
refused: an export is exact up to the int16 rounding or not written. (Our mixture bounds log sigma
at +-10 and the library does not; they part only where a sigma would pass e^+-10 times the offset
scale, which no model sketchgen trains produces. Magenta's own models do, down to e^-15: their imports
are bounded at +-20 instead, see ``heads.IMPORTED_LOG_SIGMA_LIMIT``.)

Reading (``import_magenta``) takes what Magenta's zoo published: about a hundred decoder-only models,
one class each. Their ``info`` differs from file to file: ``mode`` is 2 or ``"gen"`` (or absent),
and ``version``, ``max_seq_len`` or ``training_size`` may be missing; only ``scale_factor`` is
needed, and ``name`` names the class unless the caller does. A file is untrusted input: it is
checked whole, every shape against the LSTM size the output kernel declares and every base64
string's length against its shape, before any weight is decoded; a VAE (17 weights: an encoder
too) or anything else is refused in one line saying what it is.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sketchgen import classfiles, models
from sketchgen.errors import one_line
from sketchgen.fileio import FileRefused, atomic_write, json_values, read_bytes
from sketchgen.models.checkpoint import MAX_NAME, validate

MAX_WEIGHT = 10.0  # model.js: maxWeight; int16 32767 stands for it
INT16_MAX = 32767
WEIGHT_NAMES = ("output kernel", "output bias", "LSTM input kernel", "LSTM recurrent kernel", "LSTM bias")


class ExportError(models.CheckpointError):
    """A checkpoint that cannot be exported exactly; one line saying why."""


def _int16(w: np.ndarray) -> np.ndarray:
    return np.rint(np.asarray(w) / MAX_WEIGHT * INT16_MAX).astype("<i2")


# The info entry export adds: a zoo file's other keys are notes that neither the library nor import reads.
EXPORTED_BY, EXPORTER = "exported_by", "sketchgen"


def quantise(w: np.ndarray) -> str:
    """Weights within +-MAX_WEIGHT -> the library's base64 of little-endian int16."""
    return base64.b64encode(_int16(w).tobytes()).decode("ascii")


def magenta_model(checkpoint: str | os.PathLike, class_name: str) -> list:
    """``[info, weightDims, weightStrings]`` for one class of a checkpoint, or of a Magenta model file (read as
    ``load`` reads one, and written back as this file's export)."""
    if Path(checkpoint).name.lower().endswith(".json"):
        ckpt = magenta_checkpoint(checkpoint)
        net = models.checkpoint.build(ckpt)
    else:
        net, ckpt = models.load(checkpoint)
    classes = ckpt["classes"]
    place = classfiles.Names(classes).find(class_name)  # in either Unicode form, as every command finds a class
    if place is None:
        raise ExportError(f"{checkpoint} was not trained on {class_name!r}; it knows: {models.listing(classes)}")
    class_name = classes[place]
    try:
        models.require(net, models.MagentaExport, "cannot be exported: @magenta/sketch runs one kind of model, "
                       "Sketch-RNN's LSTM with its mixture decoder, without an encoder or latent")
        info, weights = net.magenta_weights(place)
    except models.ModelError as e:
        raise ExportError(f"{checkpoint}: {e}") from None
    for name, w in zip(WEIGHT_NAMES, weights):
        steps = np.rint(np.asarray(w) / MAX_WEIGHT * INT16_MAX)  # as _int16 writes them: int16's -32768 too
        if steps.max() > INT16_MAX or steps.min() < -INT16_MAX - 1:
            peak = float(np.abs(w).max())
            raise ExportError(f"{checkpoint}: cannot export {class_name!r} exactly: its {name} reaches {peak:.2f}, "
                              f"beyond the +-{MAX_WEIGHT:g} the library's int16 weights can hold")
        if name.endswith("kernel") and not _int16(w).any():
            raise ExportError(f"{checkpoint}: cannot export {class_name!r}: its {name} rounds to zero everywhere in "
                              "the library's int16 weights, so the export would draw nothing")
    # mode 2: a decoder-only ("gen") model in Sketch-RNN's JavaScript format; 0.2.0 itself reads only scale_factor.
    return [{"name": class_name, **info, EXPORTED_BY: EXPORTER}, [list(w.shape) for w in weights],
            [quantise(w) for w in weights]]


def exported_by_sketchgen(info: dict) -> bool:
    """Whether a model file's info says sketchgen's export wrote it (since 2026-12-07; before, nothing did):
    the one kind of model file export replaces without --overwrite."""
    return info.get(EXPORTED_BY) == EXPORTER


def export_magenta(checkpoint: str | os.PathLike, class_name: str, out: str | os.PathLike) -> Path:
    """Write one class of a checkpoint as a ``.gen.json`` that ``new ms.SketchRNN(url)`` loads."""
    text = json.dumps(magenta_model(checkpoint, class_name))
    with atomic_write(out) as f:
        f.write(text.encode())
    return Path(out)


# --- reading: a zoo file into a sketchgen checkpoint ------------------------------------------

# The zoo's LSTM-512 files are 3 MB; a 2,048-unit model would be 48 MB. A file beyond this is refused unread.
MAX_FILE = 256 << 20
# A model file holds a few dozen JSON values (an info object, a list of five shapes, five base64 strings); a file
# of 120 MB of "{}," took 3.3 GB to parse before it was found not to be a model (``fileio.json_values``).
MAX_VALUES = 100_000
NMIXTURE = 20  # model.js: NMIXTURE, the mixture components the library reads from the output layer
OUTPUT_WIDTH = 3 + 6 * NMIXTURE  # 3 pen logits, then (pi, mu_x, mu_y, sigma_x, sigma_y, rho) x NMIXTURE
STROKE_WIDTH = 5  # a stroke-5 step: the decoder-only model's whole input
# sketch-rnn-js (model.js of the older library): "0 or 1 - vae, 2 - gen"; a VAE file holds 17 weights
# (two encoder LSTMs, mu, sigma, the latent-to-state layer, then the decoder's five).
DECODER_MODES = (2, "gen")
VAE_MODES = (0, 1, "vae")
VAE_WEIGHTS = 17


class MagentaFileError(models.CheckpointError):
    """A file that is not a decoder-only Sketch-RNN model sketchgen can import; one line saying what it is."""


@dataclass
class MagentaFile:
    """A checked ``.gen.json``: its info (``name`` str or None, ``scale_factor`` a positive float, ``max_seq_len``
    a positive int or None, then the rest as read) and its five weights as float64 arrays, in the file's order."""

    info: dict
    weights: list[np.ndarray]


def read_magenta(path: str | os.PathLike) -> MagentaFile:
    """Read and check a model file completely: structure, info, every shape against the LSTM size, the base64 and
    its byte count, before a weight is decoded (a declared shape never allocates: the text must hold it)."""
    path = Path(path)

    def fail(message: str):
        raise MagentaFileError(f"{path}: {message}")

    try:
        raw = read_bytes(path, MAX_FILE, "Sketch-RNN model file")  # a FIFO, /dev/zero, a folder: refused unread
    except FileRefused as e:
        raise MagentaFileError(str(e)) from None
    except OSError as e:  # a failing disk: a read error names no file of its own
        fail(f"cannot be read ({e.strerror or e})")
    if (values := json_values(raw)) > MAX_VALUES:
        fail(f"not a Sketch-RNN model: it holds some {values:,} JSON values, where a model file holds a few dozen")
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError; deep nesting a RecursionError
        fail(f"not JSON ({type(e).__name__}: {str(e).splitlines()[0][:80]}); a Sketch-RNN model is a .gen.json file")
    if not isinstance(doc, list) or len(doc) != 3:
        fail("not a Sketch-RNN model: a .gen.json is a JSON array [info, shapes, weights]")
    info, shapes, strings = doc
    if not isinstance(info, dict):
        fail(f"info (the array's first entry) is a {type(info).__name__}, not an object")
    if not isinstance(shapes, list) or not isinstance(strings, list):
        fail("the shapes and weights (the array's second and third entries) are not lists")
    mode = info.get("mode")
    if mode is not None and (type(mode) not in (int, float, str) or mode not in DECODER_MODES + VAE_MODES):
        fail(f"info.mode {str(mode)[:40]!r} is not a Sketch-RNN model type (2 or 'gen' for a decoder-only model)")
    if len(strings) == VAE_WEIGHTS or mode in VAE_MODES:
        said = f"mode {mode!r}, " if mode is not None else ""
        fail(f"a Sketch-RNN VAE ({said}{len(strings)} weights: an encoder and a decoder); sketchgen imports "
             "decoder-only models, the zoo's .gen.json files")
    if len(shapes) != len(strings):
        fail(f"{len(shapes)} shapes for {len(strings)} weights")
    if len(strings) != len(WEIGHT_NAMES):
        fail(f"{len(strings)} weights; a decoder-only Sketch-RNN model has {len(WEIGHT_NAMES)} "
             f"({', '.join(WEIGHT_NAMES)})")
    _check_shapes(shapes, fail)
    return MagentaFile(_info(info, fail), [_weight(name, shape, text, fail)
                                           for name, shape, text in zip(WEIGHT_NAMES, shapes, strings)])


def _check_shapes(shapes: list, fail) -> None:
    """Each shape as the library reads it: ``[[H, 123], [123], [5, 4H], [H, 4H], [4H]]``, H the LSTM size."""
    for name, shape in zip(WEIGHT_NAMES, shapes):
        # A dimension past the file's bytes is no weight it could hold, and 10**400 overflowed the arithmetic below.
        if not isinstance(shape, list) or not 1 <= len(shape) <= 2 or \
                any(type(d) is not int or not 1 <= d <= MAX_FILE for d in shape):
            fail(f"the {name}'s shape {str(shape)[:40]} is not one or two positive integers of at most {MAX_FILE:,} "
                 "(the bytes a Magenta file may have)")
    h = shapes[0][0]
    if shapes[0][1:] != [OUTPUT_WIDTH]:
        fail(f"the output kernel gives {shapes[0][1:]} outputs; the library reads {OUTPUT_WIDTH} "
             f"(3 pen logits, then 6 x {NMIXTURE} mixture parameters)")
    inputs = shapes[2][0]
    if len(shapes[2]) == 2 and inputs > STROKE_WIDTH and shapes[2][1] == 4 * h:
        fail(f"the LSTM takes {inputs} inputs, a stroke-5 step and {inputs - STROKE_WIDTH} more: a decoder conditioned "
             "on a latent vector (a VAE's); sketchgen imports unconditional, decoder-only models")
    expected = [[h, OUTPUT_WIDTH], [OUTPUT_WIDTH], [STROKE_WIDTH, 4 * h], [h, 4 * h], [4 * h]]
    for name, shape, want in zip(WEIGHT_NAMES, shapes, expected):
        if shape != want:
            fail(f"the {name} has shape {shape}; a model of {h} LSTM units (the output kernel's rows) needs {want}")


def _weight(name: str, shape: list[int], text, fail) -> np.ndarray:
    """One weight: its base64 checked for length against its shape before it is decoded, then int16 -> float."""
    n = math.prod(shape)
    want = 4 * -(-2 * n // 3)  # base64 of 2n bytes, padded
    if not isinstance(text, str):
        fail(f"the {name} is a {type(text).__name__}, not a base64 string")
    if len(text) != want:
        fail(f"the {name} holds {len(text)} base64 characters; {n} int16 values of shape {shape} take {want}")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        fail(f"the {name} is not valid base64")
    if len(data) != 2 * n:
        fail(f"the {name} decodes to {len(data)} bytes; {n} int16 values take {2 * n}")
    return (np.frombuffer(data, "<i2").astype(np.float64) * (MAX_WEIGHT / INT16_MAX)).reshape(shape)


def _number(value) -> bool:
    return type(value) in (int, float)


def _info(info: dict, fail) -> dict:
    """``name``, ``scale_factor`` and ``max_seq_len`` checked (the other keys are the zoo's notes and stay unread)."""
    name, scale, length = info.get("name"), info.get("scale_factor"), info.get("max_seq_len")
    if name is not None and not isinstance(name, str):
        fail(f"info.name is a {type(name).__name__}, not a string")
    if not _finite(scale) or scale <= 0:
        fail(f"info.scale_factor {str(scale)[:40]} is not a positive number (the std of the offsets it was trained on)")
    if length is not None and (not _finite(length) or length != int(length) or length < 1):
        fail(f"info.max_seq_len {str(length)[:40]} is not a positive whole number of steps")
    return {**info, "name": name, "scale_factor": float(scale), "max_seq_len": None if length is None else int(length)}


def _finite(value) -> bool:
    """A JSON number a float holds: NaN, an infinity and an integer of 400 digits (OverflowError) are not."""
    try:
        return _number(value) and math.isfinite(value)
    except OverflowError:
        return False


def zoo_class(name: str) -> str:
    """The Quick, Draw! class a zoo name stands for (``palm_tree`` is ``palm tree``), else the name as it is."""
    known = {c.lower(): c for c in classfiles.categories()}
    return known.get(name.lower()) or known.get(name.replace("_", " ").lower()) or name


def magenta_checkpoint(path: str | os.PathLike, class_name: str | None = None) -> dict:
    """A zoo file as a one-class sketchgen checkpoint dict of the model that reads Magenta's files, checked like
    any read one. The class is ``class_name``, else the one ``info.name`` stands for."""
    if class_name is not None and (problem := classfiles.name_problem(class_name)):
        raise MagentaFileError(f"--class {class_name[:40]!r} is not a class name ({problem})")
    model = read_magenta(path)
    name = class_name
    if name is None and model.info["name"] is not None:
        name = zoo_class(model.info["name"])
    if not name:
        raise MagentaFileError(f"{path}: info has no name: say which class it draws with --class")
    if class_name is None and (problem := classfiles.name_problem(name)):  # --class's rule: one no command could name
        raise MagentaFileError(f"{path}: info.name {name[:40]!r} is not a class name ({problem}): "
                               "say which class it draws with --class")
    cls = models.importer("magenta")
    try:
        net = cls.from_magenta(model.info, model.weights)
    except models.ModelError as e:
        raise MagentaFileError(f"{path}: {e}") from None
    # The file's name as a message shows it: a checkpoint holds printable text only, and a newline in a name or a
    # byte that is no UTF-8 made a good file refused as "not the format and file name an import writes".
    file = one_line(Path(path).name)[:MAX_NAME]
    ckpt = models.checkpoint_dict(net, [name], imported={"format": "magenta", "file": file})
    return validate(ckpt, path)  # bounds of every setting, the class name: what any reader of a checkpoint checks


def import_magenta(path: str | os.PathLike, out: str | os.PathLike, class_name: str | None = None) -> dict:
    """Write a zoo file as a one-class sketchgen checkpoint (``magenta_checkpoint``); its dict."""
    ckpt = magenta_checkpoint(path, class_name)
    models.save(out, ckpt)
    return ckpt
