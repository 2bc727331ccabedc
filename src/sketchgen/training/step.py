"""One training step, and the validation loss: the two places a model's loss terms become numbers.

A model names its loss terms (``SketchModel.losses``). Each term's mean is
its sum over the whole global batch divided by its count over the whole
global batch, so that under torchrun N processes compute what one process
would on the same batch; the objective adds ``weight * max(mean, floor)``
over the terms (the floor is Sketch-RNN's free bits; below it a term adds a
constant and no gradient).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sketchgen.models import Batch, SketchModel, Term
from sketchgen.training.distributed import sum_over_ranks


@dataclass
class StepResult:
    sums: dict[str, tuple[float, float]]  # term -> (global sum, global count) of this step
    weights: dict[str, tuple[float, float | None]]  # term -> (weight, floor)
    skipped: bool  # the loss was NaN/inf on some rank: no update
    stopping: bool  # some rank was asked to stop


def objective(means: dict[str, float], weights: dict[str, tuple[float, float | None]]) -> float:
    """The loss as training minimises it, from each term's mean."""
    total = 0.0
    for name, mean in means.items():
        w, floor = weights[name]
        total += w * (mean if floor is None else max(mean, floor))
    return total


def _float32(outputs):
    """Model outputs as float32 for the loss, whatever precision autocast ran the model in."""
    if isinstance(outputs, torch.Tensor):
        return outputs.float()
    return type(outputs)(_float32(o) for o in outputs)


def slow_amp(device: str) -> bool:
    """Whether ``--amp`` runs here without bf16 instructions (a CPU with neither AVX512_BF16 nor AMX reported).

    There oneDNN emulates bf16, which may be slower than float32; on one that has them the mdn's training ran
    1.5-1.7x faster (docs/performance.md). torch reports these through private functions: where they are
    missing, nothing is claimed.
    """
    if torch.device(device).type != "cpu":
        return False
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return all(callable(check) for check in checks) and not any(check() for check in checks)


def train_step(net: SketchModel, step_net: torch.nn.Module, opt: torch.optim.Optimizer, batch: Batch, step: int,
               weight: float = 1.0, grad_clip: float = 0.0, amp: bool = False, stop: bool = False,
               device: str = "cpu") -> StepResult:
    """Forward, loss, backward, clip and update on this rank's share of one global batch.

    ``step_net`` is ``net`` as the step runs it (in DDP, compiled); ``weight`` 0
    makes this rank's share count for nothing (see ``distributed.share``).
    """
    with torch.autocast(torch.device(device).type, torch.bfloat16, enabled=amp):  # cells.LSTM: where no bf16 LSTM
        outputs = step_net(batch)
    terms = net.losses(_float32(outputs), batch, step)
    names = sorted(terms)
    local = [float(terms[n].total.detach()) * weight for n in names] + [float(terms[n].count) * weight for n in names]
    finite = all(np.isfinite(local))
    summed = sum_over_ranks(local + [float(not finite), float(stop)], device)
    totals, counts = summed[: len(names)], summed[len(names) : 2 * len(names)]
    skipped, stopping = bool(summed[-2]), bool(summed[-1])
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    opt.zero_grad(set_to_none=True)
    if not skipped:
        # Each term over the whole global batch's count; DDP then averages gradients over ranks, which makes
        # them the single-process ones.
        loss = sum(_scaled(terms[n], weight * world / max(c, 1.0), t / max(c, 1.0)) for n, t, c in zip(names, totals, counts))
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
        opt.step()
    return StepResult(sums={n: (t, c) for n, t, c in zip(names, totals, counts)},
                      weights={n: (terms[n].weight, terms[n].floor) for n in names}, skipped=skipped, stopping=stopping)


def _scaled(term: Term, factor: float, mean: float) -> torch.Tensor:
    """A term's share of the objective to differentiate: none while its mean is under its floor."""
    if term.floor is not None and mean <= term.floor:
        return term.total * 0.0
    return term.weight * term.total * factor


@torch.no_grad()
def term_sums(net: SketchModel, batches, device: str = "cpu") -> tuple[dict[str, list[float]], dict, int]:
    """Each term's (sum, count) over ``(batch, weight)`` pairs without dropout, summed over ranks; with the
    terms' weights and the number of drawings. Validation and test losses.

    Every rank must pass at least one batch (weight 0 if it has no drawings of its own), so that all ranks
    know the terms and exchange the same numbers.
    """
    was_training = net.training
    net.eval()
    sums: dict[str, list[float]] = {}
    weights, drawings = {}, 0
    for batch, weight in batches:
        batch = batch.to(device)
        for name, term in net.losses(net(batch), batch, None).items():
            s = sums.setdefault(name, [0.0, 0.0])
            s[0] += float(term.total) * weight
            s[1] += float(term.count) * weight
            weights[name] = (term.weight, term.floor)
        drawings += len(batch) * int(weight)
    net.train(was_training)
    names = sorted(sums)
    flat = sum_over_ranks([v for n in names for v in sums[n]] + [float(drawings)], device)
    return {n: flat[2 * i : 2 * i + 2] for i, n in enumerate(names)}, weights, int(flat[-1])
