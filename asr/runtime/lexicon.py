"""A word list beside the LM: beam search pays a penalty for every word outside it (torch-free).

A character LM spells as the acoustic model hears, one letter at a time, so fused
search still writes words that exist in no text (BROCON for BROKEN); with the
shipped model about four in a hundred words of the held-out voices were such
non-words. A word-level constraint in the spirit of icefall's LG decoding, kept
soft: `LexiconLm` wraps the token LM and lowers its log-probability of the token
that makes the current word leave the lexicon by `penalty`, once per word. The
token that leaves it is the letter no word continues with, or a word boundary
after a prefix that is not itself a word. A word may still be written when the
acoustic evidence outweighs the penalty, so names and rare words are not lost
outright.

The lexicon is a character trie in compressed rows (each node's children are one
slice of two arrays), the hypotheses' trie nodes ride in the LM state (one int64
array, hypotheses on HYP_AXIS) and are a function of the token sequence, which is
what lets beam search keep merging hypotheses by tokens alone. A word that is
still a proper prefix of some lexicon word when the stream ends is not charged.

words.txt (in the LM dir; `asr train-lm` writes it from the text the LM read): one word per
line, `WORD COUNT`, most frequent first; the count may be left out (1). Words are
normalised as transcripts are; blank lines and "#" comments are skipped.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Iterable

import numpy as np

from asr.errors import ModelFilesError
from asr.runtime.search import LanguageModel, PredictorState
from asr.runtime.tokens import SPECIAL_SYMBOLS, WORD_BOUNDARY, TokenTable
from asr.text import normalize_transcript

WORDS_FILE = "words.txt"
ROOT = 0  # between words
OUTSIDE = 1  # in a word that has already left the lexicon (and paid for it)
# Trie nodes whose rows a LexiconLm keeps, the oldest going first: at most a few MB (about 300 bytes a node
# with char tokens), for the nodes that streams visit again and again (the first letters of common words).
_ROW_CACHE_SIZE = 16384


class Lexicon:
    """An immutable character trie of words."""

    def __init__(self, words: Iterable[str]) -> None:
        children: list[dict[str, int]] = [{}, {}]  # ROOT, OUTSIDE
        is_word = [False, False]
        for word in words:
            node = ROOT
            for char in word:
                child = children[node].get(char)
                if child is None:
                    child = len(children)
                    children[node][char] = child
                    children.append({})
                    is_word.append(False)
                node = child
            if node != ROOT:
                is_word[node] = True
        self.num_words = sum(is_word)
        # Compressed rows: node n's children are chars[first[n]:first[n + 1]] -> nodes[...].
        counts = np.array([len(c) for c in children], dtype=np.int64)
        self._first = np.concatenate([[0], np.cumsum(counts)])
        self._chars = "".join(char for c in children for char in c)
        self._nodes = np.array([node for c in children for node in c.values()], dtype=np.int32)
        self._is_word = np.array(is_word)

    def __len__(self) -> int:
        """Trie nodes, ROOT and OUTSIDE included."""
        return len(self._is_word)

    def __contains__(self, word: object) -> bool:
        if not isinstance(word, str) or not word:
            return False
        node = ROOT
        for char in word:
            node = self.child(node, char)
            if node == OUTSIDE:
                return False
        return bool(self._is_word[node])

    def child(self, node: int, char: str) -> int:
        """The node after `char`, OUTSIDE where no word continues so (OUTSIDE stays OUTSIDE)."""
        if node == OUTSIDE:
            return OUTSIDE
        first, last = int(self._first[node]), int(self._first[node + 1])
        index = self._chars.find(char, first, last)
        return OUTSIDE if index < 0 else int(self._nodes[index])

    def is_word(self, node: int) -> bool:
        return bool(self._is_word[node])

    @classmethod
    def read(cls, path: str | Path, also: Iterable[str] = ()) -> Lexicon:
        """words.txt (see the module docstring) and the words `also`; ModelFilesError for a missing, unreadable
        or empty file."""
        counts = read_word_counts(path)
        if not counts:
            raise ModelFilesError(f"the word list {path} holds no words; {_WORDS_FIX}")
        return cls([*counts, *also])


_NORMALISED = re.compile(r"[A-Z]+(?:'[A-Z]+)*")  # a word as normalize_transcript leaves it
_WORDS_FIX = "write one word per line (as `asr train-lm` does beside lm.onnx), or leave out the non-word penalty"


def read_word_counts(path: str | Path) -> Counter[str]:
    """The words of a words.txt with their counts; ModelFilesError for a file that is missing or unreadable."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ModelFilesError(f"cannot read the word list {path} ({error}); {_WORDS_FIX}") from None
    counts: Counter[str] = Counter()
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        # What train-lm writes is normalised already; the full normalisation is for hand-written lists.
        word = fields[0] if _NORMALISED.fullmatch(fields[0]) else normalize_transcript(fields[0])
        if len(fields) > 2 or (len(fields) == 2 and not fields[1].isdigit()):
            raise ModelFilesError(f"{path}, line {number}: expected `WORD` or `WORD COUNT`, got {line.strip()!r}; "
                                  f"{_WORDS_FIX}")
        if word and " " not in word:
            counts[word] += int(fields[1]) if len(fields) == 2 else 1
    return counts


def word_list_text(counts: Counter[str]) -> str:
    """words.txt's content for `counts`: `WORD COUNT` lines, most frequent first, ties in alphabetical order."""
    return "".join(f"{word} {count}\n" for word, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])))


class LexiconLm:
    """A `LanguageModel` that is `lm` with `penalty` taken from each token that leaves `lexicon`.

    The state is (trie nodes (1, H) int64, *the LM's state). Each token of `table` is
    walked through the trie character by character: a leading ▁ (a word boundary)
    charges the word before it if that is not a lexicon word, and a character no word
    continues with charges the word it is in; a word is charged once, however many
    letters it has outside. Specials other than the blank (<unk>) leave the lexicon.
    """

    def __init__(self, lm: LanguageModel, lexicon: Lexicon, table: TokenTable, penalty: float) -> None:
        if not (np.isfinite(penalty) and penalty >= 0):
            raise ValueError(f"non-word penalty must be a finite number >= 0, got {penalty}")
        if table.vocab_size != lm.vocab_size:
            raise ValueError(f"the token table has {table.vocab_size} tokens but the LM scores {lm.vocab_size}; "
                             "give the table the LM was trained on")
        self.lm = lm
        self.lexicon = lexicon
        self.penalty = float(penalty)
        self._blank = lm.boundary_id
        self._pieces = [_piece(symbol) for symbol in table.symbols]
        # node -> (V,) int32 the node after each token, and (V,) int8 how many words each token charges
        self._rows_of: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def vocab_size(self) -> int:
        return self.lm.vocab_size

    @property
    def boundary_id(self) -> int:
        return self.lm.boundary_id

    def initial_state(self, n: int) -> PredictorState:
        return (np.full((1, n), ROOT, dtype=np.int64), *self.lm.initial_state(n))

    def step(self, tokens: np.ndarray, state: PredictorState) -> tuple[np.ndarray, PredictorState]:
        """The LM's step, with each next token's charge added to its log-probability (H, V)."""
        nodes, inner = state[0], state[1:]
        log_probs, inner = self.lm.step(tokens, inner)
        after = np.array([self._rows(node)[0][token] for node, token in zip(nodes[0].tolist(), tokens.tolist())],
                         dtype=np.int64)
        if len(after):
            charges = np.stack([self._rows(node)[1] for node in after.tolist()])  # (H, V) words charged
            log_probs = log_probs - self.penalty * charges
        return log_probs, (after[None, :], *inner)  # hypotheses on HYP_AXIS (1)

    def _rows(self, node: int) -> tuple[np.ndarray, np.ndarray]:
        """(V,) the node after each token and (V,) the words it charges, built the first time `node` is reached."""
        rows = self._rows_of.get(node)
        if rows is None:
            walks = [self._walk(node, piece) for piece in self._pieces]
            if len(self._rows_of) >= _ROW_CACHE_SIZE:  # dicts keep insertion order: drop the oldest
                self._rows_of.pop(next(iter(self._rows_of)))
            rows = (np.array([after for after, _ in walks], dtype=np.int32),
                    np.array([charged for _, charged in walks], dtype=np.int8))
            rows[0][self._blank], rows[1][self._blank] = node, 0  # blank: the transducer's, not a letter
            self._rows_of[node] = rows
        return rows

    def _walk(self, node: int, piece: str | None) -> tuple[int, int]:
        """The node after `piece` from `node`, and how many words it charges; None: a special (<unk>)."""
        if piece is None:
            return OUTSIDE, int(node != OUTSIDE)
        charged = 0
        for char in piece:
            if char == WORD_BOUNDARY:
                charged += int(node not in (ROOT, OUTSIDE) and not self.lexicon.is_word(node))
                node = ROOT
            else:
                after = self.lexicon.child(node, char)
                charged += int(after == OUTSIDE and node != OUTSIDE)
                node = after
        return node, charged


def _piece(symbol: str) -> str | None:
    """What a token spells in the trie's terms: its characters, ▁ for a word boundary; None for a special."""
    return None if symbol in SPECIAL_SYMBOLS else symbol


def lexicon_lm(lm: LanguageModel, lm_dir: str | Path, table: TokenTable, penalty: float,
               known_words: Iterable[str] = ()) -> LanguageModel:
    """`lm` paying `penalty` for each word outside `lm_dir`/words.txt and `known_words` (the commands pass their
    hotwords' words) when `penalty` > 0, else `lm` itself; ModelFilesError without the file."""
    if penalty <= 0:
        return lm
    path = Path(lm_dir) / WORDS_FILE
    if not path.is_file():
        raise ModelFilesError(f"a non-word penalty needs the LM's word list, but {Path(lm_dir)} has no {WORDS_FILE}; "
                              "write one word per line there, or give --non-word-penalty 0")
    known = (word for phrase in known_words for word in normalize_transcript(phrase).split())
    return LexiconLm(lm, Lexicon.read(path, also=known), table, penalty)

