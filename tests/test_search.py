"""Transducer and CTC search against independent references, on pure-numpy fake models.

Shape legend: N streams, T frames, J joiner dim, V vocab, C context size.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
import pytest

from asr.errors import AsrError, ShapeError
from asr.runtime.search import (
    Hypothesis,
    SearchOptions,
    SearchState,
    Searcher,
    create_searcher,
)
from asr.runtime.beam_search import log_add, top_k
from asr.runtime.ctc import ctc_greedy

VOCAB = 5
JOINER_DIM = 6
SCORE_TOLERANCE = 1e-9  # float64 scores; batching may only change BLAS summation order


class StatelessBackend:
    """Embedding-sum predictor over the last C tokens and a tanh joiner, random weights."""

    blank_id = 0
    join_rows_independent = True

    def __init__(self, rng: np.random.Generator, context_size: int = 2, blank_bias: float = 0.0) -> None:
        self.context_size = context_size
        self.vocab_size = VOCAB
        self.embedding = rng.normal(size=(context_size, VOCAB, JOINER_DIM))  # (C, V, J)
        self.output = rng.normal(size=(JOINER_DIM, VOCAB)) * 2.0  # (J, V)
        self.blank_bias = blank_bias

    def initial_predictor_state(self, n: int) -> tuple[np.ndarray, ...]:
        return ()

    def predict(self, tokens: np.ndarray, state: tuple[np.ndarray, ...]) -> tuple[np.ndarray, tuple]:
        assert tokens.dtype == np.int64 and tokens.shape[1] == self.context_size and state == ()
        summed = sum(self.embedding[k][tokens[:, k]] for k in range(self.context_size))  # (H, J)
        return np.tanh(summed), ()

    def join(self, encoder_out: np.ndarray, decoder_out: np.ndarray) -> np.ndarray:
        logits = np.tanh(encoder_out + decoder_out) @ self.output  # (H, V)
        logits[:, 0] += self.blank_bias
        return logits


class RecurrentBackend(StatelessBackend):
    """A tanh RNN predictor (C = 1) whose state (1, H, hidden) must follow each hypothesis."""

    hidden = 4

    def __init__(self, rng: np.random.Generator, blank_bias: float = 0.0) -> None:
        super().__init__(rng, context_size=1, blank_bias=blank_bias)
        self.input = rng.normal(size=(VOCAB, self.hidden))
        self.recurrent = rng.normal(size=(self.hidden, self.hidden))
        self.projection = rng.normal(size=(self.hidden, JOINER_DIM))

    def initial_predictor_state(self, n: int) -> tuple[np.ndarray, ...]:
        return (np.zeros((1, n, self.hidden)),)

    def predict(self, tokens: np.ndarray, state: tuple[np.ndarray, ...]) -> tuple[np.ndarray, tuple]:
        (h,) = state
        assert tokens.shape == (h.shape[1], 1)
        h = np.tanh(self.input[tokens[:, 0]] + h[0] @ self.recurrent)  # (H, hidden)
        return h @ self.projection, (h[None],)


class CountingBackend:
    """Emits TARGET deterministically: the encoder frame says how many tokens should be out
    by its end, the predictor state counts the tokens emitted so far."""

    blank_id = 0
    context_size = 1
    vocab_size = 6
    join_rows_independent = True
    TARGET = (3, 1, 4, 1, 5, 2)

    def initial_predictor_state(self, n: int) -> tuple[np.ndarray, ...]:
        return (np.zeros((1, n, 1)),)

    def predict(self, tokens: np.ndarray, state: tuple[np.ndarray, ...]) -> tuple[np.ndarray, tuple]:
        count = state[0] + (tokens[:, -1] != 0)[None, :, None]  # (1, H, 1)
        return count[0], (count,)

    def join(self, encoder_out: np.ndarray, decoder_out: np.ndarray) -> np.ndarray:
        count = decoder_out[:, 0].round().astype(int)
        due = count < encoder_out[:, 0]
        logits = np.zeros((len(count), self.vocab_size))
        logits[due, np.array(self.TARGET)[count[due]]] = 10.0
        logits[~due, 0] = 10.0
        return logits


def counting_frames(emissions_per_frame: Sequence[int]) -> np.ndarray:
    """Encoder output (1, T, 1) for CountingBackend from the tokens due at each frame."""
    return np.cumsum(emissions_per_frame, dtype=np.float64)[None, :, None]


def make_backend(kind: str, rng: np.random.Generator, blank_bias: float = 0.0) -> StatelessBackend:
    return StatelessBackend(rng, blank_bias=blank_bias) if kind == "stateless" else RecurrentBackend(rng, blank_bias)


def random_encoder_out(rng: np.random.Generator, n: int, t: int) -> np.ndarray:
    return rng.normal(size=(n, t, JOINER_DIM)).astype(np.float32)


def decode(
    searcher: Searcher,
    encoder_out: np.ndarray,
    chunk_sizes: Sequence[int] | None = None,
    lengths: Sequence[int] | None = None,
) -> list[SearchState]:
    """Decode N streams, feeding the frames in chunks of `chunk_sizes` (default: one chunk)."""
    states = [searcher.init_state() for _ in range(len(encoder_out))]
    bounds = np.cumsum([0, *(chunk_sizes or [encoder_out.shape[1]])])
    assert bounds[-1] == encoder_out.shape[1]
    for start, end in zip(bounds, bounds[1:]):
        chunk_lengths = None if lengths is None else np.clip(np.asarray(lengths) - start, 0, end - start)
        searcher.advance(encoder_out[:, start:end], states, chunk_lengths)
    return states


def random_chunks(rng: np.random.Generator, total: int) -> list[int]:
    """Random chunk sizes summing to `total`, empty chunks included."""
    sizes = []
    while sum(sizes) < total:
        sizes.append(int(min(rng.integers(0, 5), total - sum(sizes))))
    return sizes


def assert_same(a: Hypothesis, b: Hypothesis) -> None:
    assert a.tokens == b.tokens
    assert a.timestamps == b.timestamps
    assert a.score == pytest.approx(b.score, abs=SCORE_TOLERANCE)


# --- independent references: single stream, python loops, predictor rerun from scratch ---


def reference_decoder_out(backend: StatelessBackend, tokens: Sequence[int]) -> np.ndarray:
    """Predictor output after `tokens`, fed one token at a time from the initial state."""
    history = [0] * backend.context_size
    out, state = backend.predict(np.array([history]), backend.initial_predictor_state(1))
    for token in tokens:
        history.append(token)
        out, state = backend.predict(np.array([history[-backend.context_size :]]), state)
    return out


def reference_log_probs(
    backend: StatelessBackend, frame: np.ndarray, tokens: Sequence[int], blank_penalty: float = 0.0
) -> np.ndarray:
    logits = backend.join(frame[None], reference_decoder_out(backend, tokens))[0].astype(np.float64)
    logits[0] -= blank_penalty
    return logits - np.log(np.sum(np.exp(logits - logits.max()))) - logits.max()


def reference_greedy(
    backend: StatelessBackend, frames: np.ndarray, max_symbols: int, blank_penalty: float = 0.0
) -> Hypothesis:
    tokens: list[int] = []
    timestamps: list[int] = []
    score = 0.0
    for t, frame in enumerate(frames):
        for _ in range(max_symbols):
            log_probs = reference_log_probs(backend, frame, tokens, blank_penalty)
            token = int(np.argmax(log_probs))
            score += log_probs[token]
            if token == 0:
                break
            tokens.append(token)
            timestamps.append(t)
    return Hypothesis(tuple(tokens), tuple(timestamps), score)


def brute_force_sequences(
    backend: StatelessBackend, frames: np.ndarray
) -> dict[tuple[int, ...], tuple[float, float, tuple[int, ...]]]:
    """Every alignment with at most one token per frame, grouped by token sequence: sequence ->
    (log-sum of its alignments' probabilities, best alignment's log-prob, its timestamps)."""
    alignments: dict[tuple[int, ...], list[tuple[float, tuple[int, ...]]]] = {}
    for labels in itertools.product(range(backend.vocab_size), repeat=len(frames)):
        tokens: list[int] = []
        timestamps: list[int] = []
        score = 0.0
        for t, (frame, label) in enumerate(zip(frames, labels)):
            score += reference_log_probs(backend, frame, tokens)[label]
            if label:
                tokens.append(label)
                timestamps.append(t)
        alignments.setdefault(tuple(tokens), []).append((score, tuple(timestamps)))
    return {
        tokens: (float(np.logaddexp.reduce([s for s, _ in paths])), *max(paths))
        for tokens, paths in alignments.items()
    }


# --- greedy search ---


@pytest.mark.parametrize("kind", ["stateless", "recurrent"])
@pytest.mark.parametrize("max_symbols", [1, 3])
@pytest.mark.parametrize("blank_penalty", [0.0, 1.5])
def test_greedy_matches_reference(kind: str, max_symbols: int, blank_penalty: float, rng: np.random.Generator) -> None:
    backend = make_backend(kind, rng, blank_bias=-1.0)
    options = SearchOptions(max_symbols_per_frame=max_symbols, blank_penalty=blank_penalty)
    encoder_out = random_encoder_out(rng, 1, 12)
    (state,) = decode(create_searcher(backend, options), encoder_out)
    expected = reference_greedy(backend, encoder_out[0], max_symbols, blank_penalty)
    assert len(expected.tokens) > 0
    assert_same(state.best(), expected)


def test_greedy_honours_max_symbols_per_frame(rng: np.random.Generator) -> None:
    backend = StatelessBackend(rng, blank_bias=-3.0)  # blank rarely wins: frames want many tokens
    encoder_out = random_encoder_out(rng, 1, 10)
    for max_symbols in (1, 2, 4):
        searcher = create_searcher(backend, SearchOptions(max_symbols_per_frame=max_symbols))
        timestamps = decode(searcher, encoder_out)[0].best().timestamps
        per_frame = np.bincount(timestamps, minlength=10)
        assert per_frame.max() == max_symbols  # reached (the blank bias makes sure) and never exceeded
        assert list(timestamps) == sorted(timestamps) and all(0 <= t < 10 for t in timestamps)


class JoinCounting:
    """Wraps a backend and records how many rows each join call gets."""

    def __init__(self, inner: StatelessBackend, rows_independent: bool) -> None:
        self.inner, self.join_rows_independent, self.rows = inner, rows_independent, []
        self.blank_id, self.context_size, self.vocab_size = inner.blank_id, inner.context_size, inner.vocab_size
        self.initial_predictor_state, self.predict = inner.initial_predictor_state, inner.predict

    def join(self, encoder_out: np.ndarray, decoder_out: np.ndarray) -> np.ndarray:
        self.rows.append(len(encoder_out))
        return self.inner.join(encoder_out, decoder_out)


@pytest.mark.parametrize("rows_independent", [True, False])
def test_greedy_joins_blocks_of_frames_unless_rows_depend_on_each_other(
    rows_independent: bool, rng: np.random.Generator
) -> None:
    backend = JoinCounting(StatelessBackend(rng, blank_bias=4.0), rows_independent)
    encoder_out = random_encoder_out(rng, 1, 24)
    (state,) = decode(create_searcher(backend), encoder_out, chunk_sizes=[8, 8, 8])
    assert_same(state.best(), reference_greedy(backend.inner, encoder_out[0], 1))
    emitted = len(state.best().tokens)
    assert 0 < emitted < 12
    if rows_independent:  # one call per chunk plus one per emission at most
        assert len(backend.rows) <= 3 + emitted and max(backend.rows) == 8
    else:  # frame by frame, as a per-call quantization scale needs
        assert backend.rows == [1] * 24


class PredictCounting(StatelessBackend):
    """A stateless backend that records the contexts each predict call gets."""

    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__(rng, blank_bias=-0.5)
        self.contexts: list[tuple[int, ...]] = []

    def predict(self, tokens: np.ndarray, state: tuple[np.ndarray, ...]) -> tuple[np.ndarray, tuple]:
        self.contexts.extend(map(tuple, tokens.tolist()))
        return super().predict(tokens, state)


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_streams_of_one_searcher_share_the_predictor_cache(
    method: str, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = PredictCounting(rng)
    searcher = create_searcher(backend, SearchOptions(method=method))
    encoder_out = random_encoder_out(rng, 1, 20)
    (first,) = decode(searcher, encoder_out)
    called = len(backend.contexts)
    assert called == len(set(backend.contexts)) > 1  # each context computed once
    (second,) = decode(searcher, encoder_out)  # a new stream, the same contexts
    assert len(backend.contexts) == called  # all of them served from the cache
    assert_same(second.best(), first.best())
    # Bounded: with room for 2 contexts the oldest go, and the result does not change.
    monkeypatch.setattr("asr.runtime.search.DECODER_CACHE_SIZE", 2)
    small = create_searcher(backend, SearchOptions(method=method))
    (bounded,) = decode(small, encoder_out)
    assert len(small._decoder_cache) == 2
    assert_same(bounded.best(), first.best())


@pytest.mark.parametrize("method", ["greedy", "beam"])
@pytest.mark.parametrize("kind", ["stateless", "recurrent"])
def test_chunked_equals_one_shot(method: str, kind: str, rng: np.random.Generator) -> None:
    backend = make_backend(kind, rng, blank_bias=-0.5)
    options = SearchOptions(method=method, max_symbols_per_frame=2 if method == "greedy" else 1)
    searcher = create_searcher(backend, options)
    encoder_out = random_encoder_out(rng, 1, 20)
    (whole,) = decode(searcher, encoder_out)
    for _ in range(3):
        (chunked,) = decode(searcher, encoder_out, random_chunks(rng, 20))
        assert_same(chunked.best(), whole.best())
        assert chunked.tokens == whole.tokens and chunked.num_frames == whole.num_frames == 20
        np.testing.assert_allclose(chunked.scores, whole.scores, atol=SCORE_TOLERANCE)


@pytest.mark.parametrize("method", ["greedy", "beam"])
@pytest.mark.parametrize("kind", ["stateless", "recurrent"])
def test_batched_equals_per_stream(method: str, kind: str, rng: np.random.Generator) -> None:
    backend = make_backend(kind, rng, blank_bias=-0.5)
    searcher = create_searcher(backend, SearchOptions(method=method, beam=3))
    encoder_out = random_encoder_out(rng, 3, 15)
    lengths = [15, 9, 0]
    batched = decode(searcher, encoder_out, chunk_sizes=[4, 7, 4], lengths=lengths)
    for stream, length in enumerate(lengths):
        (alone,) = decode(searcher, encoder_out[stream : stream + 1, :length])
        assert batched[stream].num_frames == length
        assert batched[stream].tokens == alone.tokens
        np.testing.assert_allclose(batched[stream].scores, alone.scores, atol=SCORE_TOLERANCE)
        assert_same(batched[stream].best(), alone.best())


# --- modified beam search ---


@pytest.mark.parametrize("kind", ["stateless", "recurrent"])
def test_beam_one_equals_greedy(kind: str, rng: np.random.Generator) -> None:
    backend = make_backend(kind, rng, blank_bias=-0.5)
    encoder_out = random_encoder_out(rng, 2, 16)
    greedy = decode(create_searcher(backend, SearchOptions(blank_penalty=0.5)), encoder_out)
    beam = decode(create_searcher(backend, SearchOptions(method="beam", beam=1, blank_penalty=0.5)), encoder_out)
    for g, b in zip(greedy, beam):
        assert len(g.best().tokens) > 0
        assert_same(b.best(), g.best())


@pytest.mark.parametrize("kind", ["stateless", "recurrent"])
def test_exact_beam_merges_alignments_like_brute_force(kind: str, rng: np.random.Generator) -> None:
    # V=5, T=3: at most 5**3 = 125 (hypothesis, token) pairs per frame, so beam 125 prunes
    # nothing and each hypothesis must carry the log-sum over all of its alignments.
    backend = make_backend(kind, rng)
    encoder_out = random_encoder_out(rng, 1, 3)
    searcher = create_searcher(backend, SearchOptions(method="beam", beam=VOCAB**3))
    (state,) = decode(searcher, encoder_out, chunk_sizes=[2, 1])
    expected = brute_force_sequences(backend, encoder_out[0])
    assert sorted(state.tokens) == sorted(expected)
    # Merging must matter here: some sequence is much likelier than its best alignment alone.
    assert any(total - best > 0.1 for total, best, _ in expected.values())
    for tokens, timestamps, score in zip(state.tokens, state.timestamps, state.scores):
        assert score == pytest.approx(expected[tokens][0], abs=1e-9)
        assert timestamps == expected[tokens][2]  # the merged hypothesis keeps its best path's timing
    assert list(state.scores) == sorted(state.scores, reverse=True)

    # The best sequence's merged probability is at least that of greedy's single path.
    greedy = decode(create_searcher(backend), encoder_out)[0].best()
    best = state.best()
    assert best.score >= greedy.score - SCORE_TOLERANCE  # equal when greedy's path is the only alignment
    assert best.score == pytest.approx(max(total for total, _, _ in expected.values()), abs=1e-9)


def test_beam_keeps_at_most_beam_hypotheses(rng: np.random.Generator) -> None:
    searcher = create_searcher(StatelessBackend(rng), SearchOptions(method="beam", beam=4))
    (state,) = decode(searcher, random_encoder_out(rng, 1, 10))
    assert 1 <= len(state.tokens) <= 4
    assert len(set(state.tokens)) == len(state.tokens)  # merged: no duplicate sequences
    assert state.decoder_out.shape == (len(state.tokens), JOINER_DIM)


@pytest.mark.parametrize("k", [1, 3, 4, 9, 40])
def test_top_k_is_the_stable_descending_sort(k: int, rng: np.random.Generator) -> None:
    for _ in range(50):
        values = rng.integers(-3, 3, size=int(rng.integers(1, 30))).astype(np.float64)  # many ties
        special = rng.random(values.size)
        values[special < 0.15] = -np.inf
        if rng.random() < 0.2:
            values[special > 0.95] = np.nan
        expected = np.argsort(-values, kind="stable")[:k]
        np.testing.assert_array_equal(top_k(values, k), expected)


def test_log_add_is_numpy_logaddexp(rng: np.random.Generator) -> None:
    pairs = [(a, b) for a, b in rng.normal(scale=20.0, size=(200, 2))]
    pairs += [(1.5, 1.5), (-np.inf, 0.0), (-np.inf, -np.inf)]
    for a, b in pairs:
        # math.log1p/exp and numpy's logaddexp may round differently in the last place on some libms.
        assert log_add(float(a), float(b)) == pytest.approx(np.logaddexp(a, b), rel=1e-14, abs=1e-300)


# --- a backend whose output is known in advance ---


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_counting_backend_decodes_its_target(method: str) -> None:
    searcher = create_searcher(CountingBackend(), SearchOptions(method=method))
    emissions = [0, 1, 0, 1, 1, 0, 0, 1, 1, 0, 1, 0, 0]
    (state,) = decode(searcher, counting_frames(emissions), chunk_sizes=[5, 5, 3])
    best = state.best()
    assert best.tokens == CountingBackend.TARGET
    assert best.timestamps == (1, 3, 4, 7, 8, 10)
    assert state.trailing_blank_frames() == 2
    assert best.seconds(subsampling_factor=4) == pytest.approx((0.04, 0.12, 0.16, 0.28, 0.32, 0.40))


def test_counting_backend_two_tokens_in_one_frame() -> None:
    encoder_out = counting_frames([0, 1, 0, 2, 0, 1, 1, 0, 1, 0, 0])
    two = decode(create_searcher(CountingBackend(), SearchOptions(max_symbols_per_frame=2)), encoder_out)[0]
    assert two.best().tokens == CountingBackend.TARGET
    assert two.best().timestamps == (1, 3, 3, 5, 6, 8)
    one = decode(create_searcher(CountingBackend()), encoder_out)[0]
    assert one.best().tokens == CountingBackend.TARGET
    assert one.best().timestamps == (1, 3, 4, 5, 6, 8)  # the second token of frame 3 waits a frame


def test_fresh_state_is_empty() -> None:
    state = create_searcher(CountingBackend()).init_state()
    assert state.best() == Hypothesis((), (), 0.0)
    assert state.num_frames == 0 and state.trailing_blank_frames() == 0


# --- bad input ---


@pytest.mark.parametrize(
    "options",
    [
        dict(method="viterbi"),
        dict(beam=0),
        dict(max_symbols_per_frame=0),
        dict(method="beam", max_symbols_per_frame=2),
    ],
)
def test_bad_options_are_rejected(options: dict) -> None:
    with pytest.raises(AsrError):
        SearchOptions(**options)


def test_bad_shapes_are_rejected(rng: np.random.Generator) -> None:
    searcher = create_searcher(StatelessBackend(rng))
    states = [searcher.init_state(), searcher.init_state()]
    with pytest.raises(ShapeError, match="encoder_out"):
        searcher.advance(random_encoder_out(rng, 3, 4), states)  # three streams of frames, two states
    with pytest.raises(ShapeError, match="encoder_out"):
        searcher.advance(np.zeros((2, 4, JOINER_DIM + 1), np.float32), states)
    with pytest.raises(ShapeError, match="lengths"):
        searcher.advance(random_encoder_out(rng, 2, 4), states, lengths=[4, 5])
    assert [s.num_frames for s in states] == [0, 0]


def test_greedy_rejects_a_beam_state(rng: np.random.Generator) -> None:
    backend = StatelessBackend(rng)
    (beam_state,) = decode(create_searcher(backend, SearchOptions(method="beam")), random_encoder_out(rng, 1, 6))
    assert len(beam_state.tokens) > 1
    with pytest.raises(AsrError, match="init_state"):
        create_searcher(backend).advance(random_encoder_out(rng, 1, 2), [beam_state])


# --- CTC greedy ---


def ctc_log_probs(path: Sequence[int], vocab_size: int = 4) -> np.ndarray:
    """(T, V) log-probs whose best path is `path`, with 0.7 on the path label."""
    probs = np.full((len(path), vocab_size), 0.3 / (vocab_size - 1))
    probs[np.arange(len(path)), path] = 0.7
    return np.log(probs)


@pytest.mark.parametrize(
    "path, tokens, timestamps",
    [
        ([0, 1, 1, 0, 1, 2, 2, 2, 0, 0, 3], (1, 1, 2, 3), (1, 4, 5, 10)),  # blank splits a repeat
        ([2, 2, 2], (2,), (0,)),  # a run collapses to one token
        ([1, 2, 1, 2], (1, 2, 1, 2), (0, 1, 2, 3)),
        ([0, 0, 0], (), ()),
    ],
)
def test_ctc_greedy(path: list[int], tokens: tuple, timestamps: tuple) -> None:
    (hyp,) = ctc_greedy(ctc_log_probs(path))
    assert hyp.tokens == tokens and hyp.timestamps == timestamps
    assert hyp.score == pytest.approx(len(path) * np.log(0.7))


def test_ctc_greedy_batch_with_lengths() -> None:
    paths = [[0, 1, 1, 0, 2], [3, 0, 3, 3, 1]]
    log_probs = np.stack([ctc_log_probs(p) for p in paths])  # (N, T, V)
    first, second = ctc_greedy(log_probs, lengths=[5, 3])
    assert (first.tokens, first.timestamps) == ((1, 2), (1, 4))
    assert (second.tokens, second.timestamps) == ((3, 3), (0, 2))  # frames 3, 4 are padding
    with pytest.raises(ShapeError, match="lengths"):
        ctc_greedy(log_probs, lengths=[5, 6])
    with pytest.raises(ShapeError):
        ctc_greedy(np.zeros(5))
