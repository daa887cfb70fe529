"""The word list beside the LM (asr.runtime.lexicon): the trie, the charge of every token sequence against a
brute-force count of its non-words, and the bad word files."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pytest

import cli
from asr.audio import load
from asr.errors import ModelFilesError
from asr.runtime import Recognizer
from asr.runtime.default_model import DEFAULT_LM_DIR, DEFAULT_MODEL_DIR
from asr.runtime.lexicon import OUTSIDE, ROOT, WORDS_FILE, Lexicon, LexiconLm, read_word_counts
from asr.runtime.lm import FusionSettings
from asr.runtime.search import PredictorState
from asr.runtime.search_flags import resolve_fusion
from asr.runtime.tokens import WORD_BOUNDARY, TokenTable
from test_runtime import transcribe

WORDS = ("A", "AN", "AND", "ANT", "DO", "DON'T", "TO", "TOE", "TOLD")
CHARS = ("<blk>", "<unk>", WORD_BOUNDARY, "'", "A", "D", "E", "L", "N", "O", "T", "X")
PIECES = ("<blk>", "<unk>", f"{WORD_BOUNDARY}A", f"{WORD_BOUNDARY}TO", "ND", "N", "T", "E", "LD", "X", WORD_BOUNDARY,
          "O", f"{WORD_BOUNDARY}DO", "N'T")
PENALTY = 2.5


class SilentLm:
    """A LanguageModel whose every log-probability is 0, so a LexiconLm's scores are its charges alone."""

    boundary_id = 0

    def __init__(self, vocab_size: int) -> None:
        self.vocab_size = vocab_size

    def initial_state(self, n: int) -> PredictorState:
        return (np.zeros((1, n)),)

    def step(self, tokens: np.ndarray, state: PredictorState) -> tuple[np.ndarray, PredictorState]:
        return np.zeros((len(tokens), self.vocab_size)), state


def table_of(symbols: tuple[str, ...]) -> TokenTable:
    return TokenTable.parse("".join(f"{s} {i}\n" for i, s in enumerate(symbols)), "test")


def brute_force_non_words(symbols: tuple[str, ...], tokens: list[int]) -> int:
    """Words of the text that are not lexicon words; the last one only if no lexicon word starts with it."""
    text = "".join("\0" if symbols[t] == "<unk>" else symbols[t] for t in tokens)  # <unk>: in no word
    *complete, last = text.split(WORD_BOUNDARY)
    charged = sum(1 for word in complete if word and word not in WORDS)
    return charged + int(bool(last) and not any(word.startswith(last) for word in WORDS))


def charges_along(lm: LexiconLm, tokens: list[int]) -> list[float]:
    """What each token of the sequence was charged: the score the LM gave it one step before."""
    scores, state = lm.step(np.array([lm.boundary_id]), lm.initial_state(1))
    charged = []
    for token in tokens:
        charged.append(float(scores[0, token]))
        scores, state = lm.step(np.array([token]), state)
    return charged


def test_the_trie_holds_its_words_and_their_prefixes() -> None:
    lexicon = Lexicon(WORDS)
    assert lexicon.num_words == len(WORDS)
    assert all(word in lexicon for word in WORDS)
    assert "TOL" not in lexicon and "ANDT" not in lexicon and "" not in lexicon
    node = lexicon.child(lexicon.child(ROOT, "T"), "O")
    assert lexicon.is_word(node) and lexicon.child(node, "X") == OUTSIDE and lexicon.child(OUTSIDE, "A") == OUTSIDE


@pytest.mark.parametrize("symbols", [CHARS, PIECES], ids=["chars", "pieces"])
def test_every_sequence_is_charged_once_per_non_word(symbols: tuple[str, ...]) -> None:
    table = table_of(symbols)
    lm = LexiconLm(SilentLm(table.vocab_size), Lexicon(WORDS), table, PENALTY)
    rng = np.random.default_rng(0)
    for _ in range(400):
        tokens = rng.integers(1, len(symbols), size=int(rng.integers(1, 12))).tolist()  # never blank
        charged = charges_along(lm, tokens)
        assert sum(charged) == pytest.approx(-PENALTY * brute_force_non_words(symbols, tokens)), tokens
        assert all(c in (0.0, -PENALTY, -2 * PENALTY) for c in charged)


def test_lexicon_words_cost_nothing_and_a_non_word_pays_where_it_leaves() -> None:
    table = table_of(CHARS)
    lm = LexiconLm(SilentLm(table.vocab_size), Lexicon(WORDS), table, PENALTY)
    ids = {s: i for i, s in enumerate(CHARS)}
    spell = lambda text: [ids[WORD_BOUNDARY if c == " " else c] for c in text]  # noqa: E731
    assert charges_along(lm, spell("DON'T TOLD AN ANT")) == [0.0] * 17
    # TOX leaves at X and pays once, however long it goes on; TOL is a prefix until the boundary after it.
    assert charges_along(lm, spell("TOXXX TOL A")) == [0, 0, -PENALTY, 0, 0, 0, 0, 0, 0, -PENALTY, 0]


def test_hypotheses_carry_their_own_trie_node() -> None:
    table = table_of(CHARS)
    lm = LexiconLm(SilentLm(table.vocab_size), Lexicon(WORDS), table, PENALTY)
    ids = {s: i for i, s in enumerate(CHARS)}
    _, state = lm.step(np.array([0, 0]), lm.initial_state(2))
    scores, state = lm.step(np.array([ids["T"], ids["X"]]), state)
    assert scores[0, ids["O"]] == 0.0 and scores[0, ids["A"]] == -PENALTY  # after T: TO goes on, TA leaves
    assert scores[1, ids["O"]] == 0.0 and scores[1, ids[WORD_BOUNDARY]] == 0.0  # X has paid already
    assert state[0].shape == (1, 2) and state[0][0, 1] == OUTSIDE


def test_a_word_file_with_counts_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_text("# words of the text\nthe 120\n\nDon't 3\n  a\n", encoding="utf-8")
    lexicon = Lexicon.read(path)
    assert lexicon.num_words == 3 and "THE" in lexicon and "DON'T" in lexicon and "A" in lexicon


@pytest.mark.parametrize("content, message", [
    (None, "cannot read the word list"),
    (b"# nothing but a comment\n\n", "holds no words"),
    (b"\xff\xfe not utf-8", "cannot read the word list"),
])
def test_a_bad_word_file_is_refused_naming_it(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "words.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelFilesError, match=message) as error:
        Lexicon.read(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("penalty", [-1.0, float("nan"), float("inf")])
def test_a_bad_penalty_is_refused(penalty: float) -> None:
    table = table_of(CHARS)
    with pytest.raises(ValueError, match="non-word penalty"):
        LexiconLm(SilentLm(table.vocab_size), Lexicon(WORDS), table, penalty)


def test_a_table_of_another_size_than_the_lms_is_refused() -> None:
    table = table_of(CHARS)
    with pytest.raises(ValueError, match="the token table has 12 tokens but the LM scores 14"):
        LexiconLm(SilentLm(14), Lexicon(WORDS), table, PENALTY)


# --- in the recognizer and the commands (the shipped model and LM) ---

NATURAL = Path(__file__).parent / "data" / "default_model" / "synth-test-natural-9535-5000-0000.flac"
# What the shipped model and LM hear in NATURAL at the LM's settings, SHOPKEEPER being the word a list without it
# must keep out: YOUR INJURED SHOPKEEPER HAS ARRANGED TO REMEMBER ALL THE SAD STORIES HASTILY SINCE SATURDAY
HEARD = "YOUR INJURED SHOPKEEPER HAS ARRANGED TO REMEMBER ALL THE SAD STORIES HASTILY SINCE SATURDAY".split()


def lm_with_words(tmp_path: Path, words: list[str]) -> Path:
    lm = Path(shutil.copytree(DEFAULT_LM_DIR, tmp_path / "lm"))
    (lm / WORDS_FILE).write_text("".join(f"{word} 1\n" for word in words), encoding="utf-8")
    return lm


def shipped(lm: Path, penalty: float) -> Recognizer:
    fusion = FusionSettings.from_dir(DEFAULT_LM_DIR)
    return Recognizer.from_dir(DEFAULT_MODEL_DIR, int8=True, decoding=fusion.search_options(), lm=lm,
                               non_word_penalty=penalty)


def test_a_large_penalty_keeps_the_transcript_to_the_word_list(tmp_path: Path) -> None:
    audio = load(NATURAL, 16000)
    words = [w for w in HEARD if w != "SHOPKEEPER"] + ["SHOP", "KEEPER", "SHOPPER", "KEEP"]
    lm = lm_with_words(tmp_path, words)
    assert transcribe(shipped(DEFAULT_LM_DIR, 0.0), audio).text.split() == HEARD
    assert transcribe(shipped(lm, 0.0), audio) == transcribe(shipped(DEFAULT_LM_DIR, 0.0), audio)  # 0: no list
    held = transcribe(shipped(lm, 100.0), audio).text.split()
    assert "SHOPKEEPER" not in held and set(held) <= set(words), held
    # the trie nodes ride in the LM state, so a stream fed in small chunks decodes as one fed whole
    assert transcribe(shipped(lm, 100.0), audio, [len(audio)]).text.split() == held


def test_hotwords_are_words_the_penalty_leaves_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lm = lm_with_words(tmp_path, [w for w in HEARD if w != "SHOPKEEPER"])
    hotwords = tmp_path / "hotwords.txt"
    hotwords.write_text("SHOPKEEPER\n", encoding="utf-8")
    flags = ["transcribe", "--lm", str(lm), "--non-word-penalty", "100"]
    assert cli.main([*flags, str(NATURAL)]) == 0
    assert "SHOPKEEPER" not in capsys.readouterr().out
    # its bonus (1.5 a letter) is far below the penalty: it comes out because the word list takes it in
    assert cli.main([*flags, "--hotwords", str(hotwords), str(NATURAL)]) == 0
    assert "SHOPKEEPER" in capsys.readouterr().out


def test_a_penalty_without_a_word_list_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lm = Path(shutil.copytree(DEFAULT_LM_DIR, tmp_path / "lm", ignore=shutil.ignore_patterns(WORDS_FILE)))
    with pytest.raises(ModelFilesError, match=f"has no {WORDS_FILE}"):
        shipped(lm, 2.0)
    assert cli.main(["transcribe", "--lm", str(lm), "--non-word-penalty", "2", str(NATURAL)]) == 2
    assert f"has no {WORDS_FILE}" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--non-word-penalty", "-1"], "--non-word-penalty must be a finite number >= 0"),
    (["--non-word-penalty", "nan"], "--non-word-penalty must be a finite number >= 0"),
    (["--model", str(DEFAULT_MODEL_DIR), "--non-word-penalty", "2"], "needs an LM with a word list"),
])
def test_bad_non_word_penalty_flags_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["transcribe", *argv, str(NATURAL)]) == 2
    assert message in capsys.readouterr().err


def test_the_fusion_file_sets_the_penalty_unless_the_flag_does(tmp_path: Path) -> None:
    lm = lm_with_words(tmp_path, HEARD)
    FusionSettings(1.0, 4.0, 8, non_word_penalty=3.0).write(lm, tuned_on="a test")
    assert FusionSettings.from_dir(lm).non_word_penalty == 3.0
    flags = argparse.Namespace(lm_scale=None, blank_penalty=None, beam=None, non_word_penalty=None)
    assert resolve_fusion(flags, lm).non_word_penalty == 3.0
    flags.non_word_penalty = 0.0
    assert resolve_fusion(flags, lm) == FusionSettings(1.0, 4.0, 8, 0.0)
    (lm / "fusion.json").write_text('{"lm_scale": 1, "blank_penalty": 4, "non_word_penalty": -2}', encoding="utf-8")
    with pytest.raises(ModelFilesError, match="non_word_penalty and word_lm_weight must be finite numbers >= 0"):
        FusionSettings.from_dir(lm)


def test_train_lm_writes_the_words_of_its_text_and_words_only_adds_to_them(tmp_path: Path) -> None:
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("the cat sat on the mat\n" * 20, encoding="utf-8")
    second.write_text("a dog sat\n", encoding="utf-8")
    exp = tmp_path / "lm"
    assert cli.main(["train-lm", "--text", str(first), "--exp-dir", str(exp), "--kind", "lstm", "--dim", "16",
                     "--max-steps", "1", "--num-threads", "1"]) == 0
    assert (exp / WORDS_FILE).read_text(encoding="utf-8") == "THE 40\nCAT 20\nMAT 20\nON 20\nSAT 20\n"
    trained = {path.name: path.read_bytes() for path in exp.iterdir() if path.name != WORDS_FILE}
    assert cli.main(["train-lm", "--words-only", "--text", str(second), "--exp-dir", str(exp)]) == 0
    assert read_word_counts(exp / WORDS_FILE) == {"THE": 40, "SAT": 21, "CAT": 20, "MAT": 20, "ON": 20, "A": 1,
                                                  "DOG": 1}
    assert {path.name: path.read_bytes() for path in exp.iterdir() if path.name != WORDS_FILE} == trained
    again = tmp_path / "lm2"  # --init-from: the new LM has read both texts
    assert cli.main(["train-lm", "--text", str(second), "--exp-dir", str(again), "--init-from", str(exp),
                     "--max-steps", "1", "--num-threads", "1"]) == 0
    assert read_word_counts(again / WORDS_FILE)["SAT"] == 22


def test_a_word_file_line_that_is_not_a_word_and_count_is_refused(tmp_path: Path) -> None:
    path = tmp_path / WORDS_FILE
    path.write_text("THE 4\nA B C\n", encoding="utf-8")
    with pytest.raises(ModelFilesError, match="line 2: expected `WORD` or `WORD COUNT`"):
        Lexicon.read(path)
