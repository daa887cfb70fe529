"""How long the demo may train so that the whole of it, set-up included, ends within its time budget.

The evaluation's time is measured on the machine before training (asr.tools.demo_decode:
machines differ about 3.5x here); the demo's other stages (export, the bench) and the
training run's own start-up take about IDLE_NON_EVALUATION_SECONDS on an idle 2-core
machine, and proportionally longer on a busy one. Without a measurement, every stage
after training is planned as IDLE_OTHER_SECONDS. Training gets what is left before the
deadline after that reserve, at most the minutes asked for. How busy the machine is comes from the
kernel's count of runnable tasks (/proc/loadavg), sampled for a moment: a 1-minute
load average would still count the corpus synthesis the demo has just run
(asr.machine_load). Training also takes only the cores the other work leaves free (at
least one; asr.machine_load says why).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from asr.machine_load import free_cores

# What follows training, and the training child's start-up, on the idle 2-core machine: 112 s in a
# fresh-clone demo of session 12 (start-up and final checkpoint about 11 s, export 3 s, evaluation 92 s,
# of it the LM at the shipped fusion.json's beam 64, bench 6 s; 73 s at session 8's beam 16), and a
# margin for a slower machine. Loaded (two 1-thread trainings beside it) with 90 here, the demo ended
# at 14 min 39 s: the evaluation took 173 s where the plan allowed 2 x 90 for everything after training.
IDLE_OTHER_SECONDS = 125.0
# The same without the evaluation, which the demo now times on the machine itself before training
# (asr.tools.demo_decode): on a 2-core machine without AVX-512 (session 15) start-up and final
# checkpoint took 26 s, export 6 s and bench 16 s, against 20 s in all on the machine above.
IDLE_NON_EVALUATION_SECONDS = 50.0
# The evaluation's estimate from a few files' decoding, raised for what those files do not show.
EVALUATION_MARGIN = 1.25
# Below this the model would not leave the blank plateau anyway; training gets it even past the
# deadline, and the demo's plateau warning says what came of it.
MIN_TRAINING_MINUTES = 2.0


@dataclass(frozen=True)
class TrainingBudget:
    """The training time the deadline leaves, and why."""

    minutes: float  # what training gets
    requested: float  # --minutes
    seconds_left: float  # before the deadline, as training starts
    slowdown: float  # how many times longer than idle a job on every core takes beside the other work
    threads: int  # torch threads for training: the cores the other work leaves free, at least one
    after_training_seconds: float  # what the stages after training are expected to take

    @property
    def busy(self) -> bool:
        """Whether other work shapes the plan: fewer minutes than asked, or fewer threads than cores."""
        return self.minutes < self.requested or self.slowdown > 1.0

    def describe(self, total_minutes: float) -> str:
        """The demo's line when the plan is not the idle machine's: other work running, or too little time."""
        why = (f"other work is running ({self.slowdown:.1f}x an idle machine's time for a job on every core)"
               if self.slowdown > 1.0 else "time budget")
        return (f"{why}: training gets {self.minutes:.1f} of its {self.requested:g} minutes "
                f"and {self.threads} thread{'s' if self.threads > 1 else ''}, so the demo ends within "
                f"{total_minutes:g} minutes ({self.seconds_left / 60:.1f} are left, and the stages after training "
                f"are expected to take {self.after_training_seconds:.0f} s)")


def slowdown(others: float | None, cores: int) -> float:
    """How many times longer than idle a job using every core takes beside `others` runnable tasks."""
    if others is None:
        return 1.0
    return max(1.0, (others + cores) / cores)


def training_budget(requested: float, deadline: float, now: float, others: float | None,
                    cores: int | None = None, evaluation_seconds: float | None = None) -> TrainingBudget:
    """The minutes training may take (wall-clock seconds `deadline` and `now`).

    evaluation_seconds: what the evaluation is expected to take, measured on this machine now (its
    load included); None plans every stage after training from the idle machine's IDLE_OTHER_SECONDS.
    """
    cores = cores or os.cpu_count() or 1
    factor = slowdown(others, cores)
    left = deadline - now
    if evaluation_seconds is None:
        after_training = IDLE_OTHER_SECONDS * factor
    else:
        after_training = IDLE_NON_EVALUATION_SECONDS * factor + EVALUATION_MARGIN * evaluation_seconds
    fits = (left - after_training) / 60.0
    minutes = min(requested, max(MIN_TRAINING_MINUTES, fits))
    return TrainingBudget(minutes=minutes, requested=requested, seconds_left=left, slowdown=factor,
                          threads=free_cores(others, cores), after_training_seconds=after_training)
