"""One optimizer step and the loss of one batch: augmentation, mixed precision, clipping.

Shapes: B batch, T frames, D features, U tokens.
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import ContextManager

import numpy as np
import torch
from torch import nn

from asr.errors import AsrError
from asr.training.batches import Batch
from asr.training.config import TrainConfig
from asr.training.schedule import loss_at, lr_at
from asr.training.spec_augment import spec_augment
from models.transducer import FULL_LOSS, LossOutput, RnntLoss


@dataclass(frozen=True)
class StepResult:
    """What one optimizer step reports (floats, already synchronised from the device)."""

    loss: float  # total loss (weighted rnnt + simple + ctc), mean over the batch
    rnnt: float  # RNN-T negative log-likelihood (pruned to the band with the pruned loss), mean over the batch
    ctc: float  # CTC negative log-likelihood, mean over the batch
    simple: float  # trivial-joiner RNN-T loss (0 with the full loss), mean over the batch
    attention: float  # attention decoder negative log-likelihood (0 without the head), mean over the batch
    grad_norm: float  # global L2 norm of the gradients before clipping
    lr: float  # learning rate used
    updated: bool  # False when the loss or the gradients were not finite and the update was skipped


@functools.cache  # train_step asks on every step; the CPU does not change
def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AVX512-BF16 or AMX), read from Linux's /proc/cpuinfo."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for --amp on `device`; None means full float32.

    On a CPU only bf16 is offered; auto takes it where the CPU has bf16 instructions:
    there a small model's step ran 1.5x faster (tests/benchmarks/train_step_speed.py)
    and reached the same dev loss at equal steps (README "Accuracy"). Elsewhere bf16
    is emulated, slower than float32, and auto stays off.
    """
    if amp == "off":
        return None
    if device.type == "cpu":
        if amp == "fp16":
            raise AsrError("--amp fp16 needs a CUDA device; on a CPU use --amp bf16 or off")
        return torch.bfloat16 if amp == "bf16" or cpu_has_native_bf16() else None
    if amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if amp == "bf16" else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None) -> ContextManager[object]:
    """torch.autocast for `dtype`, or a no-op context without mixed precision."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def augment_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """The SpecAugment random stream of one step: a function of (seed, step, rank), so resuming redraws it exactly."""
    state = np.random.SeedSequence([seed, step, rank]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def compute_loss(
    model: nn.Module, batch: Batch, dtype: torch.dtype | None, device: torch.device, loss: RnntLoss = FULL_LOSS
) -> LossOutput:
    """The model's losses on a batch already on `device`, under autocast when `dtype` is set."""
    with autocast(device, dtype):
        return model(batch.features, batch.feature_lens, batch.tokens, batch.token_lens, loss)


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    batch: Batch,
    config: TrainConfig,
    step: int,
    rank: int,
    device: torch.device,
    budget_used: float = 0.0,
) -> StepResult:
    """One update on `batch` (on the CPU; moved here): lr from the schedule, SpecAugment, backward, clip, step.

    `budget_used` is the share of --max-minutes already spent (0 without one), for the lr cool-down.

    `model` may be DDP-wrapped: its backward all-reduces the gradients, so the
    clipping norm, the skip decision and the update are the same on every rank.
    """
    lr = lr_at(step, config, budget_used)
    for group in optimizer.param_groups:
        group["lr"] = lr
    if config.spec_augment is not None:
        masked = spec_augment(batch.features, batch.feature_lens, config.spec_augment,
                              augment_generator(config.seed, step, rank))
        batch = Batch(masked, batch.feature_lens, batch.tokens, batch.token_lens, batch.ids)
    batch = batch.to(device)
    dtype = amp_dtype(config.amp, device)
    model.train()
    losses = compute_loss(model, batch, dtype, device, loss_at(step, config))
    scaler.scale(losses.total).backward()
    scaler.unscale_(optimizer)
    grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip or math.inf))
    # A non-finite loss can come with finite gradients (a NaN term whose gradient is masked to 0):
    # stepping on it would report NaN as progress, so the loss is checked as well as the norm.
    updated = math.isfinite(grad_norm) and bool(torch.isfinite(losses.total.detach()))
    if updated or scaler.is_enabled():
        scaler.step(optimizer)  # with fp16 the scaler itself skips non-finite steps and lowers its scale
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    values = torch.stack([losses.total, losses.rnnt, losses.ctc, losses.simple, losses.attention]).detach().float()
    loss, rnnt, ctc, simple, attention = values.tolist()  # one sync
    return StepResult(
        loss=loss,
        rnnt=rnnt,
        ctc=ctc,
        simple=simple,
        attention=attention,
        grad_norm=grad_norm,
        lr=lr,
        updated=updated,
    )
