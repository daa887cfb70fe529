"""Word trigram rescoring at a segment's end: the re-ranking formula, the commands' flags and fusion.json, and the
bad settings and files refused with one message."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pytest

import cli
from asr.audio import load
from asr.errors import ConfigError, ModelFilesError
from asr.runtime import Recognizer
from asr.runtime.default_model import DEFAULT_LM_DIR, DEFAULT_MODEL_DIR
from asr.runtime.lm import FusionSettings
from asr.runtime.search import SearchState
from asr.runtime.search_flags import resolve_fusion
from asr.runtime.segments import finish_segment
from asr.runtime.token_path import EMPTY_PATH
from asr.runtime.tokens import TokenTable
from asr.runtime.word_lm import WORD_LM_FILE
from asr.runtime.word_rescore import WordRescorer, word_rescorer
from asr.training.word_ngram import count_word_trigram

TEXT = ["A CUP OF TEA", "A CUP OF COFFEE", "I LIKE TEA", "A CUP OF TEA PLEASE"]
NATURAL = Path(__file__).parent / "data" / "default_model" / "synth-test-natural-9535-5000-0000.flac"
HEARD = "YOUR INJURED SHOPKEEPER HAS ARRANGED TO REMEMBER ALL THE SAD STORIES HASTILY SINCE SATURDAY"  # in NATURAL


def char_table() -> TokenTable:
    symbols = ["<blk>", "<unk>", "\u2581", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ'"]
    return TokenTable.parse("".join(f"{s} {i}\n" for i, s in enumerate(symbols)), "test")


def state_of(table: TokenTable, texts: list[str], scores: list[float]) -> SearchState:
    paths = []
    for text in texts:
        path = EMPTY_PATH
        for frame, token in enumerate(spell(table, text)):
            path = path.extend(token, frame)
        paths.append(path)
    return SearchState(paths, np.array(scores), np.zeros((len(texts), 4)), ())


def spell(table: TokenTable, text: str) -> list[int]:
    ids = {symbol: i for i, symbol in enumerate(table.symbols)}
    return [ids[char if char != " " else "\u2581"] for char in text]


def test_each_hypothesis_earns_weight_times_its_log_probability_plus_a_bonus_per_word():
    table = char_table()
    ngram = count_word_trigram(TEXT, 1)
    rescorer = WordRescorer(ngram, 0.5, 1.5, table)
    texts = ["A CUP OF TEA", "A CUP OF TEE", "A CUP"]
    want = 0.5 * ngram.sentence_log_probs([t.split() for t in texts]) + 1.5 * np.array([4, 4, 2])
    assert rescorer.scores(texts) == pytest.approx(want)
    state = state_of(table, texts, [-10.0, -9.0, -9.5])  # the acoustics prefer the misspelling...
    rescorer.rescore(state)
    assert state.scores == pytest.approx(np.array([-10.0, -9.0, -9.5]) + want)
    assert table.decode(state.best().tokens) == "A CUP OF TEA"  # ...the words do not
    assert rescorer.best(texts, [-10.0, -9.0, -9.5]) == 0  # the same choice from the n-best list alone
    assert WordRescorer(ngram, 0.0, 0.0, table).best(texts, [-10.0, -9.0, -9.5]) == 1  # weight 0: the search's


def test_one_hypothesis_keeps_its_score():
    table = char_table()
    state = state_of(table, ["A CUP OF TEE"], [-3.0])
    WordRescorer(count_word_trigram(TEXT, 1), 1.0, 0.0, table).rescore(state)
    assert state.scores.tolist() == [-3.0]
    assert WordRescorer(count_word_trigram(TEXT, 1), 1.0, 0.0, table).best(["A CUP OF TEE"], [-3.0]) == 0


def test_settings_out_of_range_or_without_an_lm_dir_are_refused(tmp_path: Path):
    table = char_table()
    assert word_rescorer(None, 0.0, 0.0, table) is None
    with pytest.raises(ConfigError, match="--word-lm-weight must be a finite number >= 0"):
        word_rescorer(tmp_path, -1.0, 0.0, table)
    with pytest.raises(ConfigError, match="--word-bonus must be a finite number"):
        word_rescorer(tmp_path, 1.0, float("nan"), table)
    with pytest.raises(ConfigError, match="needs an LM dir"):
        word_rescorer(None, 1.0, 0.0, table)
    with pytest.raises(ModelFilesError, match="has none.*--word-lm-weight 0"):
        word_rescorer(tmp_path, 1.0, 0.0, table)


# --- in the recognizer and the commands (the shipped model and LM) ---

def lm_with_trigram(tmp_path: Path, text: list[str], weight: float = 0.0, bonus: float = 0.0) -> Path:
    lm = Path(shutil.copytree(DEFAULT_LM_DIR, tmp_path / "lm", dirs_exist_ok=True))
    count_word_trigram(text, 1).write(lm / WORD_LM_FILE)
    shipped = FusionSettings.from_dir(DEFAULT_LM_DIR)
    FusionSettings(shipped.lm_scale, shipped.blank_penalty, shipped.beam, shipped.non_word_penalty, weight,
                   bonus).write(lm, tuned_on="a test")
    return lm


def test_the_result_is_the_n_best_entry_with_the_highest_rescored_score(tmp_path: Path):
    """At the segment's end the recognizer re-ranks exactly as the formula says: checked against the n-best
    it had before, with a trigram whose words pull the result away from the search's first choice (STORIES,
    a word this trigram never saw; STORY, the second, is in it)."""
    lm = lm_with_trigram(tmp_path, [HEARD.replace("STORIES", "STORY")])
    fusion = FusionSettings.from_dir(lm)
    audio = load(NATURAL, 16000)

    def recognizer(weight: float) -> Recognizer:
        return Recognizer.from_dir(DEFAULT_MODEL_DIR, int8=True, decoding=fusion.search_options(), lm=lm,
                                   non_word_penalty=fusion.non_word_penalty, word_lm_weight=weight, word_bonus=0.5)

    plain = recognizer(0.0)
    stream = plain.create_stream()
    stream.accept_waveform(16000, audio)
    before = finish_segment(plain, stream, nbest=fusion.beam).nbest
    rescored = recognizer(3.0)
    stream = rescored.create_stream()
    stream.accept_waveform(16000, audio)
    after = finish_segment(rescored, stream)
    rescorer = WordRescorer(count_word_trigram([HEARD.replace("STORIES", "STORY")], 1), 3.0, 0.5, plain.token_table)
    totals = np.array([a.score for a in before]) + rescorer.scores([a.text for a in before])
    assert after.text == before[int(np.argmax(totals))].text
    assert rescorer.best([a.text for a in before], [a.score for a in before]) == int(np.argmax(totals))  # offline
    assert before[0].text == HEARD and after.text == HEARD.replace("STORIES", "STORY")  # the words moved it


def test_the_fusion_file_sets_the_weight_and_bonus_unless_the_flags_do(tmp_path: Path):
    lm = lm_with_trigram(tmp_path, TEXT, weight=0.4, bonus=1.0)
    flags = argparse.Namespace(lm_scale=None, blank_penalty=None, beam=None, non_word_penalty=None,
                               word_lm_weight=None, word_bonus=None)
    fusion = resolve_fusion(flags, lm)
    assert (fusion.word_lm_weight, fusion.word_bonus) == (0.4, 1.0)
    flags.word_lm_weight, flags.word_bonus = 0.0, 2.0
    fusion = resolve_fusion(flags, lm)
    assert (fusion.word_lm_weight, fusion.word_bonus) == (0.0, 2.0)
    (lm / "fusion.json").write_text('{"lm_scale": 1, "blank_penalty": 4, "word_lm_weight": -2}', encoding="utf-8")
    with pytest.raises(ModelFilesError, match="word_lm_weight must be"):
        FusionSettings.from_dir(lm)


def test_transcribe_rescores_with_the_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    lm = lm_with_trigram(tmp_path, TEXT)
    assert cli.main(["transcribe", "--lm", str(lm), "--word-lm-weight", "0.5", "--word-bonus", "1", str(NATURAL)]) == 0
    assert capsys.readouterr().out.strip()


@pytest.mark.parametrize("argv, message", [
    (["--word-lm-weight", "-1"], "--word-lm-weight must be a finite number >= 0"),
    (["--word-lm-weight", "inf"], "--word-lm-weight must be a finite number >= 0"),
    (["--word-bonus", "nan"], "--word-bonus must be a finite number"),
    (["--model", str(DEFAULT_MODEL_DIR), "--word-lm-weight", "1"], "--word-lm-weight needs an LM dir"),
])
def test_bad_word_lm_flags_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]):
    assert cli.main(["transcribe", *argv, str(NATURAL)]) == 2
    assert message in capsys.readouterr().err


def test_an_lm_dir_without_a_word_trigram_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    lm = Path(shutil.copytree(DEFAULT_LM_DIR, tmp_path / "lm", ignore=shutil.ignore_patterns(WORD_LM_FILE)))
    assert cli.main(["transcribe", "--lm", str(lm), "--word-lm-weight", "1", str(NATURAL)]) == 2
    assert "has none" in capsys.readouterr().err


def test_train_lm_words_only_writes_the_word_trigram(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    text = tmp_path / "a.txt"
    text.write_text("\n".join(TEXT * 3) + "\n", encoding="utf-8")
    exp = tmp_path / "lm"
    assert cli.main(["train-lm", "--words-only", "--word-trigram", "--text", str(text), "--exp-dir", str(exp)]) == 0
    assert "word trigram:" in capsys.readouterr().out
    from asr.runtime.word_lm import read_word_lm
    model = read_word_lm(exp)
    assert model.sentence_log_probs([["A", "CUP", "OF", "TEA"]])[0] > model.sentence_log_probs([["TEA", "OF"]])[0]
