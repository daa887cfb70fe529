"""Thin nn.Module wrappers that give each ONNX file its inputs and outputs, in order.

    encoder.onnx  x (N, T, F), *encoder states -> encoder_out (N, n, J), *next states
                  offline models: x (N, T, F), any T -> encoder_out (N, T', J)
    decoder.onnx  y (N, C) int64, *predictor states -> decoder_out (N, J), *next states
    joiner.onnx   encoder_out (N, J), decoder_out (N, J) -> logit (N, V)

Each wrapper calls exactly one of the model's exportable entry points (stream,
predict, join); the encoder and decoder outputs are already joiner-projected, as
sherpa-onnx expects. States travel as separate tensors named after the fields
of the model's state NamedTuple (the next state of field `h` is `next_h`).

Shapes: N streams, T window frames, n encoder frames, F fbank bins, C context
size, J joiner dim, V vocab.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch
from torch import Tensor, nn

from asr.runtime.model_metadata import (
    DECODER_INPUT,
    DECODER_OUTPUT,
    ENCODER_INPUT,
    ENCODER_OUTPUT,
    JOINER_OUTPUT,
    next_state_name,
)
from export.unroll import unroll_recurrent_layers
from models.transducer import Transducer


def exportable_copy(model: Transducer) -> Transducer:
    """A float32 CPU copy in eval mode whose recurrent layers are unrolled (export.unroll says why).

    The caller's model is not touched.
    """
    exportable = copy.deepcopy(model).float().cpu().eval()
    unroll_recurrent_layers(exportable)
    return exportable


class _StatefulWrapper(nn.Module):
    """A wrapper with one main input and output plus state tensors named after the state's fields."""

    main_input: str  # name of the first input
    main_output: str  # name of the first output

    def __init__(self, model: Transducer, state: NamedTuple) -> None:
        super().__init__()
        self.model = model
        self.state_type = type(state)

    @property
    def input_names(self) -> list[str]:
        return [self.main_input, *self.state_type._fields]

    @property
    def output_names(self) -> list[str]:
        return [self.main_output, *map(next_state_name, self.state_type._fields)]


class EncoderWrapper(_StatefulWrapper):
    """One stream window plus state in, projected encoder output plus next state out."""

    main_input, main_output = ENCODER_INPUT, ENCODER_OUTPUT

    def __init__(self, model: Transducer) -> None:
        super().__init__(model, model.init_state(1, device="meta"))

    def forward(self, x: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        """x (N, 4n + pad_frames, F), state fields -> encoder_out (N, n, J), next state fields."""
        out, next_state = self.model.stream(x, self.state_type(*state))
        return (self.model.joiner.project_encoder(out), *next_state)


class OfflineEncoderWrapper(nn.Module):
    """Offline encoders (model_type asr-offline): whole unpadded utterances in, projected encoder output out."""

    input_names = [ENCODER_INPUT]
    output_names = [ENCODER_OUTPUT]

    def __init__(self, model: Transducer) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        """x (N, T, F), every row T frames long -> encoder_out (N, T', J)."""
        lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.int64)  # one utterance per row: no padding
        out, _ = self.model.encode(x, lengths)
        return self.model.joiner.project_encoder(out)


class DecoderWrapper(_StatefulWrapper):
    """Last C tokens plus predictor state in, projected predictor output plus next state out."""

    main_input, main_output = DECODER_INPUT, DECODER_OUTPUT

    def __init__(self, model: Transducer) -> None:
        super().__init__(model, model.predictor.init_state(1, device="meta"))

    def forward(self, y: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        """y (N, C) int64, state fields -> decoder_out (N, J), next state fields."""
        out, next_state = self.model.predict(y, self.state_type(*state))
        return (out, *next_state)


class JoinerWrapper(nn.Module):
    """Projected encoder frame and predictor output in, logits out."""

    input_names = [ENCODER_OUTPUT, DECODER_OUTPUT]
    output_names = [JOINER_OUTPUT]

    def __init__(self, model: Transducer) -> None:
        super().__init__()
        self.model = model

    def forward(self, encoder_out: Tensor, decoder_out: Tensor) -> Tensor:
        """encoder_out (N, J), decoder_out (N, J) -> logit (N, V)."""
        return self.model.join(encoder_out, decoder_out)
