"""Exporting a trained mixture decoder to ``@magenta/sketch``: one Sketch-RNN model file per class.

Magenta's browser library (npm ``@magenta/sketch`` 0.2.0, ``es5/sketch_rnn/model.js``) runs
Sketch-RNN's decoder on its own: stroke-5 input -> TensorFlow's basic LSTM cell -> a linear layer
to 3 pen logits and 6 x 20 mixture parameters (pi, mu_x, mu_y, sigma_x, sigma_y, rho), the layout
``MixtureDecoder.mixture`` reads. Its model file is the JSON ``[info, weightDims, weightStrings]``
with five weights, in this order:

    output kernel (H, 123), output bias (123), LSTM input kernel (5, 4H),
    LSTM recurrent kernel (H, 4H), LSTM bias (4H)

each stored row-major as int16 ``round(w / 10 * 32767)`` (so every weight must lie within +-10) in
little-endian base64, as the library reads it back into an ``Int16Array``.

Our decoder is class-conditional: its LSTM reads cat(class embedding, stroke-5). For one class the
embedding is a constant, so its product with the input weights is a constant that folds exactly
into the bias, together with PyTorch's two biases. PyTorch orders the gates (i, f, g, o); the
library's cell (i, j, f, o) with j = g, and it adds a forget bias of 1.0 itself, so 1.0 comes off
ours. ``info.scale_factor`` is our offset scale: the library divides pixel offsets by
``scale_factor / pixelFactor``, so one of its pixels is ``pixelFactor`` QuickDraw units (2 unless
the page calls ``setPixelFactor``). What the file cannot express (the seed model, another cell or
layer count, another mixture size) is refused: an export is exact up to the int16 rounding or not
written. (Our ``mixture`` bounds log sigma at +-10 and the library does not; they part only where a
sigma would exceed e^10 times the offset scale, which no trained model produces.)
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import numpy as np
from torch import nn

from sketchgen import model as models
from sketchgen.fileio import atomic_write

MIXTURES = 20  # model.js: NMIXTURE, a constant of the library
MAX_WEIGHT = 10.0  # model.js: maxWeight; int16 32767 stands for it
INT16_MAX = 32767
WEIGHT_NAMES = ("output kernel", "output bias", "LSTM input kernel", "LSTM recurrent kernel", "LSTM bias")
# A MixtureDecoder's whole state and settings as this exporter knows them; anything more (a second
# layer, layer norm, a new option) may change what the model computes, so it is refused.
STATE_KEYS = {"embed.weight", "lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0", "lstm.bias_hh_l0",
              "head.weight", "head.bias"}
CONFIG_KEYS = {"n_classes", "embed_dim", "hidden", "n_mixtures", "dropout", "scale", "max_len"}


class ExportError(models.CheckpointError):
    """A checkpoint that cannot be exported exactly; one line saying why."""


def check_exportable(net: nn.Module, ckpt: dict, path) -> None:
    """Refuse, in one line, a model the library would compute differently."""
    if ckpt["kind"] != "mdn":
        raise ExportError(f"{path}: a {ckpt['kind']} model cannot be exported: @magenta/sketch runs Sketch-RNN's "
                          "mixture decoder only (train with --model mdn)")
    extra = sorted(set(ckpt["config"]) - CONFIG_KEYS) + sorted(set(net.state_dict()) - STATE_KEYS)
    if extra:
        raise ExportError(f"{path}: cannot export exactly: the model has {', '.join(extra)}, which the library's "
                          "basic LSTM cell does not")
    lstm = net.lstm
    if type(lstm) is not nn.LSTM or lstm.num_layers != 1 or lstm.bidirectional or lstm.proj_size:
        raise ExportError(f"{path}: cannot export exactly: the library runs one plain unidirectional LSTM layer")
    if net.cfg.n_mixtures != MIXTURES:
        raise ExportError(f"{path}: cannot export: the model has {net.cfg.n_mixtures} mixture components and "
                          f"@magenta/sketch always reads {MIXTURES}")


def magenta_weights(net: nn.Module, label: int) -> list[np.ndarray]:
    """The five float64 arrays of one class's Magenta model, in the file's order and layout."""
    sd = {k: v.detach().double().numpy() for k, v in net.state_dict().items()}
    e, h = net.cfg.embed_dim, net.cfg.hidden
    w_ih, w_hh = sd["lstm.weight_ih_l0"], sd["lstm.weight_hh_l0"]
    bias = sd["lstm.bias_ih_l0"] + sd["lstm.bias_hh_l0"] + w_ih[:, :e] @ sd["embed.weight"][label]
    i, f, g, o = np.split(np.arange(4 * h), 4)
    tf_order = np.concatenate([i, g, f, o])
    bias = bias[tf_order]
    bias[2 * h : 3 * h] -= 1.0
    return [sd["head.weight"].T, sd["head.bias"], w_ih[tf_order, e:].T, w_hh[tf_order].T, bias]


def quantise(w: np.ndarray) -> str:
    """Weights within +-MAX_WEIGHT -> the library's base64 of little-endian int16."""
    q = np.rint(np.asarray(w) / MAX_WEIGHT * INT16_MAX).astype("<i2")
    return base64.b64encode(q.tobytes()).decode("ascii")


def magenta_model(checkpoint: str | os.PathLike, class_name: str) -> list:
    """``[info, weightDims, weightStrings]`` for one class of a mixture-decoder checkpoint."""
    net, ckpt = models.load(checkpoint)
    check_exportable(net, ckpt, checkpoint)
    classes = ckpt["classes"]
    if class_name not in classes:
        raise ExportError(f"{checkpoint} was not trained on {class_name!r}; it knows: {', '.join(classes)}")
    weights = magenta_weights(net, classes.index(class_name))
    for name, w in zip(WEIGHT_NAMES, weights):
        peak = float(np.abs(w).max())
        if peak > MAX_WEIGHT:
            raise ExportError(f"{checkpoint}: cannot export {class_name!r} exactly: its {name} reaches {peak:.2f}, "
                              f"beyond the +-{MAX_WEIGHT:g} the library's int16 weights can hold")
    # mode 2: a decoder-only ("gen") model in Sketch-RNN's JavaScript format; 0.2.0 itself reads only scale_factor.
    info = {"name": class_name, "mode": 2, "scale_factor": float(net.cfg.scale), "max_seq_len": int(net.cfg.max_len)}
    return [info, [list(w.shape) for w in weights], [quantise(w) for w in weights]]


def export_magenta(checkpoint: str | os.PathLike, class_name: str, out: str | os.PathLike) -> Path:
    """Write one class of a checkpoint as a ``.gen.json`` that ``new ms.SketchRNN(url)`` loads."""
    text = json.dumps(magenta_model(checkpoint, class_name))
    with atomic_write(out) as f:
        f.write(text.encode())
    return Path(out)
