"""The learning-rate schedule: a pure function of the step, so a resumed run needs no scheduler state."""

from __future__ import annotations

from asr.training.config import TrainConfig


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate for optimizer step `step` (0-based): linear warm-up, then a smooth inverse-sqrt decay.

    warm-up: lr * (step + 1) / warmup_steps until warmup_steps;
    decay:   times (1 + (step / decay_steps)^2)^(-1/4), about 1 before decay_steps and
             about lr * sqrt(decay_steps / step) well after it.
    It never depends on the total number of steps, which --max-minutes leaves unknown.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    warm = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps > 0 else 1.0
    decay = (1.0 + (step / config.decay_steps) ** 2) ** -0.25
    return config.lr * warm * decay
