"""A word trigram beside the token LM: back-off scores for whole words (torch-free).

The token LM reads characters, and a small one knows words as letter strings, not
which word follows which: on everyday sentences the shipped one's perplexity is 3.1 a
character. A word trigram counted over the same text knows that after "A CUP OF"
comes COFFEE or TEA, for the cost of a table lookup.

word_lm.npz (in the LM dir; `asr train-lm --word-trigram` writes it, asr.training.word_ngram;
asr.runtime.word_rescore re-ranks each segment's n-best with it) holds, in memory (`WordNgram`):

    words              (V,) str      id 0 is <s>, id 1 is </s>, then the words, normalised as transcripts
    unigram_log_probs  (V,) float32  natural logs; <s> is never predicted (a very low value)
    unigram_backoffs   (V,) float32  log back-off weight of the one-word history
    bigram_keys        (N2,) int64   sorted, h * V + w
    bigram_log_probs   (N2,) float32
    bigram_backoffs    (N2,) float32 log back-off weight of the two-word history (h1, h2)
    trigram_keys       (N3,) int64   sorted, (h1 * V + h2) * V + w
    trigram_log_probs  (N3,) float32
    unknown_log_prob   () float32    what a word outside the vocabulary scores

The file stores them smaller (a third of the plain arrays' size, compressed): a bigram as the
step of its history id from the previous bigram's and its word id; a trigram as the step of
the index of its history bigram from the previous trigram's and its word id (steps are mostly
0 or 1, so they compress to almost nothing); the unigrams' logs in half precision; and the
bigrams' and trigrams' logs as 8-bit codes on a linear scale from LOG_FLOOR to the array's
largest value (`<name>_scale` holds the first value and the step: within 0.08 nats, a few
hundredths of a word's score at the weights used; lower values are stored as the floor).

the ARPA back-off model in arrays: log P(w | h1 h2) is the trigram's log-probability where
it is listed, else the back-off weight of (h1, h2) (0 where that bigram is not listed) plus
log P(w | h2), which is the bigram's where listed, else h2's back-off weight plus w's
unigram. A history id of NO_WORD (-1) is no word at all (before the first word there is one:
<s>; after a word outside the vocabulary, none), so the score backs off past it. A word outside
the vocabulary scores unknown_log_prob, what the counts give a word they never saw: a
rescored hypothesis must pay for an unknown word, not get it free.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from asr.atomic_write import write_bytes_atomically
from asr.errors import ModelFilesError

WORD_LM_FILE = "word_lm.npz"
BOS, EOS = 0, 1  # ids of <s> and </s>
SPECIAL_WORDS = ("<s>", "</s>")
NO_WORD = -1  # a history slot holding no word
_CODED = ("bigram_log_probs", "bigram_backoffs", "trigram_log_probs")  # 8-bit codes in the file
LOG_FLOOR = -30.0  # the lowest log the 8-bit codes keep apart: e^-30 is never, for a rescored word
_FIX = "write it again with `asr train-lm --words-only --word-trigram ...`, or delete it"


@dataclass(frozen=True, eq=False)
class WordNgram:
    """A back-off word trigram in sorted arrays (see the module docstring); immutable."""

    words: np.ndarray
    unigram_log_probs: np.ndarray
    unigram_backoffs: np.ndarray
    bigram_keys: np.ndarray
    bigram_log_probs: np.ndarray
    bigram_backoffs: np.ndarray
    trigram_keys: np.ndarray
    trigram_log_probs: np.ndarray
    unknown_log_prob: np.ndarray  # 0-d

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ids", {str(word): i for i, word in enumerate(self.words.tolist())})

    @property
    def vocab_size(self) -> int:
        """V: the words, <s> and </s> included."""
        return len(self.words)

    def id_of(self, word: str) -> int:
        """The word's id, NO_WORD for a word outside the vocabulary."""
        return self._ids.get(word, NO_WORD)  # type: ignore[attr-defined]

    def log_probs(self, h1: np.ndarray, h2: np.ndarray, word: np.ndarray) -> np.ndarray:
        """(N,) float64 natural log P(word | h1 h2), h1 the older word; int arrays of N ids, NO_WORD allowed in
        the histories (not in `word`)."""
        h1, h2, word = (np.asarray(a, dtype=np.int64) for a in (h1, h2, word))
        v = self.vocab_size
        has_h2 = h2 >= 0
        has_both = has_h2 & (h1 >= 0)
        found3, trigram = _lookup(self.trigram_keys, self.trigram_log_probs, (h1 * v + h2) * v + word, has_both)
        _, history_backoff = _lookup(self.bigram_keys, self.bigram_backoffs, h1 * v + h2, has_both)
        found2, bigram = _lookup(self.bigram_keys, self.bigram_log_probs, h2 * v + word, has_h2)
        h2_backoff = np.where(has_h2, self.unigram_backoffs[np.where(has_h2, h2, 0)], 0.0)
        bigram = np.where(found2, bigram, h2_backoff + self.unigram_log_probs[word])
        return np.where(found3, trigram, history_backoff + bigram).astype(np.float64)

    def sentence_log_probs(self, sentences: Sequence[Sequence[str]]) -> np.ndarray:
        """(N,) float64 natural log P(words, </s> | <s>) of each sentence, in one lookup; a word outside the
        vocabulary scores unknown_log_prob and leaves no history (the next word backs off past it)."""
        rows, older, newer, targets = [], [], [], []
        unknown = np.zeros(len(sentences))
        for row, words in enumerate(sentences):
            h1, h2 = NO_WORD, BOS
            for word in [*(self.id_of(w) for w in words), EOS]:
                if word == NO_WORD:
                    unknown[row] += 1
                else:
                    rows.append(row), older.append(h1), newer.append(h2), targets.append(word)
                h1, h2 = h2, word
        scores = self.log_probs(np.array(older, dtype=np.int64), np.array(newer, dtype=np.int64),
                                np.array(targets, dtype=np.int64))
        known = np.bincount(np.array(rows, dtype=np.int64), weights=scores, minlength=len(sentences))
        return known + unknown * float(self.unknown_log_prob)

    def write(self, path: str | Path) -> None:
        """Save as word_lm.npz (the compact layout of the module docstring); a write cut short leaves no file behind
        under `path`."""
        v = self.vocab_size
        word_type = np.uint16 if v <= 2**16 else np.uint32
        stored = {"words": self.words, "unknown_log_prob": self.unknown_log_prob.astype(np.float32),
                  "unigram_log_probs": self.unigram_log_probs.astype(np.float16),
                  "unigram_backoffs": self.unigram_backoffs.astype(np.float16),
                  "bigram_history_steps": np.diff(self.bigram_keys // v, prepend=0),
                  "bigram_words": (self.bigram_keys % v).astype(word_type),
                  "trigram_history_steps": np.diff(np.searchsorted(self.bigram_keys, self.trigram_keys // v),
                                                   prepend=0),
                  "trigram_words": (self.trigram_keys % v).astype(word_type)}
        for name in _CODED:
            stored[name], stored[f"{name}_scale"] = _encode(getattr(self, name))
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **stored)
        write_bytes_atomically(Path(path), buffer.getvalue())

    @classmethod
    def read(cls, path: str | Path) -> WordNgram:
        """Load word_lm.npz; ModelFilesError naming the file and the fix for a missing, damaged or inconsistent one."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as arrays:
                model = cls._unpack({name: arrays[name] for name in arrays.files})
        except (OSError, ValueError, KeyError, EOFError, IndexError) as error:
            raise ModelFilesError(f"cannot read the word trigram {path} ({error!r}); {_FIX}") from None
        problem = model.inconsistency()
        if problem:
            raise ModelFilesError(f"the word trigram {path} is inconsistent: {problem}; {_FIX}")
        return model

    @classmethod
    def _unpack(cls, stored: dict[str, np.ndarray]) -> WordNgram:
        """The in-memory arrays from the file's; IndexError for a word id beyond the words or a trigram whose history
        bigram is not there."""
        v = len(stored["words"])
        if max(stored["bigram_words"].max(initial=0), stored["trigram_words"].max(initial=0)) >= v:
            raise IndexError(f"a word id beyond the {v} words")
        bigram_keys = np.cumsum(stored["bigram_history_steps"], dtype=np.int64) * v + stored["bigram_words"]
        histories = np.cumsum(stored["trigram_history_steps"], dtype=np.int64)
        if len(histories) and (histories.min() < 0 or histories.max() >= len(bigram_keys)):
            raise IndexError("a trigram's history bigram is not among the bigrams")
        trigram_keys = bigram_keys[histories] * v + stored["trigram_words"]
        coded = {name: _decode(stored[name], stored[f"{name}_scale"]) for name in _CODED}
        return cls(stored["words"], stored["unigram_log_probs"].astype(np.float32),
                   stored["unigram_backoffs"].astype(np.float32), bigram_keys, coded["bigram_log_probs"],
                   coded["bigram_backoffs"], trigram_keys, coded["trigram_log_probs"],
                   stored["unknown_log_prob"].astype(np.float32))

    def inconsistency(self) -> str:
        """What is wrong with the arrays' shapes, order or ids, or "" when nothing is."""
        v = len(self.words)
        if self.unknown_log_prob.shape != () or not np.isfinite(self.unknown_log_prob):
            return f"unknown_log_prob must be one finite number, got {self.unknown_log_prob!r}"
        if v < 3 or tuple(self.words[:2].tolist()) != SPECIAL_WORDS:
            return f"expected {SPECIAL_WORDS} and at least one word first, got {self.words[:3].tolist()}"
        for name, keys, columns, top in (("unigram", None, ("unigram_log_probs", "unigram_backoffs"), v),
                                         ("bigram", self.bigram_keys, ("bigram_log_probs", "bigram_backoffs"), v**2),
                                         ("trigram", self.trigram_keys, ("trigram_log_probs",), v**3)):
            n = v if keys is None else len(keys)
            if any(getattr(self, column).shape != (n,) for column in columns):
                return f"the {name} arrays differ in length"
            if keys is not None and n and (keys.dtype != np.int64 or np.any(np.diff(keys) <= 0) or keys[0] < 0
                                           or keys[-1] >= top):
                return f"the {name} keys are not sorted, distinct ids of the {v} words"
        if not np.isin(self.trigram_keys // v, self.bigram_keys).all():
            return "a trigram's history is not among the bigrams"
        return ""


def _encode(logs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8-bit codes of `logs` on a linear scale from LOG_FLOOR to their largest value, and (first value, step)."""
    low = LOG_FLOOR
    high = max(float(logs.max(initial=low)), low + 1e-3)
    step = (high - low) / 255
    codes = np.round((np.clip(logs, low, high) - low) / step).astype(np.uint8)
    return codes, np.array([low, step], dtype=np.float64)


def _decode(codes: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return (scale[0] + codes.astype(np.float64) * scale[1]).astype(np.float32)


def _lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray, valid: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """(found (N,) bool, value (N,), 0 where not found) of each valid query in the sorted `keys`."""
    if len(keys) == 0:
        return np.zeros(len(queries), dtype=bool), np.zeros(len(queries))
    at = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    found = valid & (keys[at] == queries)
    return found, np.where(found, values[at], 0.0)


def read_word_lm(lm_dir: str | Path) -> WordNgram:
    """`lm_dir`/word_lm.npz; ModelFilesError naming the dir and the fix when there is none."""
    path = Path(lm_dir) / WORD_LM_FILE
    if not path.is_file():
        raise ModelFilesError(f"a word trigram weight needs the LM's {WORD_LM_FILE}, but {Path(lm_dir)} has none; "
                              "write one with `asr train-lm --words-only --word-trigram ...` (the LM's text flags), "
                              "or give --word-lm-weight 0")
    return WordNgram.read(path)
