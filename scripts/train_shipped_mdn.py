"""Reproduce the shipped model src/sketchgen/assets/mdn-quickdraw26.pt, the one `sample` and `serve` use by default.

`sketchgen train --model mdn` with its defaults on every class of ../shared/quickdraw with at least 150
drawings (the 26 classes of bench/quality.py; eye, mouth and monkey capped at --max-per-class 1000 so
that they do not drown the rest), given a longer step budget than the default (--steps, default 4x the
default budget: the script may run for hours, users get its result), seed 0. The best-validation weights
are copied into the package as float16 (half the size; sampling runs in float32), with the checkpoint's
data settings and history, without the optimiser state.

    .venv/bin/python scripts/train_shipped_mdn.py            # ~3 hours on 2 cores
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from benchlib import shared_classes  # noqa: E402  (the benchmark's class set: one rule, not two lists)

from sketchgen import cli, models  # noqa: E402
from sketchgen.cli.commands import SHIPPED_MODEL  # noqa: E402
from sketchgen.training import TrainConfig  # noqa: E402


def main() -> None:
    default_steps = 4 * TrainConfig.for_model("mdn").steps
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=default_steps, help=f"step budget (default {default_steps})")
    p.add_argument("--max-per-class", type=int, default=1000, help="recognized drawings kept per class (default 1000)")
    p.add_argument("--run", help="run folder (default: a temporary one); --resume continues it")
    p.add_argument("--resume", action="store_true", help="continue the run in --run")
    p.add_argument("--out", default=SHIPPED_MODEL, help=f"where to write the model (default {SHIPPED_MODEL})")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        run = Path(args.run or scratch)
        argv = ["train", "--model", "mdn", "--classes", *shared_classes(), "--max-per-class", str(args.max_per_class),
                "--steps", str(args.steps), "--seed", "0", "--out", str(run)]
        if cli.main(argv + (["--resume"] if args.resume else [])) != 0:
            raise SystemExit("training failed")
        ckpt = models.read(run / "best.pt")
    keep = {k: v for k, v in ckpt.items() if k not in ("optimizer", "scheduler", "progress")}
    keep["state_dict"] = {k: v.half() for k, v in ckpt["state_dict"].items()}
    models.save(args.out, keep)
    net, _ = models.load(args.out)  # it loads, checked whole, as users will load it
    size = Path(args.out).stat().st_size
    print(f"{args.out}: {net.name}, {len(ckpt['classes'])} classes, step {ckpt.get('step')}, validation loss "
          f"{ckpt.get('val_loss'):.4f}, {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
