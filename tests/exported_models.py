"""Tiny exported models that react to speech, shared by the runtime, model-dir and transcribe tests.

A random tiny transducer emits a token on nearly every frame, speech or silence,
which would let endpoint and tail tests pass trivially. `speech_gated_model`
rewrites the blank row of the joiner so the model emits (random) tokens while it
hears the synthetic voice and blanks on digital silence, as a trained model does.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch

from asr.audio import SAMPLE_RATE
from asr.features import fbank
from asr.runtime.tokens import BLANK, UNK, TokenTable
from asr.training.torch_backend import stream_utterance
from export.onnx_export import ExportOptions, export_model
from export.verify import synthetic_audio
from models.cells import CausalTaps
from models.presets import tiny
from models.transducer import Transducer

TOKENS = TokenTable((BLANK, UNK, "\u2581", *"ABCDEFGHIJKLMNOPQ"))  # V = 20
BLANK_GAIN = 40.0  # sharpness of the blank decision: far beyond the other logits' spread


def speech(seconds: float, seed: int) -> np.ndarray:
    """(N,) float32 speech-like audio at 16 kHz: a gliding harmonic voice in syllables, with noise."""
    return synthetic_audio(seconds, seed)


def silence(seconds: float) -> np.ndarray:
    """(N,) float32 digital silence at 16 kHz."""
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)


def _joiner_activations(model: Transducer, samples: np.ndarray) -> torch.Tensor:
    """tanh(enc + dec) of every encoder frame, with the blank context's decoder output: (T', J)."""
    encoder_out = torch.from_numpy(stream_utterance(model, fbank(samples)))  # (T', J)
    blanks = torch.full((1, model.predictor.context_size), model.config.blank_id, dtype=torch.int64)
    decoder_out, _ = model.predict(blanks, model.predictor.init_state(1))  # (1, J)
    return torch.tanh(encoder_out + decoder_out)


def speech_gated_model(encoder: str, predictor: str, seed: int = 0) -> Transducer:
    """A tiny random model whose blank logit is high on silence and low on speech.

    The blank row of the joiner's output layer becomes the direction separating
    the activations of silence from those of speech, thresholded half-way.
    """
    torch.manual_seed(seed)
    model = Transducer(tiny(encoder, vocab_size=TOKENS.vocab_size, predictor=predictor)).eval()
    blank = model.config.blank_id
    with torch.no_grad():
        # Random tiny encoders barely react to their input without a gain. Not on an esn readout's
        # causal taps: they filter over time, so a gain there only scales the output 3x more.
        taps = {id(module.weight) for module in model.encoder.modules() if isinstance(module, CausalTaps)}
        for parameter in model.encoder.parameters():
            if parameter.dim() >= 2 and id(parameter) not in taps:
                parameter.mul_(3.0)
        model.joiner.out.weight.mul_(4.0)
        quiet = _joiner_activations(model, silence(2.0))[3:]  # the first frames still settle
        voiced = _joiner_activations(model, speech(2.0, seed + 1))
        direction = quiet.mean(0) - voiced.mean(0)
        direction /= direction.norm()
        threshold = 0.5 * ((quiet @ direction).mean() + (voiced @ direction).mean())
        model.joiner.out.weight[blank] = BLANK_GAIN * direction
        model.joiner.out.bias[blank] = -BLANK_GAIN * threshold
    return model


@functools.cache
def gated_model(encoder: str, predictor: str) -> Transducer:
    """`speech_gated_model(encoder, predictor)`, built once per test session (do not modify it)."""
    return speech_gated_model(encoder, predictor)


_EXPORTS: dict[tuple[str, str, bool], Path] = {}


def exported_model_dir(
    factory: pytest.TempPathFactory, encoder: str = "lstm", predictor: str = "stateless", int8: bool = False
) -> Path:
    """The dir of `gated_model(encoder, predictor)` exported once per test session."""
    key = (encoder, predictor, int8)
    if key not in _EXPORTS:
        out_dir = factory.mktemp(f"model-{encoder}-{predictor}{'-int8' if int8 else ''}")
        export_model(gated_model(encoder, predictor), TOKENS, out_dir, ExportOptions(int8=int8))
        _EXPORTS[key] = out_dir
    return _EXPORTS[key]
