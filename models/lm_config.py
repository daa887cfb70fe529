"""The shape of a token LM (models.lm), torch-free so that command-line parsing can name the kinds.

Saved inside the LM's checkpoint and its lm.onnx metadata, and rebuilt from them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from asr.errors import ConfigError

LM_KINDS = ("transformer", "lstm")


@dataclass(frozen=True)
class LmConfig:
    """One LM's shape; saved inside its checkpoint and rebuilt from it."""

    kind: Literal["transformer", "lstm"] = "transformer"  # causal Transformer or LSTM
    vocab_size: int = 30  # V: the transducer's tokens, blank (the sentence boundary) included
    dim: int = 128  # D: embedding and hidden size
    num_layers: int = 2  # L
    num_heads: int = 4  # transformer: attention heads (dim must divide by it)
    context: int = 64  # W, transformer: tokens each position attends to, itself included
    dropout: float = 0.1  # training only
    boundary_id: int = 0  # BOS/EOS: the transducer's blank

    def __post_init__(self) -> None:
        if self.kind not in LM_KINDS:
            raise ConfigError(f"unknown LM kind {self.kind!r}; use one of {', '.join(LM_KINDS)}")
        for name in ("vocab_size", "dim", "num_layers", "num_heads", "context"):
            if getattr(self, name) < 1:
                raise ConfigError(f"LM {name} must be at least 1, got {getattr(self, name)}")
        if self.kind == "transformer" and self.dim % self.num_heads:
            raise ConfigError(f"LM dim {self.dim} does not divide into {self.num_heads} heads; pick a multiple")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"LM dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LmConfig:
        return cls(**data)
