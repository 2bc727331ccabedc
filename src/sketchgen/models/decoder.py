"""What the recurrent class-conditional decoders share: a condition per drawing beside every input step.

The condition is the class embedding (with a latent vector beside it where the
model has one); then a recurrent cell (``cells``), dropout on its output, and
an output head (``heads``). Subclasses set ``embed``, ``lstm``, ``drop`` and
``head`` and say what their sequences and losses are. Their generation state
is the cell's (h, c) and the condition, one row per drawing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sketchgen.models.base import Batch, SketchModel, TensorState, class_embedding


@dataclass
class RecurrentState(TensorState):
    h: torch.Tensor  # (B, layers, hidden)
    c: torch.Tensor  # (B, layers, hidden)
    condition: torch.Tensor  # (B, width): what every step of the drawing sees beside its input


class RecurrentDecoder(SketchModel):
    """condition + previous step -> cell -> dropout -> head, for training (whole sequences) and generation."""

    class_weights = ("embed.weight",)

    def condition(self, classes: torch.Tensor, latent: torch.Tensor | None = None) -> torch.Tensor:
        """What conditions every step of a drawing: its class embedding (or a mix of them)."""
        return class_embedding(self.embed, classes)

    def run(self, condition: torch.Tensor, x: torch.Tensor, state=None, rowwise: bool = False):
        """The cell's dropped-out outputs over inputs ``x``, each step with the condition beside it, and its state."""
        steps = torch.cat([condition[:, None, :].expand(-1, x.shape[1], -1), x], dim=-1)
        out, state = self.lstm(steps, state, rowwise=rowwise)
        return self.drop(out), state

    def forward(self, batch: Batch) -> torch.Tensor:
        out, _ = self.run(self.condition(batch.labels), batch.inputs)
        return self.head(out)

    def initial_state(self, classes, latent=None) -> RecurrentState:
        return RecurrentState(*self.lstm.zeros(len(classes)), self.condition(classes, latent))

    def step(self, x, state: RecurrentState):
        out, (h, c) = self.run(state.condition, x, (state.h, state.c), rowwise=True)
        return self.head.rowwise(out), RecurrentState(h, c, state.condition)
