"""The dev-set WER measured at each validation, decoded by `asr.training.decoding` (the code `asr eval` runs).

Transducer greedy search by default: it scores what the exported model will do.
CTC greedy on the CTC head is the cheaper option (one batched pass, no per-frame
predictor/joiner loop) for models too slow to search during training.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from torch import nn

from asr.corpus.manifest import Utterance
from asr.training.batches import FeatureSource
from asr.training.decoding import EvalOptions, make_dev_wer_fn
from asr.training.tokenizers import Tokenizer

EvaluateFn = Callable[[nn.Module], float]  # model (unwrapped) -> dev WER in percent


def dev_wer_fn(
    utterances: Sequence[Utterance], features: FeatureSource, tokenizer: Tokenizer, decoding: str
) -> EvaluateFn:
    """An EvaluateFn decoding `utterances` (features at speed 1.0 from `features`) by `decoding`: greedy | ctc."""

    def cached_features(utterance: Utterance) -> np.ndarray:
        return features.get(utterance.id, 1.0)  # (T, F)

    return make_dev_wer_fn(tokenizer, utterances, cached_features, EvalOptions(decoding=decoding))
