"""onnxruntime sessions of one export: the streaming encoder and the search backend.

`OnnxModel` runs encoder.onnx window by window for N streams at once, with the
encoder state as a tuple of arrays in metadata order; `OnnxBackend` gives
`asr.runtime.search` the predictor (decoder.onnx) and joiner (joiner.onnx);
`attention_rescorer` the attention decoder's scorer for rescoring, where asked. Input and
output names come from the export contract (asr.runtime.model_metadata) and are bound once,
so a call costs the session's run and nothing else the runtime could avoid.

Shapes: N streams, T window feature frames, D fbank bins, n encoder frames per
window, H hypotheses, C predictor context, J joiner dim, V vocab.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import onnxruntime as ort

from asr.checks import check_shape
from asr.errors import ConfigError, ModelFilesError, ShapeError
from asr.options import MAX_THREADS  # onnxruntime threads per session (a model has three)
from asr.runtime.model_dir import ModelFiles
from asr.runtime.model_metadata import (
    ATTENTION_MEMORY,
    ATTENTION_OUTPUT,
    ATTENTION_TOKENS,
    DECODER_INPUT,
    DECODER_OUTPUT,
    ENCODER_INPUT,
    ENCODER_OUTPUT,
    JOINER_OUTPUT,
    ModelMetadata,
    StateSpec,
    next_state_name,
)
from asr.runtime.search import HYP_AXIS, PredictorState
from asr.runtime.tokens import TokenTable

# The encoder state of N streams: one array per metadata.encoder_states entry, N on its batch_axis.
EncoderState = tuple[np.ndarray, ...]


def create_session(path: Path, num_threads: int) -> ort.InferenceSession:
    """A CPU session tuned for small streaming calls; ModelFilesError if onnxruntime cannot load the file."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = num_threads
    # One call runs at a time per stream loop; inter-op threads only add wake-up latency.
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: the runtime reports its own problems
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own untyped errors for unreadable models
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelFilesError(
            f"{path}: onnxruntime cannot load it ({reason}); the file is corrupt or was written by "
            "another program, re-export the model with `asr export`"
        ) from None


def zero_state(specs: Sequence[StateSpec], n: int, batch_axis: int | None = None) -> tuple[np.ndarray, ...]:
    """Zero state arrays for n streams, N on each spec's batch axis (or on `batch_axis` for all)."""
    arrays = []
    for spec in specs:
        shape = list(spec.shape)
        axis = spec.batch_axis if batch_axis is None else batch_axis
        shape.insert(axis, shape.pop(spec.batch_axis))
        shape[axis] = n
        arrays.append(np.zeros(shape, dtype=spec.dtype))
    return tuple(arrays)


def _check_names(session: ort.InferenceSession, path: Path, inputs: list[str], outputs: list[str]) -> None:
    """The file's inputs and outputs must be the ones its metadata promises, in order."""
    got_inputs = [i.name for i in session.get_inputs()]
    got_outputs = [o.name for o in session.get_outputs()]
    if got_inputs != inputs or got_outputs != outputs:
        raise ModelFilesError(
            f"{path}: inputs {got_inputs} and outputs {got_outputs} do not match its metadata "
            f"(expected {inputs} -> {outputs}); the file was edited or comes from another exporter, "
            "re-export the model with `asr export`"
        )


class OnnxBackend:
    """`asr.runtime.search.TransducerBackend` over decoder.onnx and joiner.onnx."""

    def __init__(self, files: ModelFiles, num_threads: int = 1) -> None:
        meta = files.metadata
        self._meta = meta
        self.decoder = create_session(files.decoder, num_threads)
        self.joiner = create_session(files.joiner, num_threads)
        self._state_names = [spec.name for spec in meta.predictor_states]
        self._decoder_inputs = [DECODER_INPUT, *self._state_names]
        self._decoder_outputs = [DECODER_OUTPUT, *map(next_state_name, self._state_names)]
        self._joiner_outputs = [JOINER_OUTPUT]
        _check_names(self.decoder, files.decoder, self._decoder_inputs, self._decoder_outputs)
        _check_names(self.joiner, files.joiner, [ENCODER_OUTPUT, DECODER_OUTPUT], self._joiner_outputs)
        # The search keeps hypotheses on HYP_AXIS; a file may put its batch elsewhere.
        self._state_axes = [spec.batch_axis for spec in meta.predictor_states]
        self._moves = any(axis != HYP_AXIS for axis in self._state_axes)

    @property
    def blank_id(self) -> int:
        return self._meta.blank_id

    @property
    def join_rows_independent(self) -> bool:
        # An int8 joiner from before issue 14 scales each call's input by that call's range, so
        # a row's logits depend on the rows beside it; greedy search then joins frame by frame.
        return self._meta.rows_independent

    @property
    def context_size(self) -> int:
        return self._meta.context_size

    @property
    def vocab_size(self) -> int:
        return self._meta.vocab_size

    def initial_predictor_state(self, n: int) -> PredictorState:
        """Zero state for n hypotheses (H on axis 1); () for a stateless predictor."""
        return zero_state(self._meta.predictor_states, n, batch_axis=HYP_AXIS)

    def predict(self, tokens: np.ndarray, state: PredictorState) -> tuple[np.ndarray, PredictorState]:
        """tokens (H, C) int64, state (H on axis 1) -> decoder_out (H, J), next state."""
        if self._moves:
            state = tuple(np.moveaxis(a, HYP_AXIS, axis) for a, axis in zip(state, self._state_axes))
        feeds = dict(zip(self._decoder_inputs, (tokens, *state)))
        decoder_out, *next_state = self.decoder.run(self._decoder_outputs, feeds)
        if self._moves:
            next_state = [np.moveaxis(a, axis, HYP_AXIS) for a, axis in zip(next_state, self._state_axes)]
        return decoder_out, tuple(next_state)

    def join(self, encoder_out: np.ndarray, decoder_out: np.ndarray) -> np.ndarray:
        """encoder_out (H, J), decoder_out (H, J) -> logits (H, V)."""
        feeds = {ENCODER_OUTPUT: encoder_out, DECODER_OUTPUT: decoder_out}
        return self.joiner.run(self._joiner_outputs, feeds)[0]


class OnnxAttentionScorer:
    """`asr.runtime.rescore.AttentionScorer` over attention_decoder.onnx."""

    def __init__(self, path: Path, metadata: ModelMetadata, num_threads: int = 1) -> None:
        self._blank_id = metadata.blank_id
        self.session = create_session(path, num_threads)
        _check_names(self.session, path, [ATTENTION_MEMORY, ATTENTION_TOKENS], [ATTENTION_OUTPUT])

    @property
    def sos_eos(self) -> int:
        return self._blank_id

    def log_probs(self, memory: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """memory (1, T', J) float32, tokens (H, U) int64 -> (H, U, V) log-probabilities."""
        feeds = {ATTENTION_MEMORY: memory, ATTENTION_TOKENS: tokens}
        return self.session.run([ATTENTION_OUTPUT], feeds)[0]


def check_num_threads(num_threads: object) -> int:
    """`num_threads` if a whole number (not a bool) in 1..MAX_THREADS; ConfigError naming it otherwise."""
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or not 1 <= num_threads <= MAX_THREADS:
        raise ConfigError(
            f"num_threads (--num-threads) must be a whole number in 1..{MAX_THREADS}, got {num_threads!r}; "
            f"use at most the number of cores ({os.cpu_count()} here), 1 on small devices"
        )
    return num_threads


class OnnxModel:
    """The three sessions of one export: the streaming encoder here, predictor and joiner in `backend`."""

    def __init__(self, files: ModelFiles, num_threads: int = 1) -> None:
        check_num_threads(num_threads)
        self.num_threads = num_threads
        self.files = files
        meta = files.metadata
        self.encoder = create_session(files.encoder, num_threads)
        self._state_specs = meta.encoder_states
        state_names = [spec.name for spec in meta.encoder_states]
        self._encoder_inputs = [ENCODER_INPUT, *state_names]
        self._encoder_outputs = [ENCODER_OUTPUT, *map(next_state_name, state_names)]
        _check_names(self.encoder, files.encoder, self._encoder_inputs, self._encoder_outputs)
        self._window_shape = (meta.window_frames, meta.features.num_mel_bins)
        self.backend = OnnxBackend(files, num_threads)

    @property
    def metadata(self) -> ModelMetadata:
        return self.files.metadata

    def init_states(self, n: int) -> EncoderState:
        """The encoder state of n fresh streams (zeros: nothing seen yet)."""
        return zero_state(self._state_specs, n)

    def run_encoder(self, window: np.ndarray, states: EncoderState) -> tuple[np.ndarray, EncoderState]:
        """One window of N streams: window (N, T, D) float32, state -> encoder_out (N, n, J), next state.

        encoder_out is joiner-projected, ready for the search.
        """
        check_shape("encoder window", window, ("N", *self._window_shape))
        feeds = dict(zip(self._encoder_inputs, (window, *states)))
        encoder_out, *next_states = self.encoder.run(self._encoder_outputs, feeds)
        return encoder_out, tuple(next_states)

    def encode_whole(self, features: np.ndarray) -> np.ndarray:
        """Offline models only: utterances (N, T, D) float32 of one length T -> encoder_out (N, T', J)."""
        if self.metadata.streaming:
            raise ModelFilesError(
                f"{self.files.encoder} is a streaming encoder: it takes windows of {self._window_shape[0]} frames "
                "(run_encoder), not whole utterances"
            )
        check_shape("utterance features", features, ("N", "T", self._window_shape[1]))
        min_frames = self.metadata.subsampling_factor + self.metadata.pad_frames  # one encoder frame's worth
        if features.shape[1] < min_frames:
            raise ShapeError(f"utterance features: {features.shape[1]} frames is below the {min_frames} of one encoder frame")
        return self.encoder.run(self._encoder_outputs, {ENCODER_INPUT: features})[0]

    def stack_states(self, states: Sequence[EncoderState]) -> EncoderState:
        """Per-stream states -> one state of len(states) streams, along each array's batch axis."""
        return tuple(
            np.concatenate(arrays, axis=spec.batch_axis) for spec, arrays in zip(self._state_specs, zip(*states))
        )

    def unstack_states(self, state: EncoderState, n: int) -> list[EncoderState]:
        """A state of n streams -> n single-stream states (views into `state`, in stream order)."""
        per_array = [np.split(array, n, axis=spec.batch_axis) for spec, array in zip(self._state_specs, state)]
        return [tuple(arrays[i] for arrays in per_array) for i in range(n)]


class LoadedModel:
    """What the recognizers (streaming and offline) tell about the OnnxModel they hold in `_model`."""

    _model: OnnxModel

    @property
    def metadata(self) -> ModelMetadata:
        return self._model.metadata

    @property
    def token_table(self) -> TokenTable:
        return self._model.files.token_table

    @property
    def sample_rate(self) -> int:
        """Hz the model's features are computed at (other rates are resampled)."""
        return self.metadata.features.sample_rate


def attention_rescorer(model: OnnxModel, weight: float, method: str) -> OnnxAttentionScorer | None:
    """The scorer that rescores with `weight` (None for 0); ConfigError when the model dir has no attention decoder."""
    if weight == 0:
        return None
    if method != "beam":
        raise ConfigError(
            f"rescoring (rescore_weight {weight:g}) re-ranks beam search's n-best, and {method} search keeps "
            "one hypothesis; use SearchOptions(method='beam')"
        )
    files = model.files
    if files.attention_decoder is None:
        raise ConfigError(
            f"rescoring (--rescore-weight {weight:g}) needs an attention decoder, but model dir {files.directory} has "
            "no attention_decoder.onnx; export a model trained with `asr train --attention-decoder`, "
            "or leave --rescore-weight out"
        )
    return OnnxAttentionScorer(files.attention_decoder, files.metadata, model.num_threads)
