"""Benchmark: a Transformer's drawings held to ``sample.STATE_BUDGET`` of KV cache, against all at once.

A Transformer's generation state grows with every step, so ``sample.generate`` draws as many drawings at a time as
the budget holds of their cache (``state_bytes``). Each budget runs in a fresh process, one thread (peak RSS is per
process): the default architecture (hidden 192, 4 blocks) with untrained weights and the pen held down, so that
every drawing runs to ``--points``; ``none`` is a budget no batch reaches, as before the budget. The drawings are
the same bits whatever the budget (tests/test_transformer.py); what changes is time and memory.

    .venv/bin/python bench/bench_state_budget.py             # ~3 minutes on one core
"""

from __future__ import annotations

import json
import subprocess
import sys

from benchlib import arguments, begin

from sketchgen.cli.values import POSITIVE

ONE = """
import json, resource, sys, time, torch
from sketchgen import models, sample
budget, n, points = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(1)
torch.manual_seed(0)
net = models.build("transformer", n_classes=2)
with torch.no_grad():
    net.head.bias[:3] = torch.tensor([50.0, -50.0, -50.0])  # pen down: never lifted, never ended
sample.STATE_BUDGET = budget
t = time.perf_counter()
drawn = sample.generate(net, [0, 1] * (n // 2), max_len=points, seed=1)
print(json.dumps({"seconds": time.perf_counter() - t, "rows": min(n, budget // net.state_bytes(points)),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "points": max(len(d) for d in drawn)}))
"""


def main() -> None:
    parser = arguments(__doc__, repeats=1)
    parser.add_argument("--n", type=POSITIVE, default=500, help="drawings (default 500, as sample's chunk)")
    parser.add_argument("--points", type=POSITIVE, default=250, help="points each drawing runs to (default 250)")
    args = begin(parser)
    budgets = {"none": 1 << 62, "256 MiB": 256 << 20, "512 MiB (the default)": 512 << 20}
    print(f"{args.n} drawings of {args.points} points, default Transformer, one thread, a fresh process each")
    print("| budget | drawings at a time | seconds | peak RSS |\n| --- | --: | --: | --: |")
    for name, budget in budgets.items():
        runs = [json.loads(subprocess.run([sys.executable, "-c", ONE, str(budget), str(args.n), str(args.points)],
                                          check=True, capture_output=True, text=True).stdout)
                for _ in range(args.repeats)]
        best = min(runs, key=lambda r: r["seconds"])
        print(f"| {name} | {best['rows']} | {best['seconds']:.1f} s | {best['rss_mb']:,.0f} MB |")


if __name__ == "__main__":
    main()
