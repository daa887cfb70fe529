"""Counting a word trigram over the LM's text: interpolated Witten-Bell, pruned by count (torch-free).

Witten-Bell interpolation estimates, for a history h seen c(h) times followed by T(h)
distinct words,

    P(w | h) = (c(h, w) + T(h) P(w | h')) / (c(h) + T(h))

with h' the history one word shorter, down to the unigram, which interpolates with the
uniform distribution over the vocabulary (</s> included, <s> never predicted). It needs no
count-of-counts, so it stays sound on text where some sentences repeat (the grammar's), and
it is exactly a back-off model: a listed n-gram keeps its interpolated probability, an
unlisted one gets the back-off weight T(h) / (c(h) + T(h)) times the lower order's. Pruning
drops bigrams and trigrams seen fewer than min_count times (keeping every bigram that a kept
trigram's history needs) and recomputes each history's back-off weight, so that every
P(. | h) still sums to one:

    backoff(h) = (1 - sum of P(w | h) over the listed w) / (1 - sum of P(w | h') over the same w)

The result is asr.runtime.word_lm.WordNgram, natural logs in float32; a word outside the
vocabulary scores what the unigram gives a word it never saw (the uniform share alone).
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from asr.runtime.word_lm import BOS, EOS, SPECIAL_WORDS, WordNgram

_NEVER = -99.0  # the log of a probability of 0


def count_word_trigram(sentences: Sequence[str], min_count: int = 2) -> WordNgram:
    """The pruned Witten-Bell trigram of `sentences` (words split on spaces; <s> and </s> added)."""
    if min_count < 1:
        raise ValueError(f"min_count must be 1 or more, got {min_count}")
    vocabulary = sorted({word for sentence in sentences for word in sentence.split()})
    if not vocabulary:
        raise ValueError("no words to count a word trigram over")
    words = [*SPECIAL_WORDS, *vocabulary]
    ids = {word: i for i, word in enumerate(words)}
    v = len(words)
    unigrams: Counter[int] = Counter()
    bigrams: Counter[int] = Counter()
    trigrams: Counter[int] = Counter()
    for sentence in sentences:
        sequence = [BOS, *(ids[word] for word in sentence.split()), EOS]
        unigrams.update(sequence[1:])
        bigrams.update(a * v + b for a, b in zip(sequence, sequence[1:]))
        trigrams.update((a * v + b) * v + c for a, b, c in zip(sequence, sequence[1:], sequence[2:]))

    unigram_counts = np.zeros(v)
    unigram_counts[list(unigrams)] = list(unigrams.values())
    distinct = int(np.count_nonzero(unigram_counts))
    unigram_probs = (unigram_counts + distinct / (v - 1)) / (unigram_counts.sum() + distinct)  # uniform: all but <s>
    unigram_probs[BOS] = 0.0

    bigram_keys, bigram_counts = _sorted(bigrams)
    bigram_probs, bigram_weights = _witten_bell(bigram_keys, bigram_counts, v, unigram_probs[bigram_keys % v])
    trigram_keys, trigram_counts = _sorted(trigrams)
    lower = _bigram_probs(bigram_keys, bigram_probs, bigram_weights, unigram_probs, trigram_keys % (v * v), v)
    trigram_probs, _ = _witten_bell(trigram_keys, trigram_counts, v, lower)

    keep3 = trigram_counts >= min_count
    trigram_keys, trigram_probs = trigram_keys[keep3], trigram_probs[keep3]
    keep2 = (bigram_counts >= min_count) | np.isin(bigram_keys, trigram_keys // v)  # a kept trigram's history stays
    bigram_keys, bigram_probs = bigram_keys[keep2], bigram_probs[keep2]
    # The pruned model's back-off weights, the bigrams' first: the trigrams back off onto the pruned bigrams.
    unigram_weights = _spread(*_backoff_weights(bigram_keys // v, bigram_probs, unigram_probs[bigram_keys % v]),
                              np.arange(v))
    lower = _bigram_probs(bigram_keys, bigram_probs, (np.arange(v), unigram_weights), unigram_probs,
                          trigram_keys % (v * v), v)
    history_weights = _spread(*_backoff_weights(trigram_keys // v, trigram_probs, lower), bigram_keys)
    unseen = np.array((distinct / (v - 1)) / (unigram_counts.sum() + distinct))  # a word the counts never saw
    return WordNgram(np.array(words), _log(unigram_probs), _log(unigram_weights), bigram_keys, _log(bigram_probs),
                     _log(history_weights), trigram_keys, _log(trigram_probs), _log(unseen))


def _log(values: np.ndarray) -> np.ndarray:
    """float32 natural logs, _NEVER for 0: <s> as a word, or the back-off weight of a history every word follows."""
    with np.errstate(divide="ignore"):
        return np.where(values > 0, np.log(values), _NEVER).astype(np.float32)


def _sorted(counts: Counter[int]) -> tuple[np.ndarray, np.ndarray]:
    keys = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
    values = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
    order = np.argsort(keys)
    return keys[order], values[order]


def _witten_bell(keys: np.ndarray, counts: np.ndarray, v: int, lower: np.ndarray
                 ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Per sorted n-gram key (history * v + word): its interpolated probability given the lower order's `lower`;
    and (histories, the weight T(h) / (c(h) + T(h)) each gives the lower order)."""
    histories, starts, distinct = np.unique(keys // v, return_index=True, return_counts=True)
    totals = np.add.reduceat(counts, starts)
    per_key = np.repeat(np.arange(len(histories)), distinct)
    probs = (counts + distinct[per_key] * lower) / (totals + distinct)[per_key]
    return probs, (histories, distinct / (totals + distinct))


def _bigram_probs(keys: np.ndarray, probs: np.ndarray, weights: tuple[np.ndarray, np.ndarray],
                  unigram_probs: np.ndarray, queries: np.ndarray, v: int) -> np.ndarray:
    """P(w | h) of a bigram model for the keys h * v + w: listed, or the history's back-off weight (1 where it has
    none) times the unigram."""
    at = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    found = keys[at] == queries
    return np.where(found, probs[at], _spread(*weights, queries // v) * unigram_probs[queries % v])


def _backoff_weights(histories: np.ndarray, probs: np.ndarray, lower: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each listed history, the weight that makes its P(. | h) sum to one): the mass its listed words leave, over
    the mass the lower order gives the words not listed. `histories` sorted, one per listed n-gram."""
    unique, starts = np.unique(histories, return_index=True)
    listed, listed_lower = np.add.reduceat(probs, starts), np.add.reduceat(lower, starts)
    return unique, np.maximum(1.0 - listed, 0.0) / np.maximum(1.0 - listed_lower, 1e-12)


def _spread(histories: np.ndarray, weights: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Each query history's weight from the sorted (histories, weights), 1 for one not among them."""
    if len(histories) == 0:
        return np.ones(len(queries))
    at = np.minimum(np.searchsorted(histories, queries), len(histories) - 1)
    return np.where(histories[at] == queries, weights[at], 1.0)
