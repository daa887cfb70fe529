"""What a person watches during training: a tqdm bar, TensorBoard scalars, the curve PNG, one line per validation.

Only rank 0 shows anything; other ranks get a monitor that records nothing.
The history (the curve points) travels inside checkpoints, so a resumed run
keeps drawing the whole curve.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tqdm import tqdm

from asr.training.plots import plot_curves
from asr.training.step import StepResult

PLOT_NAME = "curves.png"
TENSORBOARD_DIR = "tensorboard"
PLAIN_LINE_EVERY = 5  # without a terminal (a log file): one progress line per this many log intervals


class TrainMonitor:
    """Progress bar + TensorBoard + curves for one run."""

    def __init__(self, exp_dir: Path, history: list[dict[str, Any]], log_every: int, enabled: bool, title: str,
                 dev_decoding: str):
        self.exp_dir = exp_dir
        self.history = history
        self.log_every = log_every
        self.enabled = enabled
        self.title = title
        self.dev_decoding = dev_decoding  # e.g. "transducer greedy", for the WER axis
        self._writer = None
        self._bar: tqdm | None = None
        self._window: list[float] = []
        self._running_loss: float | None = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter  # slow import: rank 0 only

            self._writer = SummaryWriter(str(exp_dir / TENSORBOARD_DIR))

    def start_epoch(self, epoch: int, total_batches: int, first_batch: int) -> None:
        if not self.enabled:
            return
        self._close_bar()
        self._bar = tqdm(total=total_batches, initial=first_batch, desc=f"epoch {epoch + 1}", unit="batch",
                         dynamic_ncols=True, disable=None)

    def step(self, step: int, result: StepResult, audio_seconds: float) -> None:
        """Record the result of optimizer step number `step` (1-based: steps taken so far)."""
        if not self.enabled:
            return
        decay = 0.98 if self._running_loss is not None else 0.0
        self._running_loss = decay * (self._running_loss or 0.0) + (1 - decay) * result.loss
        self._window.append(result.loss)
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{self._running_loss:.3f}", lr=f"{result.lr:.2e}", refresh=False)
        if step % (self.log_every * PLAIN_LINE_EVERY) == 0 and self._bar is not None and self._bar.disable:
            # tqdm draws nothing into a log file, so a run under nohup would show no progress until validation.
            self.write(f"step {step}: loss {self._running_loss:.3f}, lr {result.lr:.2e}, "
                       f"grad norm {result.grad_norm:.1f}")
        if step % self.log_every == 0:
            mean = sum(self._window) / len(self._window)
            self._window.clear()
            self.history.append({"step": step, "train_loss": mean})
            scalars = {"loss": result.loss, "rnnt": result.rnnt, "ctc": result.ctc, "simple": result.simple,
                       "attention": result.attention, "lr": result.lr,
                       "grad_norm": result.grad_norm, "batch_audio_seconds": audio_seconds}
            for name, value in scalars.items():
                self._writer.add_scalar(f"train/{name}", value, step)

    def validation(self, step: int, where: str, dev_loss: float, dev_wer: float) -> None:
        """Log a validation, redraw the curves PNG and print one line (`where`: e.g. "end of epoch 2")."""
        if not self.enabled:
            return
        self.history.append({"step": step, "dev_loss": dev_loss, "dev_wer": dev_wer})
        self._writer.add_scalar("dev/loss", dev_loss, step)
        self._writer.add_scalar("dev/wer", dev_wer, step)
        self._writer.flush()
        plot_curves(self.history, self.exp_dir / PLOT_NAME, self.title, self.dev_decoding)
        self.write(f"step {step} ({where}): dev loss {dev_loss:.3f}, dev WER {dev_wer:.2f}%")

    def write(self, line: str) -> None:
        """Print a line without breaking the progress bar."""
        if self.enabled:
            tqdm.write(line)

    def close(self) -> None:
        self._close_bar()
        if self._writer is not None:
            if self.history:
                plot_curves(self.history, self.exp_dir / PLOT_NAME, self.title, self.dev_decoding)
            self._writer.close()
            self._writer = None

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
