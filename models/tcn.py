"""Dilated causal CNN encoder (kind "tcn"), WaveNet-style (van den Oord et al. 2016).

    x4 conv front -> layers -> ReLU(sum of skips) -> Linear(output_dim), each layer l:
      u = LayerNorm(x)
      z = tanh(W_f [u_{t-(K-1)d}, ..., u_{t-d}, u_t]) * sigmoid(W_g [same taps])   gated dilated causal conv
      x = x + W_res z ;  skip = skip + W_skip z        (the last layer has no W_res: only skips reach the output)

Dilations d double from layer to layer and restart every `dilation_cycle` layers
(1, 2, 4, 8, 1, 2, ...), so the receptive field grows exponentially with depth
while every layer stays a K-tap convolution. Each convolution reads only the
present and past frames, so the encoder needs no lookahead beyond the x4 front.

The convolution is written as its K taps concatenated (B, T, K * H) followed by
one Linear, which is what Conv1d computes; as a MatMul on a weight initializer it
is compressed by the int8 export (export.quantize leaves Conv in float32), and
it is the only weight-heavy op of a layer.

Streaming state: layer l needs the (K - 1) * d_l inputs before the window. The
state keeps all layers' buffers concatenated along time, one tensor
(B, R, H) with R = sum over layers of (K - 1) * d_l. forward runs the same body
from the zero state, so whole-utterance zero padding and the stream's first
window are the same computation, and streaming equals forward for any n.

Shapes: B batch, T frames, K kernel taps, d dilation, H channels, R buffered frames, D output dim.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from models.config import EncoderConfig
from models.encoder import Encoder


class TcnState(NamedTuple):
    """Streaming state of the dilated causal CNN encoder."""

    buffer: Tensor  # (B, R, H) each layer's last (K - 1) * d_l normalised inputs, layers one after another
    BATCH_AXES = (0,)


def layer_dilations(config: EncoderConfig) -> list[int]:
    """Dilation of each layer: 1, 2, 4, ... restarting every dilation_cycle layers."""
    return [2 ** (index % config.dilation_cycle) for index in range(config.num_layers)]


class GatedCausalLayer(nn.Module):
    """One residual WaveNet layer: (B, C + T, H) context -> residual (B, T, H) and skip (B, T, H)."""

    def __init__(self, channels: int, kernel: int, dilation: int, dropout: float, last: bool) -> None:
        super().__init__()
        self.kernel, self.dilation = kernel, dilation
        self.norm = nn.LayerNorm(channels)
        self.taps = nn.Linear(kernel * channels, 2 * channels)  # filter and gate halves
        # Only skips reach the output, so the last layer's residual path would be a dead weight (as in WaveNet).
        self.residual = None if last else nn.Linear(channels, channels)
        self.skip = nn.Linear(channels, channels)
        self.dropout = nn.Dropout(dropout)

    @property
    def context_frames(self) -> int:
        """Inputs before the first new frame each output needs: (K - 1) * d."""
        return (self.kernel - 1) * self.dilation

    def forward(self, x: Tensor, cache: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, T, H), cache (B, (K - 1) d, H) normalised earlier inputs -> (x + res, skip, new cache)."""
        frames = x.shape[1]
        context = torch.cat([cache, self.norm(x)], dim=1)  # (B, (K - 1) d + T, H)
        step = self.dilation
        taps = torch.cat([context[:, k * step : k * step + frames] for k in range(self.kernel)], dim=-1)  # (B, T, K H)
        filter_half, gate_half = self.taps(taps).chunk(2, dim=-1)  # 2 x (B, T, H)
        z = self.dropout(torch.tanh(filter_half) * torch.sigmoid(gate_half))
        residual = x if self.residual is None else x + self.residual(z)
        return residual, self.skip(z), context[:, frames:]


class TcnEncoder(Encoder):
    """Streaming dilated causal CNN encoder; any n frames per window."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__(config, config.hidden_dim)
        dilations = layer_dilations(config)
        self.layers = nn.ModuleList(
            GatedCausalLayer(config.hidden_dim, config.conv_kernel, dilation, config.dropout, last=i == len(dilations) - 1)
            for i, dilation in enumerate(dilations)
        )
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(config.hidden_dim, config.output_dim)

    @property
    def buffer_frames(self) -> int:
        """R: encoder frames of past input the state holds, over all layers."""
        return sum(layer.context_frames for layer in self.layers)

    @property
    def receptive_field_frames(self) -> int:
        """Encoder frames one output frame depends on (itself included)."""
        return 1 + self.buffer_frames

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> TcnState:
        device, dtype = self._state_device_dtype(device)
        return TcnState(torch.zeros(batch_size, self.buffer_frames, self.config.hidden_dim, dtype=dtype, device=device))

    def _body(self, h: Tensor, state: TcnState) -> tuple[Tensor, TcnState]:
        """The layers after the front, shared by forward and stream: (B, T', H) -> (B, T', D)."""
        h = self.dropout(h)
        skips = torch.zeros_like(h)
        caches: list[Tensor] = []
        start = 0
        for layer in self.layers:
            end = start + layer.context_frames
            h, skip, cache = layer(h, state.buffer[:, start:end])
            skips = skips + skip
            caches.append(cache)
            start = end
        out = self.output(self.dropout(torch.relu(skips)))  # (B, T', D)
        return out, TcnState(torch.cat(caches, dim=1))

    def forward(self, x: Tensor, x_lens: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, T, F), x_lens (B,) -> out (B, T', D), out_lens (B,)."""
        out_lens = self._check_utterances(x, x_lens)
        out, _ = self._body(self.subsampling(x), self.init_state(x.shape[0], x.device))
        return self._zero_padding(out, out_lens), out_lens

    def stream(self, x: Tensor, state: TcnState) -> tuple[Tensor, TcnState]:
        """x (B, 4n + 3, F), state -> out (B, n, D), new state."""
        self._check_window(x, state)
        return self._body(self.subsampling(x), state)
