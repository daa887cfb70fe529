"""WER scoring: hand-checked cases, aggregation, and a brute-force edit distance reference."""

from __future__ import annotations

import functools
import math
import random

import pytest

from asr.metrics import ErrorCounts, alignment, format_report, word_errors


@pytest.mark.parametrize(
    ("reference", "hypothesis", "expected"),
    [
        ("the cat sat", "the cat sat", ErrorCounts(0, 0, 0, 3)),
        ("the cat sat", "the bat sat", ErrorCounts(1, 0, 0, 3)),
        ("the cat sat", "the sat", ErrorCounts(0, 1, 0, 3)),
        ("the cat sat", "the cat sat down", ErrorCounts(0, 0, 1, 3)),
        ("the cat sat", "", ErrorCounts(0, 3, 0, 3)),
        ("", "hello there", ErrorCounts(0, 0, 2, 0)),
        ("", "", ErrorCounts(0, 0, 0, 0)),
        ("a b c d", "x a b c", ErrorCounts(0, 1, 1, 4)),
    ],
)
def test_hand_checked_counts(reference: str, hypothesis: str, expected: ErrorCounts) -> None:
    assert word_errors(reference, hypothesis) == expected


def test_normalisation_ignores_case_and_punctuation() -> None:
    assert word_errors("Hello, world!", "HELLO   WORLD") == ErrorCounts(0, 0, 0, 2)


def test_alignment_marks_each_operation() -> None:
    assert alignment("a b c d", "a x c e d") == [
        ("A", "A"),
        ("B", "X"),
        ("C", "C"),
        (None, "E"),
        ("D", "D"),
    ]
    assert alignment("a b", "") == [("A", None), ("B", None)]
    assert alignment("", "a") == [(None, "A")]


def test_wer_and_empty_reference() -> None:
    assert word_errors("a b c d", "a b c").wer == pytest.approx(0.25)
    assert word_errors("", "a b").wer == math.inf
    assert word_errors("", "").wer == 0.0


def test_aggregation_sums_counts_not_rates() -> None:
    total = sum(
        (word_errors(r, h) for r, h in [("a b c d", "a b c d"), ("a", "b"), ("", "x")]),
        ErrorCounts(),
    )
    assert total == ErrorCounts(substitutions=1, deletions=0, insertions=1, reference_words=5)
    assert total.errors == 2
    assert total.wer == pytest.approx(0.4)


def test_format_report() -> None:
    counts = ErrorCounts(substitutions=30, deletions=5, insertions=10, reference_words=365)
    assert format_report(counts) == "WER 12.33% [ 45 / 365, 10 ins, 5 del, 30 sub ]"
    assert format_report(ErrorCounts(0, 0, 2, 0)) == "WER inf% [ 2 / 0, 2 ins, 0 del, 0 sub ]"


def _brute_force_distance(ref: tuple[str, ...], hyp: tuple[str, ...]) -> int:
    """Edit distance by plain recursion over the first words (memoised)."""

    @functools.lru_cache(maxsize=None)
    def distance(i: int, j: int) -> int:
        if i == len(ref):
            return len(hyp) - j
        if j == len(hyp):
            return len(ref) - i
        return min(
            distance(i + 1, j + 1) + (ref[i] != hyp[j]),
            distance(i + 1, j) + 1,
            distance(i, j + 1) + 1,
        )

    return distance(0, 0)


def test_matches_brute_force_on_random_sequences() -> None:
    rng = random.Random(1234)
    for _ in range(400):
        ref = tuple(rng.choices("ABC", k=rng.randint(0, 7)))
        hyp = tuple(rng.choices("ABC", k=rng.randint(0, 7)))
        counts = word_errors(" ".join(ref), " ".join(hyp))
        pairs = alignment(" ".join(ref), " ".join(hyp))
        assert counts.errors == _brute_force_distance(ref, hyp), (ref, hyp)
        assert counts.reference_words == len(ref)
        assert counts.deletions - counts.insertions == len(ref) - len(hyp)
        # The alignment must spell out both sequences in order.
        assert tuple(r for r, _ in pairs if r is not None) == ref
        assert tuple(h for _, h in pairs if h is not None) == hyp
