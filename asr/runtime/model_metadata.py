"""The ONNX metadata contract between export and the runtime.

Every file of an export (encoder.onnx, decoder.onnx, joiner.onnx and their int8
twins) carries the same string key/value pairs in `metadata_props`, so each file
describes the whole model and a runtime can tell files of different exports
apart (`model_hash`). All values are computed by export/metadata.py from the
model and its config; nothing is typed twice.

Keys (values are strings; JSON where structured):
    format_version      FORMAT_VERSION of this contract
    model_type          "lstm" when sherpa-onnx can run the files (LSTM encoder, stateless
                        predictor), "asr-offline" for whole-utterance encoders (bilstm: the
                        encoder takes x (N, T, F) of any T, has no states, and gives
                        encoder_out (N, T', J); lookahead_ms is inf), else "asr-streaming"
    encoder_kind        the EncoderConfig kind (models.config.ENCODER_KINDS)
    predictor_kind      stateless | lstm
    vocab_size, blank_id, context_size, joiner_dim
    sample_rate, feature_dim          Hz and fbank bins the encoder expects
    feature_config      JSON of asr.features.FbankConfig.to_dict()
    subsampling_factor  feature frames per encoder frame (4)
    pad_frames          feature frames a window holds beyond its new ones (3)
    chunk_frames        n, encoder frames per encoder call
    T                   window feature frames per call: subsampling_factor * n + pad_frames
    decode_chunk_len    feature frames between window starts: subsampling_factor * n
    chunk_ms            decode_chunk_len in milliseconds
  (window arithmetic: asr/runtime/geometry.py, ModelMetadata.geometry)
    lookahead_frames, lookahead_ms    audio beyond a chunk the encoder needs (pad_frames)
    num_encoder_layers
    encoder_states      JSON list of StateSpec dicts: name, shape for one stream, batch_axis, dtype
    predictor_states    same for the predictor ([] for the stateless predictor)
    model_config        JSON of TransducerConfig.to_dict()
    model_hash          sha256 (16 hex digits) of the weights and chunking: equal in all files of one export
    quantization        "none", or "int8" in the *.int8.onnx files
  only in int8 files written since issue 14:
    int8_activations    "per-row": each row of a MatMul input (a stream's frame, a hypothesis)
                        is quantized with its own scale, so every output row depends on its
                        input row alone. Earlier int8 files lack the key: their activations
                        share one scale per call, so a row moves with the rows beside it.
  only when model_type is "lstm" (sherpa-onnx reads them):
    d_model             last dim of the h state (the LSTMP projection size, or the cell size)
    rnn_hidden_size     last dim of the c state (the cell size)

Inputs and outputs: encoder x, *encoder state names -> encoder_out, *next_<name>;
decoder y (int64), *predictor state names -> decoder_out, *next_<name>;
joiner encoder_out, decoder_out -> logit. Batch N is dynamic on every one of them
(on each state's batch_axis). A model trained with the attention head also has
attention_decoder.onnx (fp32 only, beside fp32 and int8 files alike; same metadata):
memory, tokens -> log_probs, with T', H and U dynamic.

This module is part of the runtime (no torch, no onnx); export/metadata.py builds
the values from a torch model.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Mapping

from asr.errors import AsrError, ModelFilesError
from asr.features import FbankConfig
from asr.runtime.geometry import WindowGeometry

FORMAT_VERSION = 1  # bump when keys or their meaning change incompatibly
SHERPA_LSTM_MODEL_TYPE = "lstm"  # sherpa-onnx's name for its LSTM transducer contract
OWN_MODEL_TYPE = "asr-streaming"  # every other streaming combination: a name sherpa-onnx rejects cleanly
OFFLINE_MODEL_TYPE = "asr-offline"  # whole utterances only (asr.runtime.offline); the streaming runtime refuses it

ENCODER_INPUT = "x"  # (N, T, F) float32 feature window
ENCODER_OUTPUT = "encoder_out"  # (N, n, J) joiner-projected encoder frames; also the joiner's first input
DECODER_INPUT = "y"  # (N, C) int64, the last C tokens, most recent last
DECODER_OUTPUT = "decoder_out"  # (N, J) joiner-projected predictor output; also the joiner's second input
JOINER_OUTPUT = "logit"  # (N, V) unnormalised
# attention_decoder.onnx (models with the attention head only): teacher-forced sequence scoring.
ATTENTION_MEMORY = "memory"  # (1, T', J) float32 encoder frames of one segment (encoder_out, concatenated)
ATTENTION_TOKENS = "tokens"  # (H, U) int64 decoder inputs, sos (= blank_id) first
ATTENTION_OUTPUT = "log_probs"  # (H, U, V) log-probabilities of the token after each input
NEXT_STATE_PREFIX = "next_"  # output name of a state = prefix + its input name


def next_state_name(name: str) -> str:
    """The output that carries the updated state input `name`."""
    return NEXT_STATE_PREFIX + name


PER_ROW = "per-row"  # int8_activations of files whose rows are computed independently


@dataclass(frozen=True)
class StateSpec:
    """One state tensor of the encoder or predictor."""

    name: str  # input name; the output is next_state_name(name)
    shape: tuple[int, ...]  # shape for one stream (batch 1)
    batch_axis: int  # the axis that grows with the number of streams N
    dtype: str  # numpy dtype name: "float32" or "int64"


@dataclass(frozen=True)
class ModelMetadata:
    """Everything a runtime needs to drive the three files; see the module docstring for the keys."""

    model_type: str  # SHERPA_LSTM_MODEL_TYPE, OWN_MODEL_TYPE or OFFLINE_MODEL_TYPE
    encoder_kind: str  # the EncoderConfig kind (models.config.ENCODER_KINDS)
    predictor_kind: str  # stateless | lstm
    vocab_size: int  # V, blank included
    blank_id: int  # id of the blank token
    context_size: int  # C, tokens the decoder takes per call
    joiner_dim: int  # J, width of encoder_out and decoder_out
    features: FbankConfig  # the feature extraction the encoder was trained on
    subsampling_factor: int  # feature frames per encoder frame
    pad_frames: int  # extra feature frames per window, shared with the next window
    chunk_frames: int  # n, encoder frames per encoder call
    lookahead_ms: float  # audio the encoder needs beyond a chunk
    num_encoder_layers: int  # encoder layers (sherpa-onnx reads it for LSTMs)
    encoder_states: tuple[StateSpec, ...]  # encoder state inputs, in input order
    predictor_states: tuple[StateSpec, ...]  # predictor state inputs, in input order; () when stateless
    model_config: Mapping[str, Any]  # TransducerConfig.to_dict()
    model_hash: str  # identifies the weights and chunking of one export
    quantization: str = "none"  # "none" or "int8"
    int8_activations: str | None = None  # PER_ROW in int8 files since issue 14; None in fp32 and earlier int8 files

    @property
    def geometry(self) -> WindowGeometry:
        """How streams are cut into encoder windows (asr.runtime.geometry): the one place of that arithmetic."""
        return WindowGeometry(self.subsampling_factor, self.chunk_frames, self.pad_frames, self.features.frame_shift_ms)

    # The geometry's figures under the names the metadata keys and existing callers use.
    @property
    def window_frames(self) -> int:
        """T: feature frames per encoder call."""
        return self.geometry.window_frames

    @property
    def shift_frames(self) -> int:
        """Feature frames between consecutive window starts (the key decode_chunk_len)."""
        return self.geometry.shift_frames

    @property
    def chunk_ms(self) -> float:
        """Audio per encoder call (the window shift), in milliseconds."""
        return self.geometry.chunk_ms

    def tail_padding_frames(self, num_frames: int) -> int:
        """Silence frames to append after `num_frames` real feature frames (WindowGeometry.tail_padding_frames)."""
        return self.geometry.tail_padding_frames(num_frames)

    @property
    def rows_independent(self) -> bool:
        """Whether each output row of a call depends on its own input row alone, whatever shares the call.

        True for fp32 files and per-row int8 files; False for int8 files quantized
        before issue 14, where one activation scale spans the whole call.
        """
        return self.quantization == "none" or self.int8_activations == PER_ROW

    @property
    def streaming(self) -> bool:
        """Whether the encoder runs window by window (every model type but OFFLINE_MODEL_TYPE)."""
        return self.model_type != OFFLINE_MODEL_TYPE

    @property
    def sherpa_compatible(self) -> bool:
        return self.model_type == SHERPA_LSTM_MODEL_TYPE

    def to_props(self) -> dict[str, str]:
        """The metadata_props key/value strings written into every ONNX file."""
        props = {
            "format_version": str(FORMAT_VERSION),
            "model_type": self.model_type,
            "encoder_kind": self.encoder_kind,
            "predictor_kind": self.predictor_kind,
            "vocab_size": str(self.vocab_size),
            "blank_id": str(self.blank_id),
            "context_size": str(self.context_size),
            "joiner_dim": str(self.joiner_dim),
            "sample_rate": str(self.features.sample_rate),
            "feature_dim": str(self.features.num_mel_bins),
            "feature_config": json.dumps(self.features.to_dict(), sort_keys=True),
            "subsampling_factor": str(self.subsampling_factor),
            "pad_frames": str(self.pad_frames),
            "chunk_frames": str(self.chunk_frames),
            "T": str(self.window_frames),
            "decode_chunk_len": str(self.shift_frames),
            "chunk_ms": _number(self.chunk_ms),
            "lookahead_frames": str(self.pad_frames),
            "lookahead_ms": _number(self.lookahead_ms),
            "num_encoder_layers": str(self.num_encoder_layers),
            "encoder_states": _specs_json(self.encoder_states),
            "predictor_states": _specs_json(self.predictor_states),
            "model_config": json.dumps(self.model_config, sort_keys=True),
            "model_hash": self.model_hash,
            "quantization": self.quantization,
        }
        if self.int8_activations is not None:
            props["int8_activations"] = self.int8_activations
        if self.sherpa_compatible:
            h, c = self.encoder_states
            props["d_model"] = str(h.shape[-1])
            props["rnn_hidden_size"] = str(c.shape[-1])
        return props

    @classmethod
    def from_props(cls, props: Mapping[str, str], source: str) -> ModelMetadata:
        """Parse `to_props` output read from a file; ModelFilesError names `source` and the bad key."""
        reader = _PropsReader(props, source)
        version = reader.integer("format_version")
        if version != FORMAT_VERSION:
            raise ModelFilesError(
                f"{source}: metadata format {version}, this version reads {FORMAT_VERSION}; "
                "re-export the model with this version of `asr export`"
            )
        metadata = cls(
            model_type=reader.text("model_type"),
            encoder_kind=reader.text("encoder_kind"),
            predictor_kind=reader.text("predictor_kind"),
            vocab_size=reader.integer("vocab_size"),
            blank_id=reader.integer("blank_id"),
            context_size=reader.integer("context_size"),
            joiner_dim=reader.integer("joiner_dim"),
            features=reader.parsed("feature_config", lambda v: FbankConfig.from_dict(json.loads(v))),
            subsampling_factor=reader.integer("subsampling_factor"),
            pad_frames=reader.integer("pad_frames"),
            chunk_frames=reader.integer("chunk_frames"),
            lookahead_ms=reader.parsed("lookahead_ms", float),
            num_encoder_layers=reader.integer("num_encoder_layers"),
            encoder_states=reader.parsed("encoder_states", _specs_from_json),
            predictor_states=reader.parsed("predictor_states", _specs_from_json),
            model_config=reader.parsed("model_config", json.loads),
            model_hash=reader.text("model_hash"),
            quantization=reader.text("quantization"),
            int8_activations=props.get("int8_activations"),  # absent from int8 files before issue 14
        )
        # Keys derived from the others must agree with them, or the file was edited.
        expected = metadata.to_props()
        for key, value in expected.items():
            if props.get(key) != value:
                raise ModelFilesError(
                    f"{source}: metadata '{key}' is {props.get(key)!r} but the other keys imply "
                    f"{value!r}; the file was edited or is corrupt, re-export the model"
                )
        return metadata


def _number(value: float) -> str:
    """Integral floats without ".0" (160, not 160.0), others as repr."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _specs_json(specs: tuple[StateSpec, ...]) -> str:
    return json.dumps([dataclasses.asdict(s) for s in specs])


def _specs_from_json(text: str) -> tuple[StateSpec, ...]:
    return tuple(
        StateSpec(str(d["name"]), tuple(int(x) for x in d["shape"]), int(d["batch_axis"]), str(d["dtype"]))
        for d in json.loads(text)
    )


class _PropsReader:
    """Typed access to metadata strings, with errors that name the file and key."""

    def __init__(self, props: Mapping[str, str], source: str) -> None:
        self.props = props
        self.source = source

    def text(self, key: str) -> str:
        if key not in self.props:
            raise ModelFilesError(
                f"{self.source}: metadata key '{key}' is missing; the file was not written by "
                "`asr export` (or by an older version): re-export the model"
            )
        return self.props[key]

    def integer(self, key: str) -> int:
        return self.parsed(key, int)

    def parsed(self, key: str, parse: Any) -> Any:
        value = self.text(key)
        try:
            return parse(value)
        except (AsrError, ValueError, TypeError, KeyError) as error:
            raise ModelFilesError(
                f"{self.source}: metadata '{key}' = {value!r} cannot be read ({error}); "
                "the file is corrupt, re-export the model"
            ) from None
