"""SpecAugment masks: where, how much, what value, determinism."""

from __future__ import annotations

import pytest
import torch

from asr.errors import AsrError, ShapeError
from asr.training.config import SpecAugmentConfig
from asr.training.spec_augment import spec_augment


def _batch(lengths: list[int], dims: int = 80) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    features = torch.randn(len(lengths), max(lengths), dims) - 10.0  # log-mel-like: far below 0
    return features, torch.tensor(lengths)


def _masked(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    return before != after  # (B, T, D)


def test_padding_is_untouched_and_shape_kept() -> None:
    features, lengths = _batch([300, 120, 57])
    out = spec_augment(features, lengths, SpecAugmentConfig(), torch.Generator().manual_seed(1))
    assert out.shape == features.shape and out.dtype == features.dtype
    for b, length in enumerate(lengths.tolist()):
        assert torch.equal(out[b, length:], features[b, length:])
    assert _masked(features, out).any()


def test_masked_values_are_the_utterance_mean() -> None:
    features, lengths = _batch([200, 90])
    out = spec_augment(features, lengths, SpecAugmentConfig(), torch.Generator().manual_seed(2))
    for b, length in enumerate(lengths.tolist()):
        mean = features[b, :length].mean(dim=0)  # (D,)
        hidden = _masked(features[b], out[b])
        expected = mean.expand_as(features[b])
        assert torch.allclose(out[b][hidden], expected[hidden], atol=1e-5)


def test_frequency_masks_are_bands_no_wider_than_configured() -> None:
    config = SpecAugmentConfig(num_freq_masks=1, freq_mask_width=10, num_time_masks=0)
    features, lengths = _batch([100] * 16)
    out = spec_augment(features, lengths, config, torch.Generator().manual_seed(3))
    hidden = _masked(features, out)
    for b in range(16):
        bins = hidden[b].all(dim=0).nonzero().flatten().tolist()  # masked bins hide every frame
        assert hidden[b].any(dim=0).nonzero().flatten().tolist() == bins
        assert len(bins) <= 10
        if bins:
            assert bins == list(range(bins[0], bins[0] + len(bins)))  # one contiguous band


def test_time_masks_respect_the_fraction_budget() -> None:
    config = SpecAugmentConfig(num_freq_masks=0, num_time_masks=10, time_mask_width=40, max_time_fraction=0.15)
    features, lengths = _batch([1000, 300, 30])
    generator = torch.Generator().manual_seed(4)
    for _ in range(20):
        hidden = _masked(features, spec_augment(features, lengths, config, generator)).any(dim=2)  # (B, T)
        # 1000 frames afford 3 masks, 300 and 30 frames one, each at most 40 frames wide.
        assert hidden[0].sum() <= 3 * 40
        assert hidden[1].sum() <= 40
        assert hidden[2].sum() <= 30


def test_same_seed_same_masks_other_seed_other_masks() -> None:
    features, lengths = _batch([250, 180])
    first = spec_augment(features, lengths, SpecAugmentConfig(), torch.Generator().manual_seed(7))
    again = spec_augment(features, lengths, SpecAugmentConfig(), torch.Generator().manual_seed(7))
    other = spec_augment(features, lengths, SpecAugmentConfig(), torch.Generator().manual_seed(8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_zero_masks_is_identity() -> None:
    config = SpecAugmentConfig(num_freq_masks=0, num_time_masks=0)
    features, lengths = _batch([50, 40])
    assert torch.equal(spec_augment(features, lengths, config, torch.Generator()), features)


def test_bad_inputs() -> None:
    with pytest.raises(AsrError, match="num_time_masks"):
        SpecAugmentConfig(num_time_masks=-1)
    with pytest.raises(ShapeError, match="features"):
        spec_augment(torch.zeros(10, 80), torch.tensor([10]), SpecAugmentConfig(), torch.Generator())

