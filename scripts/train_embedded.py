"""Reproduce the shipped checkpoint src/sketchgen/assets/seed-quickdraw5.pt.

The seed model at the course report's settings (embedding 128, 2-layer LSTM
256, dropout 0.3, Adam 1e-3, ReduceLROnPlateau patience 2, early stop 3, at
most 30 epochs, seed 0), trained on the real drawings in ../shared/quickdraw
for apple, eye, square, triangle and circle, at most 1,000 recognized
drawings per class so the one big class (eye) does not drown the rest.
The best-validation weights are copied into the package, stripped of the
optimiser state, with the data settings training recorded (folder, cap, seed, each
class file and its SHA-256).

    .venv/bin/python scripts/train_embedded.py --overwrite    # replaces the shipped checkpoint
    .venv/bin/python scripts/train_embedded.py --out seed.pt
"""

import tempfile
from pathlib import Path

import torch

from sketchgen import models as model
from sketchgen.classfiles import shared_quickdraw
from sketchgen.cli import SEED_CLASSES, SHIPPED_CHECKPOINT
from sketchgen.cli.outputs import writable
from sketchgen.cli.values import MAX_PER_CLASS, Parser, path
from sketchgen.data import prepare
from sketchgen.errors import SketchgenError
from sketchgen.fileio import atomic_write
from sketchgen.training import TrainConfig, train


def main() -> None:
    p = Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=path, default=shared_quickdraw(),
                   help="folder of <class>.ndjson (default ../shared/quickdraw)")
    p.add_argument("--max-per-class", type=MAX_PER_CLASS, default=1000,
                   help="recognized drawings kept per class (default 1000)")
    p.add_argument("--out", type=path, default=SHIPPED_CHECKPOINT,
                   help="where to write the checkpoint (default the shipped one: see --overwrite)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a checkpoint already at --out (without it, one there is refused; any other file is)")
    args = p.parse_args()
    torch.manual_seed(0)
    try:  # refused before the training, each in one line, as sketchgen's own commands refuse them
        writable(args.out, "checkpoint", "--out", overwrite=("checkpoint",), overwriting=args.overwrite)
        data = prepare(SEED_CLASSES, args.data_dir, args.max_per_class, seed=0)
    except SketchgenError as e:
        raise SystemExit(f"error: {e}") from None
    with tempfile.TemporaryDirectory() as run:
        history = train(TrainConfig(model="seed", seed=0), data, run)
        net, ckpt = model.load(Path(run) / "best.pt")
    payload = model.checkpoint_dict(
        net, SEED_CLASSES, train=ckpt["train"], epoch=ckpt["epoch"], val_loss=ckpt["val_loss"], history=history,
        data=ckpt["data"],
    )
    with atomic_write(args.out) as f:
        torch.save(payload, f)
    print(f"{args.out}: epoch {ckpt['epoch']}, validation loss {ckpt['val_loss']:.4f}")


if __name__ == "__main__":
    main()
