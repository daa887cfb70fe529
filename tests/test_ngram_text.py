"""Sentences drawn from an ARPA n-gram as LM text: each next word is drawn with the probability the
back-off model gives it (against the textbook formula), what is kept and dropped, and bad files
reported with one message."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import cli
from asr.errors import DataError
from asr.synth.everyday import load_everyday
from asr.training.lm_text import gather_text
from asr.training.ngram_text import ArpaSampler, arpa_sentences

# A normalised back-off trigram over five words. Unigrams sum to 1; each listed context's back-off
# weight is what makes its distribution sum to 1 (computed below, as an ARPA toolkit would).
UNIGRAMS = {"<s>": 0.0, "</s>": 0.2, "a": 0.3, "b": 0.25, "c": 0.15, "d": 0.1}
BIGRAMS = {("<s>",): {"a": 0.6, "b": 0.2}, ("a",): {"b": 0.5, "c": 0.2}, ("b",): {"</s>": 0.4}}
TRIGRAMS = {("<s>", "a"): {"c": 0.6}, ("a", "b"): {"</s>": 0.3, "a": 0.1, "d": 0.05}}


def lower_prob(word: str, context: tuple[str, ...]) -> float:
    """P(word | context) by the back-off formula, with back-off weights implied by normalisation."""
    if not context:
        return UNIGRAMS[word]
    listed = (TRIGRAMS if len(context) == 2 else BIGRAMS).get(context, {})
    if word in listed:
        return listed[word]
    return backoff(context) * lower_prob(word, context[1:])


def backoff(context: tuple[str, ...]) -> float:
    listed = (TRIGRAMS if len(context) == 2 else BIGRAMS).get(context, {})
    return (1 - sum(listed.values())) / (1 - sum(lower_prob(w, context[1:]) for w in listed))


def write_arpa(path: Path, unigrams: dict[str, float] = UNIGRAMS) -> Path:
    def log10(p: float) -> str:
        return f"{math.log10(p):.7f}" if p > 0 else "-99"

    lines = ["\\data\\", f"ngram 1={len(unigrams)}", "", "\\1-grams:"]
    lines += [f"{log10(p)}\t{w}\t{math.log10(backoff((w,))):.7f}" for w, p in unigrams.items()]
    lines += ["", "\\2-grams:"]
    lines += [f"{log10(p)}\t{c[0]} {w}\t{math.log10(backoff(c + (w,))) if c + (w,) in TRIGRAMS else 0:.7f}"
              for c, listed in BIGRAMS.items() for w, p in listed.items()]
    lines += ["", "\\3-grams:"]
    lines += [f"{log10(p)}\t{' '.join(c)} {w}" for c, listed in TRIGRAMS.items() for w, p in listed.items()]
    path.write_text("\n".join(lines + ["", "\\end\\", ""]), encoding="utf-8")
    return path


@pytest.mark.parametrize("context", [("<s>", "a"), ("a", "b"), ("b", "a"), ("c", "b"), ("d", "d")])
def test_next_words_are_drawn_with_the_back_off_probabilities(tmp_path: Path, context: tuple[str, str]) -> None:
    """Listed trigram, listed context with back-off, unlisted contexts backing off once and twice."""
    sampler = ArpaSampler.read(write_arpa(tmp_path / "lm.arpa"))
    ids = tuple(sampler.words.index(w) for w in context)
    rng = np.random.default_rng(0)
    draws = 40_000
    counts = np.bincount([sampler.next_word(ids, rng) for _ in range(draws)], minlength=len(sampler.words))
    expected = {w: lower_prob(w, context) for w in UNIGRAMS}
    assert sum(expected.values()) == pytest.approx(1.0, abs=1e-9)
    for word, p in expected.items():
        # 4.5 standard deviations of a frequency over 40,000 draws is at most 0.0113
        assert counts[sampler.words.index(word)] / draws == pytest.approx(p, abs=0.0113), word


def test_sentences_keep_spoken_words_only_and_never_an_everyday_one(tmp_path: Path) -> None:
    everyday = load_everyday()[0].text.lower().split()
    unigrams = {"<s>": 0.0, "</s>": 0.1, "a.": 0.1, "cup": 0.3, "of": 0.3, "tea": 0.2}
    vocabulary = dict.fromkeys(everyday, 0.0)
    path = tmp_path / "lm.arpa"
    lines = ["\\data\\", "", "\\1-grams:"] + [f"{math.log10(p) if p else -99}\t{w}" for w, p in unigrams.items()]
    lines += [f"-99\t{w}" for w in vocabulary if w not in unigrams]
    # After <s> the everyday test sentence word by word, then the end: that sentence is drawn half the time.
    chain = ["<s>", *everyday, "</s>"]
    lines += ["", "\\2-grams:"] + [f"{math.log10(0.5) if i == 0 else 0}\t{a} {b}" for i, (a, b) in
                                    enumerate(zip(chain, chain[1:]))]
    path.write_text("\n".join(lines + ["", "\\end\\", ""]), encoding="utf-8")
    sentences = arpa_sentences(path, 300, seed=1)
    assert len(sentences) == 300
    assert " ".join(everyday).upper() not in sentences
    assert all(len(s.split()) >= 3 and set(s) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ' ") for s in sentences)
    assert {"CUP", "OF", "TEA"} == {w for s in sentences for w in s.split()}  # A. never: it is not spoken so
    assert arpa_sentences(path, 300, seed=1) == sentences and arpa_sentences(path, 300, seed=2) != sentences
    text = gather_text([], None, [], 0, 1, arpa=(path, 50))
    assert text.counts == {"lm.arpa samples": 50} and text.sentences == tuple(sentences[:50])


def test_a_unigram_model_draws_with_no_context(tmp_path: Path) -> None:
    path = tmp_path / "unigrams.arpa"
    path.write_text("\\data\\\n\\1-grams:\n-99 <s>\n-1 </s>\n-0.1 tea\n\\end\\\n", encoding="utf-8")
    sampler = ArpaSampler.read(path)
    assert sampler.order == 1
    assert all(set(s.split()) == {"TEA"} for s in arpa_sentences(path, 20, seed=0))


def test_bad_arpa_files_are_reported_with_what_is_wrong(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(DataError, match="no such file"):
        ArpaSampler.read(tmp_path / "missing.arpa")
    (tmp_path / "text.arpa").write_text("the cat sat on the mat\n", encoding="utf-8")
    with pytest.raises(DataError, match="not in ARPA format"):
        ArpaSampler.read(tmp_path / "text.arpa")
    (tmp_path / "words.arpa").write_text("\\data\\\n\\1-grams:\n-1 the\n-1 cat\n\\2-grams:\n-1 the dog\n", "utf-8")
    with pytest.raises(DataError, match="not an n-gram line of known words"):
        ArpaSampler.read(tmp_path / "words.arpa")
    (tmp_path / "no_start.arpa").write_text("\\data\\\n\\1-grams:\n-1 the\n-1 cat\n\\end\\\n", "utf-8")
    with pytest.raises(DataError, match="no <s> or </s>"):
        ArpaSampler.read(tmp_path / "no_start.arpa")
    assert cli.main(["train-lm", "--arpa", str(tmp_path / "text.arpa"), "--exp-dir", str(tmp_path / "lm")]) == 2
    assert "not in ARPA format" in capsys.readouterr().err
    assert not (tmp_path / "lm").exists()
