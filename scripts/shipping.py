"""What the scripts that make a shipped model share: a run's best weights packaged for the package's assets."""

from pathlib import Path

from sketchgen import models


def read_run(run: str | Path) -> dict:
    """A run folder's best.pt, checked whole; a folder without a readable one stops the script in one line."""
    try:
        return models.read(Path(run) / "best.pt")
    except models.CheckpointError as e:
        raise SystemExit(f"error: {e}") from None


def package(ckpt: dict, out: str | Path) -> None:
    """Write ``ckpt`` (a run's best.pt, as read) to ``out`` as shipped: the weights in float16 (half the size;
    sampling runs in float32), the config, classes, data settings and history kept, the optimiser state dropped;
    then load it back, checked whole, as users will, and say what was written."""
    keep = {k: v for k, v in ckpt.items() if k not in ("optimizer", "scheduler", "progress")}
    keep["state_dict"] = {k: v.half() for k, v in ckpt["state_dict"].items()}
    models.save(out, keep)
    net, _ = models.load(out)
    size = Path(out).stat().st_size
    print(f"{out}: {net.name}, {len(ckpt['classes'])} classes, step {ckpt.get('step')}, validation loss "
          f"{ckpt.get('val_loss'):.4f}, {size / 2**20:.1f} MiB")
