"""What the class-conditional decoders share: a context per drawing, concatenated to every input step.

The context is the class embedding (with a latent vector beside it where the
model has one); then a recurrent cell, dropout on its output, and an output
head. Subclasses set ``embed``, ``lstm``, ``drop`` and ``head`` and say what
their sequences and losses are.
"""

from __future__ import annotations

import torch

from sketchgen.models.base import Batch, SketchModel, class_embedding


class ConditionalDecoder(SketchModel):
    """context + previous step -> cell -> dropout -> head, for training (whole sequences) and generation."""

    class_weights = ("embed.weight",)

    def context(self, classes: torch.Tensor, latent: torch.Tensor | None = None) -> torch.Tensor:
        """What conditions every step of a drawing: its class embedding (or a mix of them)."""
        return class_embedding(self.embed, classes)

    def run(self, context: torch.Tensor, x: torch.Tensor, state=None, rowwise: bool = False):
        """The cell's dropped-out outputs over inputs ``x``, each step with the context beside it, and its state;
        ``rowwise`` for generation (see ``cells``)."""
        out, state = self.lstm(torch.cat([context[:, None, :].expand(-1, x.shape[1], -1), x], dim=-1), state,
                               rowwise=rowwise)
        return self.drop(out), state

    def forward(self, batch: Batch) -> torch.Tensor:
        out, _ = self.run(self.context(batch.labels), batch.inputs)
        return self.head(out)

    def initial_state(self, classes, latent=None):
        zeros = torch.zeros(len(classes), self.lstm.num_layers, self.cfg.hidden)
        return zeros, zeros.clone(), self.context(classes, latent)

    def step(self, x, state):
        h, c, context = state
        out, (h, c) = self.run(context, x, (h, c), rowwise=True)
        return self.head.rowwise(out), (h, c, context)
