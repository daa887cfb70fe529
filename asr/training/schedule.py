"""Schedules over optimizer steps: learning rate and loss weights, pure functions of the step (and, for the
cool-down at the end of a time budget, of the share of that budget used, which every checkpoint saves) so
that a resumed run needs no scheduler state."""

from __future__ import annotations

from asr.training.config import TrainConfig
from models.transducer import FULL_LOSS, RnntLoss

PRUNED_SCALE_AT_START = 0.1  # weight of the pruned loss at step 0, while the bands are still noise


def lr_at(step: int, config: TrainConfig, budget_used: float = 0.0) -> float:
    """Learning rate for optimizer step `step` (0-based): linear warm-up, then a smooth inverse-sqrt decay,
    then, in the last `config.lr_cooldown` of a --max-minutes budget, a linear fall towards 0.

    warm-up:   lr * (step + 1) / warmup_steps until warmup_steps;
    decay:     times (1 + (step / decay_steps)^2)^(-1/4), about 1 before decay_steps and
               about lr * sqrt(decay_steps / step) well after it;
    cool-down: times (1 - budget_used) / lr_cooldown once that is below 1 (`budget_used` is the share of
               --max-minutes spent, 0 without a time budget). The total number of steps a time budget
               buys is unknown, so the cool-down follows the clock, not the step.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    warm = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps > 0 else 1.0
    decay = (1.0 + (step / config.decay_steps) ** 2) ** -0.25
    return config.lr * warm * decay * cooldown_factor(budget_used, config.lr_cooldown)


def cooldown_factor(budget_used: float, cooldown: float) -> float:
    """1 until the last `cooldown` share of the budget, then falling linearly to 0 as the budget runs out."""
    if cooldown <= 0.0:
        return 1.0
    return min(1.0, max(0.0, 1.0 - budget_used) / cooldown)


def loss_at(step: int, config: TrainConfig) -> RnntLoss:
    """The transducer loss and its weights for optimizer step `step` (0-based).

    Pruned: over loss_warmup_steps the simple loss weight falls linearly from 1 to
    simple_loss_scale while the pruned loss weight rises from PRUNED_SCALE_AT_START to 1:
    the bands come from the trivial joiner, which must learn first (k2/icefall do the same).
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if config.rnnt_loss == "full":
        return FULL_LOSS
    done = min(1.0, step / config.loss_warmup_steps) if config.loss_warmup_steps > 0 else 1.0
    return RnntLoss(
        pruned=True,
        prune_range=config.prune_range,
        simple_scale=1.0 - done * (1.0 - config.simple_loss_scale),
        pruned_scale=PRUNED_SCALE_AT_START + done * (1.0 - PRUNED_SCALE_AT_START),
    )
