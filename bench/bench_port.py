"""Benchmark 6: training end to end, sketchgen against the most-used PyTorch port of Sketch-RNN, side by side.

The port is alexis-jacq/Pytorch-Sketch-RNN (``sketch_rnn.py``): Sketch-RNN's
VAE in PyTorch, padding every batch to the longest drawing of the data set.
Its code stays outside this repository: ``--port`` names a checkout of it, and
this script adapts a copy at run time, each change checked to apply (``PATCHES``):
its .npz input becomes our drawings, its bounds on drawing length ours (so
that both train on the same drawings), what no longer runs on today's torch,
NumPy and matplotlib is brought up to date, and its endless loop becomes one
epoch. Nothing else of it changes.

Both sides train on the 7,034 training drawings of eye, mouth and monkey in
../shared/quickdraw (prepared once by sketchgen; ``sketchgen convert --to npz``
writes them for the port, the three classes' files merged into one), for one
epoch of batches of 100 (71 steps, 7,100 drawings), each process on
``--threads`` threads, timed from its start to its exit, alternately:

* ``sketchgen train --model mdn --init none --epochs 1`` (random weights, as the port's; its defaults: augmentation,
  class balance, validation, checkpoints, log and loss curve) against the
  port's decoder alone: its ``DecoderRNN`` with z held at zero, z as wide as
  our class embedding (16), so that both LSTMs see 21 numbers a step; its
  reconstruction loss, Adam, clipping and decay;
* ``sketchgen train --model vae --epochs 1 --batch-size 100`` against the
  port's whole VAE (``Model.train``: encoder, KL, and one drawing sampled at
  step 0);
* with ``--amp``, each of ours again with ``--amp`` (bf16 autocast of the
  products), against the same float32 port.

    .venv/bin/python bench/bench_port.py --port ../ports/Pytorch-Sketch-RNN      # ~20 minutes on 2 shared cores
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from benchlib import arguments, begin, folder, quickdraw

from sketchgen.cli.values import POSITIVE

CLASSES = ["eye", "mouth", "monkey"]
SPLITS = ("train", "valid", "test")  # what a Sketch-RNN .npz holds beside convert's other members (its written_by)
BATCH = 100
EMBEDDING = 16  # the width of sketchgen's class embedding for 3 classes: the port's z for its decoder alone
# (what the port says, what it says here): its data, its length bounds, and what today's libraries refuse.
PATCHES = [
    ("import torch.nn.functional as F\n", "import torch.nn.functional as F\nfrom torch.autograd import Variable\n"),
    ("self.data_location = 'cat.npz'", "self.data_location = DATA"),
    ("self.max_seq_length = 200", "self.max_seq_length = MAX_LEN"),
    ("seq.shape[0] > 10", "seq.shape[0] > 0"),  # sketchgen keeps short drawings; so must the port, to train on the same
    ("np.load(hp.data_location, encoding='latin1')", "np.load(hp.data_location, encoding='latin1', allow_pickle=True)"),
    ("hp.enc_hidden_size.cuda()", "hp.enc_hidden_size).cuda()"),  # a syntax error on a CUDA-only line
    ("loss.data[0],'LR',LR.data[0],'LKL',LKL.data[0]", "loss.item(),'LR',LR.item(),'LKL',LKL.item()"),
    ("nn.utils.clip_grad_norm(self.encoder", "nn.utils.clip_grad_norm_(self.encoder"),
    ("nn.utils.clip_grad_norm(self.decoder", "nn.utils.clip_grad_norm_(self.decoder"),
    ("    canvas = plt.get_current_fig_manager().canvas", "    return  # its image: matplotlib no longer has tostring_rgb\n"
                                                          "    canvas = plt.get_current_fig_manager().canvas"),
    ("if __name__==\"__main__\":", "if False:"),
]
# Appended: one epoch of the port's own training step, or of its decoder alone.
DRIVER = '''
def train_decoder(self, epoch):
    """Model.train without the encoder and the KL term: z held at zero."""
    self.decoder.train()
    batch, lengths = make_batch(hp.batch_size)
    z = torch.zeros(hp.batch_size, hp.Nz)
    sos = torch.stack([torch.Tensor([0,0,1,0,0])]*hp.batch_size).unsqueeze(0)
    inputs = torch.cat([torch.cat([sos, batch], 0), torch.stack([z]*(Nmax+1))], 2)
    self.pi, self.mu_x, self.mu_y, self.sigma_x, self.sigma_y, self.rho_xy, self.q, _, _ = self.decoder(inputs, z)
    mask, dx, dy, p = self.make_target(batch, lengths)
    self.decoder_optimizer.zero_grad()
    LR = self.reconstruction_loss(mask, dx, dy, p, epoch)
    LR.backward()
    nn.utils.clip_grad_norm_(self.decoder.parameters(), hp.grad_clip)
    self.decoder_optimizer.step()
    print('epoch', epoch, 'loss', LR.item())
    self.decoder_optimizer = lr_decay(self.decoder_optimizer)

model = Model()
step = model.train if KIND == "vae" else (lambda epoch: train_decoder(model, epoch))
for epoch in range(STEPS):
    step(epoch)
'''


def adapted(port: Path, data: Path, kind: str, steps: int, max_len: int) -> str:
    """The port's sketch_rnn.py with ``PATCHES`` applied and ``DRIVER`` appended, as source."""
    source = (port / "sketch_rnn.py").read_text()
    for old, new in PATCHES:
        if old not in source:
            raise SystemExit(f"bench_port: {port / 'sketch_rnn.py'} has no {old!r}; this script adapts the port "
                             "as of its commit 5c3e213")
        source = source.replace(old, new, 1)
    constants = f"DATA, MAX_LEN, KIND, STEPS = {str(data)!r}, {max_len}, {kind!r}, {steps}\n"
    source = constants + source + DRIVER
    if kind != "vae":
        source = source.replace("self.Nz = 128", f"self.Nz = {EMBEDDING}")
    return source


def checkout(text: str) -> Path:
    """--port: a folder holding the port's sketch_rnn.py, checked before anything runs."""
    port = folder(text)
    if not (port / "sketch_rnn.py").is_file():
        raise argparse.ArgumentTypeError(f"{text}: no sketch_rnn.py in it (a checkout of the port, as of 5c3e213)")
    return port


def merged_npz(out: Path, env: dict) -> Path:
    """Our prepared drawings as one Sketch-RNN .npz: ``sketchgen convert --to npz`` per class, then merged."""
    sketchgen(["convert", "--to", "npz", "--classes", *CLASSES, "--data-dir", str(quickdraw() / "simplified"),
               "--out", str(out)], env)
    splits = {}
    for name in CLASSES:
        with np.load(out / f"{name}.npz", encoding="latin1", allow_pickle=True) as f:
            for split in SPLITS:
                splits.setdefault(split, []).extend(f[split])
    arrays = {}
    for split, drawings in splits.items():
        arrays[split] = np.empty(len(drawings), dtype=object)
        for i, d in enumerate(drawings):
            arrays[split][i] = d
    np.savez(out / "merged.npz", **arrays)
    return out / "merged.npz"


def sketchgen(argv: list[str], env: dict) -> float:
    """Run ``python -m sketchgen ARGV``; its wall-clock seconds."""
    return timed([sys.executable, "-m", "sketchgen", *argv], env)


def timed(command: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"bench_port: {' '.join(command[:4])}... failed:\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = arguments(__doc__, 2)
    parser.add_argument("--port", type=checkout, required=True, help="a checkout of alexis-jacq/Pytorch-Sketch-RNN")
    parser.add_argument("--threads", type=POSITIVE, default=1, help="torch threads of each process (default 1)")
    parser.add_argument("--models", nargs="+", default=["mdn", "vae"], choices=["mdn", "vae"],
                        help="sketchgen's models to compare (default both)")
    parser.add_argument("--amp", action="store_true",
                        help="also time sketchgen with --amp (bf16 autocast; pays on CPUs with bf16 instructions)")
    args = begin(parser)
    with tempfile.TemporaryDirectory(prefix="bench-port-") as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
               "SKETCHGEN_PREPARED": str(tmp / "prepared")}
        data = merged_npz(tmp, env)  # prepares our cache too: every timed run below starts warm
        with np.load(data, encoding="latin1", allow_pickle=True) as f:
            train = len(f["train"])
        steps = -(-train // BATCH)
        print(f"{train:,} training drawings of {', '.join(CLASSES)}; one epoch: {steps} steps of {BATCH}, "
              f"{args.threads} thread(s) a process")
        ratios = {}
        for kind in args.models:
            script = tmp / f"port_{kind}.py"
            script.write_text(adapted(args.port, data, "vae" if kind == "vae" else "decoder", steps, 250))
            ours = ["train", "--model", kind, "--init", "none", "--epochs", "1", "--batch-size", str(BATCH),
                    "--classes", *CLASSES, "--data-dir", str(quickdraw() / "simplified")]
            variants = {kind: ours, **({f"{kind} --amp": [*ours, "--amp"]} if args.amp else {})}
            best = dict.fromkeys([*variants, "port"], float("inf"))
            for r in range(args.repeats):
                for name, argv in variants.items():
                    out = tmp / f"{name.replace(' --', '_')}{r}"
                    best[name] = min(best[name], sketchgen([*argv, "--out", str(out)], env))
                best["port"] = min(best["port"], timed([sys.executable, str(script)], env))
            port_name = "the port's VAE" if kind == "vae" else "the port's decoder alone"
            print(f"{kind}: " + ", ".join(f"sketchgen{name[len(kind):]} {steps * BATCH / best[name]:6.1f} drawings/s "
                                          f"({best[name]:.1f} s)" for name in variants)
                  + f", {port_name} {steps * BATCH / best['port']:6.1f} drawings/s ({best['port']:.1f} s)")
            ratios.update({name: best["port"] / best[name] for name in variants})
        print("ratio sketchgen / port, end to end: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
