"""The hotword context graph against a brute-force matcher over random token sequences and phrase sets."""

from __future__ import annotations

import numpy as np
import pytest

from asr.errors import ConfigError
from asr.runtime.context_graph import ROOT, ContextGraph

VOCAB = 5  # blank 0 and tokens 1..4: a small alphabet makes overlapping matches common


def token_score(phrases: dict[tuple[int, ...], float], prefix: tuple[int, ...]) -> float:
    """What the token ending `prefix` earns: the largest score of the phrases that start with `prefix`."""
    return max(score for phrase, score in phrases.items() if phrase[: len(prefix)] == prefix)


def brute_force_bonus(phrases: dict[tuple[int, ...], float], tokens: tuple[int, ...]) -> float:
    """B(x): the bonus of every phrase occurrence in x, plus the pending bonus of the longest partial match."""
    def bonus(phrase: tuple[int, ...]) -> float:
        return sum(token_score(phrases, phrase[: i + 1]) for i in range(len(phrase)))

    total = 0.0
    for end in range(1, len(tokens) + 1):
        for phrase in phrases:
            if len(phrase) <= end and tokens[end - len(phrase) : end] == phrase:
                total += bonus(phrase)
    prefixes = {phrase[:i] for phrase in phrases for i in range(len(phrase) + 1)}
    suffix = next(tokens[start:] for start in range(len(tokens) + 1) if tokens[start:] in prefixes)
    last_phrase = max(j for j in range(len(suffix) + 1) if j == 0 or suffix[:j] in phrases)
    return total + sum(token_score(phrases, suffix[: i + 1]) for i in range(last_phrase, len(suffix)))


@pytest.mark.parametrize("seed", range(40))
def test_graph_bonus_of_every_prefix_equals_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    phrases: dict[tuple[int, ...], float] = {}
    for _ in range(rng.integers(1, 6)):
        phrase = tuple(rng.integers(1, VOCAB, size=rng.integers(1, 5)).tolist())
        phrases[phrase] = max(phrases.get(phrase, -np.inf), float(rng.choice([0.5, 1.0, 2.5])))
    # Repeated phrases with other scores: a duplicate counts once, with its largest score.
    listed = list(phrases.items()) + [(phrase, score / 2) for phrase, score in phrases.items()]
    graph = ContextGraph(listed, VOCAB)
    tokens = tuple(rng.integers(0, VOCAB, size=30).tolist())  # blanks included: they must change nothing
    state, total = ROOT, 0.0
    emitted: tuple[int, ...] = ()
    for token in tokens:
        state, bonus = graph.step(state, token)
        total += bonus
        if token != 0:
            emitted += (token,)
        assert total == pytest.approx(brute_force_bonus(phrases, emitted), abs=1e-9), (phrases, emitted)


def test_partial_match_is_taken_back_and_full_match_kept() -> None:
    graph = ContextGraph([((1, 2, 3), 2.0)], VOCAB)
    state, earned = ROOT, []
    for token in (1, 2, 4, 1, 2, 3, 4):
        state, bonus = graph.step(state, token)
        earned.append(bonus)
    assert earned == pytest.approx([2.0, 2.0, -4.0, 2.0, 2.0, 2.0, 0.0])
    assert graph.pending(graph.step(ROOT, 1)[0]) == pytest.approx(2.0)


def test_bad_phrases_are_refused() -> None:
    with pytest.raises(ConfigError, match="no tokens"):
        ContextGraph([((), 1.0)], VOCAB)
    with pytest.raises(ConfigError, match="not finite"):
        ContextGraph([((1,), float("nan"))], VOCAB)
    with pytest.raises(ConfigError, match="blank or outside"):
        ContextGraph([((0, 1), 1.0)], VOCAB)
