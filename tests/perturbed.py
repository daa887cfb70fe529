"""Weights as after training: every parameter moved off its initial value.

Some layers start as the identity (an ESN readout's causal taps pass the present frame only), and
the exporter shares equal initializers; a test of state handling or of weight mapping on such a
model would pass with the part it means to test doing nothing.
"""

from __future__ import annotations

import torch
from torch import nn


def perturb_weights(model: nn.Module, scale: float = 0.05) -> None:
    """Add N(0, scale^2) noise to every parameter of `model`, in place (draws from torch's global generator)."""
    with torch.no_grad():
        for weight in model.parameters():
            weight.add_(scale * torch.randn_like(weight))
