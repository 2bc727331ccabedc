"""The training loop: batches, optimiser, schedule, early stopping, checkpoints, logs.

The schedule is the course report's (Adam 1e-3, ReduceLROnPlateau patience 2
on validation loss, early stop after 3 epochs without improvement, at most 30
epochs, best-validation weights kept) for both models. Everything random is
derived from (seed, epoch, batch), and the torch RNG state travels in the
checkpoint, so a run stopped at any step and resumed reaches the same weights
as one that never stopped.
"""

from __future__ import annotations

import json
import math
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sketchgen import model as models
from sketchgen import strokes
from sketchgen.data import Prepared
from sketchgen.fileio import atomic_write

# NaN/inf losses tolerated in a row before training gives up.
MAX_BAD_STEPS = 20


@dataclass
class TrainConfig:
    model: str = "seed"
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    lr_patience: int = 2
    early_stop: int = 3
    seed: int = 0
    max_len: int = 250
    grad_clip: float = 0.0  # 0: no clipping (the seed); the mdn default is 1.0
    augment_scale: float = 0.0  # Sketch-RNN: 0.15
    augment_drop: float = 0.0  # Sketch-RNN: 0.10
    device: str = "cpu"
    model_config: dict = field(default_factory=dict)

    @classmethod
    def for_model(cls, kind: str, **overrides) -> "TrainConfig":
        """Each model's defaults: the report's for the seed, Sketch-RNN's for the mdn."""
        base = {"mdn": dict(grad_clip=1.0, augment_scale=0.15, augment_drop=0.10)}.get(kind, {})
        return cls(model=kind, **{**base, **overrides})


class TrainingError(Exception):
    """Training cannot go on (e.g. the loss keeps being NaN); the message says what to try."""


class Interrupted(Exception):
    """SIGINT/SIGTERM arrived; a consistent checkpoint was written before this was raised."""


# --- data ------------------------------------------------------------------------------------


def augment(s3: np.ndarray, rng: np.random.Generator, scale: float, drop: float) -> np.ndarray:
    """Sketch-RNN's augmentation: scale x and y independently, drop interior pen-down points."""
    pts = strokes.stroke3_to_absolute(s3)
    if drop > 0 and len(pts) > 2:
        interior = np.zeros(len(pts), dtype=bool)
        interior[1:] = (pts[1:, 2] == 0) & (pts[:-1, 2] == 0)  # neither first nor last of a stroke
        pts = pts[~(interior & (rng.random(len(pts)) < drop))]
    if scale > 0:
        pts[:, :2] *= rng.uniform(1 - scale, 1 + scale, size=2)
    return strokes.absolute_to_stroke3(pts)


def batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar length, so little of each batch is padding.

    Shuffle, sort by length within windows of 50 batches, cut, shuffle the batches.
    """
    order = rng.permutation(len(lengths))
    window = batch_size * 50
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        order[start : start + window] = chunk[np.argsort(lengths[chunk], kind="stable")]
    cut = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [cut[i] for i in rng.permutation(len(cut))]


def collate(net, drawings: list[np.ndarray], labels: np.ndarray):
    """Stroke-3 drawings -> padded (labels, inputs, targets, mask) tensors for teacher forcing."""
    seqs = [net.encode(d) for d in drawings]
    width = max(len(s) for s in seqs)
    targets = np.zeros((len(seqs), width, net.step_dim), dtype=np.float32)
    mask = np.zeros((len(seqs), width), dtype=np.float32)
    for i, (s, d) in enumerate(zip(seqs, drawings)):
        targets[i, : len(s)] = s
        mask[i, : len(d)] = 1
    targets = torch.from_numpy(targets)
    inputs = torch.cat([net.start(len(seqs)), targets[:, :-1]], dim=1)
    return torch.as_tensor(labels), inputs, targets, torch.from_numpy(mask)


def usable(data: Prepared, split: str, max_len: int) -> np.ndarray:
    """Indices of a split short enough to train on."""
    idx = data.indices(split)
    return idx[data.lengths()[idx] <= max_len]


def offset_scale(data: Prepared, idx: np.ndarray) -> float:
    """Std of all dx, dy in the training drawings: Sketch-RNN's normalising factor."""
    offsets = np.concatenate([data.stroke3(i)[:, :2] for i in idx]).astype(np.float64)
    return float(offsets.std()) or 1.0


def build_model(cfg: TrainConfig, data: Prepared, train_idx: np.ndarray) -> torch.nn.Module:
    n = len(data.classes)
    extra = dict(cfg.model_config)
    if cfg.model == "seed":
        lengths = data.lengths()
        extra.setdefault(
            "lengths", [int(np.median(lengths[train_idx][data.labels[train_idx] == c])) for c in range(n)]
        )
    else:
        extra.setdefault("scale", offset_scale(data, train_idx))
        extra.setdefault("max_len", cfg.max_len)
    return models.build(cfg.model, n_classes=n, **extra)


# --- the loop --------------------------------------------------------------------------------


def evaluate_loss(net, data: Prepared, idx: np.ndarray, batch_size: int, device: str = "cpu") -> float:
    """Mean loss per step over a split, without dropout or augmentation."""
    was_training = net.training
    net.eval()
    total = count = 0.0
    with torch.no_grad():
        for start in range(0, len(idx), batch_size):
            b = idx[start : start + batch_size]
            labels, inputs, targets, mask = (t.to(device) for t in collate(net, [data.stroke3(i) for i in b], data.labels[b]))
            out, _ = net(labels, inputs)
            loss, n = net.loss(out, targets, mask)
            total += float(loss)
            count += float(n)
    net.train(was_training)
    return total / max(count, 1)


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag checked between steps, so a checkpoint is never torn."""

    def __init__(self):
        self.signal = None

    def __enter__(self):
        self.old = {s: signal.signal(s, self._set) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _set(self, signum, frame):
        self.signal = signum

    def __exit__(self, *exc):
        for s, h in self.old.items():
            signal.signal(s, h)


def save(path: Path, payload: dict) -> None:
    with atomic_write(path) as f:
        torch.save(payload, f)


def train(cfg: TrainConfig, data: Prepared, out_dir: str | Path, resume: bool = False, log=print) -> list[dict]:
    """Train, writing ``best.pt``, ``last.pt`` and ``log.jsonl`` in ``out_dir``; return the history."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    train_idx = usable(data, "train", cfg.max_len)
    valid_idx = usable(data, "valid", cfg.max_len)
    dropped = len(data.indices("train")) - len(train_idx)
    if dropped:
        log(f"dropped {dropped} training drawings longer than {cfg.max_len} points")
    if not len(train_idx) or not len(valid_idx):
        raise TrainingError("no training or validation drawings: use more data or a larger --max-per-class")

    net = build_model(cfg, data, train_idx).to(cfg.device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, "min", patience=cfg.lr_patience)
    state = {"epoch": 0, "step": 0, "best": math.inf, "bad_epochs": 0, "history": [], "sum": 0.0, "count": 0.0,
             "skipped": 0, "bad_run": 0}
    if resume and (out / "last.pt").exists():
        ckpt = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
        net.load_state_dict(ckpt["state_dict"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["rng"])
        state = ckpt["progress"]
        log(f"resumed from {out / 'last.pt'} at epoch {state['epoch'] + 1}, step {state['step']}")
    else:
        if resume:
            log(f"nothing to resume in {out}; starting fresh")
        (out / "log.jsonl").unlink(missing_ok=True)

    def checkpoint(**extra) -> dict:
        return models.checkpoint_dict(net, data.classes, train=asdict(cfg), **extra)

    def save_last() -> None:
        save(out / "last.pt", checkpoint(
            optimizer=opt.state_dict(), scheduler=sched.state_dict(), rng=torch.get_rng_state(), progress=state,
        ))

    net.train()
    log_path = out / "log.jsonl"
    with _StopFlag() as stop:
        while state["epoch"] < cfg.epochs and state["bad_epochs"] < cfg.early_stop:
            epoch, t0 = state["epoch"], time.time()
            plan = batches(data.lengths()[train_idx], cfg.batch_size, np.random.default_rng([cfg.seed, epoch]))
            bar = tqdm(plan[state["step"]:], desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, disable=None,
                       initial=state["step"], total=len(plan))
            for b in bar:
                rng = np.random.default_rng([cfg.seed, epoch, state["step"]])
                drawings = [augment(data.stroke3(i), rng, cfg.augment_scale, cfg.augment_drop)
                            if cfg.augment_scale or cfg.augment_drop else data.stroke3(i) for i in train_idx[b]]
                labels, inputs, targets, mask = (t.to(cfg.device) for t in collate(net, drawings, data.labels[train_idx[b]]))
                out_t, _ = net(labels, inputs)
                total, count = net.loss(out_t, targets, mask)
                loss = total / count
                opt.zero_grad(set_to_none=True)
                if torch.isfinite(loss):
                    loss.backward()
                    if cfg.grad_clip:
                        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
                    opt.step()
                    state["sum"] += float(total.detach())
                    state["count"] += float(count)
                    state["bad_run"] = 0
                else:
                    state["skipped"] += 1
                    state["bad_run"] += 1
                    if state["bad_run"] >= MAX_BAD_STEPS:
                        raise TrainingError(
                            f"loss was NaN/inf for {MAX_BAD_STEPS} steps in a row (epoch {epoch + 1}); "
                            "lower --lr or check the data. best.pt is untouched."
                        )
                state["step"] += 1
                bar.set_postfix(loss=f"{state['sum'] / max(state['count'], 1):.4f}")
                if stop.signal is not None:
                    save_last()
                    raise Interrupted(f"stopped by signal {stop.signal}; resume with --resume (state in {out / 'last.pt'})")
            bar.close()
            val = evaluate_loss(net, data, valid_idx, cfg.batch_size, cfg.device)
            record = {
                "epoch": epoch + 1, "train_loss": state["sum"] / max(state["count"], 1), "val_loss": val,
                "lr": opt.param_groups[0]["lr"], "seconds": round(time.time() - t0, 2), "skipped_steps": state["skipped"],
            }
            sched.step(val)
            state["history"].append(record)
            improved = val < state["best"]
            state.update(epoch=epoch + 1, step=0, sum=0.0, count=0.0, skipped=0,
                         best=min(val, state["best"]), bad_epochs=0 if improved else state["bad_epochs"] + 1)
            if improved:
                save(out / "best.pt", checkpoint(epoch=epoch + 1, val_loss=val, history=state["history"]))
            save_last()
            with open(log_path, "a") as f:
                f.write(json.dumps(record) + "\n")
            log(f"epoch {epoch + 1}: train {record['train_loss']:.4f}  valid {val:.4f}  lr {record['lr']:.2e}"
                + ("  (best)" if improved else ""))
    if state["bad_epochs"] >= cfg.early_stop:
        log(f"early stop: no validation improvement for {cfg.early_stop} epochs")
    return state["history"]

