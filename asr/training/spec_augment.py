"""Training-time augmentation of fbank batches: SpecAugment time and frequency masks.

Shapes: B batch, T frames, D feature bins (80).

SpecAugment runs on the padded batch inside the training step (one vectorized
pass, no per-utterance Python loop). Speed perturbation, noise and
reverberation change the audio before fbank, so they are a feature cache per
speed factor and acoustic variant (asr.corpus.feature_cache, asr.corpus.acoustics), chosen
per utterance and epoch by asr.training.batches.BucketingSampler.
"""

from __future__ import annotations

import torch

from asr.checks import check_shape
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

