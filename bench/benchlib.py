"""What every benchmark shares: where the real drawings are, the machine it ran on, side-by-side timing.

Absolute times on a shared machine are noise; the ratio of two contenders
timed alternately in one run is not, so ``side_by_side`` interleaves them and
keeps each one's best time.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

from sketchgen.classfiles import folder_problem, shared_quickdraw
from sketchgen.cli.values import POSITIVE, Parser


def quickdraw() -> Path:
    """``../shared/quickdraw`` beside the checkout; benchmarks are only meaningful on real drawings."""
    root = shared_quickdraw()
    if root is None:
        raise SystemExit("bench: no ../shared/quickdraw beside the checkout; the benchmarks need the real drawings")
    return root


def shared_classes(at_least: int = 150) -> list[str]:
    """The classes of ../shared/quickdraw with at least ``at_least`` drawings: 26 at 150 (eye and mouth ~5,000,
    monkey 805, 23 classes ~200), the set the 26-class figures and the shipped model are measured on."""
    folder = quickdraw() / "simplified"
    return sorted(p.stem for p in folder.glob("*.ndjson") if sum(1 for _ in p.open("rb")) >= at_least)


def folder(text: str) -> Path:
    """A flag's existing folder, checked as the command line is parsed rather than once the benchmark has run."""
    if problem := folder_problem(text):
        raise argparse.ArgumentTypeError(f"{text}: {problem}")
    return Path(text)


def machine() -> str:
    """One line describing where the numbers came from, load average included."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        names = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                 if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"Python {platform.python_version()}, load average {load}{gpu}")


def arguments(doc: str, repeats: int, threads: int | None = None) -> argparse.ArgumentParser:
    """The benchmark's command line, with the ``--repeats`` every one of them has, and ``--threads`` (torch's, in
    this process) where ``threads`` gives its default: each at least 1 (none timed, or no threads, is no benchmark),
    a bad value refused in one line as sketchgen's own flags are."""
    parser = Parser(description=doc.splitlines()[0])
    parser.add_argument("--repeats", type=POSITIVE, default=repeats,
                        help=f"timed runs of each contender, best kept (default {repeats})")
    if threads is not None:
        parser.add_argument("--threads", dest="torch_threads", type=POSITIVE, default=threads,
                            help=f"torch threads (default {threads})")
    return parser


def begin(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the command line, set torch's threads where the benchmark takes ``--threads`` (before the machine
    line reports them), and print the machine line that heads every benchmark's output."""
    args = parser.parse_args()
    if getattr(args, "torch_threads", None) is not None:
        import torch

        torch.set_num_threads(args.torch_threads)
    print(f"machine: {machine()}")
    return args


def side_by_side(contenders: dict[str, Callable[[], object]], repeats: int = 3) -> dict[str, float]:
    """Best wall-clock seconds of each contender, run in turn ``repeats`` times."""
    best = {name: float("inf") for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best
