"""Modified beam search (icefall's), with hotword bonuses and LM shallow fusion, over `asr.runtime.search`.

Shape legend as in asr.runtime.search: N streams, H hypotheses (over all streams of a
call), S streams active in a stretch of frames, J joiner dim, V vocab.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from asr.runtime.context_graph import ROOT, ContextGraph
from asr.runtime.search import (
    PredictorState, Searcher, SearchState, concat_states, put_state, take_state,
)
from asr.runtime.token_path import TokenPath


@dataclass(slots=True)
class _Candidate:
    """A hypothesis of the next frame while beam search builds it (mutable: merging adds score)."""

    path: TokenPath
    score: float
    parent: int  # row of the current hypothesis it extends, over all streams
    emitted: bool  # whether it extends its parent by a token (needs a predictor call)
    context: int = ROOT  # its state in the stream's hotword graph (ROOT without one)


@dataclass
class _Beams:
    """The hypotheses of S streams, flat and stream-major, while beam search runs over frames."""

    paths: list[TokenPath]  # (H,) token sequences with their frames
    scores: np.ndarray  # (H,) float64
    decoder_out: np.ndarray  # (H, J)
    predictor_state: PredictorState  # H on HYP_AXIS
    counts: list[int]  # hypotheses per stream, summing to H
    graphs: list[ContextGraph | None]  # per stream, its hotword graph
    contexts: list[int]  # (H,) graph states (ROOT for streams without a graph)
    lm_state: PredictorState  # H on HYP_AXIS; () without an LM
    lm_scores: np.ndarray | None  # (H, V) fused LM scores of the next token; None without an LM

    @classmethod
    def gather(cls, states: Sequence[SearchState]) -> _Beams:
        """The hypotheses of `states`, joined in stream order."""
        return cls(
            [path for state in states for path in state.paths],
            np.concatenate([state.scores for state in states]),
            np.concatenate([state.decoder_out for state in states]),
            concat_states([state.predictor_state for state in states]),
            [len(state.paths) for state in states],
            [state.context_graph for state in states],
            [c for state in states for c in (state.contexts or [ROOT] * len(state.paths))],
            concat_states([state.lm_state for state in states]),
            None if states[0].lm_scores is None else np.concatenate([state.lm_scores for state in states]),
        )

    def scatter(self, states: Sequence[SearchState]) -> None:
        """Write each stream's hypotheses back into its state."""
        first = 0
        for state, count in zip(states, self.counts):
            rows = slice(first, first + count)
            state.paths = self.paths[rows]
            state.scores, state.decoder_out = self.scores[rows], self.decoder_out[rows]
            state.predictor_state = tuple(array[:, rows] for array in self.predictor_state)  # HYP_AXIS
            state.contexts = None if state.context_graph is None else self.contexts[rows]
            state.lm_state = tuple(array[:, rows] for array in self.lm_state)  # HYP_AXIS
            state.lm_scores = None if self.lm_scores is None else self.lm_scores[rows]
            first += count


class BeamSearcher(Searcher):
    """Modified beam search: at most one token per frame, `beam` hypotheses per stream.

    Per frame, every (hypothesis, token) pair of a stream is scored, the best
    `beam` are kept, and those with equal token sequences are merged by
    log-adding their scores (they are the same output reached by different
    alignments). One join and at most one predict call per frame cover every
    hypothesis of every stream; a stateless predictor's outputs are cached by
    context, so hypotheses that keep re-growing the same tokens skip it.

    Hotwords: a stream with a ContextGraph adds each (hypothesis, token) pair's
    bonus to its score before the top-k, and the candidate moves to the graph
    state after the token. Merging stays by token sequence alone: within a
    segment every hypothesis starts at the graph's root, and the graph state is
    a function of the token sequence, so two twins always hold the same state
    and have earned the same bonus; the log-add then keeps it once
    (log(e^(a+b) + e^(c+b)) = b + log(e^a + e^c)).

    LM fusion (a searcher made with a LanguageModel): each hypothesis carries its LM
    state and lm_scale times the LM's log-probabilities of the next token (blank 0),
    added to its row before the top-k; the hypotheses that grew are stepped in one LM
    call per frame. The LM state is a function of the tokens too, so merging holds.
    """

    def _advance(self, encoder_out: np.ndarray, states: list[SearchState], lengths: np.ndarray) -> None:
        ends = lengths.tolist()
        start = 0
        streams = [n for n in range(len(states)) if ends[n] > 0]
        while streams:  # stretches of frames over which the same streams are active
            stop = min(ends[n] for n in streams)
            group = [states[n] for n in streams]
            frames = encoder_out if len(streams) == len(states) else encoder_out[streams]  # (S, T, J)
            beams = _Beams.gather(group)
            for t in range(start, stop):
                beams = self._step(beams, frames[:, t], [state.num_frames + t for state in group])
            beams.scatter(group)
            start = stop
            streams = [n for n in streams if ends[n] > stop]

    def _step(self, beams: _Beams, encoder_frame: np.ndarray, frames: list[int]) -> _Beams:
        """Advance every stream by one frame; encoder_frame is (S, J), frames the streams' frame indices."""
        encoder_rows = encoder_frame.repeat(beams.counts, axis=0)  # (H, J)
        log_probs = self._log_probs(encoder_rows, beams.decoder_out)  # (H, V)
        totals = log_probs + beams.scores[:, None]
        if beams.lm_scores is not None:
            totals += beams.lm_scores  # shallow fusion: lm_scale * log P_LM(token | hypothesis), blank 0
        kept: list[_Candidate] = []
        counts = []
        first = 0
        for count, frame, graph in zip(beams.counts, frames, beams.graphs):
            rows = slice(first, first + count)
            if graph is not None:
                totals[rows] += np.stack([graph.bonus_row(c) for c in beams.contexts[rows]])
            candidates = self._prune(beams, totals[rows], log_probs[rows], first, frame, graph)
            kept.extend(candidates)
            counts.append(len(candidates))
            first += count

        parents = np.array([c.parent for c in kept])
        decoder_out = beams.decoder_out[parents]  # (H', J), a copy: grown rows are overwritten
        predictor_state = take_state(beams.predictor_state, parents)
        grown = [i for i, c in enumerate(kept) if c.emitted]
        if grown:
            index = np.array(grown)
            new_out, new_state = self._predict_grown([kept[i].path for i in grown], take_state(predictor_state, index))
            decoder_out[index] = new_out
            predictor_state = put_state(predictor_state, index, new_state)
        lm_state, lm_scores = self._advance_lm(beams, kept, parents, grown)
        return _Beams(
            [c.path for c in kept],
            np.array([c.score for c in kept]),
            decoder_out,
            predictor_state,
            counts,
            beams.graphs,
            [c.context for c in kept],
            lm_state,
            lm_scores,
        )

    def _advance_lm(self, beams: _Beams, kept: list[_Candidate], parents: np.ndarray, grown: list[int]
                    ) -> tuple[PredictorState, np.ndarray | None]:
        """The kept hypotheses' LM state and scores: their parents', stepped (one batched call) where they grew."""
        if beams.lm_scores is None:
            return (), None
        lm_scores = beams.lm_scores[parents]  # (H', V), a copy: grown rows are overwritten
        lm_state = take_state(beams.lm_state, parents)
        if grown:
            index = np.array(grown)
            tokens = np.array([kept[i].path.token for i in grown], dtype=np.int64)
            new_scores, new_state = self._lm_step(tokens, take_state(lm_state, index))
            lm_scores[index] = new_scores
            lm_state = put_state(lm_state, index, new_state)
        return lm_state, lm_scores

    def _prune(self, beams: _Beams, totals: np.ndarray, log_probs: np.ndarray, first_row: int, frame: int,
               graph: ContextGraph | None) -> list[_Candidate]:
        """The best `beam` extensions of one stream, merged by token sequence, best first.

        totals: (H_s, V) score of each (hypothesis, token) pair, hotword bonus included;
        log_probs: (H_s, V) the joiner's alone (a new token's confidence); first_row: the
        row of the stream's hypothesis 0 in `beams`; frame: the timestamp of new tokens.
        """
        blank, vocab_size = self.backend.blank_id, totals.shape[1]
        flat = totals.ravel()
        kept: list[_Candidate] = []
        for index in top_k(flat, self.options.beam).tolist():
            score = float(flat[index])
            parent, token = divmod(index, vocab_size)
            row = first_row + parent
            emitted = token != blank
            path = beams.paths[row]
            context = beams.contexts[row]
            if emitted:
                path = path.extend(token, frame, float(log_probs[parent, token]))
                if graph is not None:
                    context = int(graph.next_row(context)[token])
            # The stream's hypotheses differ, so two extensions can only be equal when one
            # adds blank and the other a token; last tokens rule most pairs out cheaply.
            for twin in kept:
                if twin.emitted != emitted and twin.path.token == path.token and twin.path.same_tokens(path):
                    # Candidates come best first, so the merged one keeps its best path's timestamps.
                    twin.score = log_add(twin.score, score)
                    break
            else:
                kept.append(_Candidate(path, score, row, emitted, context))
        return sorted(kept, key=lambda c: -c.score)


def top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest of `values` (1-D), largest first, ties in index order.

    What a stable descending argsort gives, at the cost of k argmax passes (a beam
    is a handful): argmax returns the first of equal maxima, so ties come out in
    index order. Once only -inf or NaN is left, the sort itself decides.
    """
    remaining = values.copy()
    picked = []
    for _ in range(min(k, values.size)):
        index = int(remaining.argmax())
        if not remaining[index] > -np.inf:
            return np.argsort(-values, kind="stable")[:k]
        picked.append(index)
        remaining[index] = -np.inf
    return np.array(picked, dtype=np.int64)


def log_add(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) without overflow, as np.logaddexp computes it, on Python floats."""
    if a == b:
        return a + math.log(2.0)
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))
