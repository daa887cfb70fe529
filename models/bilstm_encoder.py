"""Bidirectional LSTM encoder (kind "bilstm", Schuster & Paliwal 1997): whole utterances only.

    x4 conv front -> dropout -> residual BiLSTM layers -> Linear(output_dim)
    each layer: x + dropout(BiLSTM(x)), H cells per direction, so x is (B, T', 2H)

Each frame's output depends on every later frame of the utterance through the
backward direction, so there is no window it could be computed from before the
utterance ends: `stream` refuses with a message that says what to use instead
(offline transcription, `asr transcribe --offline`). Its algorithmic latency is
the rest of the utterance, `lookahead_ms` = inf; the exported encoder takes whole
utterances of any length (model_type "asr-offline").

In a padded batch the backward direction would start in the padding, so forward
packs the sequences whenever lengths differ; an unpadded batch (the exported
graph, one utterance per call) runs the layers directly.

Shapes: B batch, T feature frames, T' encoder frames, H cells per direction, D output dim.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from asr.errors import ConfigError
from models.config import EncoderConfig
from models.encoder import Encoder


class OfflineState(NamedTuple):
    """The state of an encoder that never streams: no tensors."""

    BATCH_AXES = ()


def streaming_refused(kind: str) -> str:
    """The message for a stream request to an offline encoder of `kind`."""
    return (
        f"the {kind} encoder cannot stream: its backward direction reads each utterance from its end, so no "
        "output exists before the audio ends; transcribe whole files with `asr transcribe --offline`, or train "
        "a streaming kind (e.g. --encoder lstm) for live use"
    )


class BiLstmEncoder(Encoder):
    """Offline bidirectional LSTM encoder: forward only; stream raises ConfigError."""

    def __init__(self, config: EncoderConfig) -> None:
        body_dim = 2 * config.hidden_dim  # both directions side by side
        super().__init__(config, body_dim)
        self.layers = nn.ModuleList(
            nn.LSTM(body_dim, config.hidden_dim, batch_first=True, bidirectional=True) for _ in range(config.num_layers)
        )
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(body_dim, config.output_dim)
        hidden = config.hidden_dim
        with torch.no_grad():  # forget-gate bias 1 (Gers et al.), as RnnEncoder gives its LSTMs
            for layer in self.layers:
                for name, bias in layer.named_parameters():
                    if name.startswith("bias_ih"):
                        bias[hidden : 2 * hidden].fill_(1.0)
                    elif name.startswith("bias_hh"):
                        bias[hidden : 2 * hidden].fill_(0.0)

    @property
    def lookahead_ms(self) -> float:
        """The rest of the utterance: unbounded."""
        return math.inf

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> OfflineState:
        return OfflineState()

    def forward(self, x: Tensor, x_lens: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, T, F), x_lens (B,) -> out (B, T', D), out_lens (B,)."""
        out_lens = self._check_utterances(x, x_lens)
        h = self.dropout(self.subsampling(x))  # (B, T', 2H)
        padded = bool((out_lens != h.shape[1]).any())
        for layer in self.layers:
            if padded:
                packed = pack_padded_sequence(h, out_lens.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
                y, _ = pad_packed_sequence(layer(packed)[0], batch_first=True, total_length=h.shape[1])
            else:
                y, _ = layer(h)
            h = h + self.dropout(y)  # (B, T', 2H)
        out = self.output(h)  # (B, T', D)
        # Unpadded (the exported graph): nothing to zero, and no length-dependent op, so T stays dynamic.
        return (self._zero_padding(out, out_lens) if padded else out), out_lens

    def stream(self, x: Tensor, state: NamedTuple) -> tuple[Tensor, NamedTuple]:
        raise ConfigError(streaming_refused(self.config.kind))
