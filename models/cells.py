"""Recurrent layers torch does not have, with nn.LSTM's / nn.RNN's batch-first call signature.

    PeepholeLstm   x (B, T, I), (h0, c0) each (1, B, H) -> y (B, T, H), (h_n, c_n)

Both slot into RnnEncoder's residual stack and its streaming state exactly where
a torch layer would. Each computes the input half of every gate for all frames
in one matmul, then runs a tight per-frame loop; the loop is a TorchScript
function in training and inference (one graph call per window instead of a
Python step per frame), and plain Python when exported: export/unroll.py
switches `scripted` off, so tracing unrolls it into MatMuls on weight
initializers, which int8 quantization compresses.

Shapes: B batch, T frames, I input size, H cell size.
"""

from __future__ import annotations

import math
import warnings
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def peephole_recurrence(
    gates_x: Tensor, recurrent: Tensor, peephole: Tensor, h: Tensor, c: Tensor
) -> Tuple[Tensor, Tensor, Tensor]:
    """gates_x (T, B, 4H) input halves, recurrent (H, 4H) = W_hh^T, peephole (3, H), h, c (B, H) -> (T, B, H), h, c.

    Gers, Schraudolph & Schmidhuber (2002): the input and forget gates see c_{t-1},
    the output gate sees the new c_t, each through a diagonal (element-wise) weight.
    Gate order (input, forget, cell, output) is torch's, so zero peepholes give nn.LSTM.
    """
    w_ci, w_cf, w_co = peephole[0], peephole[1], peephole[2]
    outputs: List[Tensor] = []
    for t in range(gates_x.shape[0]):
        gates = torch.addmm(gates_x[t], h, recurrent)  # (B, 4H)
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f + w_cf * c) * c + torch.sigmoid(i + w_ci * c) * torch.tanh(g)
        h = torch.sigmoid(o + w_co * c) * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs), h, c


def _script(function):  # noqa: ANN001, ANN202 (TorchScript's own types)
    """torch.jit.script without its deprecation notice: on a CPU the scripted loop ran the peephole
    layer's forward + backward (8 x 187 frames, 384 cells) about 1.5x faster than the Python loop."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*deprecated.*", category=DeprecationWarning)
        return torch.jit.script(function)


_scripted_peephole = _script(peephole_recurrence)


class PeepholeLstm(nn.Module):
    """One batch-first LSTM layer with diagonal peephole connections (no projection)."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))  # (4H, I)
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))  # (4H, H)
        # One bias: nn.LSTM's bias_ih + bias_hh are a single sum in every gate.
        self.bias = nn.Parameter(torch.empty(4 * hidden_size))  # (4H,)
        self.peephole = nn.Parameter(torch.empty(3, hidden_size))  # (3, H): input, forget, output gate
        self.scripted = True  # export/unroll.py turns it off
        bound = 1.0 / math.sqrt(hidden_size)  # nn.LSTM's initialisation, peepholes included
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)

    def forward(self, x: Tensor, hx: tuple[Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """x (B, T, I), (h0, c0) each (1, B, H) -> y (B, T, H), (h_n, c_n) each (1, B, H)."""
        h0, c0 = hx
        gates_x = F.linear(x, self.weight_ih, self.bias).transpose(0, 1)  # (T, B, 4H): all frames at once
        recurrence = _scripted_peephole if self.scripted else peephole_recurrence
        y, h, c = recurrence(gates_x, self.weight_hh.t(), self.peephole, h0[0], c0[0])
        return y.transpose(0, 1), (h.unsqueeze(0), c.unsqueeze(0))


SCRIPTED_LAYERS = (PeepholeLstm,)  # layers with a `scripted` switch (export/unroll.py turns it off)
