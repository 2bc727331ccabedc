"""Where this process is in a run started by torchrun, from the environment variables torchrun sets.

They are input like any flag: read here alone, and checked, so that a stray ``WORLD_SIZE`` is one line rather
than a failure inside PyTorch or a wait for a rank that never comes. ``data`` (which local rank prepares the
caches) and ``training.distributed`` (the process group) both ask ``launch()``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sketchgen.errors import SketchgenError

# Processes in one run: 8,192 machines of 8 GPUs. A larger WORLD_SIZE is no torchrun's.
MAX_WORLD = 1 << 16
# What torchrun sets beside WORLD_SIZE that the process group (``join``) or ``data.prepare`` reads.
TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
RUN_ALONE = "start sketchgen with torchrun, which sets it, or unset WORLD_SIZE, RANK and LOCAL_RANK to run one process"


class LaunchError(SketchgenError):
    """torchrun's environment variables hold what torchrun never sets; one line naming the variable."""


@dataclass(frozen=True)
class Launch:
    """Where this process is among those of a run: its rank, its rank on this machine, and how many in all."""

    rank: int = 0
    local_rank: int = 0
    world: int = 1


def launch() -> Launch:
    """This process's place, from torchrun's environment variables (none: the one process of its run), each checked:
    whole numbers, ranks below WORLD_SIZE, a local rank at most the rank, and under WORLD_SIZE > 1 every variable
    torchrun sets present, so that a stray WORLD_SIZE is refused here rather than failing inside PyTorch or waiting
    for a rank that never comes."""
    world = _whole("WORLD_SIZE", 1, MAX_WORLD)
    if world > 1:
        missing = [name for name in TORCHRUN_VARIABLES if not os.environ.get(name)]
        if missing:
            raise LaunchError(f"WORLD_SIZE is {world} but {missing[0]} is not set: {RUN_ALONE}")
        _whole("MASTER_PORT", 1, 65535)
    rank = _whole("RANK", 0, world - 1, f" (ranks are below WORLD_SIZE, here {world})")
    # torchrun numbers a machine's processes from its first rank on, so a local rank never exceeds the rank; one that
    # did would wait for a local rank 0 that no process on its machine is.
    return Launch(rank, _whole("LOCAL_RANK", 0, rank, f" (a local rank is at most RANK, here {rank})"), world)


def _whole(name: str, low: int, high: int, bound: str = "") -> int:
    """The environment variable ``name`` as a whole number from ``low`` to ``high`` (``low`` if unset)."""
    text = os.environ.get(name)
    if text is None:
        return low
    value = int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None
    if value is None or not low <= value <= high:
        raise LaunchError(f"{name}={text[:40]!r} is not a whole number from {low} to {high}{bound}: {RUN_ALONE}")
    return value
