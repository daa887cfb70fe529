"""The torch model behind the numpy search: a `TransducerBackend` and encoder helpers.

`TorchBackend` gives `asr.runtime.search` the predictor and joiner of a `models.Transducer`
(numpy in, numpy out), so evaluation during and after training decodes with the
same search code as the onnxruntime runtime. The encoder helpers turn fbank
features into what the search (or CTC decoding) reads, either for whole
utterances (`encode_batch`, fast) or window by window with `model.stream`, the way
the exported encoder runs on a device (`stream_batch`).

Streaming windows follow sherpa-onnx's LSTM models: a window holds
subsampling_factor * n new feature frames plus the encoder's pad_frames of
lookahead, and the next window starts subsampling_factor * n frames later (the
pad_frames are seen again). See `stream_batch` for the tail.

Shapes: N utterances, T feature frames, F fbank bins, T' encoder frames, n encoder
frames per window, H hypotheses, C predictor context, J joiner dim, V vocab,
K the head's output dim (J for the joiner projection, V for CTC log-probs).
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Literal, NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor

from asr.audio import FRAME_LENGTH
from asr.checks import check_shape
from asr.errors import AsrError, ConfigError, ShapeError
from asr.features import fbank
from asr.runtime.geometry import WindowGeometry
from asr.runtime.search import HYP_AXIS, PredictorState
from models.transducer import Transducer

# What the encoder output feeds: the transducer joiner (projected to J) or the CTC head (log-probs).
EncoderHead = Literal["joiner", "ctc"]

# The fbank value of digital silence (asr.features floors mel energies before the log,
# so an all-zero signal gives this in every bin). Padding with it, rather than with
# zeros (a loud frame in log-mel terms), makes the tail look like the end of a recording.
SILENCE_FEATURE = float(fbank(np.zeros(FRAME_LENGTH, dtype=np.float32))[0, 0])


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's parameters."""
    return next(model.parameters()).device


def _check_inference_mode(model: torch.nn.Module) -> None:
    if model.training:
        raise AsrError(
            "the model is in training mode (dropout is active, so decoding would be random); "
            "call model.eval() before decoding, or use asr.training.decoding.evaluate, which does"
        )


class TorchBackend:
    """`asr.runtime.search.TransducerBackend` over a torch `Transducer`: numpy arrays in and out.

    The model must be in eval mode; every call runs under torch.inference_mode on
    the model's device and returns float32 arrays on the CPU.
    """

    def __init__(self, model: Transducer, device: torch.device | str | None = None) -> None:
        """`device` defaults to (and must equal) the model's: move the model first with model.to(device)."""
        actual = model_device(model)
        if device is not None and torch.device(device) != actual:
            raise AsrError(
                f"TorchBackend: the model is on {actual} but device {torch.device(device)} was asked for; "
                f"move it first with model.to({str(device)!r}), or leave device out"
            )
        self.model = model
        self.device = actual
        # The predictor's state type, to rebuild its NamedTuple from the search's plain arrays.
        self._state_type = type(model.predictor.init_state(1, device="meta"))
        self._state_axes: tuple[int, ...] = self._state_type.BATCH_AXES

    @property
    def blank_id(self) -> int:
        return self.model.config.blank_id

    @property
    def join_rows_independent(self) -> bool:
        return True  # a float joiner: each row's logits depend on that row alone

    @property
    def context_size(self) -> int:
        return self.model.predictor.context_size

    @property
    def vocab_size(self) -> int:
        return self.model.config.vocab_size

    def initial_predictor_state(self, n: int) -> PredictorState:
        """State for n fresh hypotheses, each array with H = n on axis 1; () when stateless."""
        with torch.inference_mode():
            return self._to_numpy_state(self.model.predictor.init_state(n, device=self.device))

    def predict(self, tokens: np.ndarray, state: PredictorState) -> tuple[np.ndarray, PredictorState]:
        """tokens (H, C) int64 and the hypotheses' state -> projected decoder_out (H, J), new state."""
        _check_inference_mode(self.model)
        check_shape("predictor tokens", tokens, ("H", self.context_size))
        with torch.inference_mode():
            tokens_t = torch.as_tensor(tokens, dtype=torch.int64, device=self.device)
            out, new_state = self.model.predict(tokens_t, self._to_torch_state(state))
            return _to_numpy(out), self._to_numpy_state(new_state)

    def join(self, encoder_out: np.ndarray, decoder_out: np.ndarray) -> np.ndarray:
        """encoder_out (H, J), decoder_out (H, J), both projected -> logits (H, V)."""
        _check_inference_mode(self.model)
        with torch.inference_mode():
            logits = self.model.join(_to_torch(encoder_out, self.device), _to_torch(decoder_out, self.device))
            return _to_numpy(logits)

    def _to_torch_state(self, state: PredictorState) -> NamedTuple:
        if len(state) != len(self._state_axes):
            raise ShapeError(
                f"predictor state has {len(state)} arrays, this model's {self._state_type.__name__} has "
                f"{len(self._state_axes)}; pass the state from this backend's predict or initial_predictor_state"
            )
        # The search keeps hypotheses on axis 1; the model declares its own batch axes.
        arrays = (np.moveaxis(array, HYP_AXIS, axis) for array, axis in zip(state, self._state_axes))
        return self._state_type(*(_to_torch(array, self.device) for array in arrays))

    def _to_numpy_state(self, state: NamedTuple) -> PredictorState:
        return tuple(np.moveaxis(_to_numpy(t), axis, HYP_AXIS) for t, axis in zip(state, self._state_axes))


class TorchAttentionScorer:
    """`asr.runtime.rescore.AttentionScorer` over a torch Transducer's attention decoder (eval mode)."""

    def __init__(self, model: Transducer) -> None:
        self.model = model
        self.device = model_device(model)

    @property
    def sos_eos(self) -> int:
        return self.model.config.blank_id

    def log_probs(self, memory: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """memory (1, T', J), tokens (H, U) int64 -> (H, U, V) log-probabilities."""
        _check_inference_mode(self.model)
        with torch.inference_mode():
            tokens_t = torch.as_tensor(tokens, dtype=torch.int64, device=self.device)
            return _to_numpy(self.model.attention_log_probs(_to_torch(memory, self.device), tokens_t))


def _to_torch(array: np.ndarray, device: torch.device) -> Tensor:
    # Contiguous: recurrent layers reject strided hidden states, and moveaxis makes views.
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(device)


def _to_numpy(tensor: Tensor) -> np.ndarray:
    return tensor.detach().to("cpu", torch.float32).numpy()


# --- encoder ---


def _apply_head(model: Transducer, enc: Tensor, head: EncoderHead) -> Tensor:
    """Encoder output (N, T', D) -> what the decoder reads (N, T', K)."""
    if head == "joiner":
        return model.joiner.project_encoder(enc)
    if head == "ctc":
        return model.ctc_log_probs(enc)
    raise ConfigError(f"unknown encoder head {head!r}; use 'joiner' (transducer search) or 'ctc'")


def _pad_batch(features: Sequence[np.ndarray], num_frames: int, feature_dim: int, device: torch.device) -> Tensor:
    """Features of N utterances (T_i, F) -> (N, num_frames, F), silence after each one's end."""
    batch = np.full((len(features), num_frames, feature_dim), SILENCE_FEATURE, dtype=np.float32)
    for row, feats in enumerate(features):
        check_shape(f"features of utterance {row}", feats, ("T", feature_dim))
        batch[row, : min(len(feats), num_frames)] = feats[:num_frames]
    return torch.from_numpy(batch).to(device)


def output_lengths(model: Transducer, num_frames: Sequence[int]) -> np.ndarray:
    """Encoder frames T' (N,) that whole-utterance encoding gives for T (N,) feature frames."""
    lengths = torch.as_tensor(list(num_frames), dtype=torch.int64)
    return model.encoder.subsampling.output_lengths(lengths).numpy()


def encode_batch(
    model: Transducer, features: Sequence[np.ndarray], head: EncoderHead = "joiner"
) -> tuple[np.ndarray, np.ndarray]:
    """Whole utterances at once: N feature arrays (T_i, F) -> out (N, T'_max, K), lengths T'_i (N,).

    Frames past an utterance's length are padding: pass `lengths` to the search.
    Utterances too short for one encoder frame get length 0.
    """
    _check_inference_mode(model)
    lengths = [len(f) for f in features]
    # The encoder needs one window's worth of frames in the batch; extra padding is masked by x_lens.
    num_frames = max(lengths + [model.encoder.window_frames(1)])
    with torch.inference_mode():
        x = _pad_batch(features, num_frames, model.config.encoder.feature_dim, model_device(model))
        x_lens = torch.as_tensor(lengths, dtype=torch.int64, device=x.device)
        enc, enc_lens = model.encode(x, x_lens)
        return _to_numpy(_apply_head(model, enc, head)), enc_lens.cpu().numpy()


def stream_batch(
    model: Transducer,
    features: Sequence[np.ndarray],
    chunk_frames: int | None = None,
    head: EncoderHead = "joiner",
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Encode N utterances window by window with `model.stream`, as a device does.

    Yields, per window, out (N, n, K) and valid (N,): how many of the n frames
    belong to each utterance (the rest come from padding; pass `valid` as the
    search's `lengths`). n = chunk_frames (default: the encoder's chunk_frames).
    Over all windows, utterance i gets exactly the T'_i frames `encode_batch` gives it.

    Tail: a window needs subsampling_factor * n + pad_frames feature frames, so the
    features are padded with silence up to the end of the window holding the last
    encoder frame, T'_i - 1: that is ceil(T'_i / n) windows, so at most
    subsampling_factor * (n - 1) frames of padding, and the outputs past T'_i are
    dropped. Recurrent encoders are causal, so their frames equal encode_batch's.
    The conformer attends within its chunk, so the real frames of a partial last
    chunk also see the padding (as they do on a device), and differ slightly from
    encode_batch's, which masks it. The last (T_i - pad_frames) % subsampling_factor
    feature frames start no encoder frame in either path.
    """
    _check_inference_mode(model)
    encoder = model.encoder
    n = encoder.chunk_frames if chunk_frames is None else chunk_frames
    if n < 1:
        raise ConfigError(f"chunk_frames must be >= 1, got {n}; use the model's chunk_frames ({encoder.chunk_frames})")
    geometry = WindowGeometry.of_encoder(encoder, n)
    lengths = output_lengths(model, [len(f) for f in features])  # (N,) T'_i
    num_windows = geometry.windows_for_encoder_frames(int(lengths.max(initial=0)))  # the one holding T'_max - 1
    with torch.inference_mode():
        device = model_device(model)
        x = _pad_batch(features, geometry.frames_for_windows(num_windows), model.config.encoder.feature_dim, device)
        state = model.init_state(len(features), device)
        for k in range(num_windows):
            start = geometry.window_start(k)
            window = x[:, start : start + geometry.window_frames]  # (N, T, F)
            out, state = model.stream(window, state)
            valid = np.clip(lengths - k * n, 0, n)
            yield _to_numpy(_apply_head(model, out, head)), valid


def encode_utterance(model: Transducer, features: np.ndarray, head: EncoderHead = "joiner") -> np.ndarray:
    """One utterance, whole: features (T, F) -> (T', K)."""
    out, lengths = encode_batch(model, [features], head)
    return out[0, : lengths[0]]


def stream_utterance(
    model: Transducer, features: np.ndarray, chunk_frames: int | None = None, head: EncoderHead = "joiner"
) -> np.ndarray:
    """One utterance, window by window (see `stream_batch`): features (T, F) -> (T', K)."""
    chunks = [out[0, : valid[0]] for out, valid in stream_batch(model, [features], chunk_frames, head)]
    if not chunks:
        return np.zeros((0, _head_dim(model, head)), dtype=np.float32)
    return np.concatenate(chunks)  # (T', K)


def _head_dim(model: Transducer, head: EncoderHead) -> int:
    return model.config.joiner_dim if head == "joiner" else model.config.vocab_size


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Run the block with the model in eval mode, then restore its train/eval mode (for the training loop)."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)
