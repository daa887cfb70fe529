"""Long streams stay linear (issue 14): the search never copies a hypothesis per token,
and a result read after every chunk costs the chunk's new tokens, not the whole hypothesis."""

from __future__ import annotations

import math

import numpy as np
import pytest

from asr.runtime.result import BLOCK, RecognitionResult, ResultBuilder, words_of
from asr.runtime.search import SearchOptions, create_searcher
from asr.runtime.token_path import EMPTY_PATH, TokenPath
from asr.runtime.tokens import TokenTable
from test_search import make_backend, random_encoder_out

TABLE = TokenTable(("<blk>", "\u2581a", "b", "\u2581c", "<unk>", "d"))
FRAME_MS = 40.0


def naive(table: TokenTable, path: TokenPath, segment: int, start_frame: int) -> RecognitionResult:
    """The result built from scratch, as the runtime did before it was incremental."""
    ids = path.tokens()
    return RecognitionResult(
        table.decode(ids),
        ids,
        tuple(table.symbols[i] for i in ids),
        tuple((start_frame + t) * FRAME_MS / 1000.0 for t in path.timestamps()),
        segment,
        start_frame * FRAME_MS / 1000.0,
        frame_shift=FRAME_MS / 1000.0,
        ys_probs=tuple(node.log_prob for node in path.nodes()),
    )


def test_token_path_basics() -> None:
    path = EMPTY_PATH.extend(3, 0).extend(1, 2).extend(5, 7)
    assert path.tokens() == (3, 1, 5) and path.timestamps() == (0, 2, 7) and path.length == 3
    assert path.context(2, 0) == (1, 5) and path.context(5, 0) == (0, 0, 3, 1, 5)
    assert EMPTY_PATH.context(2, 0) == (0, 0)
    other = EMPTY_PATH.extend(3, 1).extend(1, 1).extend(5, 1)  # same tokens, other frames, no shared prefix
    assert path.same_tokens(other) and not path.same_tokens(other.previous.extend(4, 9))  # type: ignore[union-attr]


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_search_extends_hypotheses_without_copying(method: str) -> None:
    """Each chunk's best path ends in new nodes on top of an earlier path's nodes, never a copy of them."""
    rng = np.random.default_rng(0)
    backend = make_backend("stateless", rng, blank_bias=-3.0)
    searcher = create_searcher(backend, SearchOptions(method=method, beam=3))
    state = searcher.init_state()
    encoder_out = random_encoder_out(rng, 1, 400)
    seen: set[int] = {id(EMPTY_PATH)}  # every node any earlier best path held
    alive = []  # ...kept referenced: a collected node's id may be reused by a new one, which would look old
    for start in range(0, 400, 4):
        searcher.advance(encoder_out[:, start : start + 4], [state])
        nodes = state.best_path().nodes()
        fresh = [node for node in nodes if id(node) not in seen]
        # The fresh nodes are a suffix: everything before them is shared with an earlier path.
        assert nodes[len(nodes) - len(fresh):] == fresh
        if method == "greedy":
            assert len(fresh) <= 4  # at most one token per frame of the chunk
        seen.update(id(node) for node in nodes)
        alive.extend(nodes)
    assert state.best_path().length > 100


def test_result_reads_cost_new_tokens_only() -> None:
    """Reading after every token: each token materialised once, each read bounded by L / BLOCK + BLOCK."""
    builder = ResultBuilder(TABLE, FRAME_MS, segment=2, start_frame=10)
    path = EMPTY_PATH
    length = 20 * BLOCK
    worst = 0
    for frame in range(length):
        path = path.extend(1 + frame % 5, frame)
        before = builder.copies
        result = builder.result(path)
        worst = max(worst, builder.copies - before)
        assert builder.result(path) is result  # an unchanged path gives the same object, no work
    assert builder.processed == length  # linear: never re-walks what it already holds
    assert worst <= length // BLOCK + BLOCK
    assert result == naive(TABLE, path, 2, 10)


def test_result_follows_beam_switches() -> None:
    """A best path that switches to another branch (beam search) gives the from-scratch result."""
    rng = np.random.default_rng(1)
    builder = ResultBuilder(TABLE, FRAME_MS, segment=0, start_frame=0)
    paths = [EMPTY_PATH]
    for step in range(3 * BLOCK):
        base = paths[int(rng.integers(max(0, len(paths) - 3 * BLOCK // 2), len(paths)))]  # deep switches too
        path = base
        for _ in range(int(rng.integers(0, 4))):
            path = path.extend(int(rng.integers(1, 6)), step)
        paths.append(path)
        assert builder.result(path) == naive(TABLE, path, 0, 0)


def test_result_values_and_immutability() -> None:
    result = RecognitionResult("a b", (1, 2), ("\u2581a", "b"), (0.0, 0.04), 0, 0.0)
    assert result.tokens == ("\u2581a", "b") and result.token_ids == (1, 2) and result.timestamps == (0.0, 0.04)
    assert result == RecognitionResult("a b", [1, 2], ["\u2581a", "b"], [0.0, 0.04], 0, 0.0)
    assert result != RecognitionResult("a b", (1, 2), ("\u2581a", "b"), (0.0, 0.04), 1, 0.0)
    with pytest.raises(AttributeError):
        result.text = "x"  # type: ignore[misc]


# --- words with start and end times (issue 12) ---

B = "\u2581"  # the word boundary


def test_char_words_leave_the_boundary_token_out() -> None:
    """Char tables spell words letter by letter with a "▁" token between them."""
    tokens = [B, "h", "i", B, "<unk>", B, "y", "o", "u", B]
    times = [0.0, 0.08, 0.12, 0.2, 0.3, 0.4, 0.52, 0.56, 0.56, 0.6]  # "o" and "u" on the same frame
    words = words_of(tokens, times, 0.04)
    assert [w.word for w in words] == ["hi", "you"]
    assert [t for w in words for t in (w.start, w.end)] == pytest.approx([0.08, 0.16, 0.52, 0.6], abs=1e-9)


def test_bpe_words_start_at_a_leading_boundary() -> None:
    tokens = [f"{B}he", "llo", f"{B}wor", "ld", B, "s", f"{B}a"]  # a lone "▁" piece starts the word after it
    times = [0.04, 0.08, 0.4, 0.4, 0.6, 0.64, 0.64]
    words = words_of(tokens, times, 0.04)
    assert [w.word for w in words] == ["hello", "world", "s", "a"]
    # "s" ends where "a" starts: both were emitted on one frame.
    times_of = [t for w in words for t in (w.start, w.end)]
    assert times_of == pytest.approx([0.04, 0.12, 0.4, 0.44, 0.64, 0.64, 0.64, 0.68], abs=1e-9)
    # A segment that begins mid-word (no boundary first) still gives a word.
    lo, x = words_of(["lo", f"{B}x"], [1.0, 1.2], 0.04)
    assert (lo.word, x.word) == ("lo", "x") and (lo.end, x.end) == pytest.approx((1.04, 1.24), abs=1e-9)
    assert words_of([], [], 0.04) == () and words_of([B, "<unk>"], [0.0, 0.1], 0.04) == ()


@pytest.mark.parametrize("symbols", [("<blk>", B, "<unk>", "a", "b", "c"), ("<blk>", f"{B}ab", "c", f"{B}c", B, "<unk>")],
                         ids=["char", "bpe"])
def test_words_are_the_words_of_the_text_in_every_result(symbols: tuple[str, ...]) -> None:
    """Through ResultBuilder, on random paths (several tokens per frame too): the words are text.split(),
    in time order, and in the JSON schema."""
    table = TokenTable(symbols)
    builder = ResultBuilder(table, FRAME_MS, 0, 0)
    rng = np.random.default_rng(0)
    path = EMPTY_PATH
    for frame in range(200):
        for _ in range(int(rng.integers(0, 3))):
            path = path.extend(int(rng.integers(1, len(symbols))), frame)
        result = builder.result(path, frame + 1)
        assert [w.word for w in result.words] == result.text.split()
        starts = [w.start for w in result.words]
        assert starts == sorted(starts) and all(w.start <= w.end for w in result.words)
    assert result.to_dict()["words"] == [{"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3),
                                         "confidence": 1.0} for w in result.words]  # log-prob 0 on every token
    assert len(result.words) > 10


def test_ys_probs_and_word_confidence() -> None:
    table = TokenTable(("<blk>", "<unk>", "\u2581", "A", "B"))
    path = EMPTY_PATH.extend(3, 0, math.log(0.9)).extend(4, 1, math.log(0.5)).extend(2, 2, math.log(0.2))
    path = path.extend(4, 3, math.log(0.8))
    result = ResultBuilder(table, FRAME_MS, 0, 0).result(path, 5)
    assert result.ys_probs == pytest.approx((math.log(0.9), math.log(0.5), math.log(0.2), math.log(0.8)), abs=1e-12)
    # The mean of the word's token probabilities; the lone boundary "▁" belongs to no word.
    assert [(w.word, w.confidence) for w in result.words] == [("AB", pytest.approx(0.7)), ("B", pytest.approx(0.8))]
    data = result.to_dict()
    assert data["ys_probs"] == [round(math.log(p), 4) for p in (0.9, 0.5, 0.2, 0.8)]
    assert [w["confidence"] for w in data["words"]] == [0.7, 0.8]
    assert "nbest" not in data
    # Results made without probabilities report no confidence rather than a made-up one.
    assert RecognitionResult("A", (3,), ("A",), (0.0,), 0, 0.0).words[0].confidence is None
