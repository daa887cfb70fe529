"""Token-level language models for shallow fusion: a causal Transformer (GPT-style) and an LSTM.

Both read the transducer's token ids, with the blank id standing for the sentence
boundary (BOS before the first token, EOS after the last: the blank is never part of
a transcript, so the LM needs no extra symbol and its vocabulary is the transducer's).

Two entry points over one set of weights, as the transducer's encoder has:
  forward(tokens)        tokens (B, U) -> logits (B, U, V), for training
  step(token, state)     token (B,) and the state after the tokens before it ->
                         log-probabilities of the next token (B, V) and the new state
`step` over a sequence gives exactly what `forward` gives (a test checks it), so
what the runtime fuses is what training optimised.

Transformer: pre-norm blocks whose attention sees the last `context` tokens (a
sliding window) with ALiBi distance biases instead of position embeddings, so a
key cached at any time means the same thing at every later step: the state is a
fixed-size cache of the last `context` keys and values per layer, rolled by one
slot per token, with a mask of the slots filled so far. LSTM: stacked LSTM
layers; the state is their h and c (icefall's RnnLm shape).

Shapes: B batch (hypotheses), U tokens, V vocab, L layers, W context window, D model dim.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.lm_config import LmConfig

class TransformerLmState(NamedTuple):
    """The last W keys and values of every layer, oldest first, and which slots hold a token."""

    keys: Tensor  # (L, B, W, D)
    values: Tensor  # (L, B, W, D)
    filled: Tensor  # (1, B, W) 1.0 where a slot holds a token, 0.0 before the stream's start

    BATCH_AXES = (1, 1, 1)


class LstmLmState(NamedTuple):
    h: Tensor  # (L, B, D)
    c: Tensor  # (L, B, D)

    BATCH_AXES = (1, 1)


def alibi_slopes(num_heads: int) -> Tensor:
    """ALiBi's per-head slopes 2^(-8 k / heads), k = 1..heads: far tokens fade faster in early heads."""
    return torch.tensor([2.0 ** (-8.0 * (k + 1) / num_heads) for k in range(num_heads)])


class _Block(nn.Module):
    def __init__(self, config: LmConfig) -> None:
        super().__init__()
        self.heads = config.num_heads
        self.norm1 = nn.LayerNorm(config.dim)
        self.qkv = nn.Linear(config.dim, 3 * config.dim)
        self.proj = nn.Linear(config.dim, config.dim)
        self.norm2 = nn.LayerNorm(config.dim)
        self.mlp = nn.Sequential(nn.Linear(config.dim, 4 * config.dim), nn.GELU(), nn.Linear(4 * config.dim, config.dim))
        self.drop = nn.Dropout(config.dropout)

    def split(self, x: Tensor) -> Tensor:
        """(B, T, D) -> (B, heads, T, D / heads)."""
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, bias: Tensor) -> Tensor:
        """q (B, Tq, D), k and v (B, Tk, D), bias broadcastable to (B, heads, Tq, Tk) -> (B, Tq, D)."""
        q, k, v = self.split(q), self.split(k), self.split(v)
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + bias
        out = self.drop(scores.softmax(-1)) @ v  # (B, heads, Tq, D / heads)
        b, _, t, _ = out.shape
        return out.transpose(1, 2).reshape(b, t, -1)

    def mlp_part(self, x: Tensor) -> Tensor:
        return x + self.drop(self.mlp(self.norm2(x)))


class TransformerLm(nn.Module):
    """GPT-style causal Transformer over a sliding window of `context` tokens with ALiBi biases."""

    def __init__(self, config: LmConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.dim)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(config.dim)
        self.out = nn.Linear(config.dim, config.vocab_size)
        self.register_buffer("slopes", alibi_slopes(config.num_heads).view(1, -1, 1, 1), persistent=False)

    def _bias(self, distance: Tensor, allowed: Tensor) -> Tensor:
        """ALiBi bias for key distances (..., Tq, Tk), -inf where not `allowed`: (1 or B, heads, Tq, Tk)."""
        bias = -self.slopes * distance.to(self.slopes.dtype)
        return bias.masked_fill(~allowed, float("-inf"))

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens (B, U) -> logits (B, U, V); position i sees tokens i-W+1..i."""
        u = tokens.shape[1]
        position = torch.arange(u, device=tokens.device)
        distance = position[:, None] - position[None, :]  # (U, U) query minus key
        bias = self._bias(distance[None, None], (distance >= 0) & (distance < self.config.context))
        x = self.embed(tokens)
        for block in self.blocks:
            q, k, v = block.qkv(block.norm1(x)).chunk(3, dim=-1)
            x = x + block.drop(block.proj(block.attend(q, k, v, bias)))
            x = block.mlp_part(x)
        return self.out(self.norm(x))

    def init_state(self, batch: int, device: torch.device | str = "cpu") -> TransformerLmState:
        c = self.config
        zeros = torch.zeros(c.num_layers, batch, c.context, c.dim, device=device)
        return TransformerLmState(zeros, zeros.clone(), torch.zeros(1, batch, c.context, device=device))

    def step(self, token: Tensor, state: TransformerLmState) -> tuple[Tensor, TransformerLmState]:
        """token (B,) after the tokens `state` holds -> next-token log-probs (B, V), new state."""
        w = self.config.context
        filled = torch.cat([state.filled[:, :, 1:], torch.ones_like(state.filled[:, :, :1])], dim=2)  # (1, B, W)
        distance = torch.arange(w - 1, -1, -1, device=token.device).view(1, 1, 1, w)  # slot W-1 is the new token
        bias = self._bias(distance, filled[0].view(-1, 1, 1, w) > 0.5)  # (B, heads, 1, W)
        x = self.embed(token)[:, None]  # (B, 1, D)
        keys, values = [], []
        for layer, block in enumerate(self.blocks):
            q, k, v = block.qkv(block.norm1(x)).chunk(3, dim=-1)
            k = torch.cat([state.keys[layer, :, 1:], k], dim=1)  # (B, W, D): oldest slot dropped
            v = torch.cat([state.values[layer, :, 1:], v], dim=1)
            keys.append(k)
            values.append(v)
            x = x + block.drop(block.proj(block.attend(q, k, v, bias)))
            x = block.mlp_part(x)
        log_probs = self.out(self.norm(x[:, 0])).log_softmax(-1)
        return log_probs, TransformerLmState(torch.stack(keys), torch.stack(values), filled)


class LstmLm(nn.Module):
    """Stacked LSTM LM; `step` runs the same weights cell by cell (exports to plain MatMuls)."""

    def __init__(self, config: LmConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.dim)
        self.lstm = nn.LSTM(config.dim, config.dim, config.num_layers, batch_first=True,
                            dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.drop = nn.Dropout(config.dropout)
        self.out = nn.Linear(config.dim, config.vocab_size)

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens (B, U) -> logits (B, U, V)."""
        x, _ = self.lstm(self.drop(self.embed(tokens)))
        return self.out(self.drop(x))

    def init_state(self, batch: int, device: torch.device | str = "cpu") -> LstmLmState:
        zeros = torch.zeros(self.config.num_layers, batch, self.config.dim, device=device)
        return LstmLmState(zeros, zeros.clone())

    def step(self, token: Tensor, state: LstmLmState) -> tuple[Tensor, LstmLmState]:
        """token (B,) after the tokens `state` has seen -> next-token log-probs (B, V), new state."""
        x = self.embed(token)  # (B, D)
        hs, cs = [], []
        for layer in range(self.config.num_layers):
            gates = (x @ getattr(self.lstm, f"weight_ih_l{layer}").T + getattr(self.lstm, f"bias_ih_l{layer}")
                     + state.h[layer] @ getattr(self.lstm, f"weight_hh_l{layer}").T
                     + getattr(self.lstm, f"bias_hh_l{layer}"))  # (B, 4D), torch's gate order i, f, g, o
            i, f, g, o = gates.chunk(4, dim=-1)
            c = torch.sigmoid(f) * state.c[layer] + torch.sigmoid(i) * torch.tanh(g)
            x = torch.sigmoid(o) * torch.tanh(c)
            hs.append(x)
            cs.append(c)
        return self.out(x).log_softmax(-1), LstmLmState(torch.stack(hs), torch.stack(cs))


LanguageModel = TransformerLm | LstmLm


def build_lm(config: LmConfig) -> LanguageModel:
    """The LM that `config.kind` names."""
    return TransformerLm(config) if config.kind == "transformer" else LstmLm(config)


def lm_loss(model: LanguageModel, tokens: Tensor, lengths: Tensor) -> Tensor:
    """Mean next-token cross-entropy (nats per token) of boundary-wrapped sequences.

    tokens (B, U): BOS, the tokens, EOS, then padding; lengths (B,): tokens up to EOS
    included. Each position predicts the next; padding is not scored.
    """
    logits = model(tokens[:, :-1])  # (B, U-1, V)
    targets = tokens[:, 1:]
    scored = torch.arange(targets.shape[1], device=tokens.device)[None] < (lengths[:, None] - 1)
    return F.cross_entropy(logits[scored], targets[scored])
