"""Benchmark 5: what one training step of each registered model costs at its default size, side by side.

Every registered model (and any ``--variant`` of one, such as other Transformer sizes) runs
``training.step.train_step`` on the same bucketed batches of 100 real drawings of the 26 shared classes
(drawings of similar length, as ``sketchgen train`` builds them), one model after another on each batch,
so the ratios hold on a loaded machine. Printed last: each model's step cost against the shipped model's kind,
which is what decides whether its default training fits the 45-minute budget the mdn's fits.

    .venv/bin/python bench/bench_models.py
    .venv/bin/python bench/bench_models.py --variant 'transformer 256x4=transformer:{"hidden": 256}'
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from benchlib import arguments, begin, quickdraw, shared_classes

from sketchgen import api, models, runs
from sketchgen.data import prepare
from sketchgen.errors import SketchgenError
from sketchgen.models import collate
from sketchgen.training import TrainConfig
from sketchgen.training.optim import optimizer
from sketchgen.training.step import train_step

BATCH = 100


def variant(text: str) -> tuple[str, TrainConfig]:
    """'NAME=KIND:{json settings}' -> (name, its training settings), checked as a run's are (``runs.train_config``)
    while the command line is parsed: a bad one is refused in one line, not after the data is prepared."""
    name, _, rest = text.partition("=")
    kind, _, settings = rest.partition(":")
    try:
        model = models.get(kind)  # train_config takes no kind for the default model's
        settings = json.loads(settings or "{}")
        if not isinstance(settings, dict):
            raise ValueError(f"the settings {settings!r:.40} are not a JSON object")
        cfg = runs.train_config(kind, None, 0, **settings)
        model.Config(**cfg.model_config)  # the settings together (a Transformer's hidden a multiple of its heads)
        return name, cfg
    except (ValueError, SketchgenError) as e:
        raise argparse.ArgumentTypeError(f"{text[:60]!r} is not NAME=KIND:JSON of a model's settings ({e})") from None


def main() -> None:
    parser = arguments(__doc__, repeats=12, threads=1)
    parser.add_argument("--variant", action="append", default=[], type=variant,
                        help="NAME=KIND:JSON, a model kind with other settings, measured beside the defaults")
    args = begin(parser)
    data = prepare(shared_classes(), quickdraw() / "simplified", max_per_class=1000, seed=0)
    train = data.indices("train")
    contenders = [(kind, runs.train_config(kind, None, 0)) for kind in models.names()] + args.variant
    nets = {}
    for name, cfg in contenders:
        net = models.get(cfg.model).from_data(data, train, cfg.max_len, **cfg.model_config)
        nets[name] = net, optimizer(cfg, net), cfg.grad_clip, sum(p.numel() for p in net.parameters())
    order = train[np.argsort(data.lengths()[train], kind="stable")]
    rng, seconds = np.random.default_rng(0), {name: [] for name in nets}
    for step in range(args.repeats + 1):  # the first step of each is warm-up, not counted
        start = rng.integers(0, len(order) - BATCH)
        rows = order[start : start + BATCH]
        for name, (net, opt, clip, _) in nets.items():
            batch = collate(net, data.gather(rows), data.labels[rows])
            t0 = time.process_time()
            train_step(net, net, opt, batch, step, grad_clip=clip)
            if step:
                seconds[name].append(time.process_time() - t0)
    reference = models.read(api.SHIPPED_MODEL)["kind"]
    ref = float(np.median(seconds[reference]))
    for name, (*_, params) in nets.items():
        cost = float(np.median(seconds[name]))
        print(f"{name}: {params / 1e6:.2f}M parameters, {cost:.3f} CPU-s per step of {BATCH}, "
              f"{cost / ref:.2f}x the {reference}'s")


if __name__ == "__main__":
    main()
