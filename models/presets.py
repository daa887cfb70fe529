"""Model presets: small functions returning a TransducerConfig per encoder kind, and their sizes.

    tiny   tens of thousands of parameters: tests, builds in milliseconds
    small  about 5M: trains on a CPU, the demo model
    base   about 25M
    large  about 80M

Each preset sizes every encoder kind for roughly the same weight count (trained
parameters plus the fixed reservoir of an ESN); the table (`asr models`) is
computed by building each model on the meta device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from asr.errors import AsrError
from models.cells import Reservoir
from models.config import ENCODER_KINDS, PREDICTOR_KINDS, EncoderConfig, PredictorConfig, TransducerConfig
from models.transducer import Transducer

DEFAULT_VOCAB_SIZE = 500  # a LibriSpeech BPE vocabulary, blank included


def _transducer(
    encoders: dict[str, EncoderConfig], encoder: str, vocab_size: int, predictor: str, decoder_dim: int, joiner_dim: int
) -> TransducerConfig:
    """Assemble a preset: the encoder of kind `encoder` and a predictor of width decoder_dim."""
    if encoder not in encoders:
        raise AsrError(f"unknown encoder {encoder!r}; choose one of {', '.join(ENCODER_KINDS)}")
    if predictor not in PREDICTOR_KINDS:
        raise AsrError(f"unknown predictor {predictor!r}; choose one of {', '.join(PREDICTOR_KINDS)}")
    return TransducerConfig(
        encoder=encoders[encoder],
        predictor=PredictorConfig(kind=predictor, embed_dim=decoder_dim, hidden_dim=decoder_dim),
        vocab_size=vocab_size,
        joiner_dim=joiner_dim,
    )


def _attention(kind: str, **sizes: Any) -> EncoderConfig:
    """A conformer or transformer as the trained presets build it: pre-norm, one LayerNorm after the last layer."""
    return EncoderConfig(kind, final_norm_only=True, **sizes)


def tiny(encoder: str, vocab_size: int = DEFAULT_VOCAB_SIZE, predictor: str = "stateless") -> TransducerConfig:
    """A few tens of thousands of parameters, for tests."""
    # No front LayerNorm: the runtime tests gate random tiny models into blanking on silence through
    # the front's raw output scale, which a LayerNorm would take away (export tests turn it on).
    common = dict(subsampling_channels=4, num_layers=2, output_dim=32, dropout=0.0, chunk_frames=4, front_norm=False)
    encoders = {
        "lstm": EncoderConfig("lstm", hidden_dim=32, proj_dim=16, **common),
        "gru": EncoderConfig("gru", hidden_dim=32, **common),
        "rnn": EncoderConfig("rnn", hidden_dim=48, **common),
        "peephole": EncoderConfig("peephole", hidden_dim=32, residual=True, **common),
        "esn": EncoderConfig(
            "esn", hidden_dim=48, residual=True, readout_layers=1, readout_taps=3, readout_hidden_taps=True, **common
        ),
        # A LayerNorm closing every layer (final_norm_only=False): the runtime tests' random models,
        # gated as above, blank the fading end of a syllable with one norm only after the last layer
        # (tests/test_runtime.py, audio ending right after speech). The parity tests add that layout.
        "conformer": EncoderConfig(
            "conformer", hidden_dim=32, num_heads=2, ff_dim=64, conv_kernel=5, left_context_chunks=2, **common
        ),
        "transformer": EncoderConfig(
            "transformer", hidden_dim=32, num_heads=2, ff_dim=64, left_context_chunks=2, **common
        ),
        # Three layers, so the dilations (1, 2, 1) restart once.
        "tcn": EncoderConfig("tcn", hidden_dim=32, conv_kernel=3, dilation_cycle=2, **{**common, "num_layers": 3}),
        "bilstm": EncoderConfig("bilstm", hidden_dim=16, residual=True, **common),
    }
    return _transducer(encoders, encoder, vocab_size, predictor, decoder_dim=16, joiner_dim=32)


def small(encoder: str, vocab_size: int = DEFAULT_VOCAB_SIZE, predictor: str = "stateless") -> TransducerConfig:
    """About 5M parameters: trains on a CPU in hours, the demo model."""
    encoders = {
        # No projection: torch has no oneDNN kernel for LSTMP, and on a CPU the same size with a
        # 576-cell LSTMP (proj 256) trained at half the speed (forward + backward 1.20 s against 0.58 s).
        "lstm": EncoderConfig("lstm", num_layers=3, hidden_dim=384, proj_dim=0, output_dim=256, residual=True),
        "gru": EncoderConfig("gru", num_layers=3, hidden_dim=448, output_dim=256, residual=True),
        "rnn": EncoderConfig("rnn", num_layers=4, hidden_dim=640, output_dim=256, residual=True),
        "peephole": EncoderConfig("peephole", num_layers=3, hidden_dim=384, output_dim=256, residual=True),
        # Sized by all its weights, fixed reservoir included: only the front and the readout train. A hidden
        # ReLU layer in the readout and no dropout: 84.9 / 85.4% dev WER at step 300 on two seeds, against 87.8
        # with the Linear alone (88.0 with dropout 0.1; README "Accuracy"); the reservoir 1120 wide (from 1152)
        # to pay for it. Causal taps of 32 frames (1.3 s) before the readout: 80.5 / 83.0 on the two seeds (seed 0
        # with 4 / 12 / 24 taps: 84.5 / 81.8 / 81.3); the same taps on the hidden layer's output too: 80.5 / 80.8;
        # 48 taps (1.9 s) on both: 79.96 / 80.12.
        "esn": EncoderConfig("esn", num_layers=1, hidden_dim=1120, output_dim=256, residual=True, dropout=0.0,
                             readout_layers=1, readout_taps=48, readout_hidden_taps=True),
        "conformer": _attention(
            "conformer", num_layers=6, hidden_dim=192, num_heads=4, ff_dim=576, output_dim=256, left_context_chunks=8
        ),
        # Without the conv module a layer is about 16% smaller: one layer more for the same size. No dropout:
        # it learns slowest of the kinds, and without it was at 79.4 / 78.2% dev WER at step 300 on two seeds
        # against 80.7 / 81.0 with 0.1 (README "Accuracy"); the corpus is too large for these budgets to overfit.
        "transformer": _attention(
            "transformer", num_layers=7, hidden_dim=192, num_heads=4, ff_dim=576, output_dim=256, left_context_chunks=8,
            dropout=0.0,
        ),
        # Dilations 1..8 twice: a receptive field of 61 frames (2.4 s).
        "tcn": EncoderConfig("tcn", num_layers=8, hidden_dim=256, conv_kernel=3, output_dim=256),
        "bilstm": EncoderConfig("bilstm", num_layers=3, hidden_dim=224, output_dim=256, residual=True),
    }
    return _transducer(encoders, encoder, vocab_size, predictor, decoder_dim=256, joiner_dim=256)


def base(encoder: str, vocab_size: int = DEFAULT_VOCAB_SIZE, predictor: str = "stateless") -> TransducerConfig:
    """About 25M parameters."""
    encoders = {
        "lstm": EncoderConfig("lstm", num_layers=6, hidden_dim=1024, proj_dim=384, output_dim=384, residual=True),
        "gru": EncoderConfig("gru", num_layers=6, hidden_dim=768, output_dim=384, residual=True),
        "rnn": EncoderConfig("rnn", num_layers=8, hidden_dim=1152, output_dim=384, residual=True),
        # No projection (the peephole cell has none): a narrower cell for the LSTMP's size.
        "peephole": EncoderConfig("peephole", num_layers=6, hidden_dim=672, output_dim=384, residual=True),
        "esn": EncoderConfig("esn", num_layers=1, hidden_dim=3072, output_dim=384, residual=True),
        "conformer": _attention(
            "conformer", num_layers=14, hidden_dim=256, num_heads=4, ff_dim=1024, output_dim=384, left_context_chunks=8
        ),
        "transformer": _attention(
            "transformer", num_layers=16, hidden_dim=256, num_heads=4, ff_dim=1024, output_dim=384, left_context_chunks=8
        ),
        "tcn": EncoderConfig("tcn", num_layers=18, hidden_dim=384, conv_kernel=3, output_dim=384),
        "bilstm": EncoderConfig("bilstm", num_layers=6, hidden_dim=384, output_dim=384, residual=True),
    }
    return _transducer(encoders, encoder, vocab_size, predictor, decoder_dim=384, joiner_dim=384)


def large(encoder: str, vocab_size: int = DEFAULT_VOCAB_SIZE, predictor: str = "stateless") -> TransducerConfig:
    """About 80M parameters (icefall's LSTM transducer size)."""
    encoders = {
        "lstm": EncoderConfig("lstm", num_layers=12, hidden_dim=1408, proj_dim=512, output_dim=512, residual=True),
        "gru": EncoderConfig("gru", num_layers=12, hidden_dim=1024, output_dim=512, residual=True),
        "rnn": EncoderConfig("rnn", num_layers=16, hidden_dim=1536, output_dim=512, residual=True),
        "peephole": EncoderConfig("peephole", num_layers=12, hidden_dim=896, output_dim=512, residual=True),
        "esn": EncoderConfig("esn", num_layers=1, hidden_dim=5888, output_dim=512, residual=True),
        "conformer": _attention(
            "conformer", num_layers=13, hidden_dim=512, num_heads=8, ff_dim=2048, output_dim=512, left_context_chunks=8
        ),
        "transformer": _attention(
            "transformer", num_layers=15, hidden_dim=512, num_heads=8, ff_dim=2048, output_dim=512, left_context_chunks=8
        ),
        "tcn": EncoderConfig("tcn", num_layers=24, hidden_dim=640, conv_kernel=3, output_dim=512),
        "bilstm": EncoderConfig("bilstm", num_layers=8, hidden_dim=640, output_dim=512, residual=True),
    }
    return _transducer(encoders, encoder, vocab_size, predictor, decoder_dim=512, joiner_dim=512)


PRESETS: dict[str, Callable[..., TransducerConfig]] = {"tiny": tiny, "small": small, "base": base, "large": large}


def build_config(
    preset: str, encoder: str, vocab_size: int = DEFAULT_VOCAB_SIZE, predictor: str = "stateless"
) -> TransducerConfig:
    """The config of preset `preset` with encoder kind `encoder` (e.g. build_config("small", "lstm"))."""
    if preset not in PRESETS:
        raise AsrError(f"unknown model preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[preset](encoder, vocab_size, predictor)


@dataclass(frozen=True)
class ParameterRow:
    """Parameter counts of one preset and encoder kind."""

    preset: str  # tiny, small, base or large
    encoder: str  # encoder kind
    layers: int  # encoder layers
    hidden_dim: int  # encoder cell / model dim
    encoder_params: int  # encoder parameters, x4 front included
    other_params: int  # predictor, joiner and CTC head
    total_params: int  # every trained parameter
    fixed_params: int  # weights that never train (an ESN's reservoir buffers), in the checkpoint too


def count_parameters(config: TransducerConfig) -> tuple[int, int, int]:
    """(encoder, total, fixed) weight counts; built on the meta device, so nothing is allocated."""
    with torch.device("meta"):
        model = Transducer(config)
    encoder = sum(p.numel() for p in model.encoder.parameters())
    fixed = sum(b.numel() for m in model.modules() if isinstance(m, Reservoir) for b in m.buffers())
    return encoder, sum(p.numel() for p in model.parameters()), fixed


def parameter_table(vocab_size: int = DEFAULT_VOCAB_SIZE, predictor: str = "stateless") -> list[ParameterRow]:
    """One row per preset and encoder kind."""
    rows = []
    for preset in PRESETS:
        for encoder in ENCODER_KINDS:
            config = build_config(preset, encoder, vocab_size, predictor)
            encoder_params, total, fixed = count_parameters(config)
            rows.append(
                ParameterRow(
                    preset, encoder, config.encoder.num_layers, config.encoder.hidden_dim,
                    encoder_params, total - encoder_params, total, fixed,
                )
            )
    return rows


def _millions(count: int) -> str:
    return f"{count / 1e6:.2f}M"


def format_parameter_table(rows: list[ParameterRow], markdown: bool = False) -> str:
    """Rows as aligned text columns, or as a Markdown table."""
    header = ["preset", "encoder", "layers", "hidden", "encoder", "other", "total", "fixed"]
    body = [
        [r.preset, r.encoder, str(r.layers), str(r.hidden_dim),
         _millions(r.encoder_params), _millions(r.other_params), _millions(r.total_params),
         _millions(r.fixed_params) if r.fixed_params else "-"]
        for r in rows
    ]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in body])
    widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in [header] + body)


def print_parameter_table(markdown: bool = False) -> None:
    """Print the parameter counts of every preset and encoder kind (`asr models`)."""
    print(format_parameter_table(parameter_table(), markdown))
