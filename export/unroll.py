"""Recurrent layers as plain MatMul and element-wise ops, one step per frame, for export.

torch's nn.LSTM / nn.GRU / nn.RNN become ONNX LSTM / GRU / RNN operators, and
those are a poor fit here three ways:
- ONNX's LSTM has no output projection, so a projected LSTM (LSTMP,
  `proj_size > 0`) cannot be exported at all (the TorchScript exporter refuses
  it, the dynamo exporter writes an LSTM with wrong state shapes);
- onnxruntime has no int8 kernels for GRU and RNN, so their weights would stay
  float32 in the int8 files;
- the TorchScript exporter applies the inter-layer dropout of multi-layer
  layers even in eval mode.
`UnrolledRnn` computes the same function from the same parameters with
MatMuls, which every exporter handles and int8 quantization compresses. A stream
window has a fixed number of frames, so the unrolled graph stays small. Our own
layers (models.cells) already compute with such ops; their loop only has to run
as Python rather than TorchScript, so that tracing unrolls it the same way.

Shapes: B batch, T frames, I input size, L layers, H cell size, P output size
(the LSTMP projection size, else H).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from asr.errors import ModelFilesError
from models.cells import SCRIPTED_LAYERS

_MODES = ("LSTM", "GRU", "RNN_TANH", "RNN_RELU")  # nn.RNNBase.mode values this module computes

RnnState = Tensor | tuple[Tensor, Tensor]  # h (L, B, P), or (h, c (L, B, H)) for an LSTM


class UnrolledRnn(nn.Module):
    """A batch-first unidirectional nn.LSTM, nn.GRU or nn.RNN as elementary ops; shares its parameters."""

    def __init__(self, rnn: nn.RNNBase) -> None:
        super().__init__()
        if not rnn.batch_first or rnn.bidirectional or rnn.mode not in _MODES:
            raise ModelFilesError(
                f"cannot export {rnn}: only batch-first unidirectional LSTM, GRU and RNN layers "
                "unroll, which is what streaming encoders and predictors use"
            )
        self.rnn = rnn

    def _weights(self, layer: int) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """W_ih (G, I), W_hh (G, P), b_ih (G,), b_hh (G,) of one layer, G = gates * H; biases None without bias."""
        rnn = self.rnn
        w_ih, w_hh = getattr(rnn, f"weight_ih_l{layer}"), getattr(rnn, f"weight_hh_l{layer}")
        if not rnn.bias:
            return w_ih, w_hh, None, None
        return w_ih, w_hh, getattr(rnn, f"bias_ih_l{layer}"), getattr(rnn, f"bias_hh_l{layer}")

    def forward(self, x: Tensor, hx: RnnState) -> tuple[Tensor, RnnState]:
        """x (B, T, I), state -> y (B, T, P), next state: the wrapped layer's signature (hx required)."""
        is_lstm = self.rnn.mode == "LSTM"
        h0, c0 = hx if is_lstm else (hx, hx)  # c0 is unused outside LSTMs
        last_h, last_c = [], []
        for layer in range(self.rnn.num_layers):
            x, h, c = self._layer(layer, x, h0[layer], c0[layer])
            last_h.append(h)
            last_c.append(c)
        h_n = torch.stack(last_h)  # (L, B, P)
        return x, ((h_n, torch.stack(last_c)) if is_lstm else h_n)

    def _layer(self, layer: int, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One layer over all T frames: x (B, T, I), h (B, P), c (B, H) -> y (B, T, P), last h, last c."""
        rnn = self.rnn
        w_ih, w_hh, b_ih, b_hh = self._weights(layer)
        # GRU applies its reset gate to (W_hh h + b_hh), so only there b_hh stays on the recurrent side.
        gru = rnn.mode == "GRU"
        input_bias = b_ih if gru or b_ih is None else b_ih + b_hh
        recurrent_bias = b_hh if gru else None
        inputs = F.linear(x, w_ih, input_bias)  # (B, T, G): the input half of every gate, all frames at once
        # Transposed once, outside the time loop: each step's MatMul then reads one weight
        # initializer directly, which int8 quantization needs (per-step transposes would be
        # folded into copies joined by Identity nodes, which it skips).
        recurrent = w_hh.t()  # (P, G)
        projection = getattr(rnn, f"weight_hr_l{layer}").t() if getattr(rnn, "proj_size", 0) > 0 else None  # (H, P)
        outputs = []
        for t in range(x.shape[1]):
            from_input, from_state = inputs[:, t], h @ recurrent  # (B, G) each
            if rnn.mode == "LSTM":
                i, f, g, o = (from_input + from_state).split(rnn.hidden_size, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)  # (B, H)
                if projection is not None:
                    h = h @ projection  # (B, P)
            elif gru:
                if recurrent_bias is not None:
                    from_state = from_state + recurrent_bias
                r_x, z_x, n_x = from_input.split(rnn.hidden_size, dim=1)
                r_h, z_h, n_h = from_state.split(rnn.hidden_size, dim=1)
                reset, update = torch.sigmoid(r_x + r_h), torch.sigmoid(z_x + z_h)
                candidate = torch.tanh(n_x + reset * n_h)
                h = candidate + update * (h - candidate)  # (1 - z) n + z h
            else:
                h = (torch.tanh if rnn.mode == "RNN_TANH" else torch.relu)(from_input + from_state)
            outputs.append(h)
        return torch.stack(outputs, dim=1), h, c  # (B, T, P)


def unroll_recurrent_layers(module: nn.Module) -> int:
    """Replace, in place, every unidirectional nn.LSTM / GRU / RNN inside `module` by an `UnrolledRnn`; how many.

    Layers of models.cells are not replaced but switched to their Python loop (counted too).
    Idempotent: the layer an `UnrolledRnn` holds is not unrolled again.
    """
    ours = [layer for layer in module.modules() if isinstance(layer, SCRIPTED_LAYERS) and layer.scripted]
    for layer in ours:
        layer.scripted = False
    targets = [
        (parent, name, child)
        for parent in module.modules()
        if not isinstance(parent, UnrolledRnn)
        for name, child in parent.named_children()
        # A bidirectional layer (offline encoders) runs over utterances of any length: it stays an
        # ONNX LSTM operator, which an unrolled loop of fixed length could not be.
        if isinstance(child, nn.RNNBase) and not child.bidirectional
    ]
    for parent, name, child in targets:
        setattr(parent, name, UnrolledRnn(child))
    return len(targets) + len(ours)
