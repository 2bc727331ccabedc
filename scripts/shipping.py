"""What the scripts that make a shipped model share: a run's best weights packaged for the package's assets."""

from pathlib import Path

from sketchgen import cli, models
from sketchgen.errors import flag


def trained(argv: list[str], run: str | Path, resume: bool) -> dict:
    """``sketchgen train ARGV --out RUN`` (continued where it stopped with ``resume``), then RUN's best.pt; a run
    that fails stops the script."""
    if cli.main([*argv, "--out", str(run), *(["--resume"] if resume else [])]) != 0:
        raise SystemExit("training failed")
    return read_run(run)


def checked(ckpt: dict, classes: list[str], cell: str, source: str | Path, settings: dict | None = None) -> dict:
    """``ckpt`` if it is an mdn with ``cell`` trained on exactly ``classes`` (and with the training ``settings``
    given); else the script stops saying so, so that no other run is packaged in its place."""
    if ckpt["kind"] != "mdn" or ckpt["classes"] != classes or ckpt["config"]["cell"] != cell:
        raise SystemExit(f"{source}: not an mdn with the {cell} cell trained on the {len(classes)} classes asked for")
    for key, value in (settings or {}).items():
        if (theirs := ckpt.get("train", {}).get(key)) != value:
            raise SystemExit(f"{source}: trained with {flag(key)} {theirs}, not the recipe's {value}")
    return ckpt


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
