"""Sentences drawn from a word n-gram LM in ARPA format: general English for the token LM (`--arpa`).

The grammar's sentences say random things and WordNet's usage examples are few (42,000). A word
n-gram trained on a large general corpus, such as CMU's generic US English trigram that ships
with pocketsphinx (72,547 words, 3.7M n-grams), holds what people say in the form of counts:
sampling sentences from it hands that knowledge to the character LM, which cannot read an
n-gram but can read text.

Sampling is exact for a back-off model. Given a context c with listed successors S (explicit
probabilities p(w|c), summing to M), the model's probability of a word w outside S is
bo(c) * P(w|c'), c' the context without its oldest word, and bo(c) = (1 - M) / (1 - P(S|c')) by
normalisation. So: with probability M draw from S in proportion to p; otherwise draw from
P(.|c') until the word is not in S. No back-off weight is needed; a context never listed has
bo = 1 and no successors, which the same rule covers. A sentence runs from <s> to </s>.

Kept: sentences of MIN_WORDS to MAX_WORDS words, each word of letters and apostrophes only (the
ARPA's abbreviations "a." and hyphenated words would not spell as spoken), normalised as
transcripts are, none an everyday test or dev sentence. Duplicates are kept: frequent
sentences are frequent in the model too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.errors import DataError
from asr.synth.everyday import hand_written_transcripts
from asr.text import normalize_transcript

SENTENCE_START, SENTENCE_END = "<s>", "</s>"
MIN_WORDS = 3
MAX_WORDS = 40  # longer draws are dropped: a run-on sentence of a trigram says little
MAX_REDRAWS = 1000  # draws from a lower order that may all land in S; then S itself is drawn from
_SPOKEN_WORD = re.compile(r"^[a-z']+$", re.IGNORECASE)
_HEADER = re.compile(r"^\\(\d+)-grams:$")


@dataclass(frozen=True)
class Successors:
    """The listed next words of one context: ids ascending, cumulative probabilities in that order."""

    ids: np.ndarray  # (K,) int32, ascending
    cumulative: np.ndarray  # (K,) float64; [-1] is M, their total probability

    def draw(self, rng: np.random.Generator) -> int:
        """One of the listed words, in proportion to its probability (renormalised over the list)."""
        at = np.searchsorted(self.cumulative, rng.random() * self.cumulative[-1], side="right")
        return int(self.ids[min(at, len(self.ids) - 1)])  # rounding can put the point at the very end

    def contains(self, word: int) -> bool:
        i = int(np.searchsorted(self.ids, word))
        return i < len(self.ids) and int(self.ids[i]) == word


class ArpaSampler:
    """An ARPA back-off n-gram, read for drawing sentences (probabilities only; back-off weights are implied)."""

    def __init__(self, words: list[str], successors: dict[tuple[int, ...], Successors], order: int) -> None:
        self.words = words
        self.successors = successors  # context (0 to order-1 word ids) -> its listed next words
        self.order = order
        self.start = words.index(SENTENCE_START) if SENTENCE_START in words else -1
        self.end = words.index(SENTENCE_END) if SENTENCE_END in words else -1

    @classmethod
    def read(cls, path: Path) -> "ArpaSampler":
        """Parse an ARPA file; DataError naming the problem if it is not one."""
        if not path.is_file():
            raise DataError(f"--arpa {path}: no such file; pass a word n-gram LM in ARPA text format")
        ids: dict[str, int] = {}
        grouped: dict[tuple[int, ...], tuple[list[int], list[float]]] = {}
        order = 0
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                line = line.strip()
                header = _HEADER.match(line)
                if header:
                    order = int(header.group(1))
                    continue
                if not line or order == 0 or line.startswith("\\"):
                    continue
                fields = line.split()
                if len(fields) < order + 1:
                    raise DataError(f"--arpa {path}: a {order}-gram line with too few fields ({line[:60]!r}); "
                                    "the file is not in ARPA format")
                if order == 1:
                    ids.setdefault(fields[1], len(ids))
                try:
                    gram = tuple(ids[w] for w in fields[1 : order + 1])
                    log_prob = float(fields[0])
                except (KeyError, ValueError):
                    raise DataError(f"--arpa {path}: {line[:60]!r} is not an n-gram line of known words; "
                                    "the file is not in ARPA format") from None
                listed = grouped.setdefault(gram[:-1], ([], []))
                listed[0].append(gram[-1])
                listed[1].append(10.0 ** log_prob)
        if not ids or () not in grouped:
            raise DataError(f"--arpa {path}: no \\1-grams: section; the file is not in ARPA format")
        words = sorted(ids, key=ids.__getitem__)
        successors = {}
        for context, (next_ids, probs) in grouped.items():
            order_ids = np.argsort(next_ids, kind="stable")
            successors[context] = Successors(np.asarray(next_ids, np.int32)[order_ids],
                                             np.cumsum(np.asarray(probs)[order_ids]))
        sampler = cls(words, successors, max(len(c) for c in successors) + 1)
        if sampler.start < 0 or sampler.end < 0:
            raise DataError(f"--arpa {path}: no {SENTENCE_START} or {SENTENCE_END} among its words; "
                            "sentences cannot be drawn from it")
        return sampler

    def next_word(self, context: tuple[int, ...], rng: np.random.Generator) -> int:
        """One word drawn from P(. | context) (context: the last order-1 ids, or fewer)."""
        listed = self.successors.get(context)
        if not context:  # unigrams: M is 1 up to rounding, and there is nothing lower
            return listed.draw(rng)
        if listed is not None:
            r = rng.random()
            if r < listed.cumulative[-1]:
                return int(listed.ids[np.searchsorted(listed.cumulative, r, side="right")])
        for _ in range(MAX_REDRAWS):
            word = self.next_word(context[1:], rng)
            if listed is None or not listed.contains(word):
                return word
        return listed.draw(rng)

    def sentence(self, rng: np.random.Generator) -> list[str] | None:
        """The words of one sentence, <s> and </s> left out; None when it runs past MAX_WORDS."""
        history = [self.start]
        words: list[str] = []
        while len(words) <= MAX_WORDS:
            word = self.next_word(tuple(history[max(0, len(history) - self.order + 1):]), rng)
            if word == self.end:
                return words
            if word == self.start:  # <s> has a unigram entry in most files, never a meaning mid-sentence
                continue
            words.append(self.words[word])
            history.append(word)
        return None


def arpa_sentences(path: Path, count: int, seed: int) -> list[str]:
    """`count` sentences drawn from the ARPA LM at `path`, filtered and normalised (see the module doc)."""
    sampler = ArpaSampler.read(path)
    excluded = hand_written_transcripts()
    rng = np.random.default_rng([seed, 104729])  # its own stream: not the grammar's
    sentences: list[str] = []
    draws = 0
    while len(sentences) < count:
        draws += 1
        if draws > 100 * count + 1000:
            raise DataError(f"--arpa {path}: only {len(sentences)} of {draws} drawn sentences were usable (3 to "
                            f"{MAX_WORDS} words of letters); is it a word LM of English?")
        words = sampler.sentence(rng)
        if words is None or not MIN_WORDS <= len(words) or not all(_SPOKEN_WORD.match(w) for w in words):
            continue
        sentence = normalize_transcript(" ".join(words))
        if sentence not in excluded:
            sentences.append(sentence)
    return sentences
