"""The training loop: batches, optimiser, schedule, early stopping, checkpoints, logs.

The schedule is the course report's (Adam 1e-3, ReduceLROnPlateau patience 2
on validation loss, early stop after 3 epochs without improvement, at most 30
epochs, best-validation weights kept) for both models. Everything random is
derived from the seed and where training is - augmentation from (epoch,
drawing), dropout from (epoch, step, rank) - so a run stopped at any step and
resumed reaches the same weights as one that never stopped.

Under ``torchrun`` the same loop runs in every process (PyTorch's
DistributedDataParallel, gloo on CPU, nccl on GPUs): each rank takes its share
of every global batch of ``batch_size`` drawings, the loss is divided by the
step count of the whole global batch, and every decision (skip a NaN step,
lower the rate, stop early, stop on a signal) is taken from numbers summed
over all ranks, so N processes follow one process's run up to rounding.
Only rank 0 logs and writes files.
"""

from __future__ import annotations

import atexit
import io
import json
import math
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from sketchgen import model as models
from sketchgen import strokes
from sketchgen.data import Prepared
from sketchgen.fileio import atomic_write

# NaN/inf losses tolerated in a row before training gives up.
MAX_BAD_STEPS = 20
# Settings a resumed run may change; a change to any other would make it a different run.
RESUMABLE_CHANGES = ("epochs", "lr", "lr_patience", "early_stop", "device", "amp", "compile")


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
    amp: bool = False  # bf16 autocast of the model's forward pass (the loss stays float32)
    compile: bool = False  # torch.compile the model: worth it on a GPU for long runs, not on CPU
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


def evaluate_loss(net, data: Prepared, idx: np.ndarray, batch_size: int, device: str = "cpu",
                  per_drawing: bool = False) -> float:
    """Mean loss per step (or, with ``per_drawing``, per drawing) over a split, without dropout or augmentation.

    Under torchrun each rank scores its share and the sums are added up, so all ranks get the same number.
    """
    was_training = net.training
    net.eval()
    total = count = 0.0
    if dist.is_initialized():
        idx = idx[dist.get_rank() :: dist.get_world_size()]
    with torch.no_grad():
        for start in range(0, len(idx), batch_size):
            b = idx[start : start + batch_size]
            labels, inputs, targets, mask = (t.to(device) for t in collate(net, [data.stroke3(i) for i in b], data.labels[b]))
            out, _ = net(labels, inputs)
            loss, n = net.loss(out, targets, mask)
            total += float(loss)
            count += float(n)
    net.train(was_training)
    total, count, drawings = _sum_over_ranks([total, count, len(idx)], device)
    return total / max(drawings if per_drawing else count, 1)


# --- many processes ----------------------------------------------------------------------------


def is_main_process() -> bool:
    """False in torchrun's workers other than rank 0, which train silently and write nothing."""
    return int(os.environ.get("RANK", "0")) == 0


def _join(device: str) -> tuple[int, int, str]:
    """This process's (rank, world size, device), joining torchrun's process group on first use.

    gloo on CPU, nccl on GPUs with each process on the GPU of its local rank;
    without torchrun, (0, 1, device).
    """
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return 0, 1, device
    if device.startswith("cuda"):
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        atexit.register(lambda: dist.is_initialized() and dist.destroy_process_group())
    return dist.get_rank(), dist.get_world_size(), device


def _sum_over_ranks(values: list[float], device: str) -> list[float]:
    """Element-wise sums over all processes (the values themselves when alone)."""
    if not dist.is_initialized():
        return values
    summed = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(summed)
    return summed.tolist()


def _from_rank0(obj):
    """Rank 0's object on every rank: only rank 0 reads the checkpoint, so ``--out`` need not be shared."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _for_steps(net: torch.nn.Module, world: int, device: str, compiled: bool) -> torch.nn.Module:
    """The model as a training step runs it: under torchrun wrapped in DDP (which averages gradients over
    ranks during backward), and compiled if asked; its weights stay ``net``'s."""
    if world > 1:
        net = DistributedDataParallel(net, device_ids=[torch.device(device).index] if device.startswith("cuda") else None)
    return torch.compile(net, dynamic=True) if compiled else net


def _silent(*args) -> None:
    """The log of ranks other than 0."""


def _step_seed(seed: int, epoch: int, step: int, rank: int) -> int:
    """The torch seed for one step's dropout: reproducible on resume, different on every rank."""
    return int(np.random.SeedSequence([seed, epoch, step, rank]).generate_state(1)[0])


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
    """Serialise in memory, then write atomically: a full disk is a plain OSError and the old file stays."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)  # torch's own writer turns a failed write into an obscure RuntimeError
    with atomic_write(path) as f:
        f.write(buffer.getbuffer())


def _check_same_run(ckpt: dict, cfg: TrainConfig, net: torch.nn.Module, classes: list[str], path: Path) -> None:
    """Refuse to resume into a different run: other data, model or batches could never reach the same weights."""
    if "progress" not in ckpt:
        raise TrainingError(f"{path} holds no training state to resume; train without --resume")
    saved = ckpt.get("train", {})
    differ = [k for k, v in asdict(cfg).items() if k not in RESUMABLE_CHANGES and saved.get(k) != v]
    if ckpt["classes"] != list(classes):
        differ.append("classes")
    elif ckpt["config"] != asdict(net.cfg):
        differ.append("model settings")
    if differ:
        raise TrainingError(f"{path} is from a run with other {', '.join(differ)}: pass the same settings "
                            "with --resume, or leave out --resume to start over")


def train(cfg: TrainConfig, data: Prepared, out_dir: str | Path, resume: bool = False, log=print) -> list[dict]:
    """Train, writing ``best.pt``, ``last.pt`` and ``log.jsonl`` in ``out_dir``; return the history.

    Under torchrun, each process runs this with the same arguments; ``cfg.batch_size`` is the global batch.
    """
    rank, world, device = _join(cfg.device)
    if rank:
        log = _silent
    out = Path(out_dir)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    train_idx = usable(data, "train", cfg.max_len)
    valid_idx = usable(data, "valid", cfg.max_len)
    dropped = len(data.indices("train")) - len(train_idx)
    if dropped:
        log(f"dropped {dropped} training drawings longer than {cfg.max_len} points")
    if not len(train_idx) or not len(valid_idx):
        raise TrainingError("no training or validation drawings: use more data or a larger --max-per-class")

    net = build_model(cfg, data, train_idx).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, "min", patience=cfg.lr_patience)
    state = {"epoch": 0, "step": 0, "best": math.inf, "bad_epochs": 0, "history": [], "sum": 0.0, "count": 0.0,
             "skipped": 0, "bad_run": 0}
    ckpt = models.read_checkpoint(out / "last.pt") if resume and rank == 0 and (out / "last.pt").exists() else None
    ckpt = _from_rank0(ckpt)
    if ckpt is not None:
        _check_same_run(ckpt, cfg, net, data.classes, out / "last.pt")
        net.load_state_dict(ckpt["state_dict"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        state = ckpt["progress"]
        log(f"resumed from {out / 'last.pt'} at epoch {state['epoch'] + 1}, step {state['step']}")
        if cfg.lr != ckpt["train"]["lr"]:  # e.g. lowered after the loss went NaN
            for group in opt.param_groups:
                group["lr"] = cfg.lr
            log(f"learning rate set to {cfg.lr:g} (the run started with {ckpt['train']['lr']:g})")
    else:
        if resume:
            log(f"nothing to resume in {out}; starting fresh")
        if rank == 0:
            (out / "log.jsonl").unlink(missing_ok=True)
    step_net = _for_steps(net, world, device, cfg.compile)

    def checkpoint(**extra) -> dict:
        return models.checkpoint_dict(net, data.classes, train=asdict(cfg), **extra)

    def save_last() -> None:
        if rank == 0:
            save(out / "last.pt", checkpoint(optimizer=opt.state_dict(), scheduler=sched.state_dict(), progress=state))

    net.train()
    log_path = out / "log.jsonl"
    with _StopFlag() as stop:
        while state["epoch"] < cfg.epochs and state["bad_epochs"] < cfg.early_stop:
            epoch, t0 = state["epoch"], time.time()
            plan = batches(data.lengths()[train_idx], cfg.batch_size, np.random.default_rng([cfg.seed, epoch]))
            bar = tqdm(plan[state["step"]:], desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
                       disable=None if rank == 0 else True, initial=state["step"], total=len(plan))
            for b in bar:
                torch.manual_seed(_step_seed(cfg.seed, epoch, state["step"], rank))
                # This rank's share; a rank left with none (a last batch smaller than the world) runs one
                # drawing at weight 0, because every rank must take part in the gradient exchange.
                mine = train_idx[b[rank::world]] if len(b) > rank else train_idx[b[:1]]
                weight = 1.0 if len(b) > rank else 0.0
                drawings = [augment(data.stroke3(i), np.random.default_rng([cfg.seed, epoch, i]), cfg.augment_scale,
                                    cfg.augment_drop) if cfg.augment_scale or cfg.augment_drop else data.stroke3(i)
                            for i in mine]
                labels, inputs, targets, mask = (t.to(device) for t in collate(net, drawings, data.labels[mine]))
                with torch.autocast(torch.device(device).type, torch.bfloat16, enabled=cfg.amp):
                    out_t, _ = step_net(labels, inputs)
                total, count = net.loss(out_t.float(), targets, mask)
                total = total * weight
                # Global sums: the loss is per step of the whole global batch (DDP then averages gradients
                # over ranks, which makes them the single-process ones), and all ranks skip or stop together.
                total_all, count_all, bad, stopping = _sum_over_ranks(
                    [float(total.detach()), float(count) * weight, float(not torch.isfinite(total)),
                     float(stop.signal is not None)], device)
                opt.zero_grad(set_to_none=True)
                if not bad:
                    (total * (world / count_all)).backward()
                    if cfg.grad_clip:
                        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
                    opt.step()
                    state["sum"] += total_all
                    state["count"] += count_all
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
                if stopping:
                    save_last()
                    by = signal.Signals(stop.signal).name if stop.signal else "a signal to another rank"
                    raise Interrupted(f"stopped by {by} in epoch {epoch + 1} at step "
                                      f"{state['step']}; resume with --resume (state in {out / 'last.pt'})")
            bar.close()
            val = evaluate_loss(net, data, valid_idx, cfg.batch_size, device)
            record = {
                "epoch": epoch + 1, "train_loss": state["sum"] / max(state["count"], 1), "val_loss": val,
                "lr": opt.param_groups[0]["lr"], "seconds": round(time.time() - t0, 2), "skipped_steps": state["skipped"],
            }
            sched.step(val)
            state["history"].append(record)
            improved = val < state["best"]  # a NaN never improves, and never becomes the best (as min() would let it)
            state.update(epoch=epoch + 1, step=0, sum=0.0, count=0.0, skipped=0,
                         best=val if improved else state["best"], bad_epochs=0 if improved else state["bad_epochs"] + 1)
            if improved and rank == 0:
                save(out / "best.pt", checkpoint(epoch=epoch + 1, val_loss=val, history=state["history"]))
            save_last()
            if rank == 0:
                with open(log_path, "a") as f:
                    f.write(json.dumps(record) + "\n")
            log(f"epoch {epoch + 1}: train {record['train_loss']:.4f}  valid {val:.4f}  lr {record['lr']:.2e}"
                + ("  (best)" if improved else ""))
    if state["bad_epochs"] >= cfg.early_stop:
        log(f"early stop: no validation improvement for {cfg.early_stop} epochs")
    return state["history"]

