"""Trace a Transducer into encoder.onnx, decoder.onnx and joiner.onnx, with metadata.

Each file is the trace of one wrapper (export.wrappers) on a batch-1 example,
converted by torch's TorchScript ONNX exporter with the batch axis N dynamic
on every input and output; the window length T is fixed per export. The
TorchScript exporter is used rather than the dynamo one: once recurrent layers
are unrolled (`exportable_copy`) it converts every encoder kind correctly in a
fraction of a second, where the dynamo exporter takes seconds per file.

Shapes: N streams, T window frames, F fbank bins, C context size, J joiner dim.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Mapping, Sequence

import onnx
import torch
from torch import Tensor, nn

from asr.errors import ConfigError, ShapeError
from asr.runtime.model_dir import FP32_SUFFIX
from asr.runtime.model_metadata import ENCODER_INPUT, ENCODER_OUTPUT, ModelMetadata, StateSpec, next_state_name
from export.metadata import write_props
from export.wrappers import DecoderWrapper, EncoderWrapper, JoinerWrapper, OfflineEncoderWrapper, exportable_copy
from models.transducer import Transducer

OPSET = 17  # LayerNormalization (conformer) needs 17; sherpa-onnx's onnxruntime reads it

DynamicAxes = dict[str, dict[int, str]]  # input/output name -> {axis: "N"}


def write_onnx_files(model: Transducer, meta: ModelMetadata, directory: Path) -> None:
    """Write encoder.onnx, decoder.onnx and joiner.onnx of `model` into `directory`, each with `meta`."""
    exportable = exportable_copy(model)
    props = meta.to_props()
    decoder, joiner = DecoderWrapper(exportable), JoinerWrapper(exportable)
    window = torch.zeros(1, meta.window_frames, meta.features.num_mel_bins)  # (1, T, F)
    if meta.streaming:
        encoder: nn.Module = EncoderWrapper(exportable)
        encoder_example = (window, *exportable.init_state(1))
    else:  # whole utterances: any T; the example's length is only where tracing starts
        encoder, encoder_example = OfflineEncoderWrapper(exportable), (window,)
    tokens = torch.full((1, meta.context_size), meta.blank_id, dtype=torch.int64)  # (1, C)
    joiner_inputs = (torch.zeros(1, meta.joiner_dim), torch.zeros(1, meta.joiner_dim))  # 2 x (1, J)
    jobs = (
        ("encoder", encoder, encoder_example, meta.encoder_states),
        ("decoder", decoder, (tokens, *exportable.predictor.init_state(1)), meta.predictor_states),
        ("joiner", joiner, joiner_inputs, ()),
    )
    with torch.no_grad():
        for role, wrapper, example, states in jobs:
            try:
                trace_to_onnx(wrapper, example, _axes(wrapper, states), directory / f"{role}{FP32_SUFFIX}", props)
            except ShapeError as error:  # the encoder refuses this window size
                raise ConfigError(
                    f"a chunk of {meta.chunk_ms:g} ms does not fit this {role}: {error}; "
                    "leave --chunk-ms out to use the model's own chunk"
                ) from None


def _axes(wrapper: nn.Module, states: Sequence[StateSpec]) -> DynamicAxes:
    """N on axis 0 of every input and output, except states: N on their batch axis; offline encoders: T too."""
    axes = {name: {0: "N"} for name in wrapper.input_names + wrapper.output_names}
    if isinstance(wrapper, OfflineEncoderWrapper):
        axes = {ENCODER_INPUT: {0: "N", 1: "T"}, ENCODER_OUTPUT: {0: "N", 1: "T_out"}}
    for spec in states:
        axes[spec.name] = axes[next_state_name(spec.name)] = {spec.batch_axis: "N"}
    return axes


def trace_to_onnx(
    wrapper: nn.Module, example: tuple[Tensor, ...], axes: DynamicAxes, path: Path, props: Mapping[str, str]
) -> None:
    """Trace `wrapper` on `example` (batch 1), write it to `path` with `axes` dynamic, then add `props`."""
    with warnings.catch_warnings():
        # Tracing turns the models' shape checks into constants: right, as T is fixed per
        # export and verification runs another batch size. The rest is exporter chatter.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        for message in ("legacy TorchScript-based ONNX export", "batch_size other than 1", "no signature found"):
            warnings.filterwarnings("ignore", message=f".*{message}.*")
        # Tracing first keeps shapes Python ints (the models' window checks do integer
        # arithmetic on them); the exporter then converts the traced graph.
        traced = torch.jit.trace(wrapper, example, check_trace=False)
        torch.onnx.export(
            traced,
            example,
            str(path),
            input_names=wrapper.input_names,
            output_names=wrapper.output_names,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    proto = onnx.load(str(path))
    write_props(proto, props)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
