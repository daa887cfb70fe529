"""How busy the machine is right now, and how many cores that leaves a new job.

The kernel's count of runnable tasks (/proc/loadavg's fourth field), sampled for
a moment, rather than a load average: the 1-minute average still counts work
that has just ended (the demo's corpus synthesis, say).

Why a job should take only the free cores: torch's intra-op threads wait for
each other at every operation, so with more threads than free cores each step
waits for a thread the scheduler has put aside. Measured on the 2-core machine
beside another 2-thread `asr train`: 2 threads made 23 steps a minute; with one
thread each, the same model on the same 60-s batches made about 210.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

LOADAVG = Path("/proc/loadavg")


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


def free_cores(others: float | None, cores: int | None = None) -> int:
    """The cores `others` runnable tasks leave free, at least one; every core when the load is unknown."""
    cores = cores or os.cpu_count() or 1
    return cores if others is None else max(1, cores - round(others))
