"""Benchmark 3: sampling throughput, batched generation against one drawing at a time, and against matmul.

``sample.generate`` on 1,000 class labels at once (each drawing stops at its
own end) against calls of one label each (on the first 100 labels, which
keeps the run short; the rate per drawing is what is compared), timed
alternately in one run, at temperature 1.0, for two trained models at their
default sizes: the shipped seed checkpoint, and a mixture-density model
trained here for a minute on real eye and mouth drawings. Brief training
teaches the mdn how often drawings end but not yet when, so at temperature
1.0 its lengths are realistic on average (at 0.4 it would rarely stop).

First, the time to one drawing from the command line (``sketchgen sample --classes cat --n 1``: start,
read and check the shipped model, draw, write a PNG) beside the time to import torch, each a fresh process.

Then the mdn's 1,000 drawings as one batch against its matmul ceiling, as
bench_train.py measures training: the FLOPs of the steps actually drawn (the
gates' product, (input + hidden) x 4 hidden, and the head's, per drawing per
step; the batch shrinks as drawings end) per second, as a fraction of
``torch.matmul``'s on the same shapes, step by step, timed alternately with it.

    .venv/bin/python bench/bench_sample.py                 # ~3 minutes on 2 shared cores
    .venv/bin/python bench/bench_sample.py --cell layernorm
    .venv/bin/python bench/bench_sample.py --checkpoint runs/transformer/best.pt   # any model's checkpoint too
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from benchlib import arguments, begin, quickdraw, side_by_side

from sketchgen import models
from sketchgen.cli import SHIPPED_CHECKPOINT
from sketchgen.cli.values import POSITIVE
from sketchgen.data import prepare
from sketchgen.models.cells import CELLS
from sketchgen.sample import generate
from sketchgen.training import TrainConfig, train

TEMPERATURE = 1.0


def bench_first_drawing(repeats: int) -> None:
    """Seconds to one drawing from the command line, beside a process that only imports torch."""
    with tempfile.TemporaryDirectory(prefix="bench-first-") as tmp:
        best = side_by_side({
            "sketchgen sample --classes cat --n 1": lambda: subprocess.run(
                [sys.executable, "-m", "sketchgen", "sample", "--classes", "cat", "--n", "1", "--out",
                 str(Path(tmp) / "cat.png"), "--overwrite"], check=True, capture_output=True),
            "python -c 'import torch'": lambda: subprocess.run([sys.executable, "-c", "import torch"], check=True),
        }, repeats)
    print("first drawing: " + ", ".join(f"{k} {v:.2f} s" for k, v in best.items()))


def trained_mdn(tmp: Path, epochs: int, cell: str):
    """A default-size mixture model trained briefly on real drawings."""
    data = prepare(["eye", "mouth"], quickdraw() / "simplified", max_per_class=400, cache_dir=tmp)
    cfg = TrainConfig.for_model("mdn", epochs=epochs, early_stop=epochs, lr=3e-3, model_config={"cell": cell})
    train(cfg, data, tmp / "mdn", log=lambda msg: None)
    return models.load(tmp / "mdn" / "best.pt")[0]


def bench_model(name: str, net, n: int, single: int, repeats: int) -> float:
    """Print one model's numbers; return its batched / one-at-a-time throughput ratio."""
    labels = np.arange(n) % net.cfg.n_classes
    batched = [len(d) for d in generate(net, labels, TEMPERATURE)]
    alone = [len(generate(net, [label], TEMPERATURE, seed=i)[0]) for i, label in enumerate(labels[:single])]
    best = side_by_side({
        "batched": lambda: generate(net, labels, TEMPERATURE),
        "one at a time": lambda: [generate(net, [label], TEMPERATURE, seed=i) for i, label in enumerate(labels[:single])],
    }, repeats)
    rate = {"batched": n / best["batched"], "one at a time": single / best["one at a time"]}
    print(f"{name}: batched {n} drawings, {np.mean(batched):.0f} points on average (longest {max(batched)}); "
          f"one at a time {single}, {np.mean(alone):.0f} points on average")
    for k, v in rate.items():
        print(f"  {k:13s} {v:9.1f} drawings/s")
    return rate["batched"] / rate["one at a time"]


def drawn_batches(net, labels) -> list[int]:
    """How many drawings each generation step of one batch of ``labels`` ran (drawings leave as they end)."""
    sizes, step = [], net.step
    net.step = lambda x, state: (sizes.append(len(x)), step(x, state))[1]
    try:
        generate(net, labels, TEMPERATURE, batch_size=len(labels))
    finally:
        del net.step
    return sizes


def bench_ceiling(net, n: int, repeats: int) -> float:
    """Print the mdn's batched drawing against torch.matmul on the same products; return the fraction."""
    labels = np.arange(n) % net.cfg.n_classes
    sizes = drawn_batches(net, labels)
    w_ih, w_hh = [p for name, p in net.lstm.named_parameters() if name.startswith("weight_")][:2]
    width, hidden, outputs = w_ih.shape[1] + w_hh.shape[1], w_hh.shape[1], net.head.out_features
    x, w_gates, w_head = torch.randn(n, width), torch.randn(width, 4 * hidden), torch.randn(hidden, outputs)

    def products():
        for m in sizes:
            torch.matmul(x[:m], w_gates)
            torch.matmul(x[:m, :hidden], w_head)

    best = side_by_side({"drawing": lambda: generate(net, labels, TEMPERATURE, batch_size=n), "matmul": products},
                        repeats)
    flops = 2 * sum(sizes) * (width * 4 * hidden + hidden * outputs)
    print(f"mdn, one batch of {n}: {len(sizes)} steps, {sum(sizes):,} drawing-steps ({sum(sizes) / len(sizes):.0f} "
          f"drawings a step on average), {flops / sum(sizes) / 1e6:.2f} MFLOP each (gates {width} x {4 * hidden}, "
          f"head {hidden} x {outputs})")
    for name, seconds in best.items():
        print(f"  {name:8s} {seconds:7.3f} s, {flops / seconds / 1e9:5.1f} GFLOP/s")
    return best["matmul"] / best["drawing"]


def main() -> None:
    parser = arguments(__doc__, 2)
    parser.add_argument("--n", type=POSITIVE, default=1000, help="drawings generated by each contender (default 1000)")
    parser.add_argument("--single", type=POSITIVE, default=100, help="drawings generated one at a time (default 100)")
    parser.add_argument("--mdn-epochs", type=POSITIVE, default=3, help="training epochs of the mdn model (default 3)")
    parser.add_argument("--cell", default="lstm", choices=CELLS, help="the mdn's recurrent cell (default lstm)")
    parser.add_argument("--checkpoint", action="append", default=[], type=Path,
                        help="also measure batched against one at a time on this checkpoint (any model; repeatable)")
    args = begin(parser)
    bench_first_drawing(args.repeats)
    with tempfile.TemporaryDirectory(prefix="bench-sample-") as tmp:
        nets = {"seed (shipped checkpoint)": models.load(SHIPPED_CHECKPOINT)[0],
                f"mdn (trained {args.mdn_epochs} epochs here)": trained_mdn(Path(tmp), args.mdn_epochs, args.cell)}
    nets.update({f"{ckpt['kind']} ({path})": net for path in args.checkpoint for net, ckpt in [models.load(path)]})
    ratios = {}
    for name, net in nets.items():
        print(f"{name}: {sum(p.numel() for p in net.parameters()) / 1e6:.2f}M parameters, "
              f"{net.cfg.n_classes} classes")
        ratios[name] = bench_model(name.split()[0], net, args.n, args.single, args.repeats)
    print("ratio batched / one at a time drawings/s: " + ", ".join(f"{k} {v:.1f}x" for k, v in ratios.items()))
    fraction = bench_ceiling(nets[f"mdn (trained {args.mdn_epochs} epochs here)"], args.n, args.repeats)
    print(f"mdn batched drawing: {fraction:.2f} of the matmul ceiling")


if __name__ == "__main__":
    main()
