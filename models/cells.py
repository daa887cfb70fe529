"""Recurrent layers torch does not have, with nn.LSTM's / nn.RNN's batch-first call signature.

    PeepholeLstm   x (B, T, I), (h0, c0) each (1, B, H) -> y (B, T, H), (h_n, c_n)
    Reservoir      x (B, T, I), h0 (1, B, N)            -> y (B, T, N), h_n       (fixed, never trained)
    CausalTaps     x (B, T, C), cache (B, K - 1, C)     -> y (B, T, C), new cache (an ESN readout's filters)

The first two slot into RnnEncoder's residual stack and its streaming state exactly where
a torch layer would. Each computes the input half of every gate for all frames
in one matmul, then runs a tight per-frame loop; the loop is a TorchScript
function in training and inference (one graph call per window instead of a
Python step per frame), and plain Python when exported: export/unroll.py
switches `scripted` off, so tracing unrolls it into MatMuls on weight
initializers, which int8 quantization compresses.

Shapes: B batch, T frames, I input size, H cell size, N reservoir size.
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


def reservoir_recurrence(inputs: Tensor, recurrent: Tensor, h: Tensor, leak_rate: float) -> Tuple[Tensor, Tensor]:
    """inputs (T, B, N) = W_in u_t, recurrent (N, N) = W^T, h (B, N) -> states (T, B, N), last h.

    Jaeger's leaky-integrator ESN: h_t = (1 - a) h_{t-1} + a tanh(W_in u_t + W h_{t-1}).
    """
    outputs: List[Tensor] = []
    for t in range(inputs.shape[0]):
        h = (1.0 - leak_rate) * h + leak_rate * torch.tanh(torch.addmm(inputs[t], h, recurrent))
        outputs.append(h)
    return torch.stack(outputs), h


_scripted_reservoir = _script(reservoir_recurrence)

# Above this size the spectral radius comes from the circular law instead of an eigendecomposition
# (O(N^3): seconds at 2048, minutes at 8192); the law's error shrinks like 1/sqrt(N).
EXACT_RADIUS_MAX_SIZE = 2048


def _spectral_radius(weight: Tensor, density: float) -> float:
    """Largest |eigenvalue| of a square matrix of i.i.d. N(0, 1) entries kept with probability `density`."""
    size = weight.shape[0]
    if size <= EXACT_RADIUS_MAX_SIZE:
        return float(torch.linalg.eigvals(weight.double()).abs().max())
    return math.sqrt(density * size)  # circular law: i.i.d. entries of variance v fill a disc of radius sqrt(v N)


class Reservoir(nn.Module):
    """An echo state network layer (Jaeger 2001): fixed random input and recurrent weights, seeded.

    The weights are buffers (saved in checkpoints, exported, never in parameters(), so no optimizer
    sees them); only the layers around it (the front and the readout) learn. Gradients still flow
    through it to the front.
    """

    def __init__(
        self, input_size: int, size: int, spectral_radius: float, leak_rate: float, input_scaling: float,
        sparsity: float, seed: int,
    ) -> None:
        super().__init__()
        self.leak_rate = leak_rate
        self.scripted = True  # export/unroll.py turns it off
        if torch.empty(0).device.type == "meta":  # a size-only build (asr models): no random draws
            w_in, w = torch.empty(size, input_size), torch.empty(size, size)
        else:
            gen = torch.Generator().manual_seed(seed)
            w_in = (2 * torch.rand(size, input_size, generator=gen, device="cpu") - 1) * input_scaling
            keep = torch.rand(size, size, generator=gen, device="cpu") >= sparsity  # (N, N) sparse connectivity
            w = torch.randn(size, size, generator=gen, device="cpu") * keep
            w *= spectral_radius / max(_spectral_radius(w, 1.0 - sparsity), 1e-12)
        # Stored transposed, as the loop multiplies (B, N) @ (N, N): one weight initializer per MatMul on export.
        self.register_buffer("input_weight", w_in.t().contiguous())  # (I, N)
        self.register_buffer("recurrent_weight", w.t().contiguous())  # (N, N)

    def forward(self, x: Tensor, h0: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, T, I), h0 (1, B, N) -> states (B, T, N), h_n (1, B, N)."""
        inputs = (x @ self.input_weight).transpose(0, 1)  # (T, B, N): all frames at once
        recurrence = _scripted_reservoir if self.scripted else reservoir_recurrence
        y, h = recurrence(inputs, self.recurrent_weight, h0[0], self.leak_rate)
        return y.transpose(0, 1), h.unsqueeze(0)


class CausalTaps(nn.Module):
    """A trained causal filter of K frames on every channel (depthwise): y_t[c] = sum_k w[c, k] x_{t-K+1+k}[c].

    An ESN's readout reads its body through it: the reservoir's memory is random and fixed, and the
    filters let the readout learn which past frames of each feature matter. It starts as the identity
    (the present frame's tap 1, the rest 0), so a model with taps starts as the one without. Streaming,
    the cache holds the K - 1 frames before the window; forward from a zero cache is the same as zero
    left padding, so streaming equals the whole utterance.
    """

    def __init__(self, channels: int, taps: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels, 1, taps))  # (C, 1, K): Conv1d's depthwise layout
        with torch.no_grad():
            self.weight[:, 0, -1] = 1.0

    @property
    def context_frames(self) -> int:
        """Frames before the window each output needs: K - 1."""
        return self.weight.shape[-1] - 1

    def forward(self, x: Tensor, cache: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, T, C), cache (B, K - 1, C) earlier frames -> y (B, T, C), new cache (B, K - 1, C)."""
        context = torch.cat([cache, x], dim=1)  # (B, K - 1 + T, C)
        y = F.conv1d(context.transpose(1, 2), self.weight, groups=self.weight.shape[0])  # (B, C, T)
        return y.transpose(1, 2), context[:, x.shape[1]:]


SCRIPTED_LAYERS = (PeepholeLstm, Reservoir)  # layers with a `scripted` switch (export/unroll.py turns it off)
