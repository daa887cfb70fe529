"""An exponential moving average of a model's weights, the copy used for validation and export."""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """Keeps `average = decay * average + (1 - decay) * weights` after every optimizer step.

    The effective decay ramps up as min(decay, (1 + step) / (10 + step)), so the
    average follows the fast-moving early weights instead of remembering the
    random initialisation for thousands of steps.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        self.model.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Blend `model`'s current weights in; `step` is the number of optimizer steps taken so far."""
        decay = min(self.decay, (1.0 + step) / (10.0 + step))
        averaged = [p for p in self.model.parameters()]
        current = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(averaged, current, 1.0 - decay)
        for mine, theirs in zip(self.model.buffers(), model.buffers()):
            mine.copy_(theirs)  # running statistics are averages already

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)
