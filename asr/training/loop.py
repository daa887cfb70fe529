"""The training loop: epochs of steps, validation, checkpoints, and restoring all of it on --resume.

Everything a resumed run needs to continue exactly where the last checkpoint
was taken (weights, EMA, optimizer, scaler, step, epoch and batch within it,
RNG states of every rank, curve history) is written by `checkpoint_state` and
read back by `restore`. Data order and SpecAugment masks are functions of
(seed, epoch) and (seed, step, rank), so they need no saved state at all.
"""

from __future__ import annotations

import dataclasses
import json
import random
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from asr.errors import AsrError
from asr.training.batches import Batch, BucketingSampler, FeatureSource, TokenizedSet, iterate_batches
from asr.training.checkpoints import CHECKPOINT_FORMAT, CheckpointManager, nonfinite_weights
from asr.training.config import TrainConfig
from asr.training.corpus import TRAINING_FEATURES
from asr.training.dev_wer import EvaluateFn
from asr.training.distributed import WorldInfo, barrier, gather_objects
from asr.training.ema import WeightAverage
from asr.training.monitor import TrainMonitor
from asr.training.step import amp_dtype, compute_loss, train_step

MAX_SKIPPED_STEPS = 20  # consecutive non-finite steps before training is declared diverged


@dataclass
class Progress:
    """Where the run is (mutable; saved in every checkpoint)."""

    step: int = 0  # optimizer steps taken
    epoch: int = 0  # current epoch, 0-based
    batch_in_epoch: int = 0  # batches of this rank's plan for `epoch` already trained on
    elapsed_seconds: float = 0.0  # training wall time summed over all resumes
    skipped_steps: int = 0  # batches whose loss or gradients were not finite, so no update was made


@dataclass(frozen=True)
class DevSet:
    """The validation data: pre-collated batches (no augmentation) and the WER function."""

    dataset: TokenizedSet  # dev utterances with references
    batches: tuple[Batch, ...]  # collated once, reused at every validation
    evaluate_fn: EvaluateFn  # model -> dev WER %


@dataclass(frozen=True)
class DevResult:
    """One validation."""

    loss: float  # mean total loss per utterance
    wer: float  # WER in percent


@dataclass
class TrainingRun:
    """Everything the loop works on; built by asr.training.command."""

    config: TrainConfig  # the experiment
    world: WorldInfo  # rank, world size, device
    model: nn.Module  # the Transducer, DDP-wrapped when world.distributed
    ema: WeightAverage  # averaged weights for validation and export
    optimizer: torch.optim.Optimizer  # AdamW
    scaler: torch.amp.GradScaler  # enabled only for fp16 autocast
    train_set: TokenizedSet  # training utterances
    features: FeatureSource  # fbank per (utterance, speed, acoustic variant)
    sampler: BucketingSampler  # this rank's batch plans
    dev: DevSet | None  # None: no validation
    checkpoints: CheckpointManager  # checkpoint files of the experiment dir
    monitor: TrainMonitor  # bar, TensorBoard, curves
    model_config_json: str  # TransducerConfig as JSON, stored in checkpoints
    tokenizer_bytes: bytes  # tokenizer.to_bytes(), stored in checkpoints
    progress: Progress = dataclasses.field(default_factory=Progress)  # position, restored on resume
    last_saved_step: int = -1  # step of the newest checkpoint written by this process
    # Wall time of this process's last validation and checkpoint. --max-minutes keeps it in reserve, so
    # that the run's final checkpoint (validated too) ends within the budget instead of after it: on a
    # busy machine one validation takes a minute, which a caller with a deadline (the demo) cannot see.
    save_seconds: float = 0.0


@dataclass(frozen=True)
class TrainSummary:
    """How a call to `train` ended."""

    steps: int  # optimizer steps taken in total (over resumes)
    epochs_completed: int  # full epochs done
    final_loss: float | None  # loss of the last step this process ran (None if it ran none)
    best_wer: float | None  # lowest dev WER of the experiment so far
    stopped_by: str  # "epochs" or "time"
    skipped_steps: int = 0  # batches skipped for a non-finite loss or gradients (over resumes)
    bad_audio: str = ""  # the warning about unreadable audio files left out of the data ("" when none)


def unwrap(model: nn.Module) -> nn.Module:
    """The Transducer inside a DDP wrapper (or the model itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def train(run: TrainingRun) -> TrainSummary:
    """Train until the epoch budget or the time budget runs out, whichever comes first."""
    config, progress = run.config, run.progress
    clock = _Clock(progress.elapsed_seconds)
    final_loss = None
    stopped_by = "epochs"
    if progress.step > 0 and _out_of_time(run, reserve=0.0):  # a resumed run whose budget was already spent
        if run.world.is_main:
            print(f"note: the time budget is already spent: {progress.elapsed_seconds / 60:.1f} minutes trained "
                  f"of --max-minutes {config.max_minutes:g} (summed over this run's resumes); nothing to train. "
                  f"To train on, give a larger total: --resume --max-minutes {2 * config.max_minutes:g}",
                  file=sys.stderr)
        run.monitor.close()
        best = run.checkpoints.best()
        return TrainSummary(progress.step, progress.epoch, None, best.dev_wer if best else None, "time")
    while config.stop_epochs is None or progress.epoch < config.stop_epochs:
        if _out_of_time(run, reserve=run.save_seconds):
            stopped_by = "time"
            break
        final_loss, out_of_time = train_one_epoch(run, clock, final_loss)
        if out_of_time:
            stopped_by = "time"
            break
    if progress.step != run.last_saved_step:
        save_and_validate(run)
    run.monitor.close()
    best = run.checkpoints.best()
    return TrainSummary(progress.step, progress.epoch, final_loss, best.dev_wer if best else None, stopped_by,
                        progress.skipped_steps)


def train_one_epoch(run: TrainingRun, clock: _Clock, last_loss: float | None) -> tuple[float | None, bool]:
    """Run the rest of the current epoch; returns (last step's loss, whether the time budget ran out)."""
    config, progress = run.config, run.progress
    plan = run.sampler.plan(progress.epoch)
    run.monitor.start_epoch(progress.epoch, len(plan), progress.batch_in_epoch)
    skipped = 0
    for batch in iterate_batches(run.train_set, run.features, plan, config.speeds, start=progress.batch_in_epoch):
        result = train_step(run.model, run.optimizer, run.scaler, batch, config, progress.step, run.world.rank,
                            run.world.device, _budget_used(run))
        progress.step += 1
        progress.batch_in_epoch += 1
        skipped = 0 if result.updated else skipped + 1
        if not result.updated:
            progress.skipped_steps += 1
        if skipped >= MAX_SKIPPED_STEPS:
            raise AsrError(
                f"training diverged: {skipped} steps in a row had a non-finite loss or gradients (step "
                f"{progress.step}); lower --lr or raise --warmup-steps, and --resume from the last checkpoint"
            )
        if result.updated:
            run.ema.update(unwrap(run.model), progress.step)
            last_loss = result.loss  # a skipped batch's NaN is no loss to report
        run.monitor.step(progress.step, result, batch.seconds)
        progress.elapsed_seconds = clock.elapsed()
        if _out_of_time(run, reserve=run.save_seconds):
            return last_loss, True
        if progress.step % config.checkpoint_every_steps == 0:
            save_and_validate(run)
    # No checkpoint at the epoch's end: on a small corpus with large batches an epoch is a
    # few dozen steps, and validating that often took the time --checkpoint-every-steps
    # was set to save. A checkpoint taken mid-epoch resumes just as well.
    progress.epoch += 1
    progress.batch_in_epoch = 0
    return last_loss, False


def validate(run: TrainingRun) -> DevResult | None:
    """Dev loss and WER of the EMA weights (rank 0 only; None without a dev set)."""
    if run.dev is None or not run.world.is_main:
        return None
    model = run.ema.model
    dtype = amp_dtype(run.config.amp, run.world.device)
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in run.dev.batches:
            losses = compute_loss(model, batch.to(run.world.device), dtype, run.world.device)
            total += float(losses.total) * len(batch.ids)
            count += len(batch.ids)
        wer = run.dev.evaluate_fn(model)
    return DevResult(loss=total / max(count, 1), wer=wer)


def save_and_validate(run: TrainingRun) -> None:
    """Validate (rank 0), then write a checkpoint of the current position (rank 0); every rank waits.

    AsrError, and nothing written, when the weights are no longer finite: such a
    checkpoint would resume into NaN, become best.pt on a meaningless WER and export.
    """
    broken = nonfinite_weights(unwrap(run.model).state_dict()) or nonfinite_weights(run.ema.state_dict())
    if broken:
        raise AsrError(
            f"training diverged: at step {run.progress.step} the weights are not finite ({broken}); nothing was saved. Lower --lr or raise --warmup-steps and "
            "start again, or --resume from the last checkpoint"
        )
    started = time.monotonic()
    rng = gather_objects(run.world, _rng_state(run.world))  # a collective: every rank takes part
    result = validate(run)
    if run.world.is_main:
        if result is not None:
            run.monitor.validation(run.progress.step, _position(run.progress), result.loss, result.wer)
        state = checkpoint_state(run, rng, result.wer if result else None)
        path = run.checkpoints.save(state, run.progress.step, run.progress.epoch, result.wer if result else None)
        run.monitor.write(f"saved {path}")
    run.last_saved_step = run.progress.step
    barrier(run.world)
    run.save_seconds = time.monotonic() - started


def checkpoint_state(run: TrainingRun, rng: list[dict[str, Any]], dev_wer: float | None) -> dict[str, Any]:
    """The checkpoint dict (see asr.training.checkpoints for the keys): tensors and plain containers only."""
    return {
        "format": CHECKPOINT_FORMAT,
        "train_config": run.config.to_json(),
        "model_config": run.model_config_json,
        "tokenizer": run.tokenizer_bytes,
        "feature_config": json.dumps(TRAINING_FEATURES.to_dict()),
        "model": unwrap(run.model).state_dict(),
        "model_avg": run.ema.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scaler": run.scaler.state_dict(),
        "progress": dataclasses.asdict(run.progress),
        "world_size": run.world.world_size,
        "rng": rng,
        "dev_wer": dev_wer,
        "history": list(run.monitor.history),
    }


def restore(run: TrainingRun, state: dict[str, Any]) -> None:
    """Put a checkpoint's weights, optimizer, position and RNG states back into `run`."""
    unwrap(run.model).load_state_dict(state["model"])
    run.ema.load_state_dict(state["model_avg"])
    run.optimizer.load_state_dict(state["optimizer"])
    if state.get("scaler"):
        run.scaler.load_state_dict(state["scaler"])
    run.progress = Progress(**state["progress"])
    run.last_saved_step = run.progress.step
    run.monitor.history[:] = state.get("history", [])
    saved_world = state.get("world_size", 1)
    ranks = state["rng"]
    if saved_world == run.world.world_size:
        _set_rng_state(ranks[run.world.rank])
    else:
        # Another world size plans other shards: the batch index means nothing, restart the epoch.
        _set_rng_state(ranks[0])
        torch.manual_seed(run.config.seed + 1000 * run.progress.step + run.world.rank)
        run.monitor.write(
            f"note: the checkpoint was written by {saved_world} ranks, this run has {run.world.world_size}; "
            f"epoch {run.progress.epoch + 1} restarts from its first batch"
        )
        run.progress.batch_in_epoch = 0


def _position(progress: Progress) -> str:
    """Human words for where in the data the run is."""
    if progress.batch_in_epoch == 0:
        return f"end of epoch {progress.epoch}"
    return f"epoch {progress.epoch + 1}, batch {progress.batch_in_epoch}"


class _Clock:
    """Training wall time including what earlier (resumed-from) runs spent."""

    def __init__(self, already: float) -> None:
        self._start = time.monotonic() - already

    def elapsed(self) -> float:
        return time.monotonic() - self._start


def _budget_used(run: TrainingRun) -> float:
    """The share of --max-minutes spent so far (summed over resumes); 0 without a time budget.

    Under torchrun every rank reads its own clock; the ranks step in lockstep, so their shares, and
    the learning rates drawn from them, differ by no more than one step's time.
    """
    limit = run.config.max_minutes
    return 0.0 if limit is None else run.progress.elapsed_seconds / (limit * 60.0)


def _out_of_time(run: TrainingRun, reserve: float) -> bool:
    """Whether --max-minutes, less `reserve` seconds, is used up; rank 0 decides for every rank (same stopping step)."""
    limit = run.config.max_minutes
    if limit is None:
        return False
    done = torch.tensor([run.progress.elapsed_seconds + reserve >= limit * 60.0])
    if run.world.distributed:
        dist.broadcast(done, src=0)
    return bool(done.item())


def _rng_state(world: WorldInfo) -> dict[str, Any]:
    """This process's python, numpy (legacy global) and torch RNG states as plain data and tensors."""
    version, python_state, gauss = random.getstate()
    name, keys, position, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(python_state), gauss],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if world.device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(world.device)
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    version, python_state, gauss = state["python"]
    random.setstate((version, tuple(python_state), gauss))
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
