"""How long the demo may train so that the whole of it, set-up included, ends within its time budget.

The demo's other stages (export, evaluation, the bench) and the training run's own
start-up take about IDLE_OTHER_SECONDS on an idle 2-core machine, and proportionally
longer on a busy one. Training gets what is left before the deadline after that
reserve, at most the minutes asked for. How busy the machine is comes from the
kernel's count of runnable tasks (/proc/loadavg), sampled for a moment: a 1-minute
load average would still count the corpus synthesis the demo has just run.
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

    @property
    def cut(self) -> bool:
        """Whether the deadline gives training less than was asked."""
        return self.minutes < self.requested

    def describe(self, total_minutes: float) -> str:
        """One line for the demo's output when training was cut."""
        return (f"training gets {self.minutes:.1f} of its {self.requested:g} minutes, so the demo ends within "
                f"{total_minutes:g} minutes: {self.seconds_left / 60:.1f} minutes are left, and the stages after "
                f"it are expected to take {self.slowdown:.1f}x their idle {IDLE_OTHER_SECONDS:g} s on this "
                f"machine (other work is running)")


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
    factor = slowdown(others, cores or os.cpu_count() or 1)
    left = deadline - now
    fits = (left - IDLE_OTHER_SECONDS * factor) / 60.0
    minutes = min(requested, max(MIN_TRAINING_MINUTES, fits))
    return TrainingBudget(minutes=minutes, requested=requested, seconds_left=left, slowdown=factor)
