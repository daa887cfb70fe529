"""The dilated causal CNN encoder's own properties: dilations, receptive field, long streams.

Streaming == whole utterance for the tiny preset, batched and unbatched, is in
tests/test_streaming_parity.py with every other kind; here a deeper stack whose
buffers are longer than every window.

Shapes: B batch, T feature frames, T' encoder frames, F fbank bins, D output dim.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from asr.errors import ConfigError
from models.config import EncoderConfig
from models.presets import small, tiny
from models.tcn import TcnEncoder, layer_dilations

FEATURES = 80


def make_encoder(**changes: object) -> TcnEncoder:
    torch.manual_seed(0)
    return TcnEncoder(dataclasses.replace(tiny("tcn").encoder, **changes)).eval()


def test_dilations_double_and_restart_every_cycle() -> None:
    assert layer_dilations(small("tcn").encoder) == [1, 2, 4, 8, 1, 2, 4, 8]
    assert layer_dilations(dataclasses.replace(tiny("tcn").encoder, num_layers=5, dilation_cycle=2)) == [1, 2, 1, 2, 1]
    encoder = make_encoder(num_layers=4, dilation_cycle=3, conv_kernel=3)  # dilations 1, 2, 4, 1
    assert encoder.buffer_frames == 2 * (1 + 2 + 4 + 1)
    assert encoder.init_state(2).buffer.shape == (2, encoder.buffer_frames, encoder.config.hidden_dim)
    assert TcnEncoder(small("tcn").encoder).receptive_field_frames == 61  # the preset's comment: 2.4 s


def test_an_output_frame_sees_exactly_its_receptive_field() -> None:
    """Changing one front frame j moves outputs j .. j + R and nothing before or after."""
    encoder = make_encoder(num_layers=3, dilation_cycle=2, conv_kernel=3).double()  # R = 2 * (1 + 2 + 1) = 8
    field = encoder.buffer_frames
    n, j = 24, 5
    h = torch.randn(1, n, encoder.config.hidden_dim, dtype=torch.float64)
    changed = h.clone()
    changed[:, j] += 10.0
    with torch.no_grad():
        before, _ = encoder._body(h, encoder.init_state(1))
        after, _ = encoder._body(changed, encoder.init_state(1))
    moved = (after - before).abs().amax(dim=-1)[0]  # (T',)
    assert moved[:j].max() == 0  # causal: no earlier frame sees it
    assert moved[j + field + 1 :].max() == 0  # finite: the buffer is all a frame needs
    assert moved[j] > 0 and moved[j + field] > 0


def test_many_one_frame_windows_equal_forward() -> None:
    """Windows of one encoder frame, far shorter than the deepest layer's buffer, over 40 frames."""
    encoder = make_encoder(num_layers=5, dilation_cycle=4)  # dilations 1, 2, 4, 8, 1
    frames = 40
    x = torch.randn(2, encoder.window_frames(frames), FEATURES, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole, _ = encoder(x, torch.full((2,), x.shape[1]))
        state, outputs = encoder.init_state(2), []
        for k in range(frames):
            out, state = encoder.stream(x[:, 4 * k : 4 * k + encoder.window_frames(1)], state)
            outputs.append(out)
    torch.testing.assert_close(torch.cat(outputs, dim=1), whole, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(("changes", "message"), [({"conv_kernel": 1}, "tcn conv_kernel"), ({"dilation_cycle": 0}, "dilation_cycle")])
def test_bad_tcn_options_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EncoderConfig("tcn", **changes)
