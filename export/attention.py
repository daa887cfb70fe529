"""attention_decoder.onnx: the attention decoder head of a Transducer, for n-best rescoring in the runtime.

    attention_decoder.onnx  memory (1, T', J), tokens (H, U) int64 -> log_probs (H, U, V)

Written only for models trained with the head, beside encoder/decoder/joiner (which
do not change), with the same metadata; fp32 only, used with the int8 files too: it
runs once per segment, where its size and speed matter far less than per chunk.
T', H and U are dynamic. The head is traced from a plain float copy, not from
`exportable_copy`: unrolling its LSTM would fix U at the example's length, while
ONNX's LSTM operator takes any U.

Shapes: H hypotheses, U tokens (sos first), T' encoder frames, J joiner dim, V vocab.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from asr.runtime.model_dir import ATTENTION_FILE, ModelFiles
from asr.runtime.model_metadata import ATTENTION_MEMORY, ATTENTION_OUTPUT, ATTENTION_TOKENS, ModelMetadata
from asr.runtime.onnx_backend import OnnxAttentionScorer
from export.tracing import trace_to_onnx
from models.attention_decoder import AttentionDecoder
from models.transducer import Transducer

VERIFY_SHAPES = ((3, 6, 17), (1, 1, 1))  # (H, U, T') checked against torch: a batch, and the smallest call


class AttentionDecoderWrapper(nn.Module):
    """Segment frames and teacher-forced token inputs in, per-position log-probabilities out."""

    input_names = [ATTENTION_MEMORY, ATTENTION_TOKENS]
    output_names = [ATTENTION_OUTPUT]

    def __init__(self, decoder: AttentionDecoder) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, memory: Tensor, tokens: Tensor) -> Tensor:
        """memory (1, T', J), tokens (H, U) -> log_probs (H, U, V); memory is shared by every hypothesis."""
        return self.decoder(memory, tokens)


def write_attention_decoder(model: Transducer, meta: ModelMetadata, directory: Path) -> None:
    """Write attention_decoder.onnx of `model` (which must have the head) into `directory`, with `meta`."""
    assert model.attention_decoder is not None  # callers check: export writes the file only for models with the head
    wrapper = AttentionDecoderWrapper(copy.deepcopy(model.attention_decoder).float().cpu().eval())
    memory = torch.zeros(1, 5, meta.joiner_dim)  # (1, T', J)
    tokens = torch.full((2, 3), meta.blank_id, dtype=torch.int64)  # (H, U)
    axes = {ATTENTION_MEMORY: {1: "T"}, ATTENTION_TOKENS: {0: "H", 1: "U"}, ATTENTION_OUTPUT: {0: "H", 1: "U"}}
    with torch.no_grad():
        trace_to_onnx(wrapper, (memory, tokens), axes, directory / ATTENTION_FILE, meta.to_props())


def compare_attention_decoder(model: Transducer, files: ModelFiles, seed: int) -> dict[str, float]:
    """Largest |ONNX - torch| of attention_decoder.onnx's log_probs over VERIFY_SHAPES (random frames and tokens)."""
    assert files.attention_decoder is not None and model.attention_decoder is not None
    scorer = OnnxAttentionScorer(files.attention_decoder, files.metadata)
    reference = AttentionDecoderWrapper(copy.deepcopy(model.attention_decoder).float().cpu().eval())
    rng = np.random.default_rng(seed + 3)
    diffs = []
    for hypotheses, length, frames in VERIFY_SHAPES:
        memory = rng.standard_normal((1, frames, files.metadata.joiner_dim)).astype(np.float32)
        tokens = rng.integers(0, files.metadata.vocab_size, size=(hypotheses, length), dtype=np.int64)
        with torch.no_grad():
            expected = reference(torch.from_numpy(memory), torch.from_numpy(tokens)).numpy()
        got = scorer.log_probs(memory, tokens)
        same_shape = got.shape == expected.shape
        diffs.append(float(np.abs(got.astype(np.float64) - expected).max(initial=0.0)) if same_shape else np.nan)
    # np.max propagates NaN, so a non-finite output (or a wrong shape) never passes a tolerance.
    return {f"{ATTENTION_FILE}:{ATTENTION_OUTPUT}": float(np.max(diffs))}
