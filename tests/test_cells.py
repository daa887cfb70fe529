"""Our own recurrent layers (models.cells) against plain references written here.

Shapes: B batch, T frames, I input size, H cell size.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.cells import PeepholeLstm

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
