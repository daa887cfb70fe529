"""The default dev-set WER used during training: CTC greedy decoding of the model's CTC head.

It needs only the encoder and the CTC head (one batched pass, no per-token
predictor/joiner loop), which keeps validation cheap on a CPU. It is one
`EvaluateFn`; a transducer-search WER plugs in the same way.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from asr.data import Batch, TokenizedSet
from asr.metrics import ErrorCounts, word_errors
from asr.search import ctc_greedy
from asr.tokens import Tokenizer

EvaluateFn = Callable[[nn.Module], float]  # model (unwrapped, eval mode) -> dev WER in percent


def ctc_greedy_wer_fn(
    dev: TokenizedSet, batches: Sequence[Batch], tokenizer: Tokenizer, device: torch.device
) -> EvaluateFn:
    """An EvaluateFn scoring CTC greedy hypotheses of `batches` (collated from `dev`) against dev's texts."""
    references = dict(zip(dev.ids, dev.texts))

    @torch.no_grad()
    def evaluate(model: nn.Module) -> float:
        counts = ErrorCounts()
        for batch in batches:
            enc, enc_lens = model.encode(batch.features.to(device), batch.feature_lens.to(device))  # (B, T', D)
            log_probs = model.ctc_log_probs(enc).float().cpu().numpy()  # (B, T', V)
            hypotheses = ctc_greedy(log_probs, enc_lens.cpu().numpy(), blank_id=model.config.blank_id)
            for utterance_id, hypothesis in zip(batch.ids, hypotheses):
                counts = counts + word_errors(references[utterance_id], tokenizer.decode(hypothesis.tokens))
        return 100.0 * counts.wer

    return evaluate
