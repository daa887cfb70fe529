"""Transducer search over numpy: the interfaces, hypotheses and streaming state every searcher shares.

The searchers build on it: greedy in asr.runtime.greedy_search, modified beam in
asr.runtime.beam_search (create_searcher picks one); CTC greedy decoding is asr.runtime.ctc.

Written once, against the narrow `TransducerBackend` interface (and `LanguageModel`
for LM fusion), so the torch backend (training, evaluation) and the onnxruntime
backend (on-device runtime) decode with the same code.

Shape legend: N streams, H hypotheses (one row per hypothesis, over all streams
of a call), T encoder frames, J joiner dim, V vocab, C predictor context size.

Streaming: every utterance owns a mutable `SearchState` (from
`Searcher.init_state`) that carries its hypotheses, their cached predictor
outputs and the number of frames consumed; `Searcher.advance` consumes one chunk
of encoder frames for N streams in place. Every frame is processed the same way
whatever chunk it arrives in, so decoding an utterance in one chunk or many gives
the same result. Each hypothesis's tokens are an asr.runtime.token_path.TokenPath,
shared with the hypotheses it grew from.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal, Protocol, Sequence

import numpy as np

from asr.audio import FRAME_SHIFT_MS
from asr.checks import check_shape
from asr.errors import ConfigError, ShapeError
from asr.runtime.context_graph import ROOT, ContextGraph
from asr.runtime.token_path import EMPTY_PATH, TokenPath

# Shallow-fusion weight of an LM that comes without a fusion.json (the shipped LM's own settings are in
# its fusion.json). 0.5 was the best on synth-dev in session 7, for that session's shipped model and a
# 0.31M-parameter LSTM LM; a new pair is best measured with tests/benchmarks/lm_fusion.py.
DEFAULT_LM_SCALE = 0.5
DECODER_CACHE_SIZE = 1024  # contexts a searcher remembers for all its streams; the oldest goes first
# Cached stateless predictor outputs: context (C tokens) -> (1, J).
DecoderCache = dict[tuple[int, ...], np.ndarray]

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

    @property
    def join_rows_independent(self) -> bool:
        """Whether `join` computes each row independently of the other rows of the call.

        False for an int8 joiner from before issue 14 (it picks one input scale per
        call): greedy search then joins one frame per call, so its result stays the
        frame-by-frame one. True lets it score a block of frames in one call.
        """

    def join(self, encoder_out: np.ndarray, decoder_out: np.ndarray) -> np.ndarray:
        """Joiner: encoder_out (H, J), decoder_out (H, J) -> logits (H, V), not normalised."""


class LanguageModel(Protocol):
    """What shallow fusion needs from a token LM (asr.runtime.lm.OnnxLm, asr.training.lm_train.TorchLm).

    Its state is a tuple of arrays with the hypothesis axis H at HYP_AXIS, like a PredictorState.
    """

    @property
    def vocab_size(self) -> int:
        """V: the transducer's, blank included."""

    @property
    def boundary_id(self) -> int:
        """The sentence-start token fed first (the transducer's blank)."""

    def initial_state(self, n: int) -> PredictorState:
        """The state before any token, for n hypotheses."""

    def step(self, tokens: np.ndarray, state: PredictorState) -> tuple[np.ndarray, PredictorState]:
        """tokens (H,) int64 after `state` -> log-probabilities of the next token (H, V), the new state."""


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
    # Shallow fusion (beam search with a LanguageModel): each token's score gains lm_scale times the LM's
    # log-probability of it; the blank gains nothing. 0 keeps the LM's calls but changes no score.
    lm_scale: float = DEFAULT_LM_SCALE

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
        if not (math.isfinite(self.lm_scale) and self.lm_scale >= 0):
            raise ConfigError(f"the LM scale (--lm-scale) must be a finite number >= 0, got {self.lm_scale}; "
                              f"0 leaves the scores as they are, {DEFAULT_LM_SCALE} is the default")
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

    paths: list[TokenPath]  # per hypothesis, the tokens emitted so far and their frames
    scores: np.ndarray  # (H,) float64 log-probabilities
    decoder_out: np.ndarray  # (H, J) predictor output for each hypothesis, cached until it emits
    predictor_state: PredictorState  # H on axis 1: the state after producing decoder_out
    num_frames: int = 0  # encoder frames consumed: the frame index where the next chunk starts
    # Hotwords (beam search only): the stream's graph and each hypothesis's state in it. The
    # scores include the bonuses earned so far, pending ones too (so a half-spoken hotword
    # survives pruning); ranking for results takes the pending part out (`settled_scores`).
    context_graph: ContextGraph | None = None
    contexts: list[int] | None = None  # (H,) graph states; None without a graph
    # LM fusion (beam search with a LanguageModel): each hypothesis's LM state after its tokens, and
    # lm_scale times the LM's log-probabilities of the token after them, blank column 0: (H, V).
    lm_state: PredictorState = ()
    lm_scores: np.ndarray | None = None

    def settled_scores(self) -> np.ndarray:
        """(H,) scores less the bonus of unfinished hotword matches: what results are ranked by.

        Without hotwords, `scores` itself. Raw scores, not length-normalised: every
        hypothesis took exactly one step per frame in modified beam search, so their
        scores are already comparable.
        """
        if self.context_graph is None or self.contexts is None:
            return self.scores
        pending = self.context_graph.pending
        return self.scores - np.array([pending(state) for state in self.contexts])

    def best(self) -> Hypothesis:
        """The highest-ranked hypothesis (see settled_scores), with its settled score."""
        scores = self.settled_scores()
        h = int(np.argmax(scores))
        path = self.paths[h]
        return Hypothesis(path.tokens(), path.timestamps(), float(scores[h]))

    def best_path(self) -> TokenPath:
        """The highest-ranked hypothesis's path: O(H), where best() is O(tokens)."""
        return self.paths[int(np.argmax(self.settled_scores()))]

    def ranked(self) -> list[tuple[TokenPath, float]]:
        """Every hypothesis with its settled score, best first (n-best lists)."""
        scores = self.settled_scores()
        order = np.argsort(-scores, kind="stable")
        return [(self.paths[h], float(scores[h])) for h in order.tolist()]

    @property
    def tokens(self) -> list[tuple[int, ...]]:
        """Per hypothesis, its tokens (materialised: O(tokens))."""
        return [path.tokens() for path in self.paths]

    @property
    def timestamps(self) -> list[tuple[int, ...]]:
        """Per hypothesis, the frame of each token (materialised: O(tokens))."""
        return [path.timestamps() for path in self.paths]

    def trailing_blank_frames(self) -> int:
        """Frames since the best hypothesis last emitted a token (for endpoint rules)."""
        return self.num_frames - (self.best_path().frame + 1)


def concat_states(states: Sequence[PredictorState]) -> PredictorState:
    """Join predictor states along the hypothesis axis (all from the same backend)."""
    return tuple(np.concatenate(arrays, axis=HYP_AXIS) for arrays in zip(*states))


def take_state(state: PredictorState, rows: np.ndarray | list[int]) -> PredictorState:
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
    """One search algorithm bound to a backend and options.

    Create one with `create_searcher`; give each utterance its own `init_state()`.
    Its only state is a cache of the stateless predictor's outputs by context
    (common contexts recur constantly, in beam search most of all), shared by all
    its streams: an output depends on the context and the weights alone, and the
    weights must not change while a searcher is in use. Sharing is what makes the
    cache pay on many short streams (a server's, a benchmark's), where a
    per-stream cache would start cold on every utterance.
    """

    def __init__(self, backend: TransducerBackend, options: SearchOptions, lm: LanguageModel | None = None) -> None:
        self.backend = backend
        self.options = options
        self.lm = lm
        self._decoder_cache: DecoderCache = {}
        if lm is not None:
            self._check_lm(lm)

    def _check_lm(self, lm: LanguageModel) -> None:
        if lm.vocab_size != self.backend.vocab_size:
            raise ConfigError(
                f"the LM scores {lm.vocab_size} tokens but the model has {self.backend.vocab_size}; "
                "train the LM with this model's tokens (asr train-lm --tokens MODEL_DIR)"
            )

    def init_state(self, context_graph: ContextGraph | None = None) -> SearchState:
        """A fresh stream: one empty hypothesis whose context is all blanks; hotwords in `context_graph`."""
        if context_graph is not None:
            self._check_graph(context_graph)
        state = self.backend.initial_predictor_state(1)
        if state:
            blanks = np.full((1, self.backend.context_size), self.backend.blank_id, dtype=np.int64)
            decoder_out, state = self._predict(blanks, state)
        else:
            decoder_out, state = self._predict_grown([EMPTY_PATH], ())
        contexts = None if context_graph is None else [ROOT]
        search = SearchState([EMPTY_PATH], np.zeros(1), decoder_out, state, 0, context_graph, contexts)
        if self.lm is not None:
            boundary = np.array([self.lm.boundary_id], dtype=np.int64)
            search.lm_scores, search.lm_state = self._lm_step(boundary, self.lm.initial_state(1))
        return search

    def _lm_step(self, tokens: np.ndarray, state: PredictorState) -> tuple[np.ndarray, PredictorState]:
        """The LM after `tokens` (H,): the fused scores of every next token (H, V), blank 0, and its state."""
        assert self.lm is not None  # only called by searchers made with an LM
        log_probs, new_state = self.lm.step(tokens, state)
        check_shape("LM log_probs", log_probs, (len(tokens), self.backend.vocab_size))
        scores = self.options.lm_scale * log_probs.astype(np.float64)
        scores[:, self.backend.blank_id] = 0.0  # blank is the transducer's business, not a token of the text
        return scores, tuple(new_state)

    def _check_graph(self, graph: ContextGraph) -> None:
        if graph.vocab_size != self.backend.vocab_size or graph.blank_id != self.backend.blank_id:
            raise ConfigError(
                f"the hotword graph was built for {graph.vocab_size} tokens (blank {graph.blank_id}) but the "
                f"model has {self.backend.vocab_size} (blank {self.backend.blank_id}); build it with this model's tokens"
            )

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

    def _logits(self, encoder_out: np.ndarray, decoder_out: np.ndarray) -> np.ndarray:
        """Joiner then blank penalty: (H, J), (H, J) -> (H, V), float64 once penalised.

        Without a penalty the backend's dtype is kept: its argmax is the float64 one,
        and log_softmax converts later.
        """
        logits = self.backend.join(encoder_out, decoder_out)
        check_shape("joiner output", logits, (len(encoder_out), self.backend.vocab_size))
        if self.options.blank_penalty:
            logits = logits.astype(np.float64)  # a copy: the penalty must not write into the backend's buffer
            logits[:, self.backend.blank_id] -= self.options.blank_penalty
        return logits

    def _log_probs(self, encoder_out: np.ndarray, decoder_out: np.ndarray) -> np.ndarray:
        """Joiner then blank penalty then log-softmax: (H, J), (H, J) -> (H, V) float64."""
        return log_softmax(self._logits(encoder_out, decoder_out))

    def _predict(self, tokens: np.ndarray, state: PredictorState) -> tuple[np.ndarray, PredictorState]:
        decoder_out, new_state = self.backend.predict(tokens, state)
        check_shape("decoder_out", decoder_out, (len(tokens), "J"))
        return decoder_out, tuple(new_state)

    def _predict_grown(self, paths: Sequence[TokenPath], state: PredictorState
                       ) -> tuple[np.ndarray, PredictorState]:
        """Predictor outputs (E, J) and states of E hypotheses that each just added a token.

        paths: their token paths (E); state: their parents' predictor states (H = E).
        A stateless predictor's output depends on the last C tokens alone, so it comes
        from the searcher's cache where it can.
        """
        size, blank = self.backend.context_size, self.backend.blank_id
        contexts = [path.context(size, blank) for path in paths]
        if state:
            return self._predict(np.array(contexts, dtype=np.int64), state)
        cache = self._decoder_cache
        if len(contexts) == 1 and contexts[0] in cache:  # greedy search on one stream, warm: most calls
            return cache[contexts[0]], ()
        found = {context: cache.get(context) for context in contexts}  # (1, J) each, None where missing
        missing = [context for context, row in found.items() if row is None]  # each context once
        if missing:
            outputs, _ = self._predict(np.array(missing, dtype=np.int64), ())
            for k, context in enumerate(missing):
                found[context] = outputs[k : k + 1]  # (1, J), so rows concatenate without reshaping
                if len(cache) >= DECODER_CACHE_SIZE:
                    # Dicts keep insertion order: this is the oldest. pop with a default, as
                    # a stream on another thread may have evicted the same one just now.
                    cache.pop(next(iter(cache)), None)
                cache[context] = found[context]
        rows = [found[context] for context in contexts]
        return (rows[0] if len(rows) == 1 else np.concatenate(rows)), ()


def put_state(state: PredictorState, rows: np.ndarray | list[int], new: PredictorState) -> PredictorState:
    """`state` with hypotheses `rows` replaced by `new` (a copy; () stays ())."""
    replaced = []
    for array, values in zip(state, new):
        array = array.copy()
        array[:, rows] = values  # HYP_AXIS
        replaced.append(array)
    return tuple(replaced)


def create_searcher(backend: TransducerBackend, options: SearchOptions = SearchOptions(),
                    lm: LanguageModel | None = None) -> Searcher:
    """The searcher that `options.method` names, bound to `backend` (and fusing `lm`: beam search only)."""
    # Both build on this module, so they are imported here.
    from asr.runtime.beam_search import BeamSearcher
    from asr.runtime.greedy_search import GreedySearcher

    searchers: dict[str, type[Searcher]] = {"greedy": GreedySearcher, "beam": BeamSearcher}
    return searchers[options.method](backend, options, lm)
