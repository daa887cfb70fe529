"""Hotwords: biased beam search on scripted and random fake models, hotword files and spelling, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asr.errors import ConfigError
from asr.runtime.context_graph import ContextGraph
from asr.runtime.hotwords import HotwordError, build_context_graph, parse_hotwords, read_hotwords, spell
from asr.runtime.search import SearchOptions, create_searcher, log_softmax
from asr.runtime.tokens import BLANK, UNK, TokenTable
from test_search import VOCAB, decode, make_backend, random_chunks, random_encoder_out

BEAM = SearchOptions(method="beam", beam=4)


class ScriptedBackend:
    """The encoder frame is the logits (J = V); the predictor adds nothing: an acoustic script."""

    blank_id = 0
    context_size = 1
    vocab_size = 6
    join_rows_independent = True

    def initial_predictor_state(self, n: int) -> tuple[np.ndarray, ...]:
        return ()

    def predict(self, tokens: np.ndarray, state: tuple[np.ndarray, ...]) -> tuple[np.ndarray, tuple]:
        return np.zeros((len(tokens), self.vocab_size)), ()

    def join(self, encoder_out: np.ndarray, decoder_out: np.ndarray) -> np.ndarray:
        return encoder_out + decoder_out


def script(*frames: dict[int, float]) -> np.ndarray:
    """(1, T, V) logits: each frame's given tokens at their logits, the rest at -5."""
    out = np.full((1, len(frames), ScriptedBackend.vocab_size), -5.0)
    for t, logits in enumerate(frames):
        for token, logit in logits.items():
            out[0, t, token] = logit
    return out


# Says 1 2 then, closely, 4 rather than 3: the acoustically close alternative loses by 0.5.
CLOSE_CALL = script({1: 5.0}, {2: 5.0}, {4: 2.0, 3: 1.5}, {0: 5.0}, {0: 5.0})


def decode_with(graph: ContextGraph | None, encoder_out: np.ndarray, options: SearchOptions = BEAM,
                backend: object | None = None, chunks: list[int] | None = None) -> list:
    searcher = create_searcher(backend or ScriptedBackend(), options)
    states = [searcher.init_state(graph) for _ in range(len(encoder_out))]
    bounds = np.cumsum([0, *(chunks or [encoder_out.shape[1]])])
    for start, end in zip(bounds, bounds[1:]):
        searcher.advance(encoder_out[:, start:end], states)
    return states


def test_boosted_phrase_beats_the_acoustically_close_alternative() -> None:
    plain = decode_with(None, CLOSE_CALL)[0].best()
    assert plain.tokens == (1, 2, 4)
    boosted = decode_with(ContextGraph([((1, 2, 3), 1.0)], 6), CLOSE_CALL)[0].best()
    assert boosted.tokens == (1, 2, 3)
    # The settled score is the acoustic score plus the kept bonus of the full match (3 tokens x 1.0).
    acoustic = sum(log_softmax(CLOSE_CALL[0, t])[token] for t, token in enumerate((1, 2, 3)))
    acoustic += sum(log_softmax(CLOSE_CALL[0, t])[0] for t in (3, 4))
    assert boosted.score == pytest.approx(acoustic + 3.0, abs=1e-9)


def test_unfinished_match_earns_nothing_in_the_ranking() -> None:
    # The boosted phrase 1 2 3 5 is never finished: its pending bonus must not make 1 2 3 win.
    states = decode_with(ContextGraph([((1, 2, 3, 5), 1.0)], 6), CLOSE_CALL)
    best = states[0].best()
    assert best.tokens == (1, 2, 4)
    assert best.score == pytest.approx(decode_with(None, CLOSE_CALL)[0].best().score, abs=1e-9)


@pytest.mark.parametrize("kind", ["stateless", "recurrent"])
def test_empty_hotword_list_changes_nothing(kind: str, rng: np.random.Generator) -> None:
    backend = make_backend(kind, rng)
    encoder_out = random_encoder_out(rng, 2, 25)
    plain = decode(create_searcher(backend, BEAM), encoder_out)
    empty = decode_with(ContextGraph([], VOCAB), encoder_out, backend=backend)
    for a, b in zip(plain, empty):
        assert [p.tokens() for p in a.paths] == [p.tokens() for p in b.paths]
        assert [p.timestamps() for p in a.paths] == [p.timestamps() for p in b.paths]
        assert a.scores.tolist() == b.scores.tolist()  # exactly: adding 0.0 changes no bit


@pytest.mark.parametrize("kind", ["stateless", "recurrent"])
def test_biased_search_streams_as_it_decodes_whole(kind: str, rng: np.random.Generator) -> None:
    backend = make_backend(kind, rng)
    encoder_out = random_encoder_out(rng, 1, 30)
    whole = decode_with(None, encoder_out, backend=backend)[0].best()
    # Boost the unbiased result's own first tokens and a phrase it does not say.
    graph = ContextGraph([(whole.tokens[:2] or (1,), 2.0), ((3, 3, 4), 1.0)], VOCAB)
    expected = decode_with(graph, encoder_out, backend=backend)[0].best()
    for _ in range(3):
        chunked = decode_with(graph, encoder_out, backend=backend, chunks=random_chunks(rng, 30))[0].best()
        assert chunked.tokens == expected.tokens and chunked.timestamps == expected.timestamps
        assert chunked.score == pytest.approx(expected.score, abs=1e-9)


def test_greedy_search_refuses_hotwords() -> None:
    with pytest.raises(ConfigError, match="beam search"):
        create_searcher(ScriptedBackend(), SearchOptions()).init_state(ContextGraph([((1,), 1.0)], 6))


def test_graph_for_another_vocabulary_is_refused() -> None:
    with pytest.raises(ConfigError, match="tokens"):
        create_searcher(ScriptedBackend(), BEAM).init_state(ContextGraph([((1,), 1.0)], 7))


# --- files and spelling ---

CHARS = TokenTable((BLANK, UNK, "\u2581", "'", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
BPE = TokenTable((BLANK, "<sos/eos>", UNK, "\u2581", "\u2581HE", "LLO", "\u2581WOR", "LD", "H", "E", "L", "O", "W", "R",
                  "D"))


def test_spelling_with_char_and_bpe_tables() -> None:
    ids = spell(CHARS, "hello world", "x")
    assert [CHARS.symbols[i] for i in ids] == [*"HELLO", "\u2581", *"WORLD"]  # as CharTokenizer writes text
    assert [BPE.symbols[i] for i in spell(BPE, "Hello World", "x")] == ["\u2581HE", "LLO", "\u2581WOR", "LD"]


def test_hotwords_file_format(tmp_path: Path) -> None:
    path = tmp_path / "hotwords.txt"
    path.write_text("# names\nALICE\n\n  bob smith :2.5\nCAROL:3\n", encoding="utf-8")
    assert [(p, s) for p, s, _ in read_hotwords(path, 1.0)] == [("ALICE", 1.0), ("bob smith", 2.5), ("CAROL", 3.0)]
    assert read_hotwords(path, 1.0)[1][2] == f"{path}:4"


@pytest.mark.parametrize("text, message", [
    ("ALICE\n:2.5\n", "test.txt:2: no phrase"),
    ("ALICE :abc\n", "test.txt:1: score 'abc' is not a number"),
    ("ALICE :inf\n", "not finite"),
    ("ALICE :nan\n", "not finite"),
    ("ALICE :\n", "not a number"),
    ("# only a comment\n\n", "no hotwords"),
])
def test_bad_hotword_lines(text: str, message: str) -> None:
    with pytest.raises(HotwordError, match=message):
        parse_hotwords(text, "test.txt")


def test_unspellable_phrase_names_phrase_and_line() -> None:
    parsed = parse_hotwords("ALICE\nZOË 2\n", "test.txt")
    with pytest.raises(HotwordError, match=r"test.txt:2: hotword 'ZOË 2' has 'Ë'"):
        build_context_graph(CHARS, [(p, s) for p, s, _ in parsed], places=[w for _, _, w in parsed])


def test_bad_api_hotwords() -> None:
    assert build_context_graph(CHARS, []) is None
    with pytest.raises(HotwordError, match="empty"):
        build_context_graph(CHARS, ["  "])
    with pytest.raises(HotwordError, match="not a number"):
        build_context_graph(CHARS, [("ALICE", "x")])  # type: ignore[list-item]
    with pytest.raises(HotwordError, match="not finite"):
        build_context_graph(CHARS, ["ALICE"], float("inf"))
    with pytest.raises(HotwordError, match="hotword 2: hotword 'B@B'"):
        build_context_graph(CHARS, ["ALICE", "B@B"])


@pytest.mark.parametrize("line, message", [
    ("ZOË\n", "hotwords.txt:1: hotword 'ZOË' has 'Ë'"),
    ("ALICE :x\n", "hotwords.txt:1: score 'x' is not a number"),
])
def test_cli_bad_hotwords_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, message: str) -> None:
    import cli

    path = tmp_path / "hotwords.txt"
    path.write_text(line, encoding="utf-8")
    audio = Path(__file__).parent / "data" / "default_model" / "synth-test-9500-3000-0000.flac"
    assert cli.main(["transcribe", "--hotwords", str(path), str(audio)]) == 2
    err = capsys.readouterr().err
    # The shipped model decodes with beam search (and its LM) already: no note that hotwords switched it.
    assert "needs beam search" not in err and message in err
