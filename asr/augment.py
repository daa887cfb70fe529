"""Training-time augmentation: SpecAugment masks on fbank batches and speed perturbation of audio.

Shapes: B batch, T frames, D feature bins (80), N samples.

SpecAugment runs on the padded batch inside the training step (one vectorized
pass, no per-utterance Python loop). Speed perturbation changes the audio
before fbank, so it lives with the feature caches (see asr.data), one cache per
speed factor: on a 2-core CPU, computing fbank once per speed beats recomputing
it every epoch.
"""

from __future__ import annotations

import numpy as np
import soxr
import torch

from asr.audio import SAMPLE_RATE
from asr.checks import check_shape
from asr.errors import ShapeError
from asr.training.config import SpecAugmentConfig


def spec_augment(
    features: torch.Tensor,
    lengths: torch.Tensor,
    config: SpecAugmentConfig,
    generator: torch.Generator,
) -> torch.Tensor:
    """Return a copy of `features` with random frequency and time bands set to each utterance's mean.

    features: (B, T, D) float; lengths: (B,) valid frames per utterance. Padding
    frames (t >= length) are left untouched. Masks use the utterance's mean
    rather than 0 because log-mel values sit far below 0, so a 0 band would be
    loud, not silent. All randomness comes from `generator` (seeded per step by
    the caller, which makes a resumed run draw the same masks).
    """
    check_shape("features", features, ("B", "T", "D"))
    check_shape("lengths", lengths, (features.shape[0],))
    batch, frames, dims = features.shape
    lengths = lengths.to(torch.long).cpu()
    valid = torch.arange(frames)[None, :] < lengths[:, None]  # (B, T)
    means = (features * valid[:, :, None].to(features.device)).sum(dim=1) / lengths.clamp(min=1)[:, None].to(
        features.device
    )  # (B, D)

    freq_mask = _band_mask(
        sizes=torch.full((batch,), dims),
        num_masks=torch.full((batch,), config.num_freq_masks),
        max_width=config.freq_mask_width,
        extent=dims,
        generator=generator,
    )  # (B, D)
    # Short utterances get fewer time masks so that at most ~max_time_fraction is hidden.
    affordable = (lengths.to(torch.float64) * config.max_time_fraction / max(config.time_mask_width, 1)).floor()
    num_time = affordable.clamp(min=1, max=config.num_time_masks).to(torch.long)
    if config.num_time_masks == 0 or config.time_mask_width == 0:
        num_time = torch.zeros_like(num_time)
    time_mask = _band_mask(
        sizes=lengths,
        num_masks=num_time,
        max_width=config.time_mask_width,
        extent=frames,
        generator=generator,
    )  # (B, T)

    hidden = freq_mask[:, None, :] | time_mask[:, :, None]  # (B, T, D)
    hidden &= valid[:, :, None]
    hidden = hidden.to(features.device)
    return torch.where(hidden, means[:, None, :].expand_as(features), features)


def _band_mask(
    sizes: torch.Tensor,
    num_masks: torch.Tensor,
    max_width: int,
    extent: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Boolean (B, extent) mask: for row b, num_masks[b] bands of width U[0, max_width] inside [0, sizes[b])."""
    batch = sizes.shape[0]
    slots = int(num_masks.max()) if batch else 0
    if slots == 0 or max_width == 0:
        return torch.zeros(batch, extent, dtype=torch.bool)
    widths = torch.randint(0, max_width + 1, (batch, slots), generator=generator)  # (B, M)
    widths = torch.minimum(widths, sizes[:, None])
    starts = (torch.rand(batch, slots, generator=generator) * (sizes[:, None] - widths + 1)).floor().long()
    in_use = torch.arange(slots)[None, :] < num_masks[:, None]  # (B, M)
    position = torch.arange(extent)[None, None, :]  # (1, 1, extent)
    inside = (position >= starts[:, :, None]) & (position < (starts + widths)[:, :, None])  # (B, M, extent)
    return (inside & in_use[:, :, None]).any(dim=1)


def speed_perturb(samples: np.ndarray, factor: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Play `samples` (N,) `factor` times faster: N / factor samples, pitch scaled by `factor` (like sox `speed`).

    Resampling from sample_rate * factor to sample_rate keeps the output at
    `sample_rate` while shortening (factor > 1) or stretching (factor < 1) it.
    """
    if factor <= 0:
        raise ShapeError(f"speed factor must be > 0, got {factor}; use e.g. 0.9, 1.0 or 1.1")
    check_shape("samples", samples, ("N",))
    if factor == 1.0:
        return samples.astype(np.float32, copy=False)
    out = soxr.resample(samples.astype(np.float32, copy=False), sample_rate * factor, sample_rate, quality="HQ")
    return np.asarray(out, dtype=np.float32)
