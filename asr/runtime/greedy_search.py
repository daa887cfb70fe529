"""Greedy transducer search, block-wise over `asr.runtime.search`'s interfaces (beam search: asr.runtime.beam_search).

Shape legend as in asr.runtime.search: N streams, T encoder frames, J joiner dim, V vocab.
"""

from __future__ import annotations

import numpy as np

from asr.errors import AsrError, ConfigError
from asr.runtime.context_graph import ContextGraph
from asr.runtime.search import (
    LanguageModel, Searcher, SearchState, concat_states, log_softmax, put_state, take_state,
)
from asr.runtime.token_path import TokenPath

# Greedy search scores at most this many frames of a stream per join call. Frames after
# the first emission are scored again under the new predictor output, so a longer block
# wastes more rows when tokens come densely; sherpa-onnx-sized windows (8 frames) fit whole.
GREEDY_BLOCK_FRAMES = 16


class GreedySearcher(Searcher):
    """Per frame, emit the argmax token until blank or `max_symbols_per_frame` tokens.

    Done block-wise rather than frame by frame: one join call scores all of a stream's
    next frames (up to GREEDY_BLOCK_FRAMES) under its current predictor output. The
    frames before the first non-blank argmax are exactly the blanks the frame-by-frame
    loop would take; at that frame the token is emitted, the predictor steps, and
    scoring resumes there (or at the next frame, once it holds max_symbols_per_frame
    tokens). So the result is the frame-by-frame one, with one join call per emission
    instead of one per frame. Scores of the consumed rows are summed once per advance.

    A backend whose join rows are not independent (TransducerBackend.join_rows_independent) gets
    one frame per call. Streams decoded together still share calls, as in beam search.
    """

    def _check_lm(self, lm: LanguageModel) -> None:
        raise ConfigError(
            "LM fusion needs beam search (the LM re-ranks hypotheses, and greedy search keeps one); "
            "use SearchOptions(method='beam') or --decoding beam"
        )

    def _check_graph(self, graph: ContextGraph) -> None:
        raise ConfigError(
            "hotwords need beam search (a bonus can only change which hypothesis wins when there are "
            "several); use SearchOptions(method='beam') or --decoding beam"
        )

    def _advance(self, encoder_out: np.ndarray, states: list[SearchState], lengths: np.ndarray) -> None:
        for state in states:
            if len(state.paths) != 1:
                raise AsrError(
                    f"greedy search got a state with {len(state.paths)} hypotheses; create "
                    "states with this searcher's init_state()"
                )
        blank, max_symbols = self.backend.blank_id, self.options.max_symbols_per_frame
        block = GREEDY_BLOCK_FRAMES if self.backend.join_rows_independent else 1
        paths = [state.paths[0] for state in states]  # grows by one node per token, O(1)
        decoder_out = np.concatenate([state.decoder_out for state in states])  # (N, J), a copy we may write
        predictor_state = concat_states([state.predictor_state for state in states])
        ends = lengths.tolist()
        frames = [0] * len(states)  # per stream, the next frame to score
        used = [0] * len(states)  # tokens already emitted at that frame
        consumed: list[np.ndarray] = []  # (k, V) logit rows whose argmax was taken, in order
        owners: list[int] = []  # the stream of each consumed row
        chosen: list[int] = []  # the token (blank included) taken at each consumed row
        emissions: list[tuple[TokenPath, int]] = []  # each new token's node and its consumed row
        active = [n for n in range(len(states)) if ends[n] > 0]
        while active:
            spans = [(frames[n], min(ends[n], frames[n] + block)) for n in active]
            counts = [stop - start for start, stop in spans]
            blocks = [encoder_out[n, start:stop] for n, (start, stop) in zip(active, spans)]
            encoder_rows = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)  # (R, J)
            # Frame-by-frame joins (and single streams) skip the gather and repeat copies.
            decoder_rows = decoder_out if len(active) == len(states) else decoder_out[active]  # (A, J)
            if len(encoder_rows) > len(active):
                decoder_rows = decoder_rows.repeat(counts, axis=0)  # (R, J)
            logits = self._logits(encoder_rows, decoder_rows)  # (R, V)
            best = logits.argmax(axis=1).tolist()
            emitters = []
            row = 0
            for n, (start, stop), count in zip(active, spans, counts):
                k = 0  # the block's first non-blank frame, or count
                while k < count and best[row + k] == blank:
                    k += 1
                taken = min(k + 1, count)
                consumed.append(logits[row : row + taken])
                owners.extend([n] * taken)
                chosen.extend(best[row : row + taken])
                if k < count:
                    frame = start + k
                    paths[n] = paths[n].extend(best[row + k], states[n].num_frames + frame)
                    emissions.append((paths[n], len(chosen) - 1))
                    symbols = (used[n] if k == 0 else 0) + 1
                    frames[n], used[n] = (frame + 1, 0) if symbols == max_symbols else (frame, symbols)
                    emitters.append(n)
                else:
                    frames[n], used[n] = stop, 0
                row += count
            if emitters:
                new_out, new_state = self._predict_grown(
                    [paths[n] for n in emitters], take_state(predictor_state, emitters)
                )
                decoder_out[emitters] = new_out
                predictor_state = put_state(predictor_state, emitters, new_state)
            active = [n for n in active if frames[n] < ends[n]]
        scores = np.concatenate([state.scores for state in states])  # (N,)
        if consumed:
            log_probs = log_softmax(np.concatenate(consumed))  # (R, V)
            steps = log_probs[np.arange(len(log_probs)), chosen]  # (R,)
            scores = scores + np.bincount(owners, weights=steps, minlength=len(states))
            for node, consumed_row in emissions:
                node.log_prob = float(steps[consumed_row])
        for n, state in enumerate(states):
            state.paths = [paths[n]]
            state.scores = scores[n : n + 1]
            state.decoder_out = decoder_out[n : n + 1]
            state.predictor_state = tuple(array[:, n : n + 1] for array in predictor_state)  # HYP_AXIS
