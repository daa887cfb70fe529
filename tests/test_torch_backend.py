"""TorchBackend against the torch model it wraps, and streaming encoding against whole-utterance encoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asr.errors import AsrError, ShapeError
from asr.runtime.search import SearchOptions, TransducerBackend, create_searcher
from asr.training.torch_backend import (
    SILENCE_FEATURE,
    TorchBackend,
    encode_batch,
    encode_utterance,
    eval_mode,
    output_lengths,
    stream_batch,
    stream_utterance,
)
from models.config import ATTENTION_KINDS, STREAMING_KINDS
from models.presets import tiny
from models.transducer import Transducer

VOCAB_SIZE = 12
# Kinds whose stream takes any n: their whole-utterance and streamed encodings agree on every frame.
ANY_CHUNK_KINDS = tuple(kind for kind in STREAMING_KINDS if kind not in ATTENTION_KINDS)
# Feature lengths with every remainder modulo the subsampling factor, and partial last chunks.
LENGTHS = (7, 50, 61, 78, 99)


def make_model(
    encoder: str = "lstm", predictor: str = "stateless", seed: int = 0, vocab_size: int = VOCAB_SIZE
) -> Transducer:
    """A tiny random model that reacts to its input and emits tokens on some frames, not all.

    At random initialisation the tiny encoders are nearly blind to their input
    (the LSTM's output varies by ~1% over time), which would make every decoding
    test pass trivially; a gain on the encoder's weight matrices and a sharper
    joiner make the tokens depend on the frames, and a raised blank logit makes
    the model skip some of them.
    """
    torch.manual_seed(seed)
    model = Transducer(tiny(encoder, vocab_size=vocab_size, predictor=predictor)).eval()
    with torch.no_grad():
        for parameter in model.encoder.parameters():
            if parameter.dim() >= 2:
                parameter.mul_(3.0)
        model.joiner.out.weight.mul_(4.0)
        model.joiner.out.bias[model.config.blank_id] += 1.0
    return model


def make_features(lengths: tuple[int, ...] = LENGTHS, seed: int = 0) -> list[np.ndarray]:
    """Fbank-like features: 80 ms segments of random spectra plus noise, so frames differ in blocks."""
    rng = np.random.default_rng(seed)
    features = []
    for t in lengths:
        segments = 4.0 * rng.standard_normal((t // 8 + 1, 80))
        features.append((np.repeat(segments, 8, axis=0)[:t] + rng.standard_normal((t, 80))).astype(np.float32))
    return features


def reference_greedy(model: Transducer, encoder_out: np.ndarray) -> list[int]:
    """Greedy search with at most one token per frame, written directly against the torch model."""
    blank, context = model.config.blank_id, model.predictor.context_size
    tokens: list[int] = []
    state = model.predictor.init_state(1)
    with torch.no_grad():
        decoder_out, next_state = model.predict(torch.full((1, context), blank), state)
        for frame in torch.from_numpy(encoder_out):
            best = int(model.join(frame[None], decoder_out).argmax())
            if best != blank:
                tokens.append(best)
                state = next_state
                last = torch.tensor([([blank] * context + tokens)[-context:]])
                decoder_out, next_state = model.predict(last, state)
    return tokens


@pytest.mark.parametrize("predictor", ["stateless", "lstm"])
def test_backend_shapes_and_values_match_the_model(predictor: str) -> None:
    model = make_model(predictor=predictor)
    backend: TransducerBackend = TorchBackend(model)
    assert (backend.blank_id, backend.vocab_size) == (0, VOCAB_SIZE)
    assert backend.context_size == (2 if predictor == "stateless" else 1)
    state = backend.initial_predictor_state(3)
    if predictor == "stateless":
        assert state == ()
    else:  # (layers, H, hidden): the search's hypothesis axis is 1
        assert [a.shape[1] for a in state] == [3, 3]
    tokens = np.array([[0, 5], [3, 4], [0, 0]])[:, -backend.context_size :]
    decoder_out, new_state = backend.predict(tokens, state)
    assert decoder_out.shape == (3, model.config.joiner_dim) and decoder_out.dtype == np.float32
    with torch.no_grad():
        expected, expected_state = model.predict(torch.from_numpy(tokens), model.predictor.init_state(3))
    np.testing.assert_allclose(decoder_out, expected.numpy(), rtol=1e-6, atol=1e-6)
    for array, tensor in zip(new_state, expected_state):
        np.testing.assert_allclose(array, tensor.numpy(), rtol=1e-6, atol=1e-6)
    encoder_out = np.random.default_rng(0).standard_normal((3, model.config.joiner_dim)).astype(np.float32)
    logits = backend.join(encoder_out, decoder_out)
    with torch.no_grad():
        expected_logits = model.join(torch.from_numpy(encoder_out), expected)
    np.testing.assert_allclose(logits, expected_logits.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("predictor", ["stateless", "lstm"])
def test_greedy_search_through_the_backend_equals_a_direct_torch_greedy(predictor: str) -> None:
    model = make_model(predictor=predictor)
    searcher = create_searcher(TorchBackend(model), SearchOptions("greedy"))
    emitted, frames = 0, 0
    for features in make_features()[1:]:
        encoder_out = encode_utterance(model, features)
        state = searcher.init_state()
        searcher.advance(encoder_out[None], [state])
        assert list(state.best().tokens) == reference_greedy(model, encoder_out)
        emitted, frames = emitted + len(state.best().tokens), frames + len(encoder_out)
    assert 0 < emitted < frames, "the test model should emit on some frames, not all"


@pytest.mark.parametrize("predictor", ["stateless", "lstm"])
def test_beam_search_through_the_backend_is_nontrivial_and_batch_independent(predictor: str) -> None:
    model = make_model(predictor=predictor)
    searcher = create_searcher(TorchBackend(model), SearchOptions("beam", beam=4))
    features = make_features()[1:]
    encoder_out, lengths = encode_batch(model, features)
    together = [searcher.init_state() for _ in features]
    searcher.advance(encoder_out, together, lengths)
    for n, feats in enumerate(features):
        alone = searcher.init_state()
        searcher.advance(encode_utterance(model, feats)[None], [alone])
        assert alone.best().tokens == together[n].best().tokens
        assert len(alone.best().tokens) > 0
        assert len(alone.tokens) > 1  # the beam holds several hypotheses


def test_decoding_refuses_a_model_in_training_mode() -> None:
    model = make_model()
    backend = TorchBackend(model)
    model.train()
    with pytest.raises(AsrError, match="model.eval"):
        backend.join(np.zeros((1, 32), np.float32), np.zeros((1, 32), np.float32))
    with pytest.raises(AsrError, match="model.eval"):
        encode_utterance(model, make_features()[1])


def test_eval_mode_restores_the_training_flag() -> None:
    model = make_model().train()
    with eval_mode(model):
        assert not model.training
    assert model.training


def test_backend_rejects_a_device_the_model_is_not_on() -> None:
    with pytest.raises(AsrError, match="model.to"):
        TorchBackend(make_model(), device="meta")


def test_backend_rejects_wrong_shapes() -> None:
    backend = TorchBackend(make_model(predictor="lstm"))
    with pytest.raises(ShapeError):
        backend.predict(np.zeros((2, 3), np.int64), backend.initial_predictor_state(2))
    with pytest.raises(ShapeError, match="predictor state"):
        backend.predict(np.zeros((2, 1), np.int64), ())


@pytest.mark.parametrize("kind", ANY_CHUNK_KINDS)
@pytest.mark.parametrize("chunk_frames", [1, 3, None])
def test_recurrent_streaming_equals_whole_utterance_encoding(kind: str, chunk_frames: int | None) -> None:
    model = make_model(kind)
    for features in make_features():
        whole = encode_utterance(model, features)
        streamed = stream_utterance(model, features, chunk_frames)
        assert whole.shape == streamed.shape == (output_lengths(model, [len(features)])[0], model.config.joiner_dim)
        # float32 rounding grows with the values: the ESN's two readout Linears (each weight x3 in make_model)
        # reach |68|, where chunked and whole matmuls sum in different orders (up to 2.1e-5 apart).
        atol = max(1e-5, 1e-6 * float(np.abs(whole).max()))
        np.testing.assert_allclose(streamed, whole, rtol=1e-5, atol=atol)


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_attention_streaming_equals_whole_encoding_in_complete_chunks(kind: str) -> None:
    """The real frames of a partial last chunk attend to the silence padding, as on a device; the rest are exact."""
    model = make_model(kind)
    chunk = model.encoder.chunk_frames
    for features in make_features():
        whole = encode_utterance(model, features)
        streamed = stream_utterance(model, features)
        assert whole.shape == streamed.shape
        complete = len(whole) // chunk * chunk
        np.testing.assert_allclose(streamed[:complete], whole[:complete], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["lstm", "conformer"])
def test_streaming_a_batch_equals_streaming_each_utterance(kind: str) -> None:
    model = make_model(kind)
    features = make_features()
    windows = list(stream_batch(model, features, head="ctc"))
    lengths = output_lengths(model, [len(f) for f in features])
    np.testing.assert_array_equal(sum(valid for _, valid in windows), lengths)
    batched = np.concatenate([out for out, _ in windows], axis=1)  # (N, windows * n, V)
    for n, feats in enumerate(features):
        alone = stream_utterance(model, feats, head="ctc")
        np.testing.assert_allclose(batched[n, : lengths[n]], alone, rtol=1e-5, atol=1e-5)


def test_batched_encoding_equals_encoding_each_utterance() -> None:
    model = make_model("conformer")
    features = make_features()
    out, lengths = encode_batch(model, features)
    np.testing.assert_array_equal(lengths, output_lengths(model, [len(f) for f in features]))
    for n, feats in enumerate(features):
        np.testing.assert_allclose(out[n, : lengths[n]], encode_utterance(model, feats), rtol=1e-5, atol=1e-5)


def test_too_short_utterances_give_no_frames() -> None:
    model = make_model()
    short = np.zeros((6, 80), np.float32)  # one frame short of the x4 front's receptive field
    assert encode_utterance(model, short).shape == (0, model.config.joiner_dim)
    assert stream_utterance(model, short).shape == (0, model.config.joiner_dim)
    assert list(stream_batch(model, [short])) == []


def test_ctc_head_gives_log_probabilities() -> None:
    model = make_model()
    log_probs = encode_utterance(model, make_features()[2], head="ctc")
    assert log_probs.shape[1] == VOCAB_SIZE
    np.testing.assert_allclose(np.exp(log_probs).sum(axis=1), 1.0, rtol=1e-5)


def test_silence_feature_is_the_log_floor_of_an_all_zero_signal() -> None:
    assert SILENCE_FEATURE == pytest.approx(np.log(np.finfo(np.float32).eps))
