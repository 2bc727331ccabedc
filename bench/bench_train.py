"""Benchmark 2: training throughput of the real training step, six comparisons measured side by side.

Every contender runs ``training.step.train_step`` (forward, loss, backward,
clipping, Adam) on batches built by ``training.batching.builder`` (gather,
augmentation, padding), exactly as ``sketchgen train`` does, over the same
real drawings (eye, mouth, monkey):

1. bucketed batches (``batching.epoch_plan``: sorted by length within windows,
   each padded to its own longest drawing) against random batches padded to
   ``max_len`` + 1, for the seed and mdn models at their default sizes; with
   the LSTM's achieved FLOP/s (forward 2*4*H*(I+H) per step per sequence per
   layer, backward twice that, over every computed step) against this
   machine's ``torch.matmul`` on the LSTM's gate shape, the practical ceiling;
2. batches built ahead on a background thread (``--prefetch 2``, the default)
   against built on the training thread between steps (``--prefetch 0``);
3. the mdn on the layer-normalised LSTM (``--cell layernorm``) against the
   plain LSTM: what the cell costs per step;
4. the vae (bidirectional encoder 256 each way, z 128, the mdn's decoder)
   against the mdn at the same decoder size (LSTM 512): what the encoder and
   the latent cost per drawing;
5. the vae's encoder as it runs (two one-way LSTMs over the padded batch, the
   backward one over each drawing reversed in place) against PyTorch's
   bidirectional LSTM over a ``pack_padded_sequence``, forward and backward on
   the same real batches: why it is not packed;
6. bf16 autocast (``--amp``) against float32, the mdn on each of its cells:
   what the CPU's bf16 instructions (AVX512_BF16, AMX) or a GPU buy;

    .venv/bin/python bench/bench_train.py                  # a few minutes on 2 shared cores
    .venv/bin/python bench/bench_train.py --device cuda --amp
"""

from __future__ import annotations

import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from benchlib import arguments, begin, quickdraw, side_by_side

from sketchgen import data as sgdata
from sketchgen import models
from sketchgen.cli.values import POSITIVE
from sketchgen.models import Batch
from sketchgen.training import TrainConfig, usable
from sketchgen.training.batching import Prefetcher, builder, epoch_plan
from sketchgen.training.step import train_step

CLASSES = ["eye", "mouth", "monkey"]


def lstm_flops(input_size: int, hidden: int, layers: int) -> int:
    """Forward + backward FLOPs of one LSTM step of one sequence, summed over layers."""
    total, width = 0, input_size
    for _ in range(layers):
        total += 3 * 2 * 4 * hidden * (width + hidden)
        width = hidden
    return total


def matmul_flops_per_s(m: int, k: int, n: int, device: str, seconds: float = 1.0) -> float:
    """Measured FLOP/s of ``torch.matmul`` of (m, k) by (k, n): best of a few timed bursts."""
    a, b = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
    reps, best = 8, 0.0
    for _ in range(5):
        sync(device)
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.matmul(a, b)
        sync(device)
        dt = time.perf_counter() - t0
        best = max(best, 2 * m * k * n * reps / dt)
        if dt < seconds / 5:
            reps *= 2
    return best


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def padded_to(build, width: int):
    """``build`` with every batch padded to ``width`` steps: the baseline without bucketing."""
    def padded(i):
        b, weight = build(i)
        extra = width - b.inputs.shape[1]
        return Batch(b.labels, F.pad(b.inputs, (0, 0, 0, extra)), F.pad(b.targets, (0, 0, 0, extra)),
                     F.pad(b.mask, (0, extra)), b.lengths), weight
    return padded


class Trainer:
    """One model, its optimizer and the drawings it trains on, as ``sketchgen train`` would set them up."""

    def __init__(self, kind: str, prepared, args, amp: bool | None = None, **model_config):
        self.cfg = TrainConfig.for_model(kind, device=args.device, amp=args.amp if amp is None else amp,
                                         model_config=model_config)
        self.prepared, self.device = prepared, args.device
        self.idx = usable(prepared, "train", self.cfg.max_len)
        torch.manual_seed(0)
        self.net = models.get(kind).from_data(prepared, self.idx, self.cfg.max_len, **model_config).to(args.device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=self.cfg.lr)
        self.net.train()

    def one_pass(self, plan, prefetch: int = 0, pad_to: int | None = None) -> int:
        """Train on every batch of ``plan``; return how many steps (padding included) the model computed."""
        build = builder(self.net, self.prepared, self.idx, plan, self.cfg, 0, pin=self.device.startswith("cuda"))
        if pad_to:
            build = padded_to(build, pad_to)
        computed = 0
        with Prefetcher(build, 0, len(plan), prefetch) as batches:
            for step, (batch, weight) in enumerate(batches):
                train_step(self.net, self.net, self.opt, batch.to(self.device, non_blocking=True), step, weight,
                           self.cfg.grad_clip, self.cfg.amp, device=self.device)
                computed += batch.inputs.shape[0] * batch.inputs.shape[1]
        sync(self.device)
        return computed


def plans(trainer: Trainer, drawings: int):
    """The first batches of a real epoch's plan, and the same drawings in random batches."""
    rng = np.random.default_rng(0)
    bucketed = epoch_plan(trainer.prepared.lengths()[trainer.idx], trainer.cfg.batch_size, rng)
    bucketed = bucketed[: max(1, drawings // trainer.cfg.batch_size)]
    chosen = rng.permutation(np.concatenate(bucketed))
    return bucketed, [chosen[i : i + trainer.cfg.batch_size] for i in range(0, len(chosen), trainer.cfg.batch_size)]


def bench_bucketing(kind: str, prepared, args) -> float:
    """1: one model's bucketed and padded throughput and FLOP/s; returns the ratio."""
    t = Trainer(kind, prepared, args)
    bucketed, padded = plans(t, args.drawings)
    n = sum(map(len, bucketed))
    real_steps = sum(len(t.net.encode(prepared.stroke3(i))) for i in t.idx[np.concatenate(bucketed)])
    t.one_pass(bucketed[:1])  # warm-up
    computed = {}
    best = side_by_side({
        "bucketed": lambda: computed.__setitem__("bucketed", t.one_pass(bucketed)),
        "padded": lambda: computed.__setitem__("padded", t.one_pass(padded, pad_to=t.cfg.max_len + 1)),
    }, args.repeats)
    rate = {k: n / v for k, v in best.items()}
    cfg = t.net.cfg
    input_size = cfg.embed_dim + t.net.step_dim
    layers = getattr(cfg, "layers", 1)
    per_step = lstm_flops(input_size, cfg.hidden, layers)
    flops, useful = per_step * computed["bucketed"] / best["bucketed"], per_step * real_steps / best["bucketed"]
    shape = (t.cfg.batch_size, input_size + cfg.hidden, 4 * cfg.hidden)
    ceiling = matmul_flops_per_s(*shape, args.device)
    print(f"{kind}: hidden {cfg.hidden} x {layers} layer(s), input {input_size}, batch {t.cfg.batch_size}, "
          f"{n} of {len(t.idx):,} training drawings")
    for name in ("bucketed", "padded"):
        print(f"  {name:8s} {rate[name]:8.1f} drawings/s, {1 - real_steps / computed[name]:.0%} of computed steps are padding")
    print(f"  LSTM {per_step / 1e6:.2f} MFLOP per step per sequence (fwd+bwd); bucketed step achieves "
          f"{flops / 1e9:.1f} GFLOP/s ({useful / 1e9:.1f} on real steps) = {flops / ceiling:.0%} of torch.matmul's "
          f"{ceiling / 1e9:.1f} GFLOP/s at {shape[0]}x{shape[1]} @ {shape[1]}x{shape[2]}")
    return rate["bucketed"] / rate["padded"]


def bench_pair(title: str, contenders: dict, drawings: int, repeats: int) -> float:
    """Time two contenders, each ``(trainer, plan, prefetch)``; print drawings/s; return first / second."""
    for trainer, plan, prefetch in contenders.values():
        trainer.one_pass(plan[:1], prefetch)  # warm-up
    best = side_by_side({name: (lambda c=c: c[0].one_pass(c[1], c[2])) for name, c in contenders.items()}, repeats)
    rates = {name: drawings / seconds for name, seconds in best.items()}
    print(title)
    for name, rate in rates.items():
        print(f"  {name:28s} {rate:8.1f} drawings/s")
    first, second = rates.values()
    return first / second


def bench_encoder(t: Trainer, plan, repeats: int) -> float:
    """5: the vae's encoder against a bidirectional LSTM on packed sequences (same weights), forward and
    backward over the batches of ``plan``; returns the packed time over the vae's."""
    from torch.nn.utils.rnn import pack_padded_sequence

    net = t.net
    packed = torch.nn.LSTM(net.step_dim, net.cfg.encoder_hidden, batch_first=True, bidirectional=True).to(t.device)
    packed.load_state_dict({**net.encoder_forward.state_dict(),
                            **{f"{k}_reverse": v for k, v in net.encoder_backward.state_dict().items()}})
    build = builder(net, t.prepared, t.idx, plan, t.cfg, 0)
    batches = [build(i)[0].to(t.device) for i in range(len(plan))]

    def ours():
        for b in batches:
            torch.cat(net.encode_latent(b), -1).sum().backward()

    def bidirectional():
        for b in batches:
            _, (h, _) = packed(pack_padded_sequence(b.targets, b.lengths.cpu(), batch_first=True, enforce_sorted=False))
            torch.cat(net.to_latent(torch.cat([h[0], h[1]], -1)).chunk(2, -1), -1).sum().backward()

    ours(), bidirectional()  # warm-up
    best = side_by_side({"two one-way LSTMs": ours, "packed bidirectional": bidirectional}, repeats)
    drawings = sum(len(b) for b in batches)
    print("5: the vae's encoder (256 each way), forward and backward")
    for name, seconds in best.items():
        print(f"  {name:28s} {drawings / seconds:8.1f} drawings/s")
    return best["packed bidirectional"] / best["two one-way LSTMs"]


def main() -> None:
    parser = arguments(__doc__, 2)
    parser.add_argument("--drawings", type=POSITIVE, default=640, help="real training drawings per pass (default 640)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast, as train --amp (default off)")
    parser.add_argument("--only", type=int, nargs="+", choices=range(1, 7), default=range(1, 7), metavar="N",
                        help="run only these comparisons, by number (default all six)")
    args = begin(parser)
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        prepared = sgdata.prepare(CLASSES, quickdraw() / "simplified", max_per_class=5000, cache_dir=tmp)
    ratios = {}
    if 1 in args.only:
        ratios = {f"bucketed / padded, {kind}": bench_bucketing(kind, prepared, args) for kind in ("seed", "mdn")}

    mdn = Trainer("mdn", prepared, args)
    plan, _ = plans(mdn, args.drawings)
    n = sum(map(len, plan))
    if 2 in args.only:
        ratios["prefetch 2 / prefetch 0, mdn"] = bench_pair(
            "2: batches built ahead on a thread, or between steps (mdn, augmentation on)",
            {"prefetch 2 (background thread)": (mdn, plan, 2), "prefetch 0 (between steps)": (mdn, plan, 0)}, n,
            args.repeats)
    if 3 in args.only:
        layernorm = Trainer("mdn", prepared, args, cell="layernorm")
        ratios["lstm / layernorm, mdn"] = bench_pair(
            "3: the mdn's cell, plain LSTM (oneDNN/cuDNN) or layer-normalised with recurrent dropout",
            {"cell lstm": (mdn, plan, 2), "cell layernorm": (layernorm, plan, 2)}, n, args.repeats)
    vae = Trainer("vae", prepared, args)
    if 4 in args.only:
        ratios["mdn / vae"] = bench_pair(
            "4: the vae (encoder, latent and the same decoder, LSTM 512) against the mdn (the decoder alone)",
            {"mdn": (mdn, plan, 2), "vae": (vae, plan, 2)}, n, args.repeats)
    if 5 in args.only:
        ratios["packed / two one-way, vae encoder"] = bench_encoder(vae, plan, args.repeats)
    if 6 in args.only:
        for cell in ("lstm", "layernorm"):
            ratios[f"bf16 / float32, mdn {cell}"] = bench_pair(
                f"6: bf16 autocast (--amp) against float32, the mdn's {cell} cell",
                {name: (Trainer("mdn", prepared, args, amp=amp, cell=cell), plan, 2)
                 for name, amp in (("bf16 autocast", True), ("float32", False))}, n, args.repeats)
    print("ratios: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))



if __name__ == "__main__":
    main()
