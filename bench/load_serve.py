"""Load test of `sketchgen serve`: a burst of 200 sampling requests at once on loopback.

The server runs as the real command in its own process (uvicorn, one asyncio
loop, each model's batcher generating on its own threads); the client gives each
request a thread and a new connection, and releases them all together. Every
request must succeed; the p50/p99 latency is what a user waits during such a
burst. It runs once for each ``--batch`` setting (the most requests generated
together: 1 is one generation per request, as before batching) and each
``--workers`` setting (batches generated at once), after a baseline of
requests sent one at a time. A request's seed fixes its drawing, so every
setting must return the same 200 drawings; the run checks that. Before all
that, generation alone with one torch thread against two, side by side: why
``serve`` pins one.

Without ``--checkpoint`` it first trains a default-size mdn (hidden 512) on
real eye and mouth drawings for a few epochs. So briefly trained, it rarely
ends a drawing before max_len: a worst case for latency. The points per
drawing are printed beside every latency.

    .venv/bin/python bench/load_serve.py                        # ~5 minutes on 2 shared cores
    .venv/bin/python bench/load_serve.py --checkpoint runs/mdn/best.pt --batch 64 --workers 1 2
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from benchlib import machine, quickdraw, side_by_side

from sketchgen import models
from sketchgen.cli.values import POSITIVE, Parser
from sketchgen.sample import generate

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def train_checkpoint(out: Path, epochs: int) -> Path:
    subprocess.run([sys.executable, "-m", "sketchgen", "train", "--model", "mdn", "--classes", "eye", "mouth",
                    "--data-dir", str(quickdraw() / "simplified"), "--max-per-class", "400", "--epochs", str(epochs),
                    "--lr", "3e-3", "--out", str(out)], check=True, env=ENV, stdout=subprocess.DEVNULL)
    return out / "best.pt"


@contextlib.contextmanager
def running_server(checkpoint: Path, workers: int, batch: int):
    """`sketchgen serve` on a free loopback port: yields (host, port). One that does not start stops the bench with
    the last line serve said (its refusal of a --batch, say); its log goes to a file, which no burst can fill."""
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen([sys.executable, "-m", "sketchgen", "serve", "--checkpoint", str(checkpoint),
                                 "--port", "0", "--workers", str(workers), "--batch", str(batch)],
                                stdout=subprocess.PIPE, stderr=log, text=True, env=ENV)
        try:
            line = proc.stdout.readline()
            if " at http://" in line:
                host, port = line.split(" at http://")[1].split("/")[0].rsplit(":", 1)
                yield host, int(port)
                return
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        log.seek(0)
        said = [text.strip() for text in (line, *log.read().splitlines()) if text.strip()]
        raise SystemExit(f"bench: the server did not start ({said[-1] if said else 'no output'})")


def torch_threads(net, n_classes: int) -> str:
    """Ten drawings one at a time in this process, with 1 and with 2 torch threads."""

    def run(threads: int):
        torch.set_num_threads(threads)
        return [generate(net, [i % n_classes], seed=i) for i in range(10)]

    best = side_by_side({"1 thread": lambda: run(1), "2 threads": lambda: run(2)}, repeats=2)
    torch.set_num_threads(1)
    return ", ".join(f"{k} {10 / v:.1f} drawings/s" for k, v in best.items())


def one_request(host: str, port: int, body: dict, timeout: float) -> tuple[float, str | None, int, list | None]:
    """(seconds, error or None, points drawn, strokes) for one POST /api/sample on its own connection."""
    t0 = time.perf_counter()
    try:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.request("POST", "/api/sample", json.dumps(body), {"Content-Type": "application/json"})
        res = conn.getresponse()
        reply = json.loads(res.read())
        conn.close()
        error = None if res.status == 200 else f"{res.status} {reply.get('error')}"
        return time.perf_counter() - t0, error, reply.get("points", 0), reply.get("strokes")
    except (OSError, ValueError, http.client.HTTPException) as e:
        return time.perf_counter() - t0, f"{type(e).__name__}: {e}", 0, None


def burst(host: str, port: int, classes: list[str], n: int, timeout: float) -> tuple[list, float]:
    """``n`` requests released at once; returns their results and the wall-clock seconds of the burst."""
    results: list = [None] * n
    gate = threading.Barrier(n + 1)

    def fire(i: int) -> None:
        gate.wait()
        results[i] = one_request(host, port, {"class": classes[i % len(classes)], "seed": i}, timeout)

    threads = [threading.Thread(target=fire, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    gate.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join(max(0.0, t0 + timeout + 5 - time.perf_counter()))
    wall = time.perf_counter() - t0
    return [r or (wall, "no answer within the timeout", 0, None) for r in results], wall


def summary(results: list, wall: float | None = None) -> str:
    seconds = np.array([r[0] for r in results])
    errors = [r[1] for r in results if r[1]]
    line = (f"{len(errors)} errors, p50 {np.percentile(seconds, 50):.2f} s, p99 {np.percentile(seconds, 99):.2f} s, "
            f"max {seconds.max():.2f} s, {np.mean([r[2] for r in results]):.0f} points a drawing")
    if wall is not None:
        line += f", {len(results) / wall:.1f} requests/s"
    return line + (f" (first error: {errors[0]})" if errors else "")


def main() -> None:
    parser = Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="checkpoint to serve (default: train a default-size mdn here first)")
    parser.add_argument("--epochs", type=POSITIVE, default=6, help="epochs of that training (default 6)")
    parser.add_argument("--requests", type=POSITIVE, default=200, help="requests in the burst (default 200)")
    parser.add_argument("--batch", type=POSITIVE, nargs="+", default=[1, 64],
                        help="serve --batch settings to compare (default 1 64: unbatched, then batched)")
    parser.add_argument("--workers", type=POSITIVE, nargs="+", default=[1],
                        help="serve --workers settings to compare (default 1)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds a request may take (default 300)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        checkpoint = Path(args.checkpoint) if args.checkpoint else train_checkpoint(Path(tmp) / "mdn", args.epochs)
        net, ckpt = models.load(checkpoint)
        classes = ckpt["classes"]
        print(f"model: {net.name}, hidden {net.cfg.hidden}, classes {', '.join(classes)}")
        print(f"generation alone, one at a time: {torch_threads(net, len(classes))}")
        failed, drawn = 0, []
        for workers, batch in itertools.product(args.workers, args.batch):
            with running_server(checkpoint, workers, batch) as (host, port):
                one_request(host, port, {"class": classes[0]}, args.timeout)  # warm-up, not counted
                alone = [one_request(host, port, {"class": classes[i % len(classes)], "seed": 10_000 + i}, args.timeout)
                         for i in range(20)]
                results, wall = burst(host, port, classes, args.requests, args.timeout)
            failed += sum(1 for r in results if r[1])
            drawn.append([r[3] for r in results])
            print(f"--workers {workers} --batch {batch}: 20 one at a time: {summary(alone)}")
            print(f"--workers {workers} --batch {batch}: {args.requests} at once: {summary(results, wall)}")
    same = sum(d[0] is not None and all(x == d[0] for x in d) for d in zip(*drawn))
    print(f"the same drawing from every setting: {same} of {args.requests} requests")
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if failed or same < args.requests:
        raise SystemExit(f"bench: {failed} requests failed, {args.requests - same} drawings differ between settings")


if __name__ == "__main__":
    main()
