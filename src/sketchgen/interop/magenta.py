"""Magenta's Sketch-RNN model files (``.gen.json``) for its browser library ``@magenta/sketch``.

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
library cannot run says so). ``info.scale_factor`` is the model's offset scale: the library
divides pixel offsets by ``scale_factor / pixelFactor``, so one of its pixels is ``pixelFactor``
QuickDraw units (2 unless the page calls ``setPixelFactor``). What the file cannot express is
refused: an export is exact up to the int16 rounding or not written. (Our mixture bounds log sigma
at +-10 and the library does not; they part only where a sigma would exceed e^10 times the offset
scale, which no trained model produces.)
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import numpy as np

from sketchgen import models
from sketchgen.fileio import atomic_write

MAX_WEIGHT = 10.0  # model.js: maxWeight; int16 32767 stands for it
INT16_MAX = 32767
WEIGHT_NAMES = ("output kernel", "output bias", "LSTM input kernel", "LSTM recurrent kernel", "LSTM bias")


class ExportError(models.CheckpointError):
    """A checkpoint that cannot be exported exactly; one line saying why."""


def _int16(w: np.ndarray) -> np.ndarray:
    return np.rint(np.asarray(w) / MAX_WEIGHT * INT16_MAX).astype("<i2")


def quantise(w: np.ndarray) -> str:
    """Weights within +-MAX_WEIGHT -> the library's base64 of little-endian int16."""
    return base64.b64encode(_int16(w).tobytes()).decode("ascii")


def magenta_model(checkpoint: str | os.PathLike, class_name: str) -> list:
    """``[info, weightDims, weightStrings]`` for one class of a checkpoint."""
    net, ckpt = models.load(checkpoint)
    classes = ckpt["classes"]
    if class_name not in classes:
        raise ExportError(f"{checkpoint} was not trained on {class_name!r}; it knows: {models.listing(classes)}")
    try:
        info, weights = net.magenta_weights(classes.index(class_name))
    except models.ModelError as e:
        raise ExportError(f"{checkpoint}: {e}") from None
    for name, w in zip(WEIGHT_NAMES, weights):
        peak = float(np.abs(w).max())
        if peak > MAX_WEIGHT:
            raise ExportError(f"{checkpoint}: cannot export {class_name!r} exactly: its {name} reaches {peak:.2f}, "
                              f"beyond the +-{MAX_WEIGHT:g} the library's int16 weights can hold")
        if name.endswith("kernel") and not _int16(w).any():
            raise ExportError(f"{checkpoint}: cannot export {class_name!r}: its {name} rounds to zero everywhere in "
                              "the library's int16 weights, so the export would draw nothing")
    # mode 2: a decoder-only ("gen") model in Sketch-RNN's JavaScript format; 0.2.0 itself reads only scale_factor.
    return [{"name": class_name, **info}, [list(w.shape) for w in weights], [quantise(w) for w in weights]]


def export_magenta(checkpoint: str | os.PathLike, class_name: str, out: str | os.PathLike) -> Path:
    """Write one class of a checkpoint as a ``.gen.json`` that ``new ms.SketchRNN(url)`` loads."""
    text = json.dumps(magenta_model(checkpoint, class_name))
    with atomic_write(out) as f:
        f.write(text.encode())
    return Path(out)
