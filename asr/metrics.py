"""Word error rate: Levenshtein alignment over words, numpy-vectorised per row.

Both texts are normalised with `asr.text.normalize_transcript` and split on
spaces, so case and punctuation never count as errors.

An empty reference has no words to divide by: its errors are all insertions and
`ErrorCounts.wer` is `math.inf` when there are any (0.0 when the hypothesis is
empty too); `format_report` prints the counts next to it, so nothing is hidden.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from asr.text import normalize_transcript

AlignedPair = tuple[str | None, str | None]  # (reference word, hypothesis word); None is a gap


@dataclass(frozen=True)
class ErrorCounts:
    """Edit operations turning references into hypotheses; add them to aggregate."""

    substitutions: int = 0  # reference words replaced by another word
    deletions: int = 0  # reference words missing from the hypothesis
    insertions: int = 0  # hypothesis words with no reference word
    reference_words: int = 0  # words in the references: the WER denominator

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        """errors / reference_words; inf for errors against an empty reference, 0.0 for none."""
        if self.reference_words == 0:
            return math.inf if self.errors else 0.0
        return self.errors / self.reference_words

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        return ErrorCounts(
            substitutions=self.substitutions + other.substitutions,
            deletions=self.deletions + other.deletions,
            insertions=self.insertions + other.insertions,
            reference_words=self.reference_words + other.reference_words,
        )


def word_errors(reference: str, hypothesis: str) -> ErrorCounts:
    """Minimum-edit counts of normalised `hypothesis` against normalised `reference`.

    Aggregate a corpus with `sum(counts, ErrorCounts())`.
    """
    pairs = alignment(reference, hypothesis)
    return ErrorCounts(
        substitutions=sum(r is not None and h is not None and r != h for r, h in pairs),
        deletions=sum(h is None for _, h in pairs),
        insertions=sum(r is None for r, _ in pairs),
        reference_words=sum(r is not None for r, _ in pairs),
    )


def alignment(reference: str, hypothesis: str) -> list[AlignedPair]:
    """A minimum-edit alignment of the normalised word sequences, in order.

    Each pair is (ref, hyp): equal words match, two different words are a
    substitution, (ref, None) a deletion, (None, hyp) an insertion. Among equally
    short alignments the backtrace prefers substitutions, then deletions.
    """
    ref = normalize_transcript(reference).split()
    hyp = normalize_transcript(hypothesis).split()
    cost = _edit_distance_table(ref, hyp)
    return _backtrace(cost, ref, hyp)


def format_report(counts: ErrorCounts) -> str:
    """Kaldi-style summary, e.g. 'WER 12.34% [ 45 / 365, 10 ins, 5 del, 30 sub ]'."""
    return (
        f"WER {100 * counts.wer:.2f}% [ {counts.errors} / {counts.reference_words}, "
        f"{counts.insertions} ins, {counts.deletions} del, {counts.substitutions} sub ]"
    )


def _edit_distance_table(ref: list[str], hyp: list[str]) -> np.ndarray:
    """cost[i, j]: edit distance of ref[:i] to hyp[:j]; shape (R + 1, H + 1).

    Each row is computed at once: deletions and substitutions come from the row
    above, and insertions chain along the row, which a running minimum of
    (candidate - j) solves without a Python loop over j.
    """
    vocabulary = {word: k for k, word in enumerate(set(ref) | set(hyp))}
    ref_ids = np.array([vocabulary[w] for w in ref], dtype=np.int64)
    hyp_ids = np.array([vocabulary[w] for w in hyp], dtype=np.int64)
    differs = (ref_ids[:, None] != hyp_ids[None, :]).astype(np.int64)  # (R, H)
    columns = np.arange(len(hyp) + 1, dtype=np.int64)
    cost = np.empty((len(ref) + 1, len(hyp) + 1), dtype=np.int64)
    cost[0] = columns
    for i in range(1, len(ref) + 1):
        above = cost[i - 1]
        candidate = np.empty_like(above)
        candidate[0] = i  # ref[:i] against nothing: i deletions
        candidate[1:] = np.minimum(above[1:] + 1, above[:-1] + differs[i - 1])
        # cost[i, j] = min over k <= j of candidate[k] + (j - k) insertions.
        cost[i] = np.minimum.accumulate(candidate - columns) + columns
    return cost


def _backtrace(cost: np.ndarray, ref: list[str], hyp: list[str]) -> list[AlignedPair]:
    table = cost.tolist()  # Python ints: scalar indexing of numpy is slow
    i, j = len(ref), len(hyp)
    pairs: list[AlignedPair] = []
    while i > 0 or j > 0:
        here = table[i][j]
        if i > 0 and j > 0 and here == table[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            i, j = i - 1, j - 1
            pairs.append((ref[i], hyp[j]))
        elif i > 0 and here == table[i - 1][j] + 1:
            i -= 1
            pairs.append((ref[i], None))
        else:
            j -= 1
            pairs.append((None, hyp[j]))
    pairs.reverse()
    return pairs
