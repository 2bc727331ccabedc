"""Many processes training one model: PyTorch's DistributedDataParallel under ``torchrun``.

gloo on CPU, nccl on GPUs with each process on the GPU of its local rank.
Each rank takes its share of every global batch; every decision (skip a NaN
step, lower the rate, stop early, stop on a signal) is taken from numbers
summed over all ranks, so N processes follow one process's run up to rounding.
Without torchrun every function here is the single-process identity. Where a
process is in the launch comes from torchrun's environment variables, read and
checked by ``sketchgen.launch``: they are input like any flag.
"""

from __future__ import annotations

import atexit

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from sketchgen.launch import launch


def check_device(text: str) -> str:
    """``text`` if it names a torch device this machine has - cpu, cuda or cuda:N (N below the GPU count), mps -
    else a ValueError saying why."""
    try:
        parsed = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"{str(text)[:40]!r} is not a torch device (cpu, cuda, cuda:1, mps)") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{text} asked for, but this machine has no usable CUDA GPU")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(f"{text} asked for, but this machine has {torch.cuda.device_count()} GPU(s)")
    elif parsed.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError("mps asked for, but this machine has no usable Apple GPU")
    elif parsed.type != "cpu" or parsed.index not in (None, 0):
        raise ValueError(f"{str(text)[:40]!r}: sketchgen trains on cpu, cuda or mps")
    return text


def is_main_process() -> bool:
    """False in torchrun's workers other than rank 0, which train silently and write nothing."""
    return launch().rank == 0


def join(device: str) -> tuple[int, int, str]:
    """This process's (rank, world size, device), joining torchrun's process group on first use."""
    place = launch()
    if place.world == 1:
        return 0, 1, device
    if device.startswith("cuda"):
        device = f"cuda:{place.local_rank}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        atexit.register(lambda: dist.is_initialized() and dist.destroy_process_group())  # a run that failed
    return dist.get_rank(), dist.get_world_size(), device


def leave() -> None:
    """Leave the process group once a run is whole, every rank together. A rank that tore gloo down on its own at
    exit, while rank 0 still wrote the run's last files, was now and then aborted by the C++ runtime
    (std::terminate, SIGABRT: 4 finished 2-process runs in about 50 on 2 loaded cores; none in 50 since). A run
    that fails leaves at exit instead, without waiting for ranks that may never come."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def sum_over_ranks(values: list[float], device: str) -> list[float]:
    """Element-wise sums over all processes (the values themselves when alone)."""
    if not dist.is_initialized():
        return values
    summed = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(summed)
    return summed.tolist()


def from_rank0(obj):
    """Rank 0's object on every rank: only rank 0 reads the checkpoint, so ``--out`` need not be shared."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def share(idx: np.ndarray, rank: int, world: int) -> tuple[np.ndarray, float]:
    """This rank's drawings of a global batch, and the weight of its loss.

    A rank left with none (a last batch smaller than the world) runs one drawing
    at weight 0, because every rank must take part in the gradient exchange.
    """
    return (idx[rank::world], 1.0) if len(idx) > rank else (idx[:1], 0.0)


def wrap(net: torch.nn.Module, world: int, device: str, compiled: bool) -> torch.nn.Module:
    """The model as a training step runs it: under torchrun in DDP (which averages gradients over ranks
    during backward), and compiled if asked; its weights stay ``net``'s."""
    if world > 1:
        net = DistributedDataParallel(net, device_ids=[torch.device(device).index] if device.startswith("cuda") else None)
    return torch.compile(net, dynamic=True) if compiled else net


def step_seed(seed: int, round_: int, step: int, rank: int) -> int:
    """The torch seed for one step's dropout: reproducible on resume, different on every rank."""
    return int(np.random.SeedSequence([seed, round_, step, rank]).generate_state(1)[0])
