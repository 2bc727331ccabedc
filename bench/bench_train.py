"""Benchmark 2: training throughput, length-bucketed batches against fully padded ones.

For the seed model and the mixture-density model at their default sizes, one
pass over the same real drawings (forward, backward, Adam step, batch
building included) two ways, timed alternately in one run:

* bucketed - ``train.batches``: shuffled, sorted by length within windows,
  each batch padded only to its own longest drawing (what ``train`` does);
* padded - random batches, every one padded to ``max_len``.

Also the achieved FLOP/s of the bucketed training step, counting the LSTM's
FLOPs analytically (forward 2*4*H*(I+H) per step per sequence per layer,
backward twice that, over every step the LSTM computes), as a fraction of
this machine's ``torch.matmul`` FLOP/s on the LSTM's own gate matmul shape,
the practical ceiling.

    .venv/bin/python bench/bench_train.py                  # ~1-3 minutes on 2 shared cores
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
from sketchgen.train import TrainConfig, batches, build_model, collate, usable

CLASSES = ["eye", "mouth", "monkey"]


def lstm_flops(lstm: torch.nn.LSTM) -> int:
    """Forward + backward FLOPs of one LSTM step of one sequence, summed over layers."""
    total, width = 0, lstm.input_size
    for _ in range(lstm.num_layers):
        total += 3 * 2 * 4 * lstm.hidden_size * (width + lstm.hidden_size)
        width = lstm.hidden_size
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


def one_pass(net, opt, prepared, idx, plan, device, amp, pad_to=None) -> int:
    """Train on every batch of ``plan``; return how many LSTM steps (padding included) were computed."""
    computed = 0
    for b in plan:
        labels, inputs, targets, mask = collate(net, [prepared.stroke3(i) for i in idx[b]], prepared.labels[idx[b]])
        if pad_to is not None:
            extra = pad_to - inputs.shape[1]
            inputs, targets, mask = F.pad(inputs, (0, 0, 0, extra)), F.pad(targets, (0, 0, 0, extra)), F.pad(mask, (0, extra))
        labels, inputs, targets, mask = (t.to(device) for t in (labels, inputs, targets, mask))
        with torch.autocast(torch.device(device).type, torch.bfloat16, enabled=amp):
            out, _ = net(labels, inputs)
        total, count = net.loss(out.float(), targets, mask)
        opt.zero_grad(set_to_none=True)
        (total / count).backward()
        opt.step()
        computed += inputs.shape[0] * inputs.shape[1]
    sync(device)
    return computed


def bench_model(kind: str, prepared, args) -> float:
    """Print one model's numbers; return its bucketed / padded throughput ratio."""
    cfg = TrainConfig.for_model(kind)
    idx = usable(prepared, "train", cfg.max_len)
    rng = np.random.default_rng(0)
    # The first batches of a real epoch's plan (sorted within windows of 50 batches), and the same drawings
    # in random batches for the baseline.
    bucketed = batches(prepared.lengths()[idx], cfg.batch_size, rng)[: max(1, args.drawings // cfg.batch_size)]
    chosen = rng.permutation(np.concatenate(bucketed))
    padded = [chosen[i : i + cfg.batch_size] for i in range(0, len(chosen), cfg.batch_size)]
    pad_to = cfg.max_len + 1  # the mdn's stroke-5 adds an end row
    torch.manual_seed(0)
    net = build_model(cfg, prepared, idx).to(args.device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    net.train()
    lengths = prepared.lengths()[idx[chosen]]
    real_steps = sum(len(net.encode(prepared.stroke3(i))) for i in idx[chosen])

    one_pass(net, opt, prepared, idx, bucketed[:1], args.device, args.amp)  # warm-up
    computed = {}
    best = side_by_side({
        "bucketed": lambda: computed.__setitem__("bucketed", one_pass(net, opt, prepared, idx, bucketed, args.device, args.amp)),
        "padded": lambda: computed.__setitem__("padded", one_pass(net, opt, prepared, idx, padded, args.device, args.amp, pad_to)),
    }, args.repeats)
    rate = {k: len(chosen) / v for k, v in best.items()}

    lstm = net.lstm
    flops = lstm_flops(lstm) * computed["bucketed"] / best["bucketed"]
    useful = lstm_flops(lstm) * real_steps / best["bucketed"]
    shape = (cfg.batch_size, lstm.input_size + lstm.hidden_size, 4 * lstm.hidden_size)
    ceiling = matmul_flops_per_s(*shape, args.device)
    print(f"{kind}: hidden {lstm.hidden_size} x {lstm.num_layers} layer(s), input {lstm.input_size}, batch {cfg.batch_size}, "
          f"{len(chosen)} of {len(idx):,} training drawings, {lengths.mean():.0f} points on average")
    for name in ("bucketed", "padded"):
        print(f"  {name:8s} {rate[name]:8.1f} drawings/s, {1 - real_steps / computed[name]:.0%} of computed steps are padding")
    print(f"  LSTM {lstm_flops(lstm) / 1e6:.2f} MFLOP per step per sequence (fwd+bwd); bucketed step achieves "
          f"{flops / 1e9:.1f} GFLOP/s ({useful / 1e9:.1f} on real steps) = {flops / ceiling:.0%} of torch.matmul's "
          f"{ceiling / 1e9:.1f} GFLOP/s at {shape[0]}x{shape[1]} @ {shape[1]}x{shape[2]}")
    return rate["bucketed"] / rate["padded"]


def main() -> None:
    parser = arguments(__doc__, 2)
    parser.add_argument("--drawings", type=int, default=640, help="real training drawings per pass (default 640)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast, as train --amp (default off)")
    args = begin(parser)
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        prepared = sgdata.prepare(CLASSES, quickdraw() / "simplified", max_per_class=5000, cache_dir=tmp)
    ratios = {kind: bench_model(kind, prepared, args) for kind in ("seed", "mdn")}
    print("ratio bucketed / padded drawings/s: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
