"""Offline models (the bilstm encoder): whole-file recognition equals torch, streaming is refused clearly.

The exported encoder takes utterances of any length; `OfflineRecognizer` encodes
a file in one pass and runs the runtime's search over it. Its output is checked
against the torch model's whole-utterance `encode` and the same search over a
torch backend, at lengths other than the one the export was traced with.

Shapes: T feature frames, T' encoder frames, F fbank bins, J joiner dim.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asr.errors import AudioError, ConfigError, ShapeError
from asr.features import fbank
from asr.runtime.model_dir import ModelFiles
from asr.runtime.offline import OfflineRecognizer
from asr.runtime.onnx_backend import OnnxModel
from asr.runtime.recognizer import Recognizer
from asr.runtime.rescore import rescore_state
from asr.runtime.search import SearchOptions, create_searcher
from asr.runtime.transcribe import add_transcribe_arguments, run_transcribe_command
from asr.training.torch_backend import TorchAttentionScorer, TorchBackend, encode_utterance
from export.onnx_export import ExportOptions, export_model
from exported_models import TOKENS, exported_model_dir, silence, speech
from models.transducer import Transducer
from test_attention_rescoring import with_random_head
from test_torch_backend import make_model

TOLERANCE = 1e-4  # fp32 ONNX vs torch, absolute; plus 1e-5 relative (make_model's gains give outputs in the hundreds)
GREEDY = SearchOptions()
BEAM = SearchOptions(method="beam", beam=3)


@pytest.fixture(scope="module")
def bilstm() -> Transducer:
    return make_model("bilstm", vocab_size=TOKENS.vocab_size)


@pytest.fixture(scope="module")
def offline_dir(bilstm: Transducer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("bilstm")
    export_model(bilstm, TOKENS, out_dir, ExportOptions(int8=True))
    return out_dir


def utterance(seed: int, seconds: float) -> np.ndarray:
    return np.concatenate([silence(0.2), speech(seconds, seed), silence(0.3)])


def torch_tokens(model: Transducer, features: np.ndarray, options: SearchOptions) -> tuple[int, ...]:
    """The runtime's search over the torch model's whole-utterance encoder output."""
    searcher = create_searcher(TorchBackend(model), options)
    state = searcher.init_state()
    searcher.advance(encode_utterance(model, features)[None], [state])
    return state.best().tokens


def test_metadata_marks_the_model_offline(offline_dir: Path) -> None:
    meta = ModelFiles.from_dir(offline_dir).metadata
    assert (meta.model_type, meta.encoder_kind, meta.streaming) == ("asr-offline", "bilstm", False)
    assert meta.encoder_states == () and meta.lookahead_ms == float("inf")


@pytest.mark.parametrize("frames", [7, 50, 163, 401])
def test_onnx_encoder_equals_torch_whole_utterance_encoding(bilstm: Transducer, offline_dir: Path, frames: int) -> None:
    recognizer = OfflineRecognizer.from_dir(offline_dir)
    features = fbank(utterance(frames, 5.0))[:frames]
    np.testing.assert_allclose(recognizer.encode(features), encode_utterance(bilstm, features), atol=TOLERANCE, rtol=1e-5)


@pytest.mark.parametrize("options", [GREEDY, BEAM], ids=["greedy", "beam"])
@pytest.mark.parametrize("seed", [1, 2])
def test_offline_transcription_equals_torch_offline_forward(
    bilstm: Transducer, offline_dir: Path, options: SearchOptions, seed: int
) -> None:
    samples = utterance(seed, 1.0 + 0.3 * seed)
    result = OfflineRecognizer.from_dir(offline_dir, decoding=options).recognize(16000, samples)
    expected = torch_tokens(bilstm, fbank(samples), options)
    assert result.token_ids == expected and len(expected) > 0
    assert result.text == TOKENS.decode(expected)
    assert all(0 <= t <= len(samples) / 16000 for t in result.timestamps)


def test_other_rates_nbest_int8_and_short_input(offline_dir: Path) -> None:
    samples = utterance(3, 1.0)
    recognizer = OfflineRecognizer.from_dir(offline_dir, decoding=BEAM)
    at_16k = recognizer.recognize(16000, samples)
    with_nbest = recognizer.recognize(16000, samples, nbest=2)
    assert with_nbest.text == at_16k.text and len(with_nbest.nbest) == 2
    assert with_nbest.nbest[0].token_ids == at_16k.token_ids
    assert recognizer.recognize(8000, samples[::2]).text  # resampled to the model's rate
    int8 = OfflineRecognizer.from_dir(offline_dir, int8=True).recognize(16000, samples)
    assert int8.text  # lossy, so not equal to fp32: it runs and emits
    assert recognizer.recognize(16000, silence(0.05)).token_ids == ()  # below one encoder frame: nothing, no error
    with pytest.raises(AudioError, match="zero samples"):
        recognizer.recognize(16000, np.zeros(0, np.float32))


def test_the_streaming_runtime_refuses_offline_models_with_a_clear_message(offline_dir: Path) -> None:
    with pytest.raises(ConfigError, match="offline model \\(bilstm encoder\\): it cannot stream.*asr transcribe --offline"):
        Recognizer.from_dir(offline_dir)
    model = OnnxModel(ModelFiles.from_dir(offline_dir))
    with pytest.raises(ShapeError, match="below the 7"):
        model.encode_whole(np.zeros((1, 6, 80), np.float32))


def test_offline_recognizer_refuses_streaming_models(tmp_path_factory: pytest.TempPathFactory) -> None:
    streaming_dir = exported_model_dir(tmp_path_factory, "lstm", "stateless")
    with pytest.raises(ConfigError, match="streaming model \\(lstm encoder\\).*leave --offline out"):
        OfflineRecognizer.from_dir(streaming_dir)
    with pytest.raises(Exception, match="is a streaming encoder"):
        OnnxModel(ModelFiles.from_dir(streaming_dir)).encode_whole(np.zeros((1, 50, 80), np.float32))


def run_transcribe(argv: list[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="asr transcribe")
    add_transcribe_arguments(parser)
    out, err = io.StringIO(), io.StringIO()
    return run_transcribe_command(parser.parse_args(argv), out, err), out.getvalue(), err.getvalue()


def test_asr_transcribe_offline(bilstm: Transducer, offline_dir: Path, tmp_path: Path) -> None:
    samples = utterance(4, 1.2)
    path = tmp_path / "utterance.wav"
    soundfile.write(path, samples, 16000, subtype="FLOAT")
    status, out, _ = run_transcribe(["--offline", "--model", str(offline_dir), str(path), str(tmp_path / "missing.wav")])
    expected = TOKENS.decode(torch_tokens(bilstm, fbank(samples), GREEDY))
    assert status == 1  # the missing file; the good one is still transcribed
    assert out == f"{path}\t{expected}\n" and expected
    with pytest.raises(ConfigError, match="cannot stream"):  # the CLI exits 2 with this message
        run_transcribe(["--model", str(offline_dir), str(path)])


# --- attention rescoring of a file's n-best ---


@pytest.fixture(scope="module")
def headed_bilstm() -> Transducer:
    """The bilstm model with a seeded random additive attention head, scaled so that it reorders n-best lists."""
    return with_random_head(make_model("bilstm", vocab_size=TOKENS.vocab_size), "additive")


@pytest.fixture(scope="module")
def headed_offline_dir(headed_bilstm: Transducer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("headed-bilstm")
    export_model(headed_bilstm, TOKENS, out_dir, ExportOptions())
    return out_dir


def offline_nbest(model_dir: Path, samples: np.ndarray, weight: float) -> list[tuple[str, float]]:
    recognizer = OfflineRecognizer.from_dir(model_dir, decoding=BEAM, rescore_weight=weight)
    return [(alt.text, alt.score) for alt in recognizer.recognize(16000, samples, nbest=BEAM.beam).nbest]


@pytest.mark.parametrize("seed", [1, 2])
def test_offline_rescoring_equals_rescoring_torchs_nbest(
    headed_bilstm: Transducer, headed_offline_dir: Path, seed: int
) -> None:
    samples = utterance(seed, 2.0)
    frames = encode_utterance(headed_bilstm, fbank(samples))
    state = create_searcher(TorchBackend(headed_bilstm), BEAM).init_state()
    create_searcher(TorchBackend(headed_bilstm), BEAM).advance(frames[None], [state])
    rescore_state(state, frames, TorchAttentionScorer(headed_bilstm), 1.0)
    expected = [(TOKENS.decode(path.tokens()), score) for path, score in state.ranked()]
    got = offline_nbest(headed_offline_dir, samples, 1.0)
    assert [text for text, _ in got] == [text for text, _ in expected]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], rtol=0, atol=1e-3)


def test_offline_rescoring_weight_zero_is_plain_beam_search(headed_offline_dir: Path) -> None:
    samples = utterance(3, 2.0)
    plain = OfflineRecognizer.from_dir(headed_offline_dir, decoding=BEAM).recognize(16000, samples, nbest=BEAM.beam)
    assert offline_nbest(headed_offline_dir, samples, 0.0) == [(alt.text, alt.score) for alt in plain.nbest]


def test_offline_rescoring_without_a_head_is_a_clear_error(offline_dir: Path) -> None:
    with pytest.raises(ConfigError, match="no attention_decoder.onnx"):
        OfflineRecognizer.from_dir(offline_dir, decoding=BEAM, rescore_weight=0.5)
    with pytest.raises(ConfigError, match="must be a finite number"):
        OfflineRecognizer.from_dir(offline_dir, decoding=BEAM, rescore_weight=-1.0)


def test_offline_word_rescoring_picks_the_n_best_entry_the_formula_picks(offline_dir: Path) -> None:
    """The word trigram re-ranks a whole file's n-best as at a streaming segment's end: a trigram that knows only
    the words of the plain search's last choice, at a large weight, brings that choice to the top."""
    from asr.runtime.word_rescore import WordRescorer
    from asr.training.word_ngram import count_word_trigram

    samples = utterance(3, 2.0)
    plain = OfflineRecognizer.from_dir(offline_dir, decoding=BEAM).recognize(16000, samples, nbest=BEAM.beam).nbest
    assert len({alt.text for alt in plain}) > 1  # distinct texts, or nothing to re-rank
    rescorer = WordRescorer(count_word_trigram([plain[-1].text], 1), 50.0, 0.0, TOKENS)
    rescored = OfflineRecognizer(OnnxModel(ModelFiles.from_dir(offline_dir)), BEAM, word_rescorer=rescorer)
    totals = np.array([alt.score for alt in plain]) + rescorer.scores([alt.text for alt in plain])
    assert rescored.recognize(16000, samples).text == plain[int(np.argmax(totals))].text == plain[-1].text
