"""sherpa-onnx runs our exported LSTM transducer unchanged and decodes exactly what our own
numpy + onnxruntime greedy search decodes from the same files, windowed the sherpa way."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from asr.audio import SAMPLE_RATE
from asr.features import fbank
from asr.runtime.model_dir import ModelFiles
from asr.runtime.onnx_backend import OnnxModel
from asr.runtime.tokens import WORD_BOUNDARY
from asr.training.tokenizers import CharTokenizer
from export.onnx_export import ExportOptions, export_model
from export.verify import greedy_decode, synthetic_audio
from models.presets import tiny
from models.transducer import Transducer

sherpa_onnx = pytest.importorskip("sherpa_onnx")


def _emitting_model(vocab_size: int, audio: np.ndarray, context_size: int = 2) -> Transducer:
    """A random tiny LSTM model made to emit a varied mix of tokens and blanks on `audio`.

    At its initialisation the encoder barely reacts to its input, so every frame
    would get the same token; larger encoder weights make frames differ. The blank
    logit is then offset so that, from the start context, blank wins on about half
    the frames: the decode has blanks, emissions and several different tokens,
    which is what makes agreement between the two decoders mean something.
    """
    torch.manual_seed(0)
    config = tiny("lstm", vocab_size=vocab_size)
    config = dataclasses.replace(config, predictor=dataclasses.replace(config.predictor, context_size=context_size))
    model = Transducer(config).eval()
    blank = model.config.blank_id
    with torch.no_grad():
        for parameter in model.encoder.parameters():
            parameter.mul_(4.0)
        model.joiner.out.weight.mul_(2.0)
        features = torch.from_numpy(fbank(audio))[None]  # (1, T, F)
        encoder_out, _ = model.encode(features, torch.tensor([features.shape[1]]))
        start = torch.full((1, model.predictor.context_size), blank)
        decoder_out, _ = model.predict(start, model.predictor.init_state(1))
        logits = model.join(model.joiner.project_encoder(encoder_out[0]), decoder_out)  # (T', V)
        best_token = torch.cat([logits[:, :blank], logits[:, blank + 1 :]], dim=1).max(dim=1).values
        model.joiner.out.bias[blank] += (best_token - logits[:, blank]).median()
    return model


def _sherpa_decode(model_dir: Path, audio: np.ndarray) -> tuple[list[str], str]:
    recognizer = sherpa_onnx.OnlineRecognizer.from_transducer(
        encoder=str(model_dir / "encoder.onnx"),
        decoder=str(model_dir / "decoder.onnx"),
        joiner=str(model_dir / "joiner.onnx"),
        tokens=str(model_dir / "tokens.txt"),
        num_threads=1,
        sample_rate=SAMPLE_RATE,
        feature_dim=80,
        decoding_method="greedy_search",
    )
    stream = recognizer.create_stream()
    stream.accept_waveform(SAMPLE_RATE, audio)
    stream.input_finished()
    while recognizer.is_ready(stream):
        recognizer.decode_stream(stream)
    return list(recognizer.get_result_all(stream).tokens), recognizer.get_result(stream)


@pytest.mark.parametrize(("chunk_ms", "context_size"), [(None, 2), (80, 2), (None, 4)])
def test_sherpa_onnx_decodes_our_lstm_files_like_our_own_search(
    tmp_path: Path, chunk_ms: float | None, context_size: int
) -> None:
    tokenizer = CharTokenizer.build(["the quick brown fox jumps over the lazy dog"])
    audio = synthetic_audio(3.87, seed=1)
    report = export_model(_emitting_model(tokenizer.vocab_size, audio, context_size), tokenizer.token_table,
                          tmp_path, ExportOptions(chunk_ms=chunk_ms))
    assert report.metadata is not None and report.metadata.model_type == "lstm"

    ours = greedy_decode(OnnxModel(ModelFiles.from_dir(tmp_path)), fbank(audio))
    frames = len(fbank(audio)) // 4
    assert 5 <= len(ours) < frames and len(set(ours)) >= 3  # blanks, emissions and variety

    sherpa_tokens, sherpa_text = _sherpa_decode(tmp_path, audio)
    # sherpa-onnx reports the word boundary symbol as a space.
    our_symbols = [tokenizer.token_table.symbols[i].replace(WORD_BOUNDARY, " ") for i in ours]
    assert sherpa_tokens == our_symbols
    assert sherpa_text == tokenizer.decode(ours)
