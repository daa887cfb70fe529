"""The word trigram counted over the LM's text: the Witten-Bell estimate against the textbook formula, every
distribution summing to one after pruning, the back-off lookup in arrays, and word_lm.npz read back or refused."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from asr.errors import ModelFilesError
from asr.runtime.word_lm import BOS, EOS, NO_WORD, WORD_LM_FILE, WordNgram, read_word_lm
from asr.training.word_ngram import count_word_trigram

SENTENCES = ["A CUP OF TEA", "A CUP OF COFFEE", "A CUP OF TEA", "I LIKE TEA", "I LIKE A CUP", "TEA"]


def textbook_probability(sentences: list[str], history: tuple[str, ...], word: str) -> float:
    """Interpolated Witten-Bell P(word | history), straight from the counts, recursively (no pruning)."""
    grams: Counter[tuple[str, ...]] = Counter()
    for sentence in sentences:
        tokens = ["<s>", *sentence.split(), "</s>"]
        for n in (1, 2, 3):
            for start in range(len(tokens) - n + 1):
                gram = tuple(tokens[start : start + n])
                if gram != ("<s>",):
                    grams[gram] += 1
    vocabulary = {w for sentence in sentences for w in sentence.split()} | {"</s>"}
    if not history:
        total = sum(c for g, c in grams.items() if len(g) == 1)
        distinct = len(vocabulary)
        return (grams[(word,)] + distinct / len(vocabulary)) / (total + distinct)
    followers = {g[-1]: c for g, c in grams.items() if len(g) == len(history) + 1 and g[:-1] == history}
    lower = textbook_probability(sentences, history[1:], word)
    if not followers:
        return lower
    total, distinct = sum(followers.values()), len(followers)
    return (followers.get(word, 0) + distinct * lower) / (total + distinct)


def ids(model: WordNgram, *words: str) -> list[int]:
    return [model.id_of(w) if w not in ("<s>", "</s>") else (BOS if w == "<s>" else EOS) for w in words]


def test_unpruned_probabilities_are_the_textbook_witten_bell_estimates():
    model = count_word_trigram(SENTENCES, min_count=1)
    cases = [(("<s>",), "A"), (("<s>", "A"), "CUP"), (("CUP", "OF"), "TEA"), (("CUP", "OF"), "COFFEE"),
             (("OF", "TEA"), "</s>"), (("LIKE",), "CUP"), (("I", "LIKE"), "OF"), ((), "TEA"), (("TEA", "CUP"), "OF")]
    for history, word in cases:
        h1, h2 = ([NO_WORD] + ids(model, *history))[-2:] if history else (NO_WORD, NO_WORD)
        got = model.log_probs(np.array([h1]), np.array([h2]), np.array(ids(model, word)))[0]
        want = textbook_probability(SENTENCES, history, word)
        assert got == pytest.approx(np.log(want), abs=1e-5), (history, word)


@pytest.mark.parametrize("min_count", [1, 2, 3, 1000])  # 1000: unigrams alone
def test_every_distribution_sums_to_one_after_pruning(min_count):
    rng = np.random.default_rng(0)
    vocabulary = "A B C D E F G".split()
    sentences = [" ".join(rng.choice(vocabulary[: rng.integers(2, 8)], size=rng.integers(1, 6))) for _ in range(300)]
    model = count_word_trigram(sentences, min_count)
    predictable = np.arange(1, model.vocab_size)  # every word and </s>; <s> is never predicted
    for h1, h2 in itertools.product([NO_WORD, *range(model.vocab_size)], [NO_WORD, *range(model.vocab_size)]):
        n = len(predictable)
        total = np.exp(model.log_probs(np.full(n, h1), np.full(n, h2), predictable)).sum()
        assert total == pytest.approx(1.0, abs=1e-5), (h1, h2)


def test_pruning_drops_rare_ngrams_but_keeps_the_histories_of_kept_trigrams():
    full, pruned = count_word_trigram(SENTENCES, 1), count_word_trigram(SENTENCES, 2)
    assert len(pruned.trigram_keys) < len(full.trigram_keys) and len(pruned.bigram_keys) < len(full.bigram_keys)
    v = pruned.vocab_size
    assert np.isin(pruned.trigram_keys // v, pruned.bigram_keys).all()
    seen_twice = ids(pruned, "CUP", "OF", "TEA")  # "CUP OF TEA" twice: listed with its full-model probability
    key = (seen_twice[0] * v + seen_twice[1]) * v + seen_twice[2]
    assert key in set(pruned.trigram_keys.tolist())
    got = pruned.log_probs(np.array(seen_twice[:1]), np.array(seen_twice[1:2]), np.array(seen_twice[2:]))
    want = full.log_probs(np.array(seen_twice[:1]), np.array(seen_twice[1:2]), np.array(seen_twice[2:]))
    assert got == pytest.approx(want, abs=1e-6)


def test_a_sentence_scores_its_words_the_end_and_unknown_words():
    model = count_word_trigram(SENTENCES, 1)
    likely, unlikely = model.sentence_log_probs(["A CUP OF TEA".split(), "TEA OF CUP A".split()])
    assert likely > unlikely + 5
    with_unknown, = model.sentence_log_probs([["TEA", "XYZZY"]])
    # XYZZY scores as an unseen word and leaves no history: </s> is then scored after (NO_WORD, NO_WORD), the unigram.
    tea = model.log_probs(np.array([NO_WORD]), np.array([BOS]), np.array(ids(model, "TEA")))[0]
    end = model.log_probs(np.array([NO_WORD]), np.array([NO_WORD]), np.array([EOS]))[0]
    # The uniform share of the unigram: 8 distinct of 8 predictable (7 words and </s>) over 26 tokens and 8 distinct.
    unseen = (8 / 8) / (26 + 8)
    assert float(model.unknown_log_prob) == pytest.approx(np.log(unseen), abs=1e-5)
    assert with_unknown == pytest.approx(tea + np.log(unseen) + end, abs=1e-5)
    assert model.id_of("XYZZY") == NO_WORD


def test_the_file_reads_back_the_same_model(tmp_path: Path):
    model = count_word_trigram(SENTENCES, 2)
    model.write(tmp_path / WORD_LM_FILE)
    again = read_word_lm(tmp_path)
    assert again.words.tolist() == model.words.tolist()
    assert np.array_equal(again.bigram_keys, model.bigram_keys)
    assert np.array_equal(again.trigram_keys, model.trigram_keys)
    for h1, h2, w in itertools.product(range(-1, model.vocab_size), repeat=3):
        if w >= 1:  # stored as 8-bit codes 30 / 255 nats apart: each of two terms within half of that
            args = np.array([h1]), np.array([h2]), np.array([w])
            assert again.log_probs(*args) == pytest.approx(model.log_probs(*args), abs=30 / 255)


def test_a_missing_or_damaged_file_is_one_clear_error(tmp_path: Path):
    with pytest.raises(ModelFilesError, match="has none.*--word-lm-weight 0"):
        read_word_lm(tmp_path)
    (tmp_path / WORD_LM_FILE).write_bytes(b"not an npz")
    with pytest.raises(ModelFilesError, match="cannot read the word trigram.*train-lm --words-only --word-trigram"):
        read_word_lm(tmp_path)
    count_word_trigram(SENTENCES, 1).write(tmp_path / WORD_LM_FILE)
    with np.load(tmp_path / WORD_LM_FILE) as stored:
        arrays = {name: stored[name] for name in stored.files}
    unsorted = dict(arrays, bigram_history_steps=-arrays["bigram_history_steps"])
    np.savez(tmp_path / WORD_LM_FILE, **unsorted)
    with pytest.raises(ModelFilesError, match="inconsistent: the bigram keys are not sorted"):
        read_word_lm(tmp_path)
    beyond = dict(arrays, trigram_history_steps=arrays["trigram_history_steps"] + 1)
    np.savez(tmp_path / WORD_LM_FILE, **beyond)
    with pytest.raises(ModelFilesError, match="cannot read the word trigram.*history bigram is not among"):
        read_word_lm(tmp_path)
    np.savez(tmp_path / WORD_LM_FILE, **dict(arrays, trigram_words=arrays["trigram_words"] + 100))
    with pytest.raises(ModelFilesError, match="cannot read the word trigram.*word id beyond the 9 words"):
        read_word_lm(tmp_path)
    del arrays["trigram_words"]
    np.savez(tmp_path / WORD_LM_FILE, **arrays)
    with pytest.raises(ModelFilesError, match="cannot read the word trigram.*trigram_words"):
        read_word_lm(tmp_path)


def test_no_words_or_a_bad_min_count_is_refused():
    with pytest.raises(ValueError, match="no words"):
        count_word_trigram(["", " "])
    with pytest.raises(ValueError, match="min_count"):
        count_word_trigram(SENTENCES, 0)
