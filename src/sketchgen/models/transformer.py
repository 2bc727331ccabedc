"""A causal Transformer decoder over stroke-5 steps with Sketch-RNN's mixture head, class-conditional.

The decoder of SketchGPT-style models: each step's input is a linear map of
the previous stroke-5 step, plus a learnt embedding of its position, plus the
class embedding mapped to the model's width (what the LSTM decoders see
beside every input); then ``layers`` pre-norm blocks (``attention.Block``), a
last LayerNorm and the mixture head the mdn has, trained by the same exact
negative log-likelihood. It trains as Transformers do - AdamW with weight
decay on its matrices, a linear warmup and a cosine decay - with Sketch-RNN's
augmentation and clipping.

It generates with a key-value cache (``attention.KVCache``): one row per
drawing, each with its own length, so prefixes of different lengths are
completed together exactly; its context is ``max_len`` + 1 positions (the
start step and the longest drawing it was trained on), beyond which no
drawing is generated. @magenta/sketch runs LSTMs only: it is not exported.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sketchgen.models import rowwise
from sketchgen.models.attention import BLOCK, Block, KVCache
from sketchgen.models.base import Batch, ModelError, SketchModel, class_embedding, setting
from sketchgen.models.mixture import MixtureConfig, Stroke5Mixture
from sketchgen.models.registry import register


@dataclass
class TransformerConfig(MixtureConfig):
    # 192: a step costs 1.6x the mdn's (256: 2.7x), which keeps the default training of the 26 classes within
    # the 45-minute budget (docs/performance.md, bench/bench_models.py)
    hidden: int = setting(192, "width of the model: each position's vector in every block", 8, 4096)
    layers: int = setting(4, "Transformer blocks", 1, 64)
    heads: int = setting(4, "attention heads (each hidden / heads wide)", 1, 64)
    dropout: float = setting(0.1, "dropout on the input and on each block's attention and MLP outputs", 0.0, 0.99)

    def __post_init__(self):
        super().__post_init__()
        if self.hidden % self.heads:
            raise ModelError(f"--hidden {self.hidden} is not a multiple of --heads {self.heads}: each head is "
                             "hidden / heads wide")


@register
class Transformer(Stroke5Mixture, SketchModel):
    """A causal Transformer decoder over stroke-5 steps, with a KV cache to generate."""

    name = "transformer"
    summary = "a causal Transformer decoder (GPT-style) with the mixture head, generating with a KV cache"
    order = 3
    Config = TransformerConfig
    train_defaults = {"grad_clip": 1.0, "augment_scale": 0.15, "augment_drop": 0.10, "steps": 3000, "eval_every": 250,
                      "early_stop": 4, "batch_size": 100, "balance": "sqrt", "optimizer": "adamw",
                      "weight_decay": 0.1, "lr": 1e-3, "lr_schedule": "cosine", "warmup": 300, "min_lr": 1e-5}
    tiny = {"hidden": 32, "layers": 2, "heads": 2, "epochs": 40, "early_stop": 40, "batch_size": 32, "lr": 3e-3,
            "warmup": 20}
    weight_settings = ("embed_dim", "hidden", "layers", "heads", "n_mixtures", "scale", "log_sigma_limit", "max_len")
    class_weights = ("embed.weight",)

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.n_classes, cfg.embed_dim)
        self.from_class = nn.Linear(cfg.embed_dim, cfg.hidden)
        self.inp = nn.Linear(self.step_dim, cfg.hidden)
        self.position = nn.Embedding(self.context_length(), cfg.hidden)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg.hidden, cfg.heads, cfg.dropout) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(cfg.hidden)
        self.head = self.mixture_head(cfg, cfg.hidden)
        for name, p in self.named_parameters():  # GPT-2's: small normal weights, zero biases
            if p.dim() == 2 and "norm" not in name:
                nn.init.normal_(p, std=0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def context_length(self) -> int:
        """The start step and the longest drawing trained on: the positions it has embeddings for."""
        return self.cfg.max_len + 1

    def state_bytes(self, steps: int) -> int:
        """Its KV cache: a key and a value of every position in every block, float32, grown a block at a time (and
        copied as it grows)."""
        return 2 * 2 * self.cfg.layers * self.cfg.hidden * 4 * (steps + 1 + BLOCK)

    def condition(self, classes: torch.Tensor, generating: bool = False) -> torch.Tensor:
        """What every position of a drawing adds to its input: its class embedding (or a mix), at the model's width."""
        e = class_embedding(self.embed, classes)
        return rowwise.linear(e, self.from_class.weight, self.from_class.bias) if generating else self.from_class(e)

    def forward(self, batch: Batch) -> torch.Tensor:
        t = batch.inputs.shape[1]
        if t > self.context_length():
            raise ModelError(f"a drawing of {t - 1} points is longer than the {self.cfg.max_len} the model was built "
                             "for (its max_len)")
        x = self.inp(batch.inputs) + self.position.weight[:t] + self.condition(batch.labels)[:, None]
        x = self.drop(x)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))

    def losses(self, outputs, batch, step):
        return self.mixture_losses(outputs, batch)

    # --- generating ---------------------------------------------------------------------------

    def initial_state(self, classes, latent=None) -> KVCache:
        heads = self.cfg.heads
        return KVCache.empty(self.condition(classes, generating=True), self.cfg.layers, heads, self.cfg.hidden // heads)

    def step(self, x, state: KVCache):
        """One position per drawing, at each one's own length: its cache grown by that position."""
        if int(state.length.max()) >= self.context_length():
            raise ModelError(f"a drawing reached the model's context of {self.context_length()} positions")
        cache = state.with_room()
        h = rowwise.linear(x, self.inp.weight, self.inp.bias) + self.position.weight[cache.length][:, None] \
            + cache.condition[:, None]
        for i, block in enumerate(self.blocks):
            h = block.step(h, cache, i)
        out = self.head.rowwise(self.norm(h))
        return out, KVCache(cache.keys, cache.values, cache.length + 1, cache.condition)
