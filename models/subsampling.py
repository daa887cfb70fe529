"""The x4 convolutional front shared by every encoder.

Two Conv2d (kernel 3, stride 2, no padding) over (T, F) turn T fbank frames
into (T - 3) // 4 frames of 40 ms. With no time padding each output frame j
depends on input frames 4j .. 4j + 6 only, so the front holds no streaming
state: a window of 4n + pad_frames input frames gives exactly n outputs, and
consecutive windows overlap by pad_frames (kept by the caller's feature buffer,
as sherpa-onnx does for its LSTM models).

Two normalisations keep the recurrent layers out of saturation: a global
per-bin mean and variance normalisation of the fbank input (statistics set from
the training data, stored as buffers so they travel in checkpoints and inside
the exported encoder), and a LayerNorm on the output. Without them the small
LSTM and GRU stayed on the CTC plateau (emitting the token unigram) for a whole
CPU hour; with both, a probe left it within 400 steps.

Shapes: B batch, T frames, F fbank bins, D output dim.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from asr.checks import check_shape

KERNEL = 3  # time and frequency kernel of both convolutions
STRIDE = 2  # time and frequency stride of both convolutions
NUM_CONVS = 2  # two stride-2 layers: x4 in time


def _valid_conv_length(length: int | Tensor) -> int | Tensor:
    """Output length of one unpadded convolution; negative means no output yet."""
    return (length - KERNEL) // STRIDE + 1


class Conv2dSubsampling(nn.Module):
    """(B, T, F) fbank -> (B, (T - 3) // 4, D), no state, no time padding."""

    subsampling_factor = STRIDE**NUM_CONVS  # input frames per output frame
    # Input frames one output frame sees: each layer widens the field by
    # (KERNEL - 1) times the stride below it.
    receptive_field = 1 + sum((KERNEL - 1) * STRIDE**i for i in range(NUM_CONVS))
    # Frames a stream window holds beyond its 4n new frames (3): the overlap with the next window.
    pad_frames = receptive_field - subsampling_factor

    def __init__(self, feature_dim: int, channels: int, out_dim: int, norm: bool = True) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(1, channels, KERNEL, STRIDE),
            nn.ReLU(),
            nn.Conv2d(channels, channels, KERNEL, STRIDE),
            nn.ReLU(),
        )
        freq = feature_dim
        for _ in range(NUM_CONVS):
            freq = _valid_conv_length(freq)
        self.out = nn.Linear(channels * freq, out_dim)
        self.norm = nn.LayerNorm(out_dim) if norm else nn.Identity()
        # Identity until set_feature_stats: a model built for tests or loading needs no data.
        self.register_buffer("feature_mean", torch.zeros(feature_dim))  # (F,)
        self.register_buffer("feature_inv_std", torch.ones(feature_dim))  # (F,)

    @torch.no_grad()
    def set_feature_stats(self, mean: Tensor, std: Tensor) -> None:
        """Normalise inputs by per-bin training statistics mean (F,) and std (F,)."""
        check_shape("feature mean", mean, (self.feature_mean.shape[0],))
        check_shape("feature std", std, (self.feature_mean.shape[0],))
        self.feature_mean.copy_(mean)
        self.feature_inv_std.copy_(1.0 / std.clamp(min=1e-3))

    @classmethod
    def output_lengths(cls, lengths: Tensor) -> Tensor:
        """Output frames for `lengths` input frames (B,): (T - 3) // 4, 0 below 7 frames."""
        for _ in range(NUM_CONVS):
            lengths = _valid_conv_length(lengths).clamp(min=0)
        return lengths

    def forward(self, x: Tensor) -> Tensor:
        """x (B, T, F) -> (B, T', D) with T' = output_lengths(T)."""
        x = (x - self.feature_mean) * self.feature_inv_std
        h = self.convs(x.unsqueeze(1))  # (B, C, T', F')
        b, c, t, f = h.shape
        h = h.transpose(1, 2).reshape(b, t, c * f)  # (B, T', C * F')
        return self.norm(self.out(h))


def padding_mask(lengths: Tensor, max_length: int) -> Tensor:
    """(B,) lengths -> (B, max_length) bool, True on valid frames."""
    return torch.arange(max_length, device=lengths.device)[None, :] < lengths[:, None]
