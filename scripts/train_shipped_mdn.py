"""Reproduce the shipped models src/sketchgen/assets/mdn-quickdraw29.pt, the one `sample` and `serve` use by default,
and mdn-quickdraw26.pt, the one before it.

29: `sketchgen train --model mdn --cell layernorm --val-weights pooled --lr-schedule cosine` with every other
default (so fine-tuned from the layer-norm base of 345 classes) on every class of ../shared/quickdraw with at least
150 drawings (the 26 classes of bench/quality.py) and the report's seed classes among the rest (apple, square,
triangle); validation weighs every drawing alike, so the three 16-18-drawing classes, learnt by heart early, do
not stop the run while the others still learn, and the rate anneals to its floor by the end of the budget. 26: the
26 classes with the defaults of its day (PyTorch's LSTM, from its base, Sketch-RNN's per-step decay); it runs in
@magenta/sketch. Both: eye and mouth capped at --max-per-class 1000 so that they do not drown the rest, seed 0;
--steps gives a longer budget. The best-validation weights are copied into the package as float16 (half the size;
sampling runs in float32), with the checkpoint's data settings and history, without the optimiser state. --from-run
packages a finished run instead.

    .venv/bin/python scripts/train_shipped_mdn.py --run runs/shipped29    # ~50 minutes on one core
    .venv/bin/python scripts/train_shipped_mdn.py --model 26              # ~25 minutes on 2 cores
    .venv/bin/python scripts/train_shipped_mdn.py --from-run runs/shipped29
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "bench"), str(Path(__file__).resolve().parent)]
from benchlib import shared_classes  # noqa: E402  (the benchmark's class set: one rule, not two lists)
from shipping import checked, package, read_run, trained  # noqa: E402

from sketchgen.api import ASSETS, SEED_CLASSES, SHIPPED_MODEL  # noqa: E402
from sketchgen.errors import flag  # noqa: E402
from sketchgen.training import TrainConfig  # noqa: E402


def recipes() -> dict[str, tuple[Path, list[str], str, dict]]:
    """By model: (its file, its classes, its cell, its other training settings beyond the defaults)."""
    big = shared_classes()
    return {"29": (SHIPPED_MODEL, big + [c for c in SEED_CLASSES if c not in big], "layernorm",
                   {"val_weights": "pooled", "lr_schedule": "cosine"}),
            "26": (ASSETS / "mdn-quickdraw26.pt", big, "lstm", {"lr_schedule": "decay"})}


def main() -> None:
    default_steps = TrainConfig.for_model("mdn").steps
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("29", "26"), default="29", help="which shipped model (default 29)")
    p.add_argument("--steps", type=int, default=default_steps, help=f"step budget (default {default_steps})")
    p.add_argument("--max-per-class", type=int, default=1000, help="recognized drawings kept per class (default 1000)")
    p.add_argument("--run", help="run folder (default: a temporary one); --resume continues it")
    p.add_argument("--resume", action="store_true", help="continue the run in --run")
    p.add_argument("--from-run", help="a finished run folder to package instead of training (its best.pt)")
    p.add_argument("--out", help="where to write the model (default: the shipped file of that model)")
    args = p.parse_args()
    out, classes, cell, settings = recipes()[args.model]
    if args.from_run:
        ckpt = read_run(args.from_run)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            argv = ["train", "--model", "mdn", "--classes", *classes, "--max-per-class", str(args.max_per_class),
                    "--steps", str(args.steps), "--cell", cell, "--seed", "0", "--ema", "0"]
            argv += [a for k, v in settings.items() for a in (flag(k), v)]
            ckpt = trained(argv, args.run or scratch, args.resume)
    checked(ckpt, classes, cell, args.from_run or args.run or "the run", settings)
    package(ckpt, args.out or out)


if __name__ == "__main__":
    main()
