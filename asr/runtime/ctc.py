"""Best-path (greedy) decoding of a CTC head's log-probabilities, over numpy."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from asr.checks import check_shape
from asr.runtime.search import Hypothesis, check_lengths


def ctc_greedy(
    log_probs: np.ndarray,
    lengths: np.ndarray | Sequence[int] | None = None,
    blank_id: int = 0,
) -> list[Hypothesis]:
    """Best-path CTC decoding: per-frame argmax, repeats collapsed, blanks dropped.

    log_probs: (N, T, V) or (T, V) CTC head log-probabilities; lengths: (N,) valid
    frames per utterance (None: all T). Returns N hypotheses; a token's timestamp is
    the first frame of its run, its score the summed best log-prob of the frames.
    """
    if getattr(log_probs, "ndim", None) == 2:
        log_probs = log_probs[None]  # (T, V) -> (1, T, V)
    check_shape("log_probs", log_probs, ("N", "T", "V"))
    lengths = check_lengths(lengths, log_probs.shape[0], log_probs.shape[1])
    best = log_probs.argmax(axis=-1)  # (N, T)
    best_scores = np.take_along_axis(log_probs, best[..., None], axis=-1)[..., 0]  # (N, T)
    hypotheses = []
    for path, path_scores, length in zip(best, best_scores, lengths.tolist()):
        path = path[:length]
        starts_run = np.ones(length, dtype=bool)
        starts_run[1:] = path[1:] != path[:-1]
        frames = np.flatnonzero(starts_run & (path != blank_id))
        score = float(path_scores[:length].sum(dtype=np.float64))
        hypotheses.append(Hypothesis(tuple(path[frames].tolist()), tuple(frames.tolist()), score))
    return hypotheses
