"""Build the ONNX metadata contract (asr.runtime.model_metadata) from a torch model and write it.

Every value is computed from the model and its config; nothing is typed twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, NamedTuple

from asr.features import FbankConfig
from asr.runtime.model_metadata import (
    OFFLINE_MODEL_TYPE,
    OWN_MODEL_TYPE,
    SHERPA_LSTM_MODEL_TYPE,
    ModelMetadata,
    StateSpec,
)
from models.config import OFFLINE_KINDS

if TYPE_CHECKING:
    from models.transducer import Transducer


def state_specs(state: NamedTuple) -> tuple[StateSpec, ...]:
    """Specs of a batch-1 model state (a NamedTuple of tensors declaring BATCH_AXES)."""
    axes = type(state).BATCH_AXES  # type: ignore[attr-defined]
    return tuple(
        StateSpec(name, tuple(int(d) for d in tensor.shape), axis, str(tensor.dtype).removeprefix("torch."))
        for name, tensor, axis in zip(state._fields, state, axes)
    )


def write_props(proto: Any, props: Mapping[str, str]) -> None:
    """Replace the metadata_props of an onnx.ModelProto by `props`."""
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def build_metadata(model: Transducer, chunk_frames: int, features: FbankConfig, model_hash: str) -> ModelMetadata:
    """The metadata of `model` exported with `chunk_frames` encoder frames per call."""
    config = model.config
    encoder = model.encoder
    encoder_states = state_specs(model.init_state(1, device="meta"))
    sherpa_compatible = (
        config.encoder.kind == "lstm"
        and config.predictor.kind == "stateless"
        and [s.name for s in encoder_states] == ["h", "c"]
    )
    if config.encoder.kind in OFFLINE_KINDS:
        model_type = OFFLINE_MODEL_TYPE
    else:
        model_type = SHERPA_LSTM_MODEL_TYPE if sherpa_compatible else OWN_MODEL_TYPE
    return ModelMetadata(
        model_type=model_type,
        encoder_kind=config.encoder.kind,
        predictor_kind=config.predictor.kind,
        vocab_size=config.vocab_size,
        blank_id=config.blank_id,
        context_size=model.predictor.context_size,
        joiner_dim=config.joiner_dim,
        features=features,
        subsampling_factor=encoder.subsampling_factor,
        pad_frames=encoder.pad_frames,
        chunk_frames=chunk_frames,
        lookahead_ms=encoder.lookahead_ms,
        num_encoder_layers=config.encoder.num_layers,
        encoder_states=encoder_states,
        predictor_states=state_specs(model.predictor.init_state(1, device="meta")),
        model_config=config.to_dict(),
        model_hash=model_hash,
    )
