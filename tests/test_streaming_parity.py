"""Streaming == whole-utterance, to float32 tolerance, with the state carried across windows.

Every encoder kind (and a conformer with use_conv=False, as older checkpoints hold) is run over
windows of 4n + 3 frames advancing by 4n, batched through stacked per-stream
states, and compared with forward() on the same frames. Predictors: step() over
a token sequence equals forward().

Shapes: B batch, T feature frames, U tokens, D dims.
"""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch
import torch.nn.functional as F

from models.config import ATTENTION_KINDS, PREDICTOR_KINDS, STREAMING_KINDS
from models.encoder import Encoder
from models.predictor import build_predictor
from models.presets import tiny
from models.state import stack_states
from models.transducer import build_encoder
from perturbed import perturb_weights

TOLERANCE = 1e-4  # float32, absolute and relative
FEATURES = 80

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

# Every streaming encoder kind, plus the conformer without its conv module (checkpoints from before "transformer").
# The offline kinds (bilstm) refuse to stream: tests/test_models.py checks the message.
ENCODERS = {kind: tiny(kind).encoder for kind in STREAMING_KINDS}
ENCODERS["conformer-no-conv"] = dataclasses.replace(ENCODERS["conformer"], use_conv=False)
# The tiny attention kinds close every layer with a LayerNorm; the larger presets normalise once, at the end.
ENCODERS.update({f"{kind}-final-norm-only": dataclasses.replace(ENCODERS[kind], final_norm_only=True)
                 for kind in ATTENTION_KINDS})
# The presets' recurrent stacks: one module per layer, each adding its output to its input.
ENCODERS.update({f"residual-{kind}": dataclasses.replace(ENCODERS[kind], residual=True) for kind in ("lstm", "gru", "rnn")})


def make_encoder(name: str) -> Encoder:
    torch.manual_seed(0)
    encoder = build_encoder(ENCODERS[name]).eval()
    perturb_weights(encoder)  # the esn's readout taps start as the identity, which would hide their cache
    return encoder


def window_sizes(encoder: Encoder, windows: int, seed: int) -> list[int]:
    """Encoder frames per window: any n for RNNs, multiples of the chunk for attention encoders."""
    rng = random.Random(seed)
    if encoder.config.kind in ATTENTION_KINDS:
        return [encoder.chunk_frames * rng.choice([1, 1, 2]) for _ in range(windows)]
    return [rng.randint(1, 6) for _ in range(windows)]


def run_stream(encoder: Encoder, x: torch.Tensor, sizes: list[int], state: tuple) -> tuple[torch.Tensor, tuple]:
    """Feed x (B, T, F) window by window; returns the outputs (B, sum(sizes), D) and the last state."""
    outputs, start = [], 0
    for n in sizes:
        out, state = encoder.stream(x[:, start : start + encoder.window_frames(n)], state)
        outputs.append(out)
        start += encoder.subsampling_factor * n
    return torch.cat(outputs, dim=1), state


def feature_frames(encoder: Encoder, sizes: list[int]) -> int:
    return encoder.window_frames(sum(sizes))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", list(ENCODERS))
def test_stream_equals_forward_with_stacked_states(name: str, seed: int) -> None:
    encoder = make_encoder(name)
    sizes = window_sizes(encoder, windows=5, seed=seed)
    x = torch.randn(2, feature_frames(encoder, sizes), FEATURES, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        whole, lens = encoder(x, torch.full((2,), x.shape[1]))
        state = encoder.stack_states([encoder.init_state(1), encoder.init_state(1)])
        streamed, _ = run_stream(encoder, x, sizes, state)
    assert lens.tolist() == [sum(sizes)] * 2
    torch.testing.assert_close(streamed, whole, atol=TOLERANCE, rtol=TOLERANCE)


@pytest.mark.parametrize("name", list(ENCODERS))
def test_streams_at_different_positions_share_a_batch(name: str) -> None:
    """Stream A is two windows ahead of stream B; batched together each still matches its own forward."""
    encoder = make_encoder(name)
    n = encoder.chunk_frames
    gen = torch.Generator().manual_seed(3)
    a = torch.randn(1, feature_frames(encoder, [n] * 5), FEATURES, generator=gen)
    b = torch.randn(1, feature_frames(encoder, [n] * 3), FEATURES, generator=gen)
    with torch.no_grad():
        a_head, a_state = run_stream(encoder, a, [n, n], encoder.init_state(1))
        joint = encoder.stack_states([a_state, encoder.init_state(1)])
        tails = torch.cat([a[:, 2 * 4 * n :], b])  # (2, window frames of 3 chunks, F)
        joint_out, _ = run_stream(encoder, tails, [n] * 3, joint)
        a_whole, _ = encoder(a, torch.tensor([a.shape[1]]))
        b_whole, _ = encoder(b, torch.tensor([b.shape[1]]))
    torch.testing.assert_close(torch.cat([a_head[0], joint_out[0]]), a_whole[0], atol=TOLERANCE, rtol=TOLERANCE)
    torch.testing.assert_close(joint_out[1], b_whole[0], atol=TOLERANCE, rtol=TOLERANCE)


@pytest.mark.parametrize("name", list(ENCODERS))
def test_stack_unstack_round_trip(name: str) -> None:
    encoder = make_encoder(name)
    x = torch.randn(3, encoder.window_frames(encoder.chunk_frames), FEATURES)
    with torch.no_grad():
        _, state = encoder.stream(x, encoder.init_state(3))  # non-zero, distinct per stream
    singles = encoder.unstack_states(state)
    assert len(singles) == 3
    for i, single in enumerate(singles):
        assert dict(encoder.state_shapes(1)) == {k: tuple(t.shape) for k, t in zip(single._fields, single)}
        for field, axis, whole, part in zip(state._fields, type(state).BATCH_AXES, state, single):
            torch.testing.assert_close(part, whole.narrow(axis, i, 1), atol=0, rtol=0, msg=field)
    restacked = stack_states(singles)
    for whole, again in zip(state, restacked):
        torch.testing.assert_close(again, whole, atol=0, rtol=0)


@pytest.mark.parametrize("kind", PREDICTOR_KINDS)
def test_predictor_step_equals_forward(kind: str) -> None:
    config = tiny("lstm", predictor=kind)
    torch.manual_seed(0)
    predictor = build_predictor(config.predictor, config.vocab_size, config.blank_id).eval()
    y = torch.randint(1, config.vocab_size, (2, 6), generator=torch.Generator().manual_seed(0))
    decoder_input = F.pad(y, (1, 0), value=config.blank_id)  # (B, U + 1): blank, then the labels
    context_size = predictor.context_size
    # sherpa-onnx's start: [-1, ..., -1, blank]; -1 must read as blank.
    history = F.pad(decoder_input, (context_size - 1, 0), value=-1)  # (B, c - 1 + U + 1)
    state = stack_states([predictor.init_state(1)] * 2) if kind == "lstm" else predictor.init_state(2)
    with torch.no_grad():
        whole = predictor(decoder_input)  # (B, U + 1, D)
        steps = []
        for u in range(decoder_input.shape[1]):
            out, state = predictor.step(history[:, u : u + context_size], state)
            steps.append(out)
    torch.testing.assert_close(torch.stack(steps, dim=1), whole, atol=TOLERANCE, rtol=TOLERANCE)


def test_long_stream_stays_equal_to_forward() -> None:
    """Ten conformer chunks with a short cache: the cache wraps many times over, positions stay relative."""
    config = dataclasses.replace(ENCODERS["conformer"], left_context_chunks=1)
    torch.manual_seed(0)
    encoder = build_encoder(config).eval()
    sizes = [encoder.chunk_frames] * 10
    x = torch.randn(1, feature_frames(encoder, sizes), FEATURES)
    with torch.no_grad():
        whole, _ = encoder(x, torch.tensor([x.shape[1]]))
        streamed, state = run_stream(encoder, x, sizes, encoder.init_state(1))
    torch.testing.assert_close(streamed, whole, atol=TOLERANCE, rtol=TOLERANCE)
    assert state.processed_frames.tolist() == [sum(sizes)]

