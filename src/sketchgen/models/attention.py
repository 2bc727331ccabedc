"""Pre-norm Transformer blocks with causal self-attention, and the key-value cache a decoder generates with.

``Block`` runs whole sequences when training (PyTorch's scaled dot-product
attention, causal, so padding after a drawing never reaches its own steps) and
one new position per drawing when generating (``step``), reading the earlier
positions from a ``KVCache``.

**A drawing never depends on the rows beside it.** In ``step`` every product
goes through ``rowwise.linear``, and attention runs over the cache in blocks of
``BLOCK`` positions, each block a product of one drawing's rows in one fixed
shape, combined block by block with the running maximum and sum of
online softmax (Milakov & Gimelshein 2018). A block wholly beyond a drawing's
length changes none of its numbers (its weights are exactly 0, its
rescaling exactly 1), so a drawing comes out bit for bit the same whatever
the longest drawing beside it has made the cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sketchgen.models import rowwise
from sketchgen.models.base import State

BLOCK = 64  # positions the cache grows by, and attention reads at a time when generating


@dataclass
class KVCache(State):
    """Each layer's keys and values of every position each drawing has run, with its own length and condition.

    ``keys[i]`` and ``values[i]`` are (B, heads, capacity, head width); positions at or past a row's
    ``length`` are never read. The capacity grows ``BLOCK`` positions at a time, for all rows at once.
    """

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    length: torch.Tensor  # (B,) long: positions held
    condition: torch.Tensor  # (B, width): what every position of the drawing has added to its input

    def __len__(self) -> int:
        return len(self.length)

    def keep(self, rows):
        return KVCache([k[rows] for k in self.keys], [v[rows] for v in self.values], self.length[rows],
                       self.condition[rows])

    @classmethod
    def join(cls, states: Sequence["KVCache"]) -> "KVCache":
        capacity = max(s.keys[0].shape[2] for s in states)
        grown = [s.grown(capacity) for s in states]
        return cls([torch.cat(layer) for layer in zip(*(s.keys for s in grown))],
                   [torch.cat(layer) for layer in zip(*(s.values for s in grown))],
                   torch.cat([s.length for s in states]), torch.cat([s.condition for s in states]))

    @classmethod
    def empty(cls, condition: torch.Tensor, layers: int, heads: int, head_width: int) -> "KVCache":
        shape = (len(condition), heads, BLOCK, head_width)
        return cls([torch.zeros(shape) for _ in range(layers)], [torch.zeros(shape) for _ in range(layers)],
                   torch.zeros(len(condition), dtype=torch.long), condition)

    def grown(self, capacity: int) -> "KVCache":
        """The same cache with room for ``capacity`` positions (zeros, never read)."""
        more = capacity - self.keys[0].shape[2]
        if more <= 0:
            return self
        return KVCache([F.pad(k, (0, 0, 0, more)) for k in self.keys], [F.pad(v, (0, 0, 0, more)) for v in self.values],
                       self.length, self.condition)

    def with_room(self) -> "KVCache":
        """A cache with room for one more position in every row."""
        capacity = self.keys[0].shape[2]
        return self.grown(capacity + BLOCK) if len(self) and int(self.length.max()) >= capacity else self


def causal_block_attention(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, length: torch.Tensor
                           ) -> torch.Tensor:
    """One new position's attention over positions 0..length of each drawing: q (B, H, 1, D), the cache's keys
    and values (B, H, capacity, D), ``length`` (B,) the new position's index. Block by block (module docstring)."""
    b, h, _, d = q.shape
    q = q.reshape(b * h, 1, d) / d**0.5
    m = torch.full((b * h, 1, 1), float("-inf"))
    total = torch.zeros(b * h, 1, 1)
    out = torch.zeros(b * h, 1, d)
    visible = length.repeat_interleave(h)[:, None, None]  # positions up to and including the new one
    for start in range(0, int(length.max()) + 1, BLOCK):
        k = keys[:, :, start : start + BLOCK].reshape(b * h, BLOCK, d)
        v = values[:, :, start : start + BLOCK].reshape(b * h, BLOCK, d)
        scores = torch.bmm(q, k.transpose(1, 2))
        positions = torch.arange(start, start + BLOCK)[None, None, :]
        scores = scores.masked_fill(positions > visible, float("-inf"))
        top = torch.maximum(m, scores.amax(-1, keepdim=True))
        p = torch.exp(scores - top)
        scale = torch.exp(m - top)
        total = total * scale + p.sum(-1, keepdim=True)
        out = out * scale + torch.bmm(p, v)
        m = top
    return (out / total).reshape(b, h, 1, d)


class Block(nn.Module):
    """LayerNorm -> causal multi-head self-attention -> residual; LayerNorm -> MLP (GELU, 4x) -> residual."""

    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.up = nn.Linear(width, 4 * width)
        self.down = nn.Linear(4 * width, width)
        self.drop = nn.Dropout(dropout)

    def _split(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, T, 3W) -> q, k, v, each (B, heads, T, W / heads)."""
        b, t, _ = x.shape
        return [part.reshape(b, t, self.heads, -1).transpose(1, 2) for part in x.chunk(3, dim=-1)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Whole sequences (B, T, W), each position attending to itself and those before it."""
        q, k, v = self._split(self.qkv(self.norm1(x)))
        # No dropout on the attention weights: with it PyTorch's CPU kernel falls back to materialising every
        # position pair (14% of a step at width 192, docs/performance.md); the block's outputs are dropped out.
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(x.shape)))
        return x + self.drop(self.down(F.gelu(self.up(self.norm2(x)))))

    def step(self, x: torch.Tensor, cache: KVCache, layer: int) -> torch.Tensor:
        """One new position per drawing (B, 1, W) at each row's ``cache.length``, its key and value written into
        the cache (which must have room); every row computed as if it were alone."""
        q, k, v = self._split(rowwise.linear(self.norm1(x), self.qkv.weight, self.qkv.bias))
        rows = torch.arange(len(x))
        cache.keys[layer][rows, :, cache.length] = k[:, :, 0]
        cache.values[layer][rows, :, cache.length] = v[:, :, 0]
        a = causal_block_attention(q, cache.keys[layer], cache.values[layer], cache.length)
        x = x + rowwise.linear(a.transpose(1, 2).reshape(x.shape), self.proj.weight, self.proj.bias)
        hidden = F.gelu(rowwise.linear(self.norm2(x), self.up.weight, self.up.bias))
        return x + rowwise.linear(hidden, self.down.weight, self.down.bias)
