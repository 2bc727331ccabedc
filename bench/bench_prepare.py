"""Benchmark 1: simplified ndjson -> prepared training arrays, at a few classes and at full scale.

Default run: ``data.prepare`` (validate, filter recognized, reservoir-cap, shuffle,
split, cache as int16 stroke-3) against the plain way: ``json.loads`` per line and
Python lists of (dx, dy, pen) rows, turned into the same arrays at the end. Both
read the same files, timed alternately in one run. Then the memory bound:
``data.prepare`` of 5 classes x 100,000 drawings in one process, whose peak RSS
must stay under 1 GiB.

Full scale (``--full-scale N``): all 345 classes, N drawings each, as
``sketchgen train --classes all`` meets them. Preparation of 344 classes with
1 and with 2 worker processes, alternating over 4 chunks of classes (their
ratio), each process's peak RSS, what adding one class to a prepared list
costs, opening the warm caches, verifying every byte, and computing the
statistics models are built from; then two ``torchrun`` gloo processes
training on the set through the CLI: the time to their first step and, after
some steps, each one's memory from ``/proc/<pid>/smaps_rollup`` and its mapped
cache pages.

Inputs are jittered copies of the real drawings in ../shared/quickdraw (every
point moved by up to 2 px, clipped to 0-255), never random noise; everything is
written under a temporary folder that is removed at the end.

    .venv/bin/python bench/bench_prepare.py                    # ~1-2 minutes on 2 cores, ~0.3 GB of temp files
    .venv/bin/python bench/bench_prepare.py --full-scale 10000 # ~10 minutes on 2 cores, ~3.5 GB of temp files
"""

from __future__ import annotations

import fcntl
import itertools
import json
import multiprocessing
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

import numpy as np
from benchlib import arguments, begin, folder, quickdraw, side_by_side

from sketchgen import classfiles, data
from sketchgen.cli.values import POSITIVE

CLASSES = ["eye", "mouth", "monkey", "bear", "circle"]
RSS_BOUND_MIB = 1024
# Measured on ../shared/quickdraw/simplified: 482 bytes a line, 45.9 points a drawing, 93% recognized.
LINE_BYTES, POINTS_PER_DRAWING = 482, 46
CHILD_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


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


CHILD = """
import json, resource, sys, time
from sketchgen import data
classes, folder, per_class, cache_dir, workers, verify = json.loads(sys.argv[1])
t0 = time.perf_counter()
p = data.prepare(classes, folder, per_class, cache_dir=cache_dir, workers=workers, verify=verify)
seconds = time.perf_counter() - t0
cpu = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
          for f in ("ru_utime", "ru_stime"))
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({"drawings": len(p), "points": sum(len(part.points) for part in p.parts), "seconds": seconds, "cpu": cpu,
                  "main_mib": int(status["VmHWM"].split()[0]) / 1024,
                  "worker_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def prepare_in_child(classes: list[str], folder: Path, per_class: int, cache_dir: Path, workers: int,
                     verify: bool = False) -> dict:
    """``data.prepare`` in a fresh process: drawings kept, seconds, CPU seconds (its own and its workers', imports
    included), and the peak RSS of it and of its largest worker.

    The peaks are /proc's VmHWM and the children's ru_maxrss, not the parent's ru_maxrss: a forked child
    counts its parent's pages (here with torch loaded) until it execs, and ru_maxrss keeps that number.
    """
    args = json.dumps([classes, str(folder), per_class, str(cache_dir), workers, verify])
    run = subprocess.run([sys.executable, "-c", CHILD, args], capture_output=True, text=True, env=CHILD_ENV)
    if run.returncode:
        raise SystemExit(f"bench: data.prepare failed: {run.stderr[-2000:]}")
    return json.loads(run.stdout.splitlines()[-1])


def default_run(args, tmp: Path) -> None:
    big, small = tmp / "big", tmp / "small"
    big.mkdir()
    small.mkdir()
    for ci, name in enumerate(CLASSES):
        write_jittered(name, args.per_class, big, seed=ci)
        write_jittered(name, args.speed_per_class, small, seed=100 + ci)

    memory = prepare_in_child(CLASSES, big, args.per_class, big / "cache", workers=1)
    rss = memory["main_mib"]
    print(f"memory: data.prepare of {len(CLASSES)} classes x {args.per_class:,} drawings in one process "
          f"({memory['drawings']:,} recognized kept): peak RSS {rss:.0f} MiB (bound {RSS_BOUND_MIB} MiB) "
          f"{'OK' if rss < RSS_BOUND_MIB else 'OVER'}")

    prepared = data.prepare(CLASSES, data_dir=small, cache_dir=tmp / "check", workers=1)
    points, offsets = baseline(small, CLASSES)
    # The same drawings in another order: the same counts and the same column sums.
    assert len(prepared) == len(offsets) - 1, "contenders disagree"
    sums = sum(part.points.sum(axis=0, dtype=np.int64) for part in prepared.parts)
    assert (sums == points.sum(axis=0, dtype=np.int64)).all(), "contenders disagree"
    counter = itertools.count()
    best = side_by_side({
        "data.prepare": lambda: data.prepare(CLASSES, data_dir=small, cache_dir=tmp / f"c{next(counter)}", workers=1),
        "baseline": lambda: baseline(small, CLASSES),
    }, args.repeats)
    n = len(CLASSES) * args.speed_per_class
    rate = {k: n / v for k, v in best.items()}
    print(f"speed: {n:,} drawings read; data.prepare {rate['data.prepare']:,.0f} drawings/s (one process), "
          f"json.loads + Python lists {rate['baseline']:,.0f} drawings/s")
    print(f"ratio data.prepare / baseline: {rate['data.prepare'] / rate['baseline']:.2f}x")
    if rss >= RSS_BOUND_MIB:
        sys.exit(1)


# --- full scale ----------------------------------------------------------------------------------


def _smaps_kib(pid: int) -> tuple[dict[str, int], dict[str, int]]:
    """A process's memory (smaps_rollup) and, summed over its maps of prepared points.npy files, the same fields."""
    fields = ("Rss", "Pss", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty")

    def parse(lines) -> dict[str, int]:
        out = dict.fromkeys(fields, 0)
        for line in lines:
            key, _, value = line.partition(":")
            if key in out:
                out[key] += int(value.split()[0])
        return out

    rollup = parse(Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines())
    mapped, inside = [], False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if re.match(r"[0-9a-f]+-[0-9a-f]+ ", line):
            inside = line.endswith("/points.npy")
        elif inside:
            mapped.append(line)
    return rollup, parse(mapped)


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            pass
    return sorted(kids)


def torchrun_train(folder: Path, per_class: int, cache_dir: Path, out: Path, steps: int) -> dict:
    """Two gloo processes of ``sketchgen train --classes all`` under torchrun: seconds to the first step,
    and each worker's memory after ``steps`` steps; then SIGTERM (training saves last.pt and stops).

    The command runs on a pseudo-terminal so that rank 0 draws its progress bar, which counts the steps.
    """
    torchrun = Path(sys.executable).parent / "torchrun"
    command = [str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "sketchgen", "train", "--classes", "all",
               "--data-dir", str(folder), "--max-per-class", str(per_class), "--epochs", "1", "--out", str(out)]
    master, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # tqdm draws nothing 0 columns wide
    t0 = time.perf_counter()
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal,
                            env={**CHILD_ENV, "SKETCHGEN_PREPARED": str(cache_dir)})
    os.close(terminal)
    text, marks = "", {}
    try:
        while True:
            if not select.select([master], [], [], 900)[0]:
                raise SystemExit("bench: torchrun printed nothing for 15 minutes")
            try:
                text += os.read(master, 1 << 16).decode(errors="replace")
            except OSError:  # the terminal closed: training ended before enough steps
                raise SystemExit(f"bench: torchrun ended early:\n{text[-3000:]}") from None
            now = time.perf_counter() - t0
            if re.search(r"training \w+ on", text):
                marks.setdefault("prepared", now)
            done = [int(k) for k in re.findall(r"(\d+)/\d+ \[", text[-4000:])]
            if done and max(done) >= 1:
                marks.setdefault("first step", now)
            if done and max(done) >= steps:
                marks["steps"] = max(done)
                break
        workers = _children(proc.pid)
        memory = {pid: _smaps_kib(pid) for pid in workers}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
        os.close(master)
    return {"marks": marks, "memory": memory, "log": text}


STARTUP = """
import json, sys, time
from sketchgen import data
from sketchgen.training import usable
folder, per_class, cache_dir = json.loads(sys.argv[1])
p = data.prepare(classfiles.categories(), folder, per_class, cache_dir=cache_dir)
idx = usable(p, "train", 250)
t0 = time.perf_counter()
data.median_lengths(p, idx)
t1 = time.perf_counter()
data.offset_std(p, idx)
t2 = time.perf_counter()
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({"train": len(idx), "medians": t1 - t0, "offset_std": t2 - t1,
                  "peak_mib": int(status["VmHWM"].split()[0]) / 1024}))
"""


def full_scale_run(args, tmp: Path) -> None:
    n, classes = args.full_scale, classfiles.categories()
    need = len(classes) * n * (LINE_BYTES + 2 * 0.93 * POINTS_PER_DRAWING * 6)  # the files and two caches
    free = shutil.disk_usage(tmp).free
    if free < 1.5 * need:
        raise SystemExit(f"bench: {tmp} has {free / 2**30:.1f} GiB free; the full-scale run needs {need / 2**30:.1f}")
    folder = tmp / "simplified"
    folder.mkdir()
    t0 = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.starmap(write_jittered, [(name, n, folder, seed) for seed, name in enumerate(classes)])
    size = sum(p.stat().st_size for p in folder.iterdir())
    lines = len(classes) * n
    print(f"full scale: {len(classes)} classes x {n:,} = {lines:,} lines, {size / 2**30:.2f} GiB of ndjson, "
          f"written in {time.perf_counter() - t0:.0f} s (in the page cache for every run below)")

    # All classes but the last, in 4 chunks, each prepared by 1 worker and then by 2 (into separate caches), so
    # that the neighbours' load, which moves over minutes, weighs on both alike.
    runs = {1: [], 2: []}
    for chunk in np.array_split(np.array(classes[:-1], dtype=object), 4):
        for workers in (1, 2):
            runs[workers].append(prepare_in_child(list(chunk), folder, n, tmp / f"cache-{workers}", workers=workers))
    seconds = {w: sum(r["seconds"] for r in rs) for w, rs in runs.items()}
    cpu = {w: sum(r["cpu"] for r in rs) for w, rs in runs.items()}
    rate = {w: (lines - n) / seconds[w] for w in runs}
    kept, points = sum(r["drawings"] for r in runs[1]), sum(r["points"] for r in runs[1])
    print(f"prepare, 1 worker:  {len(classes) - 1} classes in {seconds[1]:.1f} s ({cpu[1]:.0f} CPU-s), "
          f"{rate[1]:,.0f} drawings/s read, {kept:,} kept ({points:,} points); "
          f"peak RSS {max(r['main_mib'] for r in runs[1]):.0f} MiB")
    print(f"prepare, 2 workers: {len(classes) - 1} classes in {seconds[2]:.1f} s ({cpu[2]:.0f} CPU-s), "
          f"{rate[2]:,.0f} drawings/s read; peak RSS {max(r['main_mib'] for r in runs[2]):.0f} MiB main, "
          f"{max(r['worker_mib'] for r in runs[2]):.0f} MiB the largest worker")
    # The wall-clock ratio needs a free core for the second worker; the CPU ratio is the pool's own overhead.
    print(f"ratio 2 workers / 1 worker: {rate[2] / rate[1]:.2f}x drawings/s; CPU-s per drawing "
          f"{cpu[2] / cpu[1]:.2f}x; load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    added = prepare_in_child(classes, folder, n, tmp / "cache-2", workers=2)
    warm = prepare_in_child(classes, folder, n, tmp / "cache-2", workers=2)
    verified = prepare_in_child(classes, folder, n, tmp / "cache-2", workers=2, verify=True)
    print(f"adding one class ({classes[-1]!r}) to the {len(classes) - 1} prepared: {added['seconds']:.2f} s "
          f"(a cache for the whole list would rebuild all: {seconds[1] * len(classes) / (len(classes) - 1):.0f} s "
          "with 1 worker)")
    print(f"opening all {len(classes)} warm caches: {warm['seconds']:.2f} s, peak RSS {warm['main_mib']:.0f} MiB; "
          f"with --verify (every byte hashed, 2 workers): {verified['seconds']:.2f} s")

    startup = subprocess.run([sys.executable, "-c", STARTUP, json.dumps([str(folder), n, str(tmp / "cache-2")])],
                             capture_output=True, text=True, env=CHILD_ENV, check=True)
    cost = json.loads(startup.stdout.splitlines()[-1])
    print(f"statistics models are built from, on {cost['train']:,} training drawings: data.median_lengths "
          f"{cost['medians']:.2f} s, data.offset_std {cost['offset_std']:.2f} s; peak RSS {cost['peak_mib']:.0f} MiB")

    run = torchrun_train(folder, n, tmp / "cache-2", tmp / "run", args.steps)
    marks = run["marks"]
    print(f"torchrun, 2 gloo processes, warm cache: rank 0 prepared after {marks.get('prepared', float('nan')):.1f} s, "
          f"first step after {marks['first step']:.1f} s, {marks['steps']} steps after the measurement below")
    for pid, (rollup, points) in run["memory"].items():
        print(f"  worker {pid}: Rss {rollup['Rss'] / 1024:.0f} MiB, Pss {rollup['Pss'] / 1024:.0f} MiB, "
              f"private {(rollup['Private_Clean'] + rollup['Private_Dirty']) / 1024:.0f} MiB, "
              f"shared {(rollup['Shared_Clean'] + rollup['Shared_Dirty']) / 1024:.0f} MiB; "
              f"mapped points.npy: Rss {points['Rss'] / 1024:.1f} MiB of which shared {points['Shared_Clean'] / 1024:.1f}"
              f" MiB, private dirty {points['Private_Dirty']} KiB")
    print(f"  prepared set on disk: {sum(f.stat().st_size for f in (tmp / 'cache-2').rglob('*.npy')) / 2**20:.0f} MiB")


def main() -> None:
    parser = arguments(__doc__, 3)
    parser.add_argument("--per-class", type=POSITIVE, default=100_000,
                        help="drawings per class for the memory run (default 100000)")
    parser.add_argument("--speed-per-class", type=POSITIVE, default=4_000,
                        help="drawings per class for the speed run (default 4000)")
    parser.add_argument("--full-scale", type=POSITIVE, metavar="N", nargs="?", const=10_000,
                        help="instead: all 345 classes of N drawings each (default N 10000)")
    parser.add_argument("--steps", type=POSITIVE, default=20,
                        help="full scale: training steps before memory is read (default 20)")
    parser.add_argument("--tmp", type=folder, default=tempfile.gettempdir(),
                        help="an existing folder where the temporary files go (default the system's)")
    args = begin(parser)
    with tempfile.TemporaryDirectory(prefix="bench-prepare-", dir=args.tmp) as tmp:
        (full_scale_run if args.full_scale else default_run)(args, Path(tmp))


if __name__ == "__main__":
    main()
