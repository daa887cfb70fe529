"""Transducer search (greedy, modified beam) and CTC greedy decoding, over numpy.

Written once, against the narrow `TransducerBackend` interface, so the torch
backend (training, evaluation) and the onnxruntime backend (on-device runtime)
decode with the same code.

Shape legend: N streams, H hypotheses (one row per hypothesis, over all streams
of a call), T encoder frames, J joiner dim, V vocab, C predictor context size.

Streaming: every utterance owns a mutable `SearchState` (from
`Searcher.init_state`) that carries its hypotheses, their cached predictor
outputs and the number of frames consumed; `Searcher.advance` consumes one chunk
of encoder frames for N streams in place. Every frame is processed the same way
whatever chunk it arrives in, so decoding an utterance in one chunk or many gives
the same result.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal, Protocol, Sequence

import numpy as np

from asr.audio import FRAME_SHIFT_MS
from asr.checks import check_shape
from asr.errors import AsrError, ConfigError, ShapeError

# Recurrent predictor state: a tuple of arrays, each with the hypothesis axis H at
# position 1, e.g. LSTM (num_layers, H, hidden). Empty for a stateless predictor.
PredictorState = tuple[np.ndarray, ...]
HYP_AXIS = 1  # the hypothesis axis of every PredictorState array


class TransducerBackend(Protocol):
    """What the search needs from a model: predictor and joiner on numpy arrays.

    The encoder is not part of it: callers run the encoder themselves and pass its
    (already joiner-projected) output to `Searcher.advance`.
    """

    @property
    def blank_id(self) -> int:
        """Id of the blank token (0 in this project)."""

    @property
    def context_size(self) -> int:
        """C: how many previous tokens the predictor reads (1 for an LSTM predictor)."""

    @property
    def vocab_size(self) -> int:
        """V: number of joiner outputs, blank included."""

    def initial_predictor_state(self, n: int) -> PredictorState:
        """State for n fresh hypotheses (H = n on axis 1); () for a stateless predictor."""

    def predict(self, tokens: np.ndarray, state: PredictorState) -> tuple[np.ndarray, PredictorState]:
        """Predictor step: tokens (H, C) int64, blank left-padded, and the state the
        hypotheses had before their newest token -> decoder_out (H, J), joiner-projected,
        and the state after it. A stateless predictor ignores and returns ()."""

    def join(self, encoder_out: np.ndarray, decoder_out: np.ndarray) -> np.ndarray:
        """Joiner: encoder_out (H, J), decoder_out (H, J) -> logits (H, V), not normalised."""


@dataclass(frozen=True)
class SearchOptions:
    """How to search; `create_searcher` picks the algorithm from `method`."""

    method: Literal["greedy", "beam"] = "greedy"  # greedy search, or modified beam search (icefall)
    beam: int = 4  # beam search: hypotheses kept per stream after each frame
    # Greedy search: most tokens emitted per encoder frame. 1 matches sherpa-onnx (its
    # greedy search emits at most one per frame) and icefall's --max-sym-per-frame default;
    # models trained with the pruned RNN-T loss rarely need more. Beam search is always 1.
    max_symbols_per_frame: int = 1
    blank_penalty: float = 0.0  # subtracted from the blank logit first; > 0 trades deletions for insertions

    def __post_init__(self) -> None:
        if self.method not in ("greedy", "beam"):
            raise ConfigError(f"unknown search method {self.method!r}; use 'greedy' or 'beam'")
        if self.beam < 1:
            raise ConfigError(f"beam size {self.beam} is not positive; use 1 or more (4 is usual)")
        if self.max_symbols_per_frame < 1:
            raise ConfigError(
                f"max_symbols_per_frame is {self.max_symbols_per_frame}; use 1 or more "
                "(0 would never emit a token)"
            )
        if self.method == "beam" and self.max_symbols_per_frame != 1:
            raise ConfigError(
                "modified beam search emits at most one symbol per frame; leave "
                "max_symbols_per_frame at 1 or use method='greedy'"
            )


@dataclass(frozen=True)
class Hypothesis:
    """A decoded token sequence with its timing and score."""

    tokens: tuple[int, ...]  # token ids; no blanks, no context padding
    timestamps: tuple[int, ...]  # per token, the encoder frame (counted from the stream start) that emitted it
    # Log-probability of the path: the sum of the log-softmax of every step taken
    # (beam search: log-added over the paths merged into this token sequence).
    score: float

    def seconds(self, subsampling_factor: int, frame_shift_ms: float = FRAME_SHIFT_MS) -> tuple[float, ...]:
        """Token start times in seconds: an encoder frame spans `subsampling_factor` feature frames."""
        step = subsampling_factor * frame_shift_ms / 1000.0
        return tuple(frame * step for frame in self.timestamps)


@dataclass(eq=False)
class SearchState:
    """Mutable search state of one stream, advanced in place by `Searcher.advance`.

    Row h of every field belongs to hypothesis h; greedy search keeps exactly one,
    beam search up to `beam`, sorted by score (best first).
    """

    tokens: list[tuple[int, ...]]  # per hypothesis, the tokens emitted so far
    timestamps: list[tuple[int, ...]]  # per hypothesis, the frame of each token
    scores: np.ndarray  # (H,) float64 log-probabilities
    decoder_out: np.ndarray  # (H, J) predictor output for each hypothesis, cached until it emits
    predictor_state: PredictorState  # H on axis 1: the state after producing decoder_out
    num_frames: int = 0  # encoder frames consumed: the frame index where the next chunk starts

    def best(self) -> Hypothesis:
        """The highest-scoring hypothesis.

        Raw scores, not length-normalised: every hypothesis took exactly one step
        per frame in modified beam search, so their scores are already comparable.
        """
        h = int(np.argmax(self.scores))
        return Hypothesis(self.tokens[h], self.timestamps[h], float(self.scores[h]))

    def trailing_blank_frames(self) -> int:
        """Frames since the best hypothesis last emitted a token (for endpoint rules)."""
        timestamps = self.best().timestamps
        return self.num_frames - (timestamps[-1] + 1 if timestamps else 0)


def concat_states(states: Sequence[PredictorState]) -> PredictorState:
    """Join predictor states along the hypothesis axis (all from the same backend)."""
    return tuple(np.concatenate(arrays, axis=HYP_AXIS) for arrays in zip(*states))


def take_state(state: PredictorState, rows: np.ndarray) -> PredictorState:
    """The hypotheses `rows` (int indices) of a predictor state."""
    return tuple(np.take(array, rows, axis=HYP_AXIS) for array in state)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-softmax over the last axis, in float64 so long paths add up without drift."""
    x = logits.astype(np.float64, copy=False)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def check_lengths(lengths: np.ndarray | Sequence[int] | None, n: int, t: int) -> np.ndarray:
    """Validate per-stream frame counts (None means all T) and return them as int64 (N,)."""
    if lengths is None:
        return np.full(n, t, dtype=np.int64)
    lengths = np.asarray(lengths)
    check_shape("lengths", lengths, (n,))
    if lengths.size and (not np.issubdtype(lengths.dtype, np.integer) or lengths.min() < 0 or lengths.max() > t):
        raise ShapeError(
            f"lengths must be integers in [0, T={t}], got {lengths.tolist()}; pass each "
            "stream's number of valid frames, or None when all T frames are valid"
        )
    return lengths.astype(np.int64)


class Searcher(ABC):
    """One search algorithm bound to a backend and options; stateless itself.

    Create one with `create_searcher`; give each utterance its own `init_state()`.
    """

    def __init__(self, backend: TransducerBackend, options: SearchOptions) -> None:
        self.backend = backend
        self.options = options

    def init_state(self) -> SearchState:
        """A fresh stream: one empty hypothesis whose context is all blanks."""
        blanks = np.full((1, self.backend.context_size), self.backend.blank_id, dtype=np.int64)
        decoder_out, state = self._predict(blanks, self.backend.initial_predictor_state(1))
        return SearchState([()], [()], np.zeros(1), decoder_out, state)

    def advance(
        self,
        encoder_out: np.ndarray,
        states: Sequence[SearchState],
        lengths: np.ndarray | Sequence[int] | None = None,
    ) -> None:
        """Consume one chunk of encoder frames for N streams, updating `states` in place.

        encoder_out: (N, T, J), joiner-projected; stream n is `states[n]`.
        lengths: (N,) valid frames per stream, for padded batches (training-time
        evaluation); None (the runtime's case) means every stream has all T frames.
        Streams are batched: each step makes one join call (and at most one predict
        call) for all of them.
        """
        if not states:
            return
        joiner_dim = states[0].decoder_out.shape[1]
        check_shape("encoder_out", encoder_out, (len(states), "T", joiner_dim))
        lengths = check_lengths(lengths, len(states), encoder_out.shape[1])
        self._advance(encoder_out, list(states), lengths)
        for state, length in zip(states, lengths.tolist()):
            state.num_frames += length

    @abstractmethod
    def _advance(self, encoder_out: np.ndarray, states: list[SearchState], lengths: np.ndarray) -> None:
        """The algorithm: consume frames t < lengths[n] of encoder_out (N, T, J) into states[n]."""

    def _log_probs(self, encoder_out: np.ndarray, decoder_out: np.ndarray) -> np.ndarray:
        """Joiner then blank penalty then log-softmax: (H, J), (H, J) -> (H, V) float64."""
        logits = self.backend.join(encoder_out, decoder_out)
        check_shape("joiner output", logits, (len(encoder_out), self.backend.vocab_size))
        logits = logits.astype(np.float64)  # a copy: the penalty must not write into the backend's buffer
        logits[:, self.backend.blank_id] -= self.options.blank_penalty
        return log_softmax(logits)

    def _predict(self, tokens: np.ndarray, state: PredictorState) -> tuple[np.ndarray, PredictorState]:
        decoder_out, new_state = self.backend.predict(tokens, state)
        check_shape("decoder_out", decoder_out, (len(tokens), "J"))
        return decoder_out, tuple(new_state)

    def _contexts(self, sequences: Sequence[tuple[int, ...]]) -> np.ndarray:
        """Predictor input for each token sequence: its last C tokens, blank left-padded -> (H, C)."""
        size = self.backend.context_size
        contexts = np.full((len(sequences), size), self.backend.blank_id, dtype=np.int64)
        for row, sequence in enumerate(sequences):
            tail = sequence[-size:]
            contexts[row, size - len(tail):] = tail
        return contexts

    def _next_predictor(
        self,
        decoder_out: np.ndarray,
        state: PredictorState,
        parents: np.ndarray,
        emitted: np.ndarray,
        sequences: Sequence[tuple[int, ...]],
    ) -> tuple[np.ndarray, PredictorState]:
        """Predictor outputs and states of the next hypotheses, with one predict call.

        decoder_out (H, J) and state belong to the current hypotheses. Next hypothesis i
        extends current row parents[i] (H',); where emitted[i] (H',) it added a token and
        needs a fresh prediction (`sequences` holds those token sequences, in order),
        elsewhere it emitted blank and reuses its parent's cached output and state.
        """
        rows = parents.copy()
        if emitted.any():
            new_out, new_state = self._predict(self._contexts(sequences), take_state(state, parents[emitted]))
            rows[emitted] = len(decoder_out) + np.arange(len(new_out))  # fresh rows follow the current H
            decoder_out = np.concatenate([decoder_out, new_out])  # (H + E, J)
            state = concat_states([state, new_state])
        return decoder_out[rows], take_state(state, rows)


class GreedySearcher(Searcher):
    """Per frame, emit the argmax token until blank or `max_symbols_per_frame` tokens."""

    def _advance(self, encoder_out: np.ndarray, states: list[SearchState], lengths: np.ndarray) -> None:
        for state in states:
            if len(state.tokens) != 1:
                raise AsrError(
                    f"greedy search got a state with {len(state.tokens)} hypotheses; create "
                    "states with this searcher's init_state()"
                )
        blank = self.backend.blank_id
        tokens = [state.tokens[0] for state in states]
        timestamps = [state.timestamps[0] for state in states]
        scores = np.array([state.scores[0] for state in states])  # (N,)
        decoder_out = np.concatenate([state.decoder_out for state in states])  # (N, J)
        predictor_state = concat_states([state.predictor_state for state in states])
        for t in range(encoder_out.shape[1]):
            rows = np.flatnonzero(lengths > t)  # streams still decoding this frame
            for _ in range(self.options.max_symbols_per_frame):
                if rows.size == 0:
                    break
                log_probs = self._log_probs(encoder_out[rows, t], decoder_out[rows])  # (A, V)
                best = log_probs.argmax(axis=1)
                scores[rows] += log_probs[np.arange(rows.size), best]
                rows, best = rows[best != blank], best[best != blank]
                for row, token in zip(rows.tolist(), best.tolist()):
                    tokens[row] += (token,)
                    timestamps[row] += (states[row].num_frames + t,)
                if rows.size:
                    emitted = np.zeros(len(states), dtype=bool)
                    emitted[rows] = True
                    decoder_out, predictor_state = self._next_predictor(
                        decoder_out, predictor_state, np.arange(len(states)), emitted, [tokens[r] for r in rows]
                    )
        for n, state in enumerate(states):
            state.tokens, state.timestamps = [tokens[n]], [timestamps[n]]
            state.scores = scores[n : n + 1]
            state.decoder_out = decoder_out[n : n + 1]
            state.predictor_state = take_state(predictor_state, np.array([n]))


@dataclass
class _Candidate:
    """A hypothesis of the next frame while beam search builds it (mutable: merging adds score)."""

    tokens: tuple[int, ...]
    timestamps: tuple[int, ...]
    score: float
    parent: int  # row of the current hypothesis it extends, over all streams
    emitted: bool  # whether it extends its parent by a token (needs a predictor call)


class BeamSearcher(Searcher):
    """Modified beam search: at most one token per frame, `beam` hypotheses per stream.

    Per frame, every (hypothesis, token) pair of a stream is scored, the best
    `beam` are kept, and those with equal token sequences are merged by
    log-adding their scores (they are the same output reached by different
    alignments). One join and at most one predict call per frame cover every
    hypothesis of every stream.
    """

    def _advance(self, encoder_out: np.ndarray, states: list[SearchState], lengths: np.ndarray) -> None:
        for t in range(encoder_out.shape[1]):
            active = [n for n in range(len(states)) if lengths[n] > t]
            if not active:
                break
            self._step([states[n] for n in active], encoder_out[active, t], t)

    def _step(self, states: list[SearchState], encoder_frame: np.ndarray, t: int) -> None:
        """Advance `states` by frame t of the chunk; encoder_frame is (N, J)."""
        counts = [len(state.tokens) for state in states]
        decoder_out = np.concatenate([state.decoder_out for state in states])  # (H, J)
        predictor_state = concat_states([state.predictor_state for state in states])
        encoder_rows = np.repeat(encoder_frame, counts, axis=0)  # (H, J)
        scores = np.concatenate([state.scores for state in states])  # (H,)
        totals = scores[:, None] + self._log_probs(encoder_rows, decoder_out)  # (H, V)

        starts = np.cumsum([0] + counts)
        kept = [
            self._prune(state, totals[start:end], start, state.num_frames + t)
            for state, start, end in zip(states, starts, starts[1:])
        ]
        candidates = [c for stream in kept for c in stream]
        decoder_out, predictor_state = self._next_predictor(
            decoder_out,
            predictor_state,
            np.array([c.parent for c in candidates], dtype=np.int64),
            np.array([c.emitted for c in candidates], dtype=bool),
            [c.tokens for c in candidates if c.emitted],
        )
        first = 0
        for state, stream in zip(states, kept):
            last = first + len(stream)
            state.tokens = [c.tokens for c in stream]
            state.timestamps = [c.timestamps for c in stream]
            state.scores = np.array([c.score for c in stream])
            state.decoder_out = decoder_out[first:last]
            state.predictor_state = take_state(predictor_state, np.arange(first, last))
            first = last

    def _prune(self, state: SearchState, totals: np.ndarray, first_row: int, frame: int) -> list[_Candidate]:
        """The best `beam` extensions of one stream, merged by token sequence, best first.

        totals: (H_s, V) score of each (hypothesis, token) pair; first_row: the row of
        the stream's hypothesis 0 over all streams; frame: the timestamp of new tokens.
        """
        blank, vocab_size = self.backend.blank_id, totals.shape[1]
        flat = totals.ravel()
        # A stable sort keeps ties in (hypothesis, token) order, so results never depend on batching.
        top = np.argsort(-flat, kind="stable")[: self.options.beam]
        merged: dict[tuple[int, ...], _Candidate] = {}
        for index in top.tolist():
            parent, token = divmod(index, vocab_size)
            tokens, timestamps = state.tokens[parent], state.timestamps[parent]
            if token != blank:
                tokens, timestamps = tokens + (token,), timestamps + (frame,)
            score = float(flat[index])
            if tokens in merged:
                # Candidates come best first, so the merged one keeps its best path's timestamps.
                merged[tokens].score = float(np.logaddexp(merged[tokens].score, score))
            else:
                merged[tokens] = _Candidate(tokens, timestamps, score, first_row + parent, token != blank)
        return sorted(merged.values(), key=lambda c: -c.score)


def create_searcher(backend: TransducerBackend, options: SearchOptions = SearchOptions()) -> Searcher:
    """The searcher that `options.method` names, bound to `backend`."""
    searchers: dict[str, type[Searcher]] = {"greedy": GreedySearcher, "beam": BeamSearcher}
    return searchers[options.method](backend, options)


def ctc_greedy(
    log_probs: np.ndarray,
    lengths: np.ndarray | Sequence[int] | None = None,
    blank_id: int = 0,
) -> list[Hypothesis]:
    """Best-path CTC decoding: per-frame argmax, repeats collapsed, blanks dropped.

    log_probs: (N, T, V) or (T, V) CTC head log-probabilities; lengths: (N,) valid
    frames per utterance (None: all T). Returns N hypotheses; a token's timestamp is
    the first frame of its run, its score the summed best log-prob of the frames.
    """
    if getattr(log_probs, "ndim", None) == 2:
        log_probs = log_probs[None]  # (T, V) -> (1, T, V)
    check_shape("log_probs", log_probs, ("N", "T", "V"))
    lengths = check_lengths(lengths, log_probs.shape[0], log_probs.shape[1])
    best = log_probs.argmax(axis=-1)  # (N, T)
    best_scores = np.take_along_axis(log_probs, best[..., None], axis=-1)[..., 0]  # (N, T)
    hypotheses = []
    for path, path_scores, length in zip(best, best_scores, lengths.tolist()):
        path = path[:length]
        starts_run = np.ones(length, dtype=bool)
        starts_run[1:] = path[1:] != path[:-1]
        frames = np.flatnonzero(starts_run & (path != blank_id))
        score = float(path_scores[:length].sum(dtype=np.float64))
        hypotheses.append(Hypothesis(tuple(path[frames].tolist()), tuple(frames.tolist()), score))
    return hypotheses
