"""Typed model configs: saved inside checkpoints as plain JSON-able dicts and rebuilt from them.

A `TransducerConfig` fully determines the architecture: `Transducer(config)`
rebuilds the same modules, so a checkpoint holds `config.to_dict()` next to the
state dict and never a pickled object.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Mapping, TypeVar

from asr.audio import NUM_MEL_BINS
from asr.errors import ConfigError, ModelFilesError

RNN_KINDS = ("lstm", "gru", "rnn", "peephole", "esn")  # recurrent encoders: one module (RnnEncoder), a cell each
LSTM_KINDS = ("lstm", "peephole")  # recurrent kinds with a cell state c next to h
TORCH_RNN_KINDS = ("lstm", "gru", "rnn")  # torch's own layers: the only ones with a non-residual stack
ATTENTION_KINDS = ("conformer", "transformer")  # chunked attention: one module, with or without the conv module
CONV_KINDS = ("tcn",)  # dilated causal convolutions (WaveNet)
STREAMING_KINDS = RNN_KINDS + CONV_KINDS + ATTENTION_KINDS  # encoders with a `stream` entry point
OFFLINE_KINDS = ("bilstm",)  # whole utterances only: they read each utterance from its end too
ENCODER_KINDS = STREAMING_KINDS + OFFLINE_KINDS
PREDICTOR_KINDS = ("stateless", "lstm")
ATTENTION_SCORES = ("additive", "multiplicative")  # the attention decoder's score: Bahdanau 2014, Luong 2015


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(f"invalid model config: {message}")


@dataclass(frozen=True)
class EncoderConfig:
    """The streaming encoder: a x4 convolutional front, then recurrent or conformer layers."""

    kind: str = "lstm"  # one of ENCODER_KINDS
    feature_dim: int = NUM_MEL_BINS  # fbank bins per input frame
    subsampling_channels: int = 64  # channels of both stride-2 convolutions in the x4 front
    front_norm: bool = True  # LayerNorm on the front's output (off only in the tiny test preset, see presets.tiny)
    num_layers: int = 4  # recurrent, convolution or conformer layers
    hidden_dim: int = 256  # recurrent cell size (bilstm: per direction); conformer model dim; tcn channels
    proj_dim: int = 0  # LSTMP projection of the LSTM output (lstm only); 0 = none
    output_dim: int = 256  # encoder output dim fed to the joiner and the CTC head
    dropout: float = 0.1  # dropout between layers, training only
    # Recurrent kinds: each layer adds its output to its input (y = x + layer(x)). A plain stack of
    # three 384-cell LSTMs sat on the CTC blank plateau for 500+ steps; with residual layers the
    # same model fits a fixed batch in 75 steps (README "Accuracy"). False only for checkpoints
    # written before it existed, which load as they were trained.
    residual: bool = False
    num_heads: int = 4  # conformer: attention heads; hidden_dim / num_heads must be even (RoPE)
    ff_dim: int = 1024  # conformer: inner dim of each macaron feed-forward block
    conv_kernel: int = 15  # conformer: causal depthwise convolution kernel; tcn: taps of each dilated convolution
    # conformer and transformer: where the LayerNorms sit. False: at the end of every layer, as in the
    # Conformer paper; a norm on the residual path between every two layers. True: only once, after
    # the last layer (pure pre-norm), so the front's output reaches the last layer through identity
    # sums. The small conformer was at 89% dev WER at step 300 at its best rate with the first and
    # 80-81% with the second (README "Accuracy"). False in checkpoints written before it existed,
    # and in the tiny test preset (see presets.tiny).
    final_norm_only: bool = False
    # conformer: False drops the conv module. Kind "transformer" never has one; this flag stays for
    # conformer checkpoints written with use_conv=False before that kind existed.
    use_conv: bool = True
    # esn (echo state network, hidden_dim = reservoir size): the fixed random reservoir's options.
    spectral_radius: float = 0.9  # largest |eigenvalue| of the recurrent weights (< 1: fading memory)
    leak_rate: float = 0.5  # a in h_t = (1 - a) h_{t-1} + a tanh(...): 1 forgets fastest
    input_scaling: float = 1.0  # input weights are uniform in [-input_scaling, input_scaling]
    sparsity: float = 0.9  # fraction of recurrent weights that are zero
    reservoir_seed: int = 0  # seeds the reservoir of layer l with reservoir_seed + l
    # esn: ReLU layers of hidden_dim units in the trained readout before its output Linear (0: the Linear
    # alone). A linear readout of the random reservoir left the small ESN at 87-89% dev WER at step 300 in
    # every variant tried; one hidden layer brought it to 84.9 / 85.4 on two seeds (README "Accuracy").
    readout_layers: int = 0
    # esn: the readout reads every channel of the body through a trained causal filter of this many frames
    # (depthwise; 0: the present frame only). The reservoir's memory is random and fixed; the filters let
    # the readout learn which past frames of each feature matter. 32 frames took the small ESN from 84.9 / 85.4
    # to 80.5 / 83.0% dev WER at step 300 on two seeds (README "Accuracy").
    readout_taps: int = 0
    # esn, with readout_taps and readout_layers: every hidden layer's output goes through causal taps of the
    # same length too before the next layer reads it, so the readout filters over time both the body's
    # features and the nonlinear features it makes of them (a time-delay network). It took the small ESN
    # from 80.5 / 83.0 to 80.5 / 80.8% dev WER at step 300 on two seeds, 2 lower in dev loss; with 48 taps
    # instead of 32, 79.96 / 80.12 (README "Accuracy").
    readout_hidden_taps: bool = False
    dilation_cycle: int = 4  # tcn: dilations 1, 2, ..., 2^(cycle - 1), then from 1 again
    chunk_frames: int = 8  # stream chunk in subsampled frames (40 ms each); conformer attention chunk
    left_context_chunks: int = 4  # conformer: earlier chunks each chunk attends to

    def __post_init__(self) -> None:
        _require(self.kind in ENCODER_KINDS, f"encoder kind {self.kind!r} is not one of {ENCODER_KINDS}")
        for name in ("feature_dim", "subsampling_channels", "num_layers", "hidden_dim", "output_dim", "chunk_frames"):
            _require(getattr(self, name) >= 1, f"encoder {name} must be >= 1, got {getattr(self, name)}")
        _require(self.feature_dim >= 7, f"feature_dim {self.feature_dim} is below the x4 front's 7-bin receptive field")
        _require(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")
        _require(self.proj_dim >= 0, f"proj_dim must be >= 0, got {self.proj_dim}")
        recurrent = RNN_KINDS + OFFLINE_KINDS
        _require(not self.final_norm_only or self.kind in ATTENTION_KINDS,
                 f"final_norm_only is for the attention kinds {ATTENTION_KINDS}, not {self.kind!r}")
        _require(not self.residual or self.kind in recurrent,
                 f"residual is for the recurrent kinds {recurrent} (attention and tcn layers are residual already)")
        _require(self.residual or self.kind not in recurrent or self.kind in TORCH_RNN_KINDS,
                 f"encoder kind {self.kind!r} needs residual=True (plain stacks exist for torch's layers only)")
        _require(
            self.proj_dim == 0 or (self.kind == "lstm" and self.proj_dim < self.hidden_dim),
            f"proj_dim {self.proj_dim} needs kind 'lstm' and proj_dim < hidden_dim ({self.hidden_dim}); use 0",
        )
        if self.kind == "esn":
            _require(self.spectral_radius > 0, f"spectral_radius must be > 0, got {self.spectral_radius}")
            _require(0 < self.leak_rate <= 1, f"leak_rate must be in (0, 1], got {self.leak_rate}")
            _require(self.input_scaling > 0, f"input_scaling must be > 0, got {self.input_scaling}")
            _require(0 <= self.sparsity < 1, f"sparsity must be in [0, 1), got {self.sparsity}")
        _require(self.readout_layers >= 0, f"readout_layers must be >= 0, got {self.readout_layers}")
        _require(self.readout_layers == 0 or self.kind == "esn",
                 f"readout_layers is for the esn's trained readout, not {self.kind!r}; use 0")
        _require(self.readout_taps >= 0, f"readout_taps must be >= 0, got {self.readout_taps}")
        _require(self.readout_taps == 0 or self.kind == "esn",
                 f"readout_taps is for the esn's trained readout, not {self.kind!r}; use 0")
        _require(not self.readout_hidden_taps or (self.readout_taps and self.readout_layers),
                 "readout_hidden_taps filters the readout's hidden layers with its taps: it needs readout_taps > 0 "
                 "and readout_layers > 0")
        if self.kind == "tcn":
            _require(self.conv_kernel >= 2, f"tcn conv_kernel must be >= 2, got {self.conv_kernel}")
            _require(self.dilation_cycle >= 1, f"dilation_cycle must be >= 1, got {self.dilation_cycle}")
        if self.kind in ATTENTION_KINDS:
            _require(self.num_heads >= 1 and self.ff_dim >= 1, "conformer num_heads and ff_dim must be >= 1")
            _require(
                self.hidden_dim % (2 * self.num_heads) == 0,
                f"hidden_dim {self.hidden_dim} must split into {self.num_heads} heads of even size (RoPE)",
            )
            # A zero-length cache would be a zero-size tensor, which ONNX runtimes handle badly.
            _require(self.left_context_chunks >= 1, f"left_context_chunks must be >= 1, got {self.left_context_chunks}")
            _require(
                not self.has_conv or self.conv_kernel >= 2,
                f"conv_kernel must be >= 2 with use_conv, got {self.conv_kernel}",
            )

    @property
    def has_conv(self) -> bool:
        """Whether an attention encoder has the conformer's conv module (never for "transformer")."""
        return self.kind == "conformer" and self.use_conv

    @property
    def left_context_frames(self) -> int:
        """Subsampled frames of attention left context (the conformer key/value cache length)."""
        return self.left_context_chunks * self.chunk_frames


@dataclass(frozen=True)
class PredictorConfig:
    """The prediction network over previous tokens: stateless (icefall-style) or LSTM."""

    kind: str = "stateless"  # "stateless" (embedding + conv over context) or "lstm"
    embed_dim: int = 256  # token embedding dim; the stateless predictor's output dim
    context_size: int = 2  # stateless: tokens the predictor sees (the current one included)
    hidden_dim: int = 256  # lstm: cell size and output dim
    num_layers: int = 1  # lstm: layers
    dropout: float = 0.1  # dropout on the embeddings, training only

    def __post_init__(self) -> None:
        _require(self.kind in PREDICTOR_KINDS, f"predictor kind {self.kind!r} is not one of {PREDICTOR_KINDS}")
        for name in ("embed_dim", "context_size", "hidden_dim", "num_layers"):
            _require(getattr(self, name) >= 1, f"predictor {name} must be >= 1, got {getattr(self, name)}")
        _require(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class AttentionDecoderConfig:
    """The auxiliary attention decoder (models.attention_decoder): trained with the transducer, rescores its n-best."""

    score: str = "additive"  # one of ATTENTION_SCORES: v.tanh(W s + U h) (Bahdanau) or s.W h (Luong "general")
    embed_dim: int = 128  # token embedding dim
    hidden_dim: int = 256  # LSTM cell size: the attention query and the attentional output's size
    attention_dim: int = 128  # additive: hidden size of the score MLP (unused by multiplicative)
    loss_weight: float = 0.3  # total loss += loss_weight * attention cross-entropy (per token)
    dropout: float = 0.1  # on the embeddings and the attentional output, training only

    def __post_init__(self) -> None:
        _require(self.score in ATTENTION_SCORES, f"attention score {self.score!r} is not one of {ATTENTION_SCORES}")
        for name in ("embed_dim", "hidden_dim", "attention_dim"):
            _require(getattr(self, name) >= 1, f"attention decoder {name} must be >= 1, got {getattr(self, name)}")
        _require(self.loss_weight > 0.0, f"attention loss_weight must be > 0, got {self.loss_weight}")
        _require(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class TransducerConfig:
    """A whole RNN-T model: encoder, predictor, joiner and the auxiliary CTC head."""

    encoder: EncoderConfig  # the streaming acoustic encoder
    predictor: PredictorConfig  # the prediction network
    vocab_size: int = 500  # V, blank included
    joiner_dim: int = 256  # J: joint space both sides are projected into
    blank_id: int = 0  # the blank token (id 0 in tokens.txt, as sherpa-onnx assumes)
    # total loss = rnnt + ctc_weight * ctc. CTC is what teaches a recurrent encoder to listen early on:
    # with 0.1 a small LSTM's CTC head stayed at the unigram level for 1000+ steps, while CTC alone
    # left that plateau in about 400.
    ctc_weight: float = 0.5
    # The auxiliary attention decoder; None (the default) builds none, and to_dict leaves the key
    # out, so models without it keep the config, the model_hash and the exported files they had.
    attention_decoder: AttentionDecoderConfig | None = None

    def __post_init__(self) -> None:
        _require(self.vocab_size >= 2, f"vocab_size must be >= 2 (blank and one token), got {self.vocab_size}")
        _require(self.joiner_dim >= 1, f"joiner_dim must be >= 1, got {self.joiner_dim}")
        _require(0 <= self.blank_id < self.vocab_size, f"blank_id {self.blank_id} is outside [0, {self.vocab_size})")
        _require(self.ctc_weight >= 0.0, f"ctc_weight must be >= 0, got {self.ctc_weight}")

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict of str/int/float/bool, for JSON or a checkpoint."""
        data = dataclasses.asdict(self)
        if self.attention_decoder is None:
            del data["attention_decoder"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TransducerConfig:
        """Rebuild from `to_dict()` output; ModelFilesError names any unknown or mistyped key."""
        if not isinstance(data, Mapping):
            raise ModelFilesError(f"model config must be a dict, got {type(data).__name__}; is the checkpoint from this project?")
        fields = dict(data)
        for key, sub_cls in (("encoder", EncoderConfig), ("predictor", PredictorConfig)):
            if not isinstance(fields.get(key), Mapping):
                raise ModelFilesError(f"model config has no '{key}' section; is the checkpoint from this project?")
            fields[key] = _build(sub_cls, fields[key], f"model config '{key}'")
        if fields.get("attention_decoder") is not None:
            if not isinstance(fields["attention_decoder"], Mapping):
                raise ModelFilesError("model config 'attention_decoder' must be a dict; the checkpoint is damaged")
            fields["attention_decoder"] = _build(AttentionDecoderConfig, fields["attention_decoder"],
                                                 "model config 'attention_decoder'")
        return _build(cls, fields, "model config")


Config = TypeVar("Config")


def _type_ok(value: Any, hint: Any) -> bool:
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    return True  # nested configs, already built by the caller


def _build(cls: type[Config], data: Mapping[str, Any], where: str) -> Config:
    """cls(**data) with the unknown-key and type checks a hand-edited or foreign file needs."""
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(hints))
    if unknown:
        raise ModelFilesError(
            f"{where} has unknown keys {unknown}; it was written by another version of this project"
        )
    for key, value in data.items():
        if not _type_ok(value, hints[key]):
            raise ModelFilesError(f"{where} key '{key}' should be {hints[key].__name__}, got {value!r}")
    try:
        return cls(**data)
    except TypeError as error:  # a required field is missing
        raise ModelFilesError(f"{where} is incomplete: {error}") from error
