"""What a sketch model is: the one interface that training, sampling, serving, evaluation and export use.

A model is an ``nn.Module`` subclass of ``SketchModel`` in its own file in
this package, registered under its name with ``@register``. Nothing outside
``models/`` names a model kind: whatever differs between models is asked of
the model through the methods below.

**Its data.** A model sees a drawing as its own sequence of steps
(``encode`` from stroke-3, ``decode`` back), each ``step_dim`` wide, and starts
every sequence with ``start``. Training batches are padded sequences of those
steps (``Batch``, made by ``collate``): ``inputs`` is ``start`` then the
targets shifted by one (teacher forcing), ``mask`` marks each drawing's own points.

**Building it.** ``Config`` is a dataclass of its settings, stored whole in
every checkpoint; its fields with ``help`` become this model's ``sketchgen
train`` flags, checked against the field's own bounds. ``from_data`` fills the
fields that come from the data (class count, scales, lengths).
``train_defaults`` are the training settings it prefers to the loop's own
(its optimiser and learning-rate schedule among them), ``tiny`` the settings
of a model of the same design that trains in seconds (examples, and
tests/test_contract.py, which every registered model must pass). A run started from
another checkpoint (``train --init``) takes that checkpoint's
``weight_settings`` and copies its tensors, ``class_weights`` row by row by class name.

**Training.** ``forward(batch)`` gives its outputs and ``losses(outputs,
batch, step)`` names its loss terms; the objective is their weighted sum, and
each term is logged. ``step`` is the global training step (``None`` when
validating), for schedules such as KL annealing.

**Generating.** ``initial_state`` gives a ``State`` for a batch of drawings
(their classes, optionally a latent); ``step`` runs one input step of every
drawing through it and grows it; ``sample_step`` turns an output into the next
input from the drawing's own uniforms and says which drawings ended. A
``State`` owns its rows: generation keeps those of the drawings still going
(``State.keep``) and joins the states of drawings started apart
(``State.join``), whatever the state is - an RNN's (h, c), a Transformer's
key-value cache whose rows hold different numbers of steps.

**A drawing never depends on the other rows of its batch.** ``step`` must
compute every row with operations whose result for that row does not change
with the rows beside it (``rowwise.linear`` for every product), so that a
(class, seed) gives one drawing bit for bit alone, in a batch of 500, or beside
other users' drawings (``serve`` batches requests on that promise). The
contract tests check it for every registered model.

**What only some models can do** is declared by the capabilities below, which
a model lists among its bases: ``Encodes`` (drawings to a latent vector:
reconstruct, interpolate, variations), ``MagentaExport`` (runs in
@magenta/sketch) and ``MagentaImport`` (built from its model files). Anything
else asks ``registry.capable(model, Capability)``, never the model's name.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import ClassVar

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from sketchgen.errors import SketchgenError
from sketchgen.models import rowwise


@dataclass
class Batch:
    """Padded teacher-forcing tensors for a batch of drawings, in a model's own sequence format."""

    labels: torch.Tensor  # (B,) long class index
    inputs: torch.Tensor  # (B, T, step_dim): start step, then targets[:, :-1]
    targets: torch.Tensor  # (B, T, step_dim)
    mask: torch.Tensor  # (B, T) float: 1 on each drawing's own points
    lengths: torch.Tensor  # (B,) long: points per drawing
    # (B, latent_dim) standard normals for a latent model's training sample of z, one row per drawing, drawn
    # from where the drawing is in the run (``batching.builder``): no process or resume changes them.
    noise: torch.Tensor | None = None

    def to(self, device, non_blocking: bool = False) -> "Batch":
        return Batch(*(t if t is None else t.to(device, non_blocking=non_blocking) for t in self.tensors()))

    def pin_memory(self) -> "Batch":
        return Batch(*(t if t is None else t.pin_memory() for t in self.tensors()))

    def tensors(self) -> tuple[torch.Tensor | None, ...]:
        return self.labels, self.inputs, self.targets, self.mask, self.lengths, self.noise

    def __len__(self) -> int:
        return len(self.labels)


def collate(net: "SketchModel", drawings: list[np.ndarray], labels) -> Batch:
    """Stroke-3 drawings -> a padded ``Batch`` of the model's sequences, for teacher forcing or encoding."""
    seqs = [net.encode(d) for d in drawings]
    width = max(len(s) for s in seqs)
    targets = np.zeros((len(seqs), width, net.step_dim), dtype=np.float32)
    mask = np.zeros((len(seqs), width), dtype=np.float32)
    for i, (s, d) in enumerate(zip(seqs, drawings)):
        targets[i, : len(s)] = s
        mask[i, : len(d)] = 1
    targets = torch.from_numpy(targets)
    inputs = torch.cat([net.start(len(seqs)), targets[:, :-1]], dim=1)
    lengths = torch.tensor([len(d) for d in drawings], dtype=torch.long)
    return Batch(torch.as_tensor(np.asarray(labels)), inputs, targets, torch.from_numpy(mask), lengths)


@dataclass
class Term:
    """One named part of a loss: a sum over this batch (or rank's share), what it counts, and how it enters.

    The objective adds ``weight * max(mean, floor)`` over terms, with ``mean``
    the sum over the whole global batch divided by its count (``floor`` is
    Sketch-RNN's free bits for the KL term).
    """

    total: torch.Tensor
    count: float
    weight: float = 1.0
    floor: float | None = None


# --- generation state --------------------------------------------------------------------------


class State(abc.ABC):
    """The generation state of a batch of drawings, one row per drawing, carried from step to step.

    It owns its rows: ``keep`` the rows of the drawings still going, ``join``
    the states of drawings started apart. The model grows it at each ``step``.
    """

    @abc.abstractmethod
    def __len__(self) -> int:
        """How many drawings."""

    @abc.abstractmethod
    def keep(self, rows: torch.Tensor) -> "State":
        """The state of the drawings at ``rows`` only (indices, or a boolean mask), in that order."""

    @classmethod
    @abc.abstractmethod
    def join(cls, states: Sequence["State"]) -> "State":
        """One state of all the drawings of ``states``, in order."""


@dataclass
class TensorState(State):
    """A state whose fields are all tensors with the drawing first: keeping and joining index and concatenate.

    Subclass it as a dataclass of tensors (an RNN's h, c and context).
    """

    def __len__(self) -> int:
        return len(getattr(self, fields(self)[0].name))

    def keep(self, rows):
        return replace(self, **{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    @classmethod
    def join(cls, states):
        return cls(**{f.name: torch.cat([getattr(s, f.name) for s in states]) for f in fields(cls)})


# --- settings ----------------------------------------------------------------------------------


def setting(default, help: str | None = None, low: float | None = None, high: float | None = None,
            choices=None, per_class: bool | str = False, above: bool = False):
    """A config field with the bounds a checkpoint's value is checked against; with ``help``, also a train flag.

    ``default`` may be a callable (a default factory, for lists); ``per_class``
    lists hold one value per class ("optional": or none at all); ``above``:
    ``low`` itself is excluded; ``choices`` may be a callable giving them
    (known only once models register).
    """
    metadata = {"low": low, "high": high, "choices": choices, "help": help, "per_class": per_class, "above": above}
    if callable(default):
        return field(default_factory=default, metadata=metadata)
    return field(default=default, metadata=metadata)


class ModelError(SketchgenError, ValueError):
    """A model asked for something it cannot do (export, encode, a setting it does not have); one line."""


# --- the interface -----------------------------------------------------------------------------


class SketchModel(nn.Module, abc.ABC):
    """The interface every sketch model provides; see the module docstring."""

    name: ClassVar[str]  # registry key: what --model takes and checkpoints record as "kind"
    summary: ClassVar[str]  # one line for `sketchgen train --help`
    order: ClassVar[int] = 100  # where it is listed among the models
    Config: ClassVar[type]
    step_dim: ClassVar[int]  # width of one step of its sequences
    draws: ClassVar[int]  # uniforms one generation step takes per drawing
    uses_temperature: ClassVar[bool] = True  # whether sampling temperature changes what it draws
    loss_description: ClassVar[str] = "loss"
    loss_per_drawing: ClassVar[bool] = False  # report test loss per drawing (else per counted unit)
    train_defaults: ClassVar[dict] = {}  # TrainConfig fields it sets differently from the loop's defaults
    # Settings (its own and training's, as ``sketchgen.train`` takes them) of a model of this design that trains in
    # seconds on one core and has learnt to lift its pen and end: for examples, and the contract tests.
    tiny: ClassVar[dict] = {}
    legacy: ClassVar[dict] = {}  # config values that checkpoints older than a setting were trained with
    # Config fields that give its weights their meaning (their shapes, how inputs are scaled): a model fine-tuned
    # from another checkpoint (`train --init`) takes these from it, not from the new data.
    weight_settings: ClassVar[tuple[str, ...]] = ()
    class_weights: ClassVar[tuple[str, ...]] = ()  # state_dict entries with one row per class, in class order
    # The shipped checkpoints (in sketchgen's assets) a new run of this model starts from unless told otherwise:
    # the first whose weight settings the run's flags do not change (e.g. one of each cell), the first by default.
    bases: ClassVar[tuple[str, ...]] = ()

    cfg: object

    # --- building -----------------------------------------------------------------------------

    @classmethod
    def from_data(cls, data, train_idx: np.ndarray, longest: int, **settings) -> "SketchModel":
        """A new model for ``data``'s classes, its derived settings computed from the training drawings, of at most
        ``longest`` points (``--max-len``)."""
        return cls(cls.Config(n_classes=len(data.classes), **settings))

    @classmethod
    def with_weights(cls, cfg, state: dict[str, torch.Tensor]) -> "SketchModel":
        """The model of ``cfg`` holding ``state``'s tensors, in eval mode. Built with shapes only: no random
        initialisation is made to be thrown away, so torch's random state, which every thread shares, stays as it was."""
        with shapes_only():
            model = cls(cfg)
        model.load_state_dict(state, assign=True)
        return model.eval()

    @classmethod
    def flags(cls) -> dict[str, dict]:
        """Config fields that are `sketchgen train` flags: their help, bounds, choices and default."""
        return {f.name: {**f.metadata, "default": f.default if f.default is not MISSING else f.default_factory()}
                for f in fields(cls.Config) if f.metadata.get("help")}

    # --- data ---------------------------------------------------------------------------------

    @abc.abstractmethod
    def encode(self, s3: np.ndarray) -> np.ndarray:
        """Stroke-3 -> this model's float32 sequence (the training targets of one drawing)."""

    @abc.abstractmethod
    def decode(self, seq: np.ndarray) -> np.ndarray:
        """This model's sequence -> stroke-3."""

    def start(self, n: int) -> torch.Tensor:
        """The first input of ``n`` sequences, (n, 1, step_dim)."""
        return torch.zeros(n, 1, self.step_dim)

    # --- training -----------------------------------------------------------------------------

    @abc.abstractmethod
    def losses(self, outputs, batch: Batch, step: int | None) -> dict[str, Term]:
        """The named terms of the loss of ``forward``'s outputs; ``step`` is the global step, None to validate."""

    # --- generating ---------------------------------------------------------------------------

    @abc.abstractmethod
    def initial_state(self, classes: torch.Tensor, latent: torch.Tensor | None = None) -> State:
        """The state before the first step. ``classes``: (B,) labels, or (B, n_classes) weights that mix classes."""

    @abc.abstractmethod
    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Run one input step ``x`` (B, 1, step_dim) of every drawing of ``state``: the output (B, 1, ...) and the
        state grown by that step. Each row computed as if it were alone (see the module docstring)."""

    @abc.abstractmethod
    def sample_step(self, out: torch.Tensor, temperature: torch.Tensor,
                    u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The next input (B, 1, step_dim) from the last output, using ``draws`` uniforms and its temperature (a (B,)
        float64 tensor) per row; and which ended."""

    @abc.abstractmethod
    def steps_allowed(self, labels: torch.Tensor, drawn: torch.Tensor) -> torch.Tensor:
        """How many steps each drawing may take by default after ``drawn`` given points (its class's limit)."""

    def max_steps(self) -> int:
        """The most steps a caller may ask of one drawing."""
        return int(self.steps_allowed(torch.arange(self.cfg.n_classes), torch.zeros(self.cfg.n_classes, dtype=torch.long)).max())

    def context_length(self) -> int | None:
        """The most steps one drawing can hold, its prefix included (a Transformer's positions); None: no limit."""
        return None

    def state_bytes(self, steps: int) -> int:
        """About the bytes one drawing's generation state holds after ``steps`` steps, which ``sample.generate``
        sizes its batches by; 0 for a state that does not grow with the drawing (a recurrent one's, kilobytes)."""
        return 0


# --- capabilities ------------------------------------------------------------------------------


class Encodes(abc.ABC):
    """A model that encodes a drawing to a latent vector: it can redraw, vary and morph drawings.

    Its ``initial_state`` takes the latent (one row per drawing) and decodes it.
    """

    latent_dim: int

    @abc.abstractmethod
    def encode_latent(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log variance) of the latent of each drawing of ``batch``."""


class MagentaExport(abc.ABC):
    """A model that @magenta/sketch can run, one class at a time (``sketchgen export --format magenta``)."""

    @abc.abstractmethod
    def magenta_weights(self, label: int) -> tuple[dict, list[np.ndarray]]:
        """(info, the five float64 arrays) of one class as @magenta/sketch's model file holds them; a ModelError
        where this model's settings cannot be written exactly."""


class MagentaImport(abc.ABC):
    """A model that can be built from a decoder-only Magenta model file (``sketchgen import --format magenta``)."""

    @classmethod
    @abc.abstractmethod
    def from_magenta(cls, info: dict, weights: list[np.ndarray]) -> "SketchModel":
        """The one-class model of a checked Magenta file (``interop.magenta.MagentaFile``)."""


# --- helpers the models share ------------------------------------------------------------------


def class_embedding(embed: nn.Embedding, classes: torch.Tensor) -> torch.Tensor:
    """Embeddings of labels, or the mix of embeddings that class weights (B, n_classes) ask for (row by row)."""
    if classes.dtype == torch.long:
        return embed(classes)
    return rowwise.linear(classes.to(embed.weight.dtype), embed.weight.T)


def hard_labels(classes: torch.Tensor) -> torch.Tensor:
    """The labels of ``classes``, or the heaviest class of each row of class weights."""
    return classes if classes.dtype == torch.long else classes.argmax(-1)


# The in-place tensor methods modules initialise their parameters with (torch.nn.init's own functions are skipped whole).
_INITIALISERS = {"normal_", "uniform_", "zero_", "fill_", "bernoulli_", "random_", "exponential_", "log_normal_"}


class _SkipInit(TorchFunctionMode):
    """Runs every function but those that initialise a parameter, which return the tensor as it is."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__module__", None) == "torch.nn.init" or getattr(func, "__name__", "") in _INITIALISERS:
            return next(v for v in (*args, *kwargs.values()) if isinstance(v, torch.Tensor))
        return func(*args, **kwargs)


@contextmanager
def shapes_only() -> Iterator[None]:
    """Modules built here have their parameters' shapes and dtypes on the meta device, and no values.

    Nothing is allocated, whatever size a config claims. The initialisers are
    skipped because on meta tensors torch runs them through its reference
    implementations, whose first call imports its compiler: about a second
    of every command that reads a checkpoint (docs/performance.md).
    """
    with torch.device("meta"), _SkipInit():
        yield


def default_embed_dim(n_classes: int) -> int:
    """Class embedding size that grows with the class count: 18 for 5 classes, 149 for 345."""
    return int(min(256, max(16, round(8 * math.sqrt(n_classes)))))
