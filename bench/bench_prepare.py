"""Benchmark 1: simplified ndjson -> prepared training arrays.

``data.prepare`` (validate, filter recognized, reservoir-cap, shuffle, split,
cache as int16 stroke-3) against the plain way: ``json.loads`` per line and
Python lists of (dx, dy, pen) rows, turned into the same arrays at the end.
Both read the same files, timed alternately in one run.

Then the memory bound: ``data.prepare`` on 5 classes x 100,000 drawings in a
child process, whose peak RSS must stay under 1 GiB.

Inputs are jittered copies of the real drawings in ../shared/quickdraw
(every point moved by up to 2 px, clipped to 0-255), never random noise.

    .venv/bin/python bench/bench_prepare.py            # ~1-2 minutes on 2 cores, ~0.3 GB of temp files
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from benchlib import arguments, begin, quickdraw, side_by_side

from sketchgen import data

CLASSES = ["eye", "mouth", "monkey", "bear", "circle"]
RSS_BOUND_MIB = 1024


def write_jittered(name: str, n: int, dest: Path, seed: int) -> Path:
    """``n`` lines for class ``name``: the real drawings in turn, each copy's points jittered by up to 2 px."""
    rng = np.random.default_rng(seed)
    real = [json.loads(line) for line in (quickdraw() / "simplified" / f"{name}.ndjson").open()]
    flat = [(np.array([p for s in r["drawing"] for p in s[0]] + [p for s in r["drawing"] for p in s[1]]),
             np.cumsum([len(s[0]) for s in r["drawing"]])) for r in real]
    path = dest / f"{name}.ndjson"
    with open(path, "w") as f:
        for i in range(n):
            r, (coords, ends) = real[i % len(real)], flat[i % len(real)]
            moved = np.clip(coords + rng.integers(-2, 3, size=len(coords)), 0, 255).tolist()
            xs, ys = moved[: ends[-1]], moved[ends[-1]:]
            starts = [0, *ends[:-1].tolist()]
            drawing = [[xs[a:b], ys[a:b]] for a, b in zip(starts, ends.tolist())]
            f.write(json.dumps({**r, "key_id": str(i), "drawing": drawing}, separators=(",", ":")) + "\n")
    return path


def baseline(folder: Path, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The plain way: json.loads each line, build stroke-3 rows as Python lists, arrays at the end."""
    flat, lengths = [], []
    for name in classes:
        with open(folder / f"{name}.ndjson") as f:
            for line in f:
                obj = json.loads(line)
                if not obj["recognized"]:
                    continue
                px = py = 0
                n = 0
                for xs, ys in obj["drawing"]:
                    for i, (x, y) in enumerate(zip(xs, ys)):
                        flat += (x - px, y - py, int(i == len(xs) - 1))
                        px, py = x, y
                    n += len(xs)
                lengths.append(n)
    return np.array(flat, dtype=np.int16).reshape(-1, 3), np.concatenate([[0], np.cumsum(lengths)])


def peak_rss_mib(folder: Path, classes: list[str], per_class: int) -> tuple[float, int]:
    """Peak RSS of a fresh process running ``data.prepare`` on the folder, and how many drawings it kept."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_prepare; "
            f"bench_prepare.prepare_and_report({classes!r}, {str(folder)!r}, {per_class})")
    kept, peak_kib = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return int(peak_kib) / 1024, int(kept)


def prepare_and_report(classes: list[str], folder: str, per_class: int) -> None:
    """In the child: prepare, then print the drawings kept and the peak RSS in KiB.

    The peak is /proc's VmHWM, not getrusage's ru_maxrss: a forked child counts its parent's pages (here
    with torch loaded) until it execs, and ru_maxrss keeps that number.
    """
    p = data.prepare(classes, data_dir=folder, max_per_class=per_class, cache_dir=Path(folder) / "cache")
    status = Path("/proc/self/status").read_text().splitlines()
    print(len(p), next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")))


def main() -> None:
    parser = arguments(__doc__, 3)
    parser.add_argument("--per-class", type=int, default=100_000, help="drawings per class for the memory run (default 100000)")
    parser.add_argument("--speed-per-class", type=int, default=4_000, help="drawings per class for the speed run (default 4000)")
    args = begin(parser)
    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp:
        big, small = Path(tmp) / "big", Path(tmp) / "small"
        big.mkdir()
        small.mkdir()
        for ci, name in enumerate(CLASSES):
            write_jittered(name, args.per_class, big, seed=ci)
            write_jittered(name, args.speed_per_class, small, seed=100 + ci)

        rss, kept = peak_rss_mib(big, CLASSES, args.per_class)
        print(f"memory: data.prepare of {len(CLASSES)} classes x {args.per_class:,} drawings ({kept:,} recognized kept): "
              f"peak RSS {rss:.0f} MiB (bound {RSS_BOUND_MIB} MiB) {'OK' if rss < RSS_BOUND_MIB else 'OVER'}")

        prepared = data.prepare(CLASSES, data_dir=small, cache_dir=Path(tmp) / "check")
        points, offsets = baseline(small, CLASSES)
        # The same drawings in another order: the same counts and the same column sums.
        assert len(prepared) == len(offsets) - 1, "contenders disagree"
        assert (prepared.points.sum(axis=0, dtype=np.int64) == points.sum(axis=0, dtype=np.int64)).all(), "contenders disagree"
        counter = itertools.count()
        best = side_by_side({
            "data.prepare": lambda: data.prepare(CLASSES, data_dir=small, cache_dir=Path(tmp) / f"c{next(counter)}"),
            "baseline": lambda: baseline(small, CLASSES),
        }, args.repeats)
    n = len(CLASSES) * args.speed_per_class
    rate = {k: n / v for k, v in best.items()}
    print(f"speed: {n:,} drawings read; data.prepare {rate['data.prepare']:,.0f} drawings/s, "
          f"json.loads + Python lists {rate['baseline']:,.0f} drawings/s")
    print(f"ratio data.prepare / baseline: {rate['data.prepare'] / rate['baseline']:.2f}x")
    if rss >= RSS_BOUND_MIB:
        sys.exit(1)


if __name__ == "__main__":
    main()
