"""Attention rescoring: the second pass over a segment's n-best, when the segment ends.

The transducer's beam search (asr.runtime.search) keeps a few hypotheses per
stream; at an endpoint the attention decoder (models.attention_decoder, exported as
attention_decoder.onnx) reads the whole segment's encoder frames and scores each
hypothesis as a sequence, and the hypotheses are re-ranked by

    score_h = transducer log-prob_h + weight * attention log P(y_h, eos | frames)

as in WeNet's attention rescoring. It runs once per segment, so its cost is
latency at the endpoint, never per chunk. Written once over numpy against
`AttentionScorer`, which the onnxruntime runtime and the torch evaluation each provide.

Shapes: H hypotheses, U tokens (+1 for sos/eos), T' encoder frames, J joiner dim, V vocab.
"""

from __future__ import annotations

import math
from typing import Protocol, Sequence

import numpy as np

from asr.checks import check_shape
from asr.errors import ConfigError
from asr.runtime.search import SearchState


class AttentionScorer(Protocol):
    """What rescoring needs from a model: the attention decoder's teacher-forced log-probabilities."""

    @property
    def sos_eos(self) -> int:
        """The id that starts and ends every sequence (the blank id)."""

    def log_probs(self, memory: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """memory (1, T', J) float32 encoder frames, tokens (H, U + 1) int64 sos first -> (H, U + 1, V) log-probs."""


def check_weight(weight: float, flag: str = "--rescore-weight") -> float:
    """`weight` if a finite number >= 0; ConfigError naming `flag` otherwise."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
        raise ConfigError(f"{flag} must be a finite number >= 0 (0: no rescoring; 0.3 to 1 is usual), got {weight!r}")
    return float(weight)


def teacher_forcing(hypotheses: Sequence[tuple[int, ...]], sos_eos: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decoder inputs and targets of H token sequences: (inputs (H, U + 1), targets (H, U + 1), lengths (H,)).

    Row h: inputs sos y_1 .. y_U, targets y_1 .. y_U eos; positions past U_h + 1 are
    padding (sos_eos), which the causal decoder never lets change a real position.
    """
    lengths = np.array([len(h) for h in hypotheses], dtype=np.int64)
    width = int(lengths.max(initial=0)) + 1
    inputs = np.full((len(hypotheses), width), sos_eos, dtype=np.int64)
    targets = np.full((len(hypotheses), width), sos_eos, dtype=np.int64)
    for row, tokens in enumerate(hypotheses):
        inputs[row, 1 : len(tokens) + 1] = tokens
        targets[row, : len(tokens)] = tokens
    return inputs, targets, lengths


def attention_scores(scorer: AttentionScorer, memory: np.ndarray, hypotheses: Sequence[tuple[int, ...]]) -> np.ndarray:
    """(H,) float64: log P(y_h followed by eos | memory) under the attention decoder; memory (T', J), T' >= 1."""
    check_shape("segment encoder frames", memory, ("T", "J"))
    inputs, targets, lengths = teacher_forcing(hypotheses, scorer.sos_eos)
    log_probs = scorer.log_probs(np.ascontiguousarray(memory[None], dtype=np.float32), inputs)  # (H, U + 1, V)
    picked = np.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0].astype(np.float64)  # (H, U + 1)
    valid = np.arange(inputs.shape[1]) <= lengths[:, None]  # the tokens and their eos
    return np.where(valid, picked, 0.0).sum(axis=1)


def rescore_state(state: SearchState, memory: np.ndarray, scorer: AttentionScorer, weight: float) -> None:
    """Add weight * attention log-prob to each hypothesis's score, in place, so every ranking follows it.

    For the end of a segment (the search must not go on with these scores). Does
    nothing with fewer than two hypotheses or no frames: there is nothing to re-rank.
    """
    if len(state.paths) < 2 or len(memory) == 0:
        return
    scores = attention_scores(scorer, memory, [path.tokens() for path in state.paths])
    state.scores = state.scores + weight * scores
