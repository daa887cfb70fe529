"""How many runnable tasks other work has, and the threads a training run takes beside them."""

from __future__ import annotations

import pytest
import torch

from asr.machine_load import free_cores, runnable_elsewhere
from asr.training.distributed import WorldInfo, threads_per_process

ALONE = WorldInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
TWO_RANKS = WorldInfo(rank=0, world_size=2, local_rank=0, device=torch.device("cpu"))


def _reader(*counts: int):
    values = iter(counts)
    return lambda: f"0.52 0.58 0.59 {next(values)}/321 4567\n"


def test_runnable_tasks_other_than_the_reader_are_averaged_over_the_samples() -> None:
    assert runnable_elsewhere(_reader(3, 3, 4, 2), samples=4, interval=0.0) == pytest.approx(2.0)
    assert runnable_elsewhere(_reader(1, 1), samples=2, interval=0.0) == 0.0  # the reader alone: idle


@pytest.mark.parametrize("text", ["", "0.5 0.5 0.5\n", "0.5 0.5 0.5 x/12 3\n"])
def test_an_unreadable_or_strange_loadavg_means_unknown(text: str) -> None:
    assert runnable_elsewhere(lambda: text, samples=2, interval=0.0) is None

    def missing() -> str:
        raise FileNotFoundError("/proc/loadavg")

    assert runnable_elsewhere(missing, samples=2, interval=0.0) is None


@pytest.mark.parametrize(("others", "cores", "free"), [(0.0, 2, 2), (0.4, 2, 2), (0.6, 2, 1), (2.0, 2, 1),
                                                    (5.0, 2, 1), (1.0, 8, 7), (None, 8, 8)])
def test_free_cores_are_what_other_work_leaves_at_least_one(others: float | None, cores: int, free: int) -> None:
    assert free_cores(others, cores) == free


def test_a_run_alone_takes_the_free_cores_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert threads_per_process(0, ALONE, runnable=lambda: 0.0) == 4
    assert threads_per_process(0, ALONE, runnable=lambda: 2.2) == 2  # another 2-thread job is running
    assert threads_per_process(0, ALONE, runnable=lambda: None) == 4  # unknown load: every core


def test_asked_threads_and_torchrun_ranks_ignore_the_load(monkeypatch: pytest.MonkeyPatch) -> None:
    def busy() -> float:
        raise AssertionError("the load is not sampled here")

    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert threads_per_process(3, ALONE, runnable=busy) == 3
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert threads_per_process(0, TWO_RANKS, runnable=busy) == 2  # the ranks would count each other
