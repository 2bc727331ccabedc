"""Reproduce the shipped model src/sketchgen/assets/mdn-quickdraw26.pt, the one `sample` and `serve` use by default,
and the one before it, mdn-quickdraw26-lstm.pt.

`sketchgen train --model mdn --cell CELL` with every other default (so fine-tuned from the shipped base of 345
classes with that cell) on every class of ../shared/quickdraw with at least 150 drawings (the 26 classes of
bench/quality.py; eye and mouth capped at --max-per-class 1000 so that they do not drown the rest), seed 0;
--steps gives it a longer budget. The layer-norm cell draws the 26 classes better (docs/quality.md); the plain
LSTM's model runs in @magenta/sketch. The best-validation weights are copied into the package as float16 (half the
size; sampling runs in float32), with the checkpoint's data settings and history, without the optimiser state.
--from-run packages a finished run instead, such as the one bench/quality.py trains with the same command.

    .venv/bin/python scripts/train_shipped_mdn.py --run runs/shipped26        # ~50 minutes on one core
    .venv/bin/python scripts/train_shipped_mdn.py --cell lstm                  # ~25 minutes on 2 cores
    .venv/bin/python scripts/train_shipped_mdn.py --from-run runs/quality/set26/mdn --cell lstm
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "bench"), str(Path(__file__).resolve().parent)]
from benchlib import shared_classes  # noqa: E402  (the benchmark's class set: one rule, not two lists)
from shipping import package  # noqa: E402

from sketchgen import cli, models  # noqa: E402
from sketchgen.api import ASSETS, SHIPPED_MODEL  # noqa: E402
from sketchgen.training import TrainConfig  # noqa: E402

SHIPPED = {"layernorm": SHIPPED_MODEL, "lstm": ASSETS / "mdn-quickdraw26-lstm.pt"}


def main() -> None:
    default_steps = TrainConfig.for_model("mdn").steps
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=default_steps, help=f"step budget (default {default_steps})")
    p.add_argument("--max-per-class", type=int, default=1000, help="recognized drawings kept per class (default 1000)")
    p.add_argument("--run", help="run folder (default: a temporary one); --resume continues it")
    p.add_argument("--resume", action="store_true", help="continue the run in --run")
    p.add_argument("--from-run", help="a finished run folder to package instead of training (its best.pt)")
    p.add_argument("--cell", choices=tuple(SHIPPED), default="layernorm", help="the recurrent cell (default layernorm)")
    p.add_argument("--out", help="where to write the model (default: the shipped model of that cell)")
    args = p.parse_args()
    if args.from_run:
        ckpt = models.read(Path(args.from_run) / "best.pt")
        if ckpt["kind"] != "mdn" or ckpt["classes"] != shared_classes() or ckpt["config"]["cell"] != args.cell:
            raise SystemExit(f"{args.from_run}: not an mdn with the {args.cell} cell trained on the "
                             f"{len(shared_classes())} shared classes")
    else:
        with tempfile.TemporaryDirectory() as scratch:
            run = Path(args.run or scratch)
            argv = ["train", "--model", "mdn", "--classes", *shared_classes(), "--max-per-class", str(args.max_per_class),
                    "--steps", str(args.steps), "--cell", args.cell, "--seed", "0", "--out", str(run)]
            if cli.main(argv + (["--resume"] if args.resume else [])) != 0:
                raise SystemExit("training failed")
            ckpt = models.read(run / "best.pt")
    package(ckpt, args.out or SHIPPED[args.cell])

if __name__ == "__main__":
    main()
