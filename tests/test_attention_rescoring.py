"""The attention decoder head and n-best rescoring: training, export, runtime and torch parity, bad input."""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from asr.errors import AsrError, ConfigError, ModelFilesError
from asr.features import fbank
from asr.runtime import Recognizer
from asr.runtime.geometry import WindowGeometry
from asr.runtime.model_dir import ATTENTION_FILE, ModelFiles, read_metadata_props
from asr.runtime.onnx_backend import OnnxAttentionScorer
from asr.runtime.rescore import attention_scores, rescore_state, teacher_forcing
from asr.runtime.beam_search import BeamSearcher
from asr.runtime.search import SearchOptions, SearchState
from asr.runtime.segments import finish_segment
from asr.runtime.token_path import EMPTY_PATH
from asr.training.command import load_initial_weights, with_attention_head
from asr.training.config import TrainConfig
from asr.training.decoding import EvalOptions, check_compatible, decode_features
from asr.training.tokenizers import CharTokenizer
from asr.training.torch_backend import SILENCE_FEATURE, TorchAttentionScorer, TorchBackend, stream_utterance
from export.onnx_export import ExportOptions, export_model
from exported_models import TOKENS, exported_model_dir, gated_model, speech
from test_transcribe import run as transcribe_cli
from models.config import ATTENTION_SCORES, AttentionDecoderConfig, TransducerConfig
from models.presets import tiny
from models.transducer import RnntLoss, Transducer

BEAM = SearchOptions(method="beam", beam=4)
TOLERANCE = 1e-4  # float32 log-probs summed over a few dozen tokens


def _head(score: str) -> AttentionDecoderConfig:
    return AttentionDecoderConfig(score=score, embed_dim=8, hidden_dim=16, attention_dim=8, dropout=0.0)


def with_random_head(base: Transducer, score: str) -> Transducer:
    """`base` with a seeded random attention head of `score`, scaled so that it reorders n-best lists."""
    torch.manual_seed(7)
    model = Transducer(dataclasses.replace(base.config, attention_decoder=_head(score)))
    missing = model.load_state_dict(base.state_dict(), strict=False).missing_keys
    assert all(key.startswith("attention_decoder.") for key in missing)
    with torch.no_grad():  # a random head that scores sequences far apart, so rescoring reorders
        for parameter in model.attention_decoder.parameters():
            parameter.mul_(4.0)
    return model.eval()


@functools.cache
def headed_model(score: str) -> Transducer:
    """The speech-gated tiny model with a seeded random attention head of `score` (do not modify it)."""
    return with_random_head(gated_model("lstm", "stateless"), score)


@pytest.fixture(scope="module")
def headed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("headed") / "model"
    export_model(headed_model("additive"), TOKENS, out_dir, ExportOptions(int8=True))
    return out_dir


# --- the model ---


@pytest.mark.parametrize("score", ATTENTION_SCORES)
def test_each_score_trains_a_step_and_exports(score: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Transducer(dataclasses.replace(tiny("lstm", vocab_size=TOKENS.vocab_size), attention_decoder=_head(score)))
    before = {k: v.clone() for k, v in model.attention_decoder.state_dict().items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x, x_lens = torch.randn(2, 120, 80), torch.tensor([120, 90])
    y, y_lens = torch.randint(1, TOKENS.vocab_size, (2, 6)), torch.tensor([6, 4])
    losses = model(x, x_lens, y, y_lens, RnntLoss(pruned=True))
    assert torch.isfinite(losses.attention) and losses.attention > 0
    torch.testing.assert_close(losses.total, losses.rnnt * 1.0 + 0.5 * losses.simple + model.config.ctc_weight
                               * losses.ctc + 0.3 * losses.attention)
    losses.total.backward()
    optimizer.step()
    after = model.attention_decoder.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before)
    report = export_model(model.eval(), TOKENS, tmp_path / "m")
    assert (tmp_path / "m" / ATTENTION_FILE).is_file()
    assert report.max_diffs[f"{ATTENTION_FILE}:log_probs"] <= TOLERANCE
    assert read_metadata_props(tmp_path / "m" / ATTENTION_FILE) == read_metadata_props(tmp_path / "m" / "encoder.onnx")


def test_without_the_head_the_config_and_files_are_as_before(tmp_path_factory: pytest.TempPathFactory) -> None:
    config = tiny("lstm")
    assert "attention_decoder" not in config.to_dict()  # so model_hash and metadata keep their values
    assert TransducerConfig.from_dict(config.to_dict()) == config
    headed = dataclasses.replace(config, attention_decoder=_head("multiplicative"))
    assert TransducerConfig.from_dict(json.loads(json.dumps(headed.to_dict()))) == headed
    plain = exported_model_dir(tmp_path_factory, "lstm", "stateless")
    assert not (plain / ATTENTION_FILE).exists()
    assert "attention_decoder" not in read_metadata_props(plain / "encoder.onnx")["model_config"]
    assert ModelFiles.from_dir(plain).attention_decoder is None


def test_loss_is_the_summed_sequence_log_prob_that_rescoring_uses() -> None:
    """The training loss (batched, padded) equals -mean of per-hypothesis scores computed one at a time."""
    model = headed_model("additive")
    torch.manual_seed(3)
    memory, memory_lens = torch.randn(2, 9, model.config.joiner_dim), torch.tensor([9, 5])
    labels, label_lens = torch.randint(1, TOKENS.vocab_size, (2, 4)), torch.tensor([4, 2])
    with torch.no_grad():
        loss = model.attention_decoder.loss(memory, memory_lens, labels, label_lens)
    scorer = TorchAttentionScorer(model)
    singles = [
        attention_scores(scorer, memory[b, : memory_lens[b]].numpy(), [tuple(labels[b, : label_lens[b]].tolist())])[0]
        for b in range(2)
    ]
    np.testing.assert_allclose(float(loss), -np.mean(singles), rtol=1e-5)


def test_teacher_forcing_inputs_and_targets() -> None:
    inputs, targets, lengths = teacher_forcing([(5, 6), (), (7,)], sos_eos=0)
    np.testing.assert_array_equal(inputs, [[0, 5, 6], [0, 0, 0], [0, 7, 0]])
    np.testing.assert_array_equal(targets, [[5, 6, 0], [0, 0, 0], [7, 0, 0]])
    np.testing.assert_array_equal(lengths, [2, 0, 1])


# --- rescoring a search state ---


def _features(model: Transducer) -> np.ndarray:
    """fbank of 2 s of speech with the silence tail the runtime appends at input_finished, (T, F)."""
    features = fbank(speech(2.0, 3))
    padding = WindowGeometry.of_encoder(model.encoder, model.encoder.chunk_frames).tail_padding_frames(len(features))
    return np.concatenate([features, np.full((padding, features.shape[1]), SILENCE_FEATURE, np.float32)])


def _nbest_state(model: Transducer) -> tuple[SearchState, np.ndarray]:
    """A beam-search state after 2 s of speech, and the segment's encoder frames (T', J), by torch as the runtime."""
    frames = stream_utterance(model, _features(model))
    searcher = BeamSearcher(TorchBackend(model), BEAM)
    state = searcher.init_state()
    searcher.advance(frames[None], [state])
    return state, frames


class _MustNotRun:
    sos_eos = 0

    def log_probs(self, memory: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        raise AssertionError("an n-best with nothing to re-rank was scored")


def test_an_empty_or_single_nbest_is_left_alone() -> None:
    frames = np.ones((4, 32), dtype=np.float32)
    empty = SearchState([], np.zeros(0), np.zeros((0, 32)), ())
    rescore_state(empty, frames, _MustNotRun(), 1.0)
    assert empty.paths == [] and empty.scores.size == 0
    single = SearchState([EMPTY_PATH.extend(5, 0)], np.array([-3.0]), np.zeros((1, 32)), ())
    rescore_state(single, frames, _MustNotRun(), 1.0)
    np.testing.assert_array_equal(single.scores, [-3.0])


def test_rescored_scores_add_the_weighted_attention_log_prob() -> None:
    model = headed_model("additive")
    state, frames = _nbest_state(model)
    assert len(state.paths) == BEAM.beam
    transducer = state.scores.copy()
    scorer = TorchAttentionScorer(model)
    alone = np.array([attention_scores(scorer, frames, [path.tokens()])[0] for path in state.paths])
    rescore_state(state, frames, scorer, 0.5)
    np.testing.assert_allclose(state.scores, transducer + 0.5 * alone, rtol=0, atol=TOLERANCE)


def test_weight_zero_is_no_rescoring_exactly() -> None:
    model = headed_model("multiplicative")
    state, frames = _nbest_state(model)
    before = (state.scores.copy(), state.ranked())
    rescore_state(state, frames, TorchAttentionScorer(model), 0.0)
    np.testing.assert_array_equal(state.scores, before[0])
    assert [(p.tokens(), s) for p, s in state.ranked()] == [(p.tokens(), s) for p, s in before[1]]


# --- runtime and torch agree ---


def test_onnx_attention_decoder_matches_torch(headed_dir: Path) -> None:
    files = ModelFiles.from_dir(headed_dir, int8=True)  # the fp32 head serves the int8 files too
    rng = np.random.default_rng(0)
    memory = rng.standard_normal((1, 40, files.metadata.joiner_dim)).astype(np.float32)
    tokens = rng.integers(0, TOKENS.vocab_size, size=(4, 12), dtype=np.int64)
    got = OnnxAttentionScorer(files.attention_decoder, files.metadata).log_probs(memory, tokens)
    want = TorchAttentionScorer(headed_model("additive")).log_probs(memory, tokens)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE)


def _runtime_nbest(model_dir: Path, weight: float, int8: bool = False) -> list[tuple[str, float]]:
    recognizer = Recognizer.from_dir(model_dir, decoding=BEAM, rescore_weight=weight, int8=int8)
    stream = recognizer.create_stream()
    stream.accept_waveform(16000, speech(2.0, 3))
    result = finish_segment(recognizer, stream, nbest=BEAM.beam)
    assert finish_segment(recognizer, stream, nbest=BEAM.beam) == result  # rescored once, whatever the reads
    return [(alt.text, alt.score) for alt in result.nbest]


def test_runtime_and_torch_give_the_same_rescored_nbest(headed_dir: Path) -> None:
    model = headed_model("additive")
    state, frames = _nbest_state(model)
    rescore_state(state, frames, TorchAttentionScorer(model), 1.0)
    expected = [(TOKENS.decode(path.tokens()), score) for path, score in state.ranked()]
    got = _runtime_nbest(headed_dir, 1.0)
    assert [text for text, _ in got] == [text for text, _ in expected]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], rtol=0, atol=1e-3)
    unrescored = _runtime_nbest(headed_dir, 0.0)
    assert [text for text, _ in got] != [text for text, _ in unrescored]  # this head does reorder


def test_runtime_weight_zero_equals_no_rescoring(headed_dir: Path) -> None:
    recognizer = Recognizer.from_dir(headed_dir, decoding=BEAM)
    stream = recognizer.create_stream()
    stream.accept_waveform(16000, speech(2.0, 3))
    plain = finish_segment(recognizer, stream, nbest=BEAM.beam)
    assert _runtime_nbest(headed_dir, 0.0) == [(alt.text, alt.score) for alt in plain.nbest]


def test_eval_rescores_like_the_runtime(headed_dir: Path) -> None:
    model = headed_model("additive")
    features = [_features(model)]
    options = EvalOptions(decoding="beam", beam=BEAM.beam, streaming=True, rescore_weight=1.0)
    assert options.tag == "beam4-rescore1-streaming"
    (tokens,) = decode_features(model, features, options)
    assert TOKENS.decode(tokens) == _runtime_nbest(headed_dir, 1.0)[0][0]


# --- bad input ---


def test_rescoring_a_model_without_the_head_is_a_clear_error(tmp_path_factory: pytest.TempPathFactory) -> None:
    plain = exported_model_dir(tmp_path_factory, "lstm", "stateless")
    with pytest.raises(ConfigError, match="no attention_decoder.onnx.*--attention-decoder"):
        Recognizer.from_dir(plain, decoding=BEAM, rescore_weight=0.5)
    with pytest.raises(ConfigError, match="needs an attention decoder"):
        check_compatible(gated_model("lstm", "stateless"), CharTokenizer(TOKENS),
                         EvalOptions(decoding="beam", rescore_weight=0.5))


def test_bad_weights_and_greedy_search_are_refused(headed_dir: Path) -> None:
    for weight in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="--rescore-weight must be a finite number >= 0"):
            Recognizer.from_dir(headed_dir, decoding=BEAM, rescore_weight=weight)
    with pytest.raises(ConfigError, match="use SearchOptions\\(method='beam'\\)"):
        Recognizer.from_dir(headed_dir, rescore_weight=0.5)
    with pytest.raises(ConfigError, match="use beam"):
        EvalOptions(decoding="greedy", rescore_weight=0.5)
    with pytest.raises(AsrError, match="--attention-weight must be > 0"):
        TrainConfig(data="/d", subsets=("a",), attention_decoder="additive", attention_weight=0.0)
    with pytest.raises(AsrError, match="--freeze-transducer trains only the attention decoder of an --init-from"):
        TrainConfig(data="/d", subsets=("a",), attention_decoder="additive", freeze_transducer=True)


def test_init_from_a_model_without_the_head_adds_one() -> None:
    config = TrainConfig(data="/d", subsets=("a",), attention_decoder="multiplicative", attention_weight=0.5,
                         init_from="/c.pt", freeze_transducer=True)
    plain = gated_model("lstm", "stateless")
    headed = with_attention_head(plain.config, config)
    assert headed.attention_decoder == AttentionDecoderConfig(score="multiplicative", loss_weight=0.5)
    assert with_attention_head(headed, config) == headed  # a head of that score keeps its sizes
    assert with_attention_head(plain.config, TrainConfig(data="/d", subsets=("a",))) == plain.config
    model = Transducer(headed)
    load_initial_weights(model, plain.state_dict())  # only the new head is missing: accepted
    torch.testing.assert_close(model.joiner.out.weight, plain.joiner.out.weight)
    weights = {k: v for k, v in plain.state_dict().items() if not k.startswith("joiner.")}
    with pytest.raises(ModelFilesError, match="weights missing \\(joiner"):
        load_initial_weights(model, weights)


def test_transcribe_rescores_and_says_it_switched_to_beam(headed_dir: Path, tmp_path: Path,
                                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    audio = tmp_path / "a.wav"
    soundfile.write(audio, speech(2.0, 3), 16000, subtype="FLOAT")
    status, out, err = transcribe_cli(["--model", str(headed_dir), "--rescore-weight", "1", str(audio)])
    assert status == 0 and "--rescore-weight needs beam search" in err
    assert out.split(None, 1)[1].strip() == _runtime_nbest(headed_dir, 1.0)[0][0]
    plain = exported_model_dir(tmp_path_factory, "lstm", "stateless")
    with pytest.raises(ConfigError, match="no attention_decoder.onnx"):
        transcribe_cli(["--model", str(plain), "--rescore-weight", "1", str(audio)])
