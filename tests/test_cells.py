"""Our own recurrent layers (models.cells): the peephole LSTM against plain references written here,
the ESN reservoir's construction and that it never trains.

Shapes: B batch, T frames, I input size, H cell size.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from models.cells import CausalTaps, PeepholeLstm, Reservoir
from models.presets import tiny
from models.transducer import Transducer
from perturbed import perturb_weights

TOLERANCE = 1e-5  # float32, absolute and relative
B, T, I, H = 3, 7, 5, 4


def reference_peephole(layer: PeepholeLstm, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Gers et al. (2002), one frame and one gate at a time: x (B, T, I), h, c (B, H) -> y (B, T, H), h, c."""
    w_i, w_f, w_g, w_o = layer.weight_ih.chunk(4)
    u_i, u_f, u_g, u_o = layer.weight_hh.chunk(4)
    b_i, b_f, b_g, b_o = layer.bias.chunk(4)
    p_i, p_f, p_o = layer.peephole
    outputs = []
    for t in range(x.shape[1]):
        x_t = x[:, t]
        input_gate = torch.sigmoid(x_t @ w_i.T + h @ u_i.T + b_i + p_i * c)  # sees c_{t-1}
        forget_gate = torch.sigmoid(x_t @ w_f.T + h @ u_f.T + b_f + p_f * c)  # sees c_{t-1}
        c = forget_gate * c + input_gate * torch.tanh(x_t @ w_g.T + h @ u_g.T + b_g)
        output_gate = torch.sigmoid(x_t @ w_o.T + h @ u_o.T + b_o + p_o * c)  # sees c_t
        h = output_gate * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs, dim=1), h, c


def inputs(seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, I, generator=gen), torch.randn(1, B, H, generator=gen), torch.randn(1, B, H, generator=gen)


def test_peephole_lstm_equals_the_reference_loop_scripted_or_not() -> None:
    torch.manual_seed(0)
    layer = PeepholeLstm(I, H)
    x, h0, c0 = inputs()
    with torch.no_grad():
        layer.peephole.mul_(5.0)  # large enough that a missing or misplaced peephole shows
        expected, h, c = reference_peephole(layer, x, h0[0], c0[0])
        for scripted in (True, False):
            layer.scripted = scripted
            y, (h_n, c_n) = layer(x, (h0, c0))
            torch.testing.assert_close(y, expected, atol=TOLERANCE, rtol=TOLERANCE)
            torch.testing.assert_close(h_n[0], h, atol=TOLERANCE, rtol=TOLERANCE)
            torch.testing.assert_close(c_n[0], c, atol=TOLERANCE, rtol=TOLERANCE)


def test_peephole_lstm_with_zero_peepholes_is_torchs_lstm() -> None:
    torch.manual_seed(0)
    layer = PeepholeLstm(I, H)
    lstm = nn.LSTM(I, H, batch_first=True)
    with torch.no_grad():
        layer.peephole.zero_()
        lstm.weight_ih_l0.copy_(layer.weight_ih)
        lstm.weight_hh_l0.copy_(layer.weight_hh)
        lstm.bias_ih_l0.copy_(layer.bias)
        lstm.bias_hh_l0.zero_()
        x, h0, c0 = inputs(1)
        y, (h_n, c_n) = layer(x, (h0, c0))
        expected, (h_e, c_e) = lstm(x, (h0, c0))
    for got, want in ((y, expected), (h_n, h_e), (c_n, c_e)):
        torch.testing.assert_close(got, want, atol=TOLERANCE, rtol=TOLERANCE)


def test_peephole_lstm_gradients_equal_the_reference_loop() -> None:
    """The scripted loop trains like the plain one: same gradients for every parameter."""
    torch.manual_seed(0)
    layer = PeepholeLstm(I, H)
    x, h0, c0 = inputs(2)
    y, _ = layer(x, (h0, c0))
    y.square().sum().backward()
    got = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    reference_peephole(layer, x, h0[0], c0[0])[0].square().sum().backward()
    for g, (name, p) in zip(got, layer.named_parameters()):
        torch.testing.assert_close(g, p.grad, atol=TOLERANCE, rtol=TOLERANCE, msg=name)


def test_reservoir_has_the_asked_spectral_radius_sparsity_and_seed() -> None:
    layer = Reservoir(I, 64, spectral_radius=0.8, leak_rate=0.5, input_scaling=0.3, sparsity=0.75, seed=7)
    w = layer.recurrent_weight.double()
    assert float(torch.linalg.eigvals(w).abs().max()) == pytest.approx(0.8, rel=1e-6)
    assert float((w == 0).double().mean()) == pytest.approx(0.75, abs=0.05)
    assert float(layer.input_weight.abs().max()) <= 0.3
    again = Reservoir(I, 64, spectral_radius=0.8, leak_rate=0.5, input_scaling=0.3, sparsity=0.75, seed=7)
    torch.testing.assert_close(again.recurrent_weight, layer.recurrent_weight, atol=0, rtol=0)
    assert list(layer.parameters()) == []  # buffers only: nothing for an optimizer


def test_esn_reservoir_is_unchanged_by_a_training_step_and_the_readout_trains() -> None:
    torch.manual_seed(0)
    model = Transducer(tiny("esn", vocab_size=10)).train()
    reservoirs = {name: b.clone() for name, b in model.named_buffers() if "_weight" in name and "layers" in name}
    assert len(reservoirs) == 2 * model.config.encoder.num_layers
    assert not any("layers" in name for name, _ in model.encoder.named_parameters())
    readout = {name: p.detach().clone() for name, p in model.encoder.output.named_parameters()}
    assert len(readout) == 2 * (model.config.encoder.readout_layers + 1)  # weight and bias of each Linear
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 60, 80, generator=gen), torch.randint(1, 10, (2, 4), generator=gen)
    model(x, torch.tensor([60, 43]), y, torch.tensor([4, 2])).total.backward()
    optimizer.step()
    for name, before in reservoirs.items():
        torch.testing.assert_close(model.get_buffer(name), before, atol=0, rtol=0, msg=name)
    for name, before in readout.items():
        assert not torch.equal(model.encoder.output.get_parameter(name), before), name
    assert model.encoder.subsampling.out.weight.grad.abs().sum() > 0  # the front learns through the reservoir


def test_reservoir_scripted_equals_its_python_loop() -> None:
    layer = Reservoir(I, H, spectral_radius=0.9, leak_rate=0.3, input_scaling=1.0, sparsity=0.5, seed=0)
    x, h0, _ = inputs(3)
    y, h = layer(x, h0)
    layer.scripted = False
    y_python, h_python = layer(x, h0)
    torch.testing.assert_close(y, y_python, atol=TOLERANCE, rtol=TOLERANCE)
    torch.testing.assert_close(h, h_python, atol=TOLERANCE, rtol=TOLERANCE)


def test_causal_taps_start_as_the_identity_and_filter_each_channel_over_past_frames() -> None:
    taps = CausalTaps(H, 4)
    x = torch.randn(2, 9, H, generator=torch.Generator().manual_seed(4))
    cache = torch.zeros(2, taps.context_frames, H)
    y, _ = taps(x, cache)
    torch.testing.assert_close(y, x, atol=0.0, rtol=0.0)  # a model with taps starts as the one without
    with torch.no_grad():
        taps.weight.normal_(generator=torch.Generator().manual_seed(5))
    y, new_cache = taps(x, cache)
    padded = torch.cat([cache, x], dim=1)
    weight = taps.weight[:, 0]  # (C, K): tap K - 1 reads the present frame
    reference = torch.stack([(padded[:, t : t + 4] * weight.t()).sum(1) for t in range(9)], dim=1)
    torch.testing.assert_close(y, reference, atol=TOLERANCE, rtol=TOLERANCE)
    torch.testing.assert_close(new_cache, x[:, -3:], atol=0.0, rtol=0.0)  # the K - 1 frames the next window needs


def test_an_esn_readout_with_hidden_taps_filters_its_input_then_its_hidden_layer_over_past_frames() -> None:
    torch.manual_seed(0)
    encoder = Transducer(tiny("esn", vocab_size=10)).encoder.eval()
    assert encoder.config.readout_hidden_taps and len(encoder.hidden_taps) == encoder.config.readout_layers == 1
    perturb_weights(encoder, scale=0.3)  # the taps start as the identity, which would hide their order
    hidden = encoder.config.hidden_dim
    h = torch.randn(2, 9, hidden, generator=torch.Generator().manual_seed(6))
    cache = torch.randn(2, encoder.taps.context_frames, 2 * hidden, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        out, new_cache = encoder._tapped_readout(h, cache)
        first, relu, last = encoder.output
        x, body_cache = encoder.taps(h, cache[..., :hidden])
        z, hidden_cache = encoder.hidden_taps[0](relu(first(x)), cache[..., hidden:])
    torch.testing.assert_close(out, last(z), atol=TOLERANCE, rtol=TOLERANCE)
    torch.testing.assert_close(new_cache, torch.cat([body_cache, hidden_cache], dim=-1), atol=0.0, rtol=0.0)
