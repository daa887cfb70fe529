"""How long the demo may train so that the whole of it, set-up included, ends within its time budget.

The demo's other stages (export, evaluation, the bench) and the training run's own
start-up take about IDLE_OTHER_SECONDS on an idle 2-core machine, and proportionally
longer on a busy one. Training gets what is left before the deadline after that
reserve, at most the minutes asked for. How busy the machine is comes from the
kernel's count of runnable tasks (/proc/loadavg), sampled for a moment: a 1-minute
load average would still count the corpus synthesis the demo has just run.

Training also takes only the cores the other work leaves free (at least one). torch's
intra-op threads wait for each other at every operation; with more threads than free
cores, each step waits for a thread the scheduler has put aside. Measured on the 2-core
machine beside another 2-thread `asr train`: the demo's 2 threads made 23 steps a
minute; with one thread each, the same model on the same 60-s batches made about 210.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

# What follows training, and the training child's start-up, on the idle 2-core machine: 73 s in a
# fresh-clone demo (start-up and final checkpoint 11 s, export 3 s, evaluation with beam 16 and the
# LM 54 s, bench 5 s), and a margin for a slower machine.
IDLE_OTHER_SECONDS = 90.0
# Below this the model would not leave the blank plateau anyway; training gets it even past the
# deadline, and the demo's plateau warning says what came of it.
MIN_TRAINING_MINUTES = 2.0
LOADAVG = Path("/proc/loadavg")


@dataclass(frozen=True)
class TrainingBudget:
    """The training time the deadline leaves, and why."""

    minutes: float  # what training gets
    requested: float  # --minutes
    seconds_left: float  # before the deadline, as training starts
    slowdown: float  # how many times longer than idle the other stages are expected to take
    threads: int  # torch threads for training: the cores the other work leaves free, at least one

    @property
    def busy(self) -> bool:
        """Whether other work shapes the plan: fewer minutes than asked, or fewer threads than cores."""
        return self.minutes < self.requested or self.slowdown > 1.0

    def describe(self, total_minutes: float) -> str:
        """The demo's line when other work is running."""
        return (f"other work is running: training gets {self.minutes:.1f} of its {self.requested:g} minutes "
                f"and {self.threads} thread{'s' if self.threads > 1 else ''}, so the demo ends within "
                f"{total_minutes:g} minutes ({self.seconds_left / 60:.1f} are left, and the stages after training "
                f"are expected to take {self.slowdown:.1f}x their idle {IDLE_OTHER_SECONDS:g} s)")


def read_loadavg() -> str:
    return LOADAVG.read_text(encoding="ascii")


def runnable_elsewhere(read: Callable[[], str] = read_loadavg, samples: int = 10, interval: float = 0.05
                       ) -> float | None:
    """Mean number of runnable tasks other than this one over a moment; None where the kernel does not say.

    /proc/loadavg's fourth field is `runnable/total` right now; the reader itself is one of the runnable.
    """
    counts = []
    for index in range(samples):
        if index:
            time.sleep(interval)
        try:
            counts.append(int(read().split()[3].split("/")[0]))
        except (OSError, IndexError, ValueError):
            return None
    return max(0.0, sum(counts) / len(counts) - 1.0)


def slowdown(others: float | None, cores: int) -> float:
    """How many times longer than idle a job using every core takes beside `others` runnable tasks."""
    if others is None:
        return 1.0
    return max(1.0, (others + cores) / cores)


def training_budget(requested: float, deadline: float, now: float, others: float | None,
                    cores: int | None = None) -> TrainingBudget:
    """The minutes training may take (wall-clock seconds `deadline` and `now`)."""
    cores = cores or os.cpu_count() or 1
    factor = slowdown(others, cores)
    left = deadline - now
    fits = (left - IDLE_OTHER_SECONDS * factor) / 60.0
    minutes = min(requested, max(MIN_TRAINING_MINUTES, fits))
    threads = cores if others is None else max(1, cores - round(others))
    return TrainingBudget(minutes=minutes, requested=requested, seconds_left=left, slowdown=factor, threads=threads)
