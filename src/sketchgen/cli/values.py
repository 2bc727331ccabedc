"""Command-line values, each checked where it is parsed: a bad one is one line and exit status 2.

Every numeric flag has a type here that refuses what would fail later inside
torch or NumPy, allocate without bound, or mean nothing (NaN, inf, a negative
rate, a seed beyond 64 bits); ``--device`` must name a device this machine
has. ``Parser`` prints argparse's refusals as one line, without the usage
block.
"""

from __future__ import annotations

import argparse
import math
import sys

SEED_MAX = 2**63 - 1  # every seed becomes an int64 somewhere (torch, NumPy)


class Parser(argparse.ArgumentParser):
    """argparse, with a refusal as one line naming the flag (the usage is a ``--help`` away)."""

    def error(self, message: str):
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def _typed(name: str, parse):
    parse.__name__ = name  # argparse names it in "invalid int value: 'x'"
    return parse


def integer(low: int, high: int):
    """An integer from ``low`` to ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, not {value}")
        return value

    return _typed("int", parse)


def real(low: float, high: float, above: bool = False, below: bool = False):
    """A finite number from ``low`` to ``high`` (``above``/``below``: excluding that end)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number") from None
        if not math.isfinite(value) or value < low or value > high or (above and value == low) or (below and value == high):
            lo, hi = "(" if above else "[", ")" if below else "]"
            raise argparse.ArgumentTypeError(f"must be a finite number in {lo}{low:g}, {high:g}{hi}, not {text[:40]}")
        return value

    return _typed("float", parse)


def device(text: str) -> str:
    """A torch device this machine has: cpu, cuda or cuda:N (N below the GPU count), mps."""
    import torch

    try:
        parsed = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a torch device (cpu, cuda, cuda:1, mps)") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text} asked for, but this machine has no usable CUDA GPU")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text} asked for, but this machine has {torch.cuda.device_count()} GPU(s)")
    elif parsed.type == "mps":
        if not torch.backends.mps.is_available():
            raise argparse.ArgumentTypeError("mps asked for, but this machine has no usable Apple GPU")
    elif parsed.type != "cpu":
        raise argparse.ArgumentTypeError(f"{text[:40]!r}: sketchgen trains on cpu, cuda or mps")
    return text


def host_name(text: str) -> str:
    """A name a server may be reached by, as a Host header gives it: a host name, an IP address ([...] for IPv6),
    '*.domain' for its subdomains, or '*' for any."""
    name = text.lower()
    bare = name.removeprefix("*.") if name != "*" else "x"
    if bare.startswith("[") and bare.endswith("]"):
        bare = bare[1:-1].replace(":", "")
    if not bare or len(name) > 253 or not all(c.isascii() and (c.isalnum() or c in ".-") for c in bare):
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a host name, an address, '*.domain' or '*'")
    return name


HOST_NAME = _typed("host name", host_name)
POSITIVE = integer(1, 10**9)
COUNT = integer(0, 10**9)
SEED = integer(0, SEED_MAX)
PORT = integer(0, 65535)
BATCH = integer(1, 65536)
LENGTH = integer(1, 10_000)  # points per drawing: far beyond any real one (the longest QuickDraw drawings have ~1,000)
DRAWINGS = integer(0, 100_000)  # drawings per class in one command
MAX_PER_CLASS = integer(1, 10**7)
RATE = real(0.0, 1.0, below=True)  # dropout and such
LEARNING_RATE = real(0.0, 10.0, above=True)
TEMPERATURE = real(0.0, 10.0, above=True)
