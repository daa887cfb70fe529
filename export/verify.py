"""Check exported ONNX files against the torch model they came from, and decode with them.

`verify_export` runs onnxruntime and torch side by side on the same inputs:
a batch of two streams (fbank of a synthetic voiced signal, and random
features), several consecutive windows with each side carrying its own state,
predictor steps with state, and joiner calls on real and random inputs. It
returns the largest absolute difference per output and raises
ModelFilesError naming every output beyond the tolerance (or not finite).

Offline models (bilstm) are checked on whole utterances of two lengths instead of windows.

`greedy_decode` decodes features with the files the way sherpa-onnx feeds its
LSTM models (windows of T frames every decode_chunk_len frames, a window runs
once a frame past it exists; offline models: the whole utterance in one call),
using asr.runtime.search's greedy search over an onnxruntime backend.

Shapes: N streams, T window frames, n encoder frames, F fbank bins, C context
size, J joiner dim, V vocab.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from asr.audio import FRAME_SHIFT_MS, SAMPLE_RATE
from asr.errors import ModelFilesError
from asr.features import fbank
from asr.runtime.model_dir import ModelFiles
from asr.runtime.onnx_backend import OnnxModel
from asr.runtime.greedy_search import GreedySearcher
from asr.runtime.search import SearchOptions
from export.attention import compare_attention_decoder
from export.wrappers import DecoderWrapper, EncoderWrapper, JoinerWrapper, OfflineEncoderWrapper
from models.transducer import Transducer

VERIFY_WINDOWS = 4  # consecutive encoder windows per check: the state is carried three times
VERIFY_STEPS = 3  # consecutive predictor steps per check


def synthetic_audio(seconds: float, seed: int) -> np.ndarray:
    """(N,) float32 samples at 16 kHz of a speech-like signal: a gliding harmonic voice, pauses and noise.

    Its log-mel features have what speech gives an encoder (a spectral envelope,
    silence, onsets), which random features alone would not exercise.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    pitch = 120.0 + 40.0 * np.sin(2 * np.pi * 1.5 * t) + rng.uniform(-10, 10)  # Hz
    phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    syllables = np.clip(np.sin(2 * np.pi * 3.0 * t + rng.uniform(0, np.pi)), 0.0, None)  # 3 per second
    return (0.1 * voice * syllables + 0.005 * rng.standard_normal(t.size)).astype(np.float32)


def synthetic_features(num_frames: int, seed: int) -> np.ndarray:
    """(num_frames, F) fbank of `synthetic_audio`."""
    seconds = (num_frames + 2) * FRAME_SHIFT_MS / 1000
    return fbank(synthetic_audio(seconds, seed), SAMPLE_RATE)[:num_frames]


def _max_abs_diff(onnx_value: np.ndarray, torch_value: torch.Tensor, name: str) -> float:
    expected = torch_value.detach().numpy()
    if onnx_value.shape != expected.shape:
        raise ModelFilesError(
            f"{name}: onnxruntime gives shape {onnx_value.shape}, torch {expected.shape}; "
            "the export is broken, report it with the model config"
        )
    if expected.dtype.kind != "f":
        return float(np.abs(onnx_value.astype(np.int64) - expected.astype(np.int64)).max(initial=0))
    # NaN propagates into the result, so a non-finite output never passes a tolerance.
    return float(np.abs(onnx_value.astype(np.float64) - expected).max(initial=0.0))


class _DiffTable:
    """Largest absolute ONNX - torch difference per "file:output", over all calls."""

    def __init__(self) -> None:
        self.diffs: dict[str, float] = {}

    def add(
        self, file: Path, names: list[str], onnx_values: tuple[np.ndarray, ...], torch_values: tuple[torch.Tensor, ...]
    ) -> None:
        for name, got, want in zip(names, onnx_values, torch_values):
            key = f"{file.name}:{name}"
            diff = _max_abs_diff(got, want, key)
            # A NaN, once seen, stays: max() keeps its first argument when comparisons are false.
            self.diffs[key] = diff if np.isnan(diff) else max(self.diffs.get(key, 0.0), diff)


def verify_export(model: Transducer, files: ModelFiles, tolerance: float, seed: int = 0) -> dict[str, float]:
    """Largest |ONNX - torch| per "file:output"; ModelFilesError if any exceeds `tolerance` or is NaN.

    Pass math.inf to only require finite outputs (int8 files).
    """
    onnx_model = OnnxModel(files)
    reference = copy.deepcopy(model).float().cpu().eval()
    table = _DiffTable()
    compare_encoder = _compare_encoder if onnx_model.metadata.streaming else _compare_offline_encoder
    with torch.no_grad():
        encoder_out = compare_encoder(reference, onnx_model, table, seed)
        decoder_out = _compare_decoder(reference, onnx_model, table, seed)
        _compare_joiner(reference, onnx_model, table, encoder_out, decoder_out, seed)
    if files.attention_decoder is not None:
        table.diffs.update(compare_attention_decoder(reference, files, seed))
    failed = {k: v for k, v in table.diffs.items() if not v <= tolerance}
    if failed:
        detail = ", ".join(f"{k} {v:.3g}" for k, v in failed.items())
        raise ModelFilesError(
            f"ONNX and torch outputs differ beyond {tolerance:g} (or are not finite): {detail}; "
            "the export is wrong for this model, no files were kept (report it with the model config)"
        )
    return table.diffs


def _compare_encoder(reference: Transducer, onnx_model: OnnxModel, table: _DiffTable, seed: int) -> np.ndarray:
    """Run VERIFY_WINDOWS consecutive windows of 2 streams; return the ONNX encoder_out (2 * W * n, J)."""
    meta = onnx_model.metadata
    geometry = meta.geometry
    frames = geometry.frames_for_windows(VERIFY_WINDOWS)
    rng = np.random.default_rng(seed)
    features = np.stack([
        synthetic_features(frames, seed),
        rng.standard_normal((frames, meta.features.num_mel_bins)).astype(np.float32),
    ])  # (2, frames, F)
    wrapper = EncoderWrapper(reference)
    torch_state = tuple(reference.init_state(2))
    onnx_state = onnx_model.init_states(2)
    outputs = []
    for w in range(VERIFY_WINDOWS):
        start = geometry.window_start(w)
        window = features[:, start : start + geometry.window_frames]  # (2, T, F)
        torch_out = wrapper(torch.from_numpy(window), *torch_state)
        onnx_out, onnx_state = onnx_model.run_encoder(window, onnx_state)
        table.add(onnx_model.files.encoder, wrapper.output_names, (onnx_out, *onnx_state), torch_out)
        torch_state = torch_out[1:]
        outputs.append(onnx_out)
    return np.concatenate(outputs, axis=1).reshape(-1, meta.joiner_dim)  # (2 * W * n, J)


def _compare_offline_encoder(reference: Transducer, onnx_model: OnnxModel, table: _DiffTable, seed: int) -> np.ndarray:
    """Whole utterances of two lengths (two streams of one, then one of another); ONNX encoder_out (rows, J)."""
    meta = onnx_model.metadata
    frames = meta.geometry.frames_for_windows(VERIFY_WINDOWS)
    rng = np.random.default_rng(seed)
    wrapper = OfflineEncoderWrapper(reference)
    batches = [
        np.stack([synthetic_features(frames, seed),
                  rng.standard_normal((frames, meta.features.num_mel_bins)).astype(np.float32)]),  # (2, T, F)
        synthetic_features(2 * frames + 5, seed + 1)[None],  # (1, T2, F): T is dynamic
    ]
    outputs = []
    for features in batches:
        onnx_out = onnx_model.encode_whole(features)
        table.add(onnx_model.files.encoder, wrapper.output_names, (onnx_out,), (wrapper(torch.from_numpy(features)),))
        outputs.append(onnx_out.reshape(-1, meta.joiner_dim))
    return np.concatenate(outputs)  # (rows, J)


def _compare_decoder(reference: Transducer, onnx_model: OnnxModel, table: _DiffTable, seed: int) -> np.ndarray:
    """VERIFY_STEPS predictor steps of 2 streams, the first from sherpa's -1 padded context; ONNX outputs (2 * S, J)."""
    meta = onnx_model.metadata
    rng = np.random.default_rng(seed + 1)
    wrapper = DecoderWrapper(reference)
    torch_state = tuple(reference.predictor.init_state(2))
    onnx_state = onnx_model.backend.initial_predictor_state(2)
    outputs = []
    for step in range(VERIFY_STEPS):
        tokens = rng.integers(0, meta.vocab_size, size=(2, meta.context_size), dtype=np.int64)  # (2, C)
        if step == 0:
            tokens[0] = -1  # "no token yet", as sherpa-onnx's beam search starts
            tokens[0, -1] = meta.blank_id
        torch_out = wrapper(torch.from_numpy(tokens), *torch_state)
        onnx_out, onnx_state = onnx_model.backend.predict(tokens, onnx_state)
        table.add(onnx_model.files.decoder, wrapper.output_names, (onnx_out, *onnx_state), torch_out)
        torch_state = torch_out[1:]
        outputs.append(onnx_out)
    return np.concatenate(outputs)  # (2 * S, J)


def _compare_joiner(
    reference: Transducer,
    onnx_model: OnnxModel,
    table: _DiffTable,
    encoder_out: np.ndarray,
    decoder_out: np.ndarray,
    seed: int,
) -> None:
    """Joiner on every ONNX encoder frame against cycled decoder outputs, and on random inputs."""
    rng = np.random.default_rng(seed + 2)
    rows = len(encoder_out)
    decoder_rows = decoder_out[np.arange(rows) % len(decoder_out)]  # (rows, J)
    random_pair = rng.standard_normal((2, rows, encoder_out.shape[1])).astype(np.float32)
    wrapper = JoinerWrapper(reference)
    for enc, dec in ((encoder_out, decoder_rows), (random_pair[0], random_pair[1])):
        torch_out = wrapper(torch.from_numpy(enc), torch.from_numpy(dec))
        onnx_out = onnx_model.backend.join(enc, dec)
        table.add(onnx_model.files.joiner, wrapper.output_names, (onnx_out,), (torch_out,))


def greedy_decode(onnx_model: OnnxModel, features: np.ndarray) -> list[int]:
    """Token ids of one utterance's features (T, F) by greedy search, windowed as sherpa-onnx."""
    meta = onnx_model.metadata
    searcher = GreedySearcher(onnx_model.backend, SearchOptions(method="greedy", max_symbols_per_frame=1))
    search_state = searcher.init_state()
    if not meta.streaming:  # offline: the whole utterance in one call
        searcher.advance(onnx_model.encode_whole(features[None].astype(np.float32)), [search_state])
        return list(search_state.best().tokens)
    encoder_state = onnx_model.init_states(1)
    geometry = meta.geometry
    for start in geometry.sherpa_window_starts(len(features)):
        window = features[None, start : start + geometry.window_frames].astype(np.float32)  # (1, T, F)
        encoder_out, encoder_state = onnx_model.run_encoder(window, encoder_state)
        searcher.advance(encoder_out, [search_state])
    return list(search_state.best().tokens)
