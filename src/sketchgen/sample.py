"""Generating drawings from a trained model: many at once, finishing started ones, or from given drawings.

Generation asks only the model interface (``models.SketchModel``): it runs
the whole batch one step at a time, feeding each drawing its own previous
output, and a drawing leaves the batch as soon as it ends (the model's end
state, its length limit, or the model's context), keeping only its rows of the
state (``State.keep``). Completion first runs all the partial drawings through
the model together, a step at a time, each leaving as its prefix ends and all
joined again (``State.join``), then generates the rest of all of them together. A model with a latent decodes given latents, or draws one from the
prior for each drawing; and it encodes drawings, so that it can redraw them
(``reconstruct``), vary them (``variations``) and morph one into another
(``interpolate``), each decoding all its latents as one batch.

Every drawing has its own seed and takes its random numbers from a
counter-based generator, a hash of (seed, step, draw), never from a stream
that the batch shares, and every model computes each row of a step as if it
were alone (``models.base``): the same (class, seed) gives the same drawing
alone, in a batch of 500, or beside other callers' drawings (``serve``
batches concurrent requests on that promise).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from sketchgen.models.base import Encodes, ModelError, collate
from sketchgen.models.registry import capable, require
from sketchgen.strokes import MAX_POINTS

# Sampling temperature: what every command and the server draw at unless told otherwise, and the most they take.
# 0.3, not 0.1.0's 0.4: recognised 2-3 points more often by our judge for a little variety (docs/quality.md).
TEMPERATURE = 0.3
# The generation state a batch may hold: a Transformer's KV cache grows with its drawings (500 of its default 250
# steps held 1.6 GB at peak, 0.7 GB now: docs/performance.md), so it draws fewer at a time; a recurrent state is a
# few kilobytes, and its batches stay whole.
STATE_BUDGET = 512 * 2**20
MAX_TEMPERATURE = 10.0
# Drawing i of a call with seed s has seed s + i * DRAWING_STRIDE: a lone drawing's seed is the call's, and calls
# with nearby seeds share no drawing unless one makes a million.
DRAWING_STRIDE = 1_000_003
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # SplitMix64's increment: 2^64 / the golden ratio, odd
_LATENT_SALT = np.uint64(0x5EED1A7E47)  # sets a drawing's latent stream apart from its step stream


def drawing_seeds(seed: int, n: int) -> list[int]:
    """The seeds of the ``n`` drawings of a call with ``seed``."""
    return [seed + i * DRAWING_STRIDE for i in range(n)]


def _splitmix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output function (Steele, Lea & Flood 2014): a bijection of uint64 that scrambles every bit."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def stream_keys(seeds) -> np.ndarray:
    """Each drawing's key, its seed (any integer) hashed to 64 bits, so that nearby seeds give unrelated streams."""
    return _splitmix(np.array([s % 2**64 for s in seeds], dtype=np.uint64))


def uniforms(keys: np.ndarray, step: int, k: int) -> torch.Tensor:
    """``k`` uniforms in [0, 1) per key for generation step ``step``, as a (len(keys), k) float32 tensor.

    SplitMix64 at position ``step * k + j`` of each key's stream: a pure function of (key, step, j),
    so a drawing's numbers never depend on the rows beside it. 24 bits each: exact in float32, below 1.
    """
    position = np.arange(step * k + 1, step * k + k + 1, dtype=np.uint64)
    bits = _splitmix(keys[:, None] + position * _GOLDEN)  # uint64 arithmetic wraps, as SplitMix64 intends
    return torch.from_numpy((bits >> np.uint64(40)).astype(np.float32) * np.float32(2**-24))


def latent_normals(keys: np.ndarray, dim: int) -> torch.Tensor:
    """``dim`` standard normals per key, from a stream of its own (never the steps'): a drawing's prior latent."""
    u = uniforms(_splitmix(keys ^ _LATENT_SALT), 0, 2 * ((dim + 1) // 2))
    half = u.shape[1] // 2
    radius = torch.sqrt(-2 * torch.log1p(-u[:, :half]))
    angle = 2 * np.pi * u[:, half:]
    return torch.cat([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)[:, :dim]


def longest_prefix(net) -> int:
    """The most points of a start the model can complete: its ``max_steps`` (the longest drawing it may be asked
    for: a mixture's max_len, the longest it learnt; past it, noise), leaving room in a context (a Transformer's
    positions) for one step after it."""
    context = net.context_length()
    return net.max_steps() if context is None else min(net.max_steps(), context - 1)


def check_prefixes(net, prefixes: list[np.ndarray], first: int = 0) -> None:
    """Refuse, before any model step, a prefix longer than the model draws: priming costs a step per point.
    Prefix i is named ``first + i``: its place among the caller's, where these are one chunk of them."""
    most = longest_prefix(net)
    for i, prefix in enumerate(prefixes, first):
        if len(prefix) > most:
            raise ModelError(f"prefix {i} has {len(prefix):,} points, more than the {most:,} a drawing of this model "
                             "may have: give a shorter prefix (e.g. fewer strokes)")


def _limits(net, labels: torch.Tensor, max_lens: Sequence[int | None], drawn: torch.Tensor,
            most: int | None) -> torch.Tensor:
    """How many steps each drawing may take after its prefix of ``drawn`` points: its ``max_lens`` or, where None,
    the model's own default held to ``most``, and never beyond the model's context (``check_prefixes`` leaves room)
    nor past MAX_POINTS in all (a Drawing's bound)."""
    own = net.steps_allowed(labels, drawn).clamp_max(most or MAX_POINTS).tolist() if None in max_lens else max_lens
    limits = torch.tensor([m if m is not None else o for m, o in zip(max_lens, own)], dtype=torch.long)
    limits = torch.minimum(limits, MAX_POINTS - drawn)
    context = net.context_length()
    if context is not None:
        limits = torch.minimum(limits, context - drawn)
    return limits


@torch.no_grad()
def generate(
    net,
    labels,
    temperature: float | Sequence[float] = TEMPERATURE,
    seed: int = 0,
    max_len: int | None | Sequence[int | None] = None,
    prefixes: list[np.ndarray] | None = None,
    batch_size: int = 500,
    seeds: list[int] | None = None,
    latents: torch.Tensor | None = None,
    most: int | None = None,
) -> list[np.ndarray]:
    """Stroke-3 drawings, one per label; with ``prefixes`` (stroke-3, one per label), their completions.

    ``labels`` are class indices, or rows of class weights that mix classes.
    ``temperature`` is every drawing's, or one per drawing (the server batches
    requests of any temperatures). Drawing i draws from its own seed, ``seeds[i]`` (default
    ``drawing_seeds(seed, len(labels))``). ``max_len`` bounds the points
    generated after any prefix (default: the model's own limit), for all or one
    per drawing (None: that drawing's default, held to ``most`` steps if given). ``batch_size`` are drawn at a time, or
    fewer where their generation state would pass ``STATE_BUDGET``. A model with a
    latent decodes ``latents`` (one row per label), or latents drawn from the
    prior with each drawing's seed.
    """
    net.eval()
    labels = torch.as_tensor(np.asarray(labels))
    labels = labels.long() if labels.dim() == 1 else labels.float()
    if seeds is None:
        seeds = drawing_seeds(seed, len(labels))
    temperatures = torch.from_numpy(np.array(np.broadcast_to(np.asarray(temperature, dtype=np.float64),
                                                             np.shape(temperature) or (len(labels),))))
    max_lens = list(max_len) if isinstance(max_len, Sequence) else [max_len] * len(labels)
    for name, given in (("temperatures", temperatures), ("max_lens", max_lens), ("seeds", seeds), ("prefixes", prefixes),
                        ("latents", latents)):
        if given is not None and len(given) != len(labels):
            raise ValueError(f"{len(given)} {name} for {len(labels)} drawings: give one per drawing")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    if prefixes is not None:
        check_prefixes(net, prefixes)
    keys = stream_keys(seeds)
    if capable(net, Encodes) and latents is None:
        latents = latent_normals(keys, net.latent_dim)
    drawn = torch.tensor([len(p) for p in prefixes] if prefixes is not None else [0] * len(labels), dtype=torch.long)
    limits = _limits(net, labels, max_lens, drawn, most)
    widest = int((drawn + limits).max()) if len(labels) else 0
    rows = max(1, min(batch_size, STATE_BUDGET // max(net.state_bytes(widest), 1)))
    results = []
    for start in range(0, len(labels), rows):
        part = slice(start, start + rows)
        pre = prefixes[part] if prefixes is not None else None
        z = latents[part] if latents is not None else None
        results += _generate_batch(net, labels[part], temperatures[part], keys[part], limits[part], pre, z)
    return results


def _generate_batch(net, labels, temperatures, keys, limits, prefixes, latents):
    n = len(labels)
    state = net.initial_state(labels, latents)
    if prefixes is None:
        heads = [np.zeros((0, net.step_dim), dtype=np.float32)] * n
        x = net.start(n)
    else:
        heads, x, state = _prime(net, prefixes, state)
    width = int(limits.max())
    seqs = torch.zeros(n, width, net.step_dim)
    lengths = torch.zeros(n, dtype=torch.long)
    # A drawing leaves the batch when it ends, so the work is the drawings' total length, not n x the longest. One
    # with no step left (a prefix as long as it may be) never enters it: alone, it would take none.
    active = torch.arange(n)[limits > 0]
    if len(active) < n:
        x, state = x[active], state.keep(active)
    for t in range(width):
        out, state = net.step(x, state)
        x, ended = net.sample_step(out, temperatures[active], uniforms(keys[active.numpy()], t, net.draws))
        seqs[active, t] = x[:, 0]
        finished = ended | (t + 1 >= limits[active])
        if finished.any():
            lengths[active[finished]] = t + 1
            going = ~finished
            active, x, state = active[going], x[going], state.keep(going)
            if not len(active):
                break
    seqs = seqs.numpy()
    drawings = [net.decode(np.concatenate([heads[i], seqs[i, : lengths[i]]])) for i in range(n)]
    for d, prefix in zip(drawings, prefixes or []):
        d[: len(prefix)] = prefix  # the prefix exactly as given, not as it comes back through the model's scaling
    return drawings


def _prime(net, prefixes: list[np.ndarray], state):
    """Run the prefixes through the model from ``state``, all together a step at a time; each drawing's rows of
    the model's sequence, its next input, and the state, in order.

    A drawing's rows leave the batch once its prefix is in, and all are joined again in order at the end,
    so each is primed exactly as it would be alone. All but the last input build the state; the last is fed
    as the first generation step.
    """
    seqs = [torch.from_numpy(net.encode(p)[: len(p)]).float() for p in prefixes]
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    inputs = torch.zeros(len(seqs), int(lengths.max()) + 1, net.step_dim)
    inputs[:, :1] = net.start(len(seqs))
    for i, seq in enumerate(seqs):
        inputs[i, 1 : len(seq) + 1] = seq
    active, parts, rows = torch.arange(len(seqs)), [], []
    for t in range(inputs.shape[1]):
        primed = lengths[active] == t
        if primed.any():
            parts.append(state.keep(primed))
            rows.append(active[primed])
            active, state = active[~primed], state.keep(~primed)
        if not len(active):
            break
        _, state = net.step(inputs[active, t : t + 1], state)
    state = type(parts[0]).join(parts).keep(torch.argsort(torch.cat(rows)))
    return [s.numpy() for s in seqs], inputs[torch.arange(len(seqs)), lengths][:, None], state


# --- from given drawings: a latent model's encoder -------------------------------------------


def require_encoder(net) -> None:
    """Refuse a model that cannot encode drawings before any work, in one line naming the models that can."""
    require(net, Encodes, "has no encoder: it cannot reconstruct, vary or interpolate drawings")


@torch.no_grad()
def encode(net, drawings: list[np.ndarray], labels) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, log variance) of the latent of each stroke-3 drawing; a model without an encoder is refused (ModelError).

    Each drawing is encoded on its own: the LSTM's kernels move the last bit
    of a row with the batch around it, and a drawing's latent, like its
    drawing, must not depend on its neighbours. (Packed batches were no faster
    on a CPU: docs/vae.md.)
    """
    require_encoder(net)
    net.eval()
    labels = np.asarray(labels)
    parts = [net.encode_latent(collate(net, [d], labels[i : i + 1])) for i, d in enumerate(drawings)]
    if not parts:
        return torch.zeros(0, net.latent_dim), torch.zeros(0, net.latent_dim)
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def reconstruct(net, drawings: list[np.ndarray], labels, temperature: float = TEMPERATURE, seed: int = 0,
                max_len: int | None = None, batch_size: int = 500, seeds: list[int] | None = None) -> list[np.ndarray]:
    """Each drawing redrawn by the model: decoded from the mean of its latent, as its class (``labels``)."""
    mu, _ = encode(net, drawings, labels)
    return generate(net, labels, temperature, seed, max_len, batch_size=batch_size, seeds=seeds, latents=mu)


def variations(net, drawings: list[np.ndarray], labels, n: int, temperature: float = TEMPERATURE,
               seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """``n`` drawings from the posterior of each drawing (z = mu + sigma * eps, eps from each one's seed), and
    which drawing each varies."""
    mu, logvar = encode(net, drawings, labels)
    rows = np.repeat(np.arange(len(drawings)), n)
    seeds = drawing_seeds(seed, len(rows))
    z = mu[rows] + torch.exp(0.5 * logvar[rows]) * latent_normals(stream_keys(seeds), net.latent_dim)
    return generate(net, np.asarray(labels)[rows], temperature, seeds=seeds, latents=z), rows


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation from ``a`` (t = 0, exactly) to ``b`` (t = 1, exactly), in float64.

    Prior samples of a high-dimensional Gaussian lie near a sphere, and slerp
    stays near it where a straight line would cut through the low-norm middle
    (Ha & Eck 2017, after White 2016). Nearly parallel vectors fall back to the line.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    cos = np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-300)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        return (1 - t) * a + t * b
    return np.sin((1 - t) * omega) / np.sin(omega) * a + np.sin(t * omega) / np.sin(omega) * b


def interpolate(net, drawings: list[np.ndarray], labels, steps: int, temperature: float = TEMPERATURE,
                seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """``steps`` drawings from the first of two drawings to the second, and the t (0 to 1) of each.

    The latents are spherically interpolated between the two means; when the
    classes differ, the class is mixed the same way (rows of class weights,
    1 - t and t). Every frame decodes with the same seed, so the latent and
    the class are all that change from frame to frame, and the ends are the
    two drawings' reconstructions with that seed.
    """
    labels = np.asarray(labels)[:2]
    mu, _ = encode(net, drawings[:2], labels)
    t = np.linspace(0.0, 1.0, steps)
    z = torch.from_numpy(np.stack([slerp(mu[0].numpy(), mu[1].numpy(), ti) for ti in t]).astype(np.float32))
    if labels[0] == labels[1]:
        rows = np.full(steps, labels[0])
    else:
        rows = np.zeros((steps, net.cfg.n_classes), dtype=np.float32)
        rows[:, labels[0]], rows[:, labels[1]] = 1 - t, t
    return generate(net, rows, temperature, seeds=[seed] * steps, latents=z), t
