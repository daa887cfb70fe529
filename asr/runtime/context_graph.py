"""Contextual biasing: an Aho-Corasick automaton over hotword token sequences (torch-free).

Modified beam search adds `ContextGraph.bonus_row(state)[token]` to the score of
extending a hypothesis by `token`, and moves the hypothesis's graph state to
`next_row(state)[token]` (blank leaves both alone). The bonus follows icefall's
ContextGraph and sherpa-onnx's hotwords in effect, not in code:

* every token that extends a partial match of a phrase earns that phrase's
  per-token score (a trie node shared by several phrases earns the largest);
* when the match fails, the partial bonus is taken back (the new state holds
  less pending bonus than the old one);
* a full match keeps its bonus: it is banked, and the pending bonus restarts
  from zero below the matched phrase, so no token is counted twice by one chain.

So after any token sequence x the bonus a hypothesis holds is

    B(x) = sum over occurrences of phrases p in x of bonus(p) + pending(state(x))

where bonus(p) is the sum of the per-token scores along p's trie path, state(x) is
the longest suffix of x that is a prefix of some phrase (the automaton's state),
and pending(u) sums the per-token scores of u's tokens after its longest prefix
that is a whole phrase. tests/test_context_graph.py checks this against a
brute-force matcher. At the end of a segment, ranking uses score - pending, so an
unfinished match earns nothing (icefall's `finalize`).

States are ints (trie node ids, 0 the root): the graph's state of a hypothesis is
a pure function of its token sequence, which is what lets beam search keep
merging hypotheses by token sequence alone (see BeamSearcher).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Sequence

import numpy as np

from asr.errors import ConfigError

ROOT = 0


class ContextGraph:
    """The automaton of a hotword list; immutable once built, apart from its row cache.

    phrases: (token ids, per-token score) pairs; ids in 0..vocab_size-1, never blank.
    """

    def __init__(self, phrases: Sequence[tuple[Sequence[int], float]], vocab_size: int, blank_id: int = 0) -> None:
        self.vocab_size = vocab_size
        self.blank_id = blank_id
        self._children: list[dict[int, int]] = [{}]
        self._token_score: list[float] = [0.0]  # what a token entering this node earns
        self._is_end: list[bool] = [False]
        for tokens, score in phrases:
            self._insert(tuple(tokens), float(score))
        self.num_phrases = sum(self._is_end)
        n = len(self._children)
        self._depth_score = [0.0] * n  # bonus(prefix) if the prefix is a phrase: sum of token scores to the root
        self._pending = [0.0] * n  # pending bonus held at the node (zero at a phrase's end)
        self._output = [0.0] * n  # bonus banked on arriving: every phrase that ends here (suffixes too)
        self._fail = [ROOT] * n
        self._link()
        # Dense rows, built the first time a state is reached: a graph of thousands of phrases
        # costs memory only for the states hypotheses actually visit.
        self._gotos: dict[int, np.ndarray] = {}  # (V,) the automaton's goto, blank not special
        self._next_rows: dict[int, np.ndarray] = {}
        self._bonus_rows: dict[int, np.ndarray] = {}
        self._pending_array = np.array(self._pending)
        self._output_array = np.array(self._output)

    def _insert(self, tokens: tuple[int, ...], score: float) -> None:
        if not tokens:
            raise ConfigError("a hotword phrase has no tokens; every phrase needs at least one")
        if not math.isfinite(score):
            raise ConfigError(f"hotword score {score} is not finite; use a number such as 1.5")
        node = ROOT
        for token in tokens:
            if not 0 <= token < self.vocab_size or token == self.blank_id:
                raise ConfigError(f"hotword token id {token} is blank or outside 0..{self.vocab_size - 1}")
            child = self._children[node].get(token)
            if child is None:
                child = len(self._children)
                self._children[node][token] = child
                self._children.append({})
                self._token_score.append(score)
                self._is_end.append(False)
            else:  # shared by phrases: the largest score wins, whatever the insertion order
                self._token_score[child] = max(self._token_score[child], score)
            node = child
        self._is_end[node] = True

    def _link(self) -> None:
        """Fail links and scores, breadth first (a node's fail target is shallower, so already done)."""
        queue: deque[int] = deque()
        for child in self._children[ROOT].values():
            queue.append(child)
            self._set_scores(child, ROOT)
        while queue:
            node = queue.popleft()
            for token, child in self._children[node].items():
                fail = self._fail[node]
                while token not in self._children[fail] and fail != ROOT:
                    fail = self._fail[fail]
                target = self._children[fail].get(token, ROOT)
                self._fail[child] = target if target != child else ROOT
                self._set_scores(child, node)
                queue.append(child)

    def _set_scores(self, node: int, parent: int) -> None:
        self._depth_score[node] = self._depth_score[parent] + self._token_score[node]
        pending = self._pending[parent] + self._token_score[node]
        self._pending[node] = 0.0 if self._is_end[node] else pending
        # Fail targets are shallower, so their output is final by now.
        own = self._depth_score[node] if self._is_end[node] else 0.0
        self._output[node] = own + self._output[self._fail[node]]

    def __len__(self) -> int:
        """Trie nodes, the root included."""
        return len(self._children)

    def pending(self, state: int) -> float:
        """The bonus of an unfinished match held in `state`: taken back if the segment ends there."""
        return self._pending[state]

    def step(self, state: int, token: int) -> tuple[int, float]:
        """The state after `token` and the bonus it earns (blank: unchanged, 0)."""
        return int(self.next_row(state)[token]), float(self.bonus_row(state)[token])

    def next_row(self, state: int) -> np.ndarray:
        """(V,) int64: the state after each token (the blank column keeps `state`)."""
        row = self._next_rows.get(state)
        if row is None:
            self._build_rows(state)
            row = self._next_rows[state]
        return row

    def bonus_row(self, state: int) -> np.ndarray:
        """(V,) float64: the bonus each token earns from `state` (0 for blank)."""
        row = self._bonus_rows.get(state)
        if row is None:
            self._build_rows(state)
            row = self._bonus_rows[state]
        return row

    def _build_rows(self, state: int) -> None:
        # The automaton's goto from a state is its fail target's goto, overridden by its own children.
        if state == ROOT:
            goto = np.zeros(self.vocab_size, dtype=np.int64)
        else:
            goto = self._goto_row(self._fail[state]).copy()
        for token, child in self._children[state].items():
            goto[token] = child
        self._gotos[state] = goto
        next_row = goto.copy()
        next_row[self.blank_id] = state
        pending, output = self._pending_array, self._output_array
        bonus = output[goto] + pending[goto] - pending[state]
        bonus[self.blank_id] = 0.0
        self._next_rows[state] = next_row
        self._bonus_rows[state] = bonus

    def _goto_row(self, state: int) -> np.ndarray:
        row = self._gotos.get(state)
        if row is None:
            self._build_rows(state)
            row = self._gotos[state]
        return row
