"""Prediction networks: the transducer's language-model side, over previously emitted tokens.

One interface for both kinds:
    forward(y (B, U)) -> (B, U, D)              training, teacher forcing
    step(tokens (B, context_size), state) -> (out (B, D), new_state)   decoding
    init_state(B), context_size, output_dim

The stateless predictor (as icefall's) sees only the last context_size tokens
and its state is empty; the LSTM predictor sees one token per step and carries
(h, c). A negative token id means "no token yet" (sherpa-onnx starts every
context as [-1, ..., -1, blank]); it is read as blank, which is exactly the
left padding forward uses in training, so both runtimes start from what the
model was trained on.

Shapes: B batch, U tokens, E embedding dim, L layers, H LSTM size, D output dim.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NamedTuple

import torch
from torch import Tensor, nn

from asr.checks import check_shape
from models.config import PredictorConfig


class StatelessState(NamedTuple):
    """The stateless predictor's state: nothing (its context is the tokens themselves)."""

    BATCH_AXES = ()


class LstmPredictorState(NamedTuple):
    """State of the LSTM predictor."""

    h: Tensor  # (L, B, H) last hidden state of each layer
    c: Tensor  # (L, B, H) last cell of each layer
    BATCH_AXES = (1, 1)


class Predictor(nn.Module, ABC):
    """Embedding of token ids with negative ids read as blank, and the shared interface."""

    def __init__(self, config: PredictorConfig, vocab_size: int, blank_id: int) -> None:
        super().__init__()
        self.config = config
        self.blank_id = blank_id
        self.embedding = nn.Embedding(vocab_size, config.embed_dim)
        self.dropout = nn.Dropout(config.dropout)

    def embed(self, tokens: Tensor) -> Tensor:
        """(B, U) int64 -> (B, U, E); ids < 0 embed as blank."""
        tokens = torch.where(tokens < 0, torch.full_like(tokens, self.blank_id), tokens)
        return self.dropout(self.embedding(tokens))

    @property
    @abstractmethod
    def context_size(self) -> int:
        """Tokens step() takes per stream."""

    @property
    @abstractmethod
    def output_dim(self) -> int:
        """D of the predictor output."""

    @abstractmethod
    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> NamedTuple:
        """The state before any token."""

    @abstractmethod
    def forward(self, y: Tensor) -> Tensor:
        """y (B, U) token ids (blank-prefixed in training) -> (B, U, D); position u sees tokens <= u."""

    @abstractmethod
    def step(self, tokens: Tensor, state: NamedTuple) -> tuple[Tensor, NamedTuple]:
        """tokens (B, context_size), the most recent last -> (out (B, D), new state)."""


class StatelessPredictor(Predictor):
    """Embedding + Conv1d over the last context_size tokens + ReLU: no recurrence."""

    def __init__(self, config: PredictorConfig, vocab_size: int, blank_id: int) -> None:
        super().__init__(config, vocab_size, blank_id)
        self.context = nn.Conv1d(config.embed_dim, config.embed_dim, config.context_size)

    @property
    def context_size(self) -> int:
        return self.config.context_size

    @property
    def output_dim(self) -> int:
        return self.config.embed_dim

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> StatelessState:
        return StatelessState()

    def _mix(self, tokens: Tensor) -> Tensor:
        """(B, U + context_size - 1) tokens -> (B, U, E), each output over context_size tokens."""
        h = self.embed(tokens).transpose(1, 2)  # (B, E, U + c - 1)
        return torch.relu(self.context(h)).transpose(1, 2)  # (B, U, E)

    def forward(self, y: Tensor) -> Tensor:
        check_shape("predictor tokens", y, ("B", "U"))
        padding = y.new_full((y.shape[0], self.context_size - 1), self.blank_id)
        return self._mix(torch.cat([padding, y], dim=1))  # the first tokens see blanks before them

    def step(self, tokens: Tensor, state: NamedTuple) -> tuple[Tensor, StatelessState]:
        check_shape("predictor context", tokens, ("B", self.context_size))
        return self._mix(tokens)[:, 0], StatelessState()


class LstmPredictor(Predictor):
    """Embedding + multi-layer LSTM: sees every earlier token through its state."""

    def __init__(self, config: PredictorConfig, vocab_size: int, blank_id: int) -> None:
        super().__init__(config, vocab_size, blank_id)
        self.lstm = nn.LSTM(
            config.embed_dim,
            config.hidden_dim,
            config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
        )

    @property
    def context_size(self) -> int:
        return 1

    @property
    def output_dim(self) -> int:
        return self.config.hidden_dim

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> LstmPredictorState:
        weight = self.embedding.weight
        shape = (self.config.num_layers, batch_size, self.config.hidden_dim)
        device = weight.device if device is None else device
        return LstmPredictorState(
            torch.zeros(shape, dtype=weight.dtype, device=device),
            torch.zeros(shape, dtype=weight.dtype, device=device),
        )

    def forward(self, y: Tensor) -> Tensor:
        check_shape("predictor tokens", y, ("B", "U"))
        out, _ = self.lstm(self.embed(y), tuple(self.init_state(y.shape[0], y.device)))
        return out

    def step(self, tokens: Tensor, state: NamedTuple) -> tuple[Tensor, LstmPredictorState]:
        check_shape("predictor context", tokens, ("B", 1))
        out, (h, c) = self.lstm(self.embed(tokens), tuple(state))
        return out[:, 0], LstmPredictorState(h, c)


_PREDICTORS: dict[str, type[Predictor]] = {"stateless": StatelessPredictor, "lstm": LstmPredictor}


def build_predictor(config: PredictorConfig, vocab_size: int, blank_id: int) -> Predictor:
    """The predictor config.kind names (kinds are validated by PredictorConfig)."""
    return _PREDICTORS[config.kind](config, vocab_size, blank_id)
