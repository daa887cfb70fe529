"""The demo's training budget: what a deadline and a busy machine leave for training."""

from __future__ import annotations

import pytest

from asr.tools.demo_budget import (
    EVALUATION_MARGIN, IDLE_NON_EVALUATION_SECONDS, IDLE_OTHER_SECONDS, MIN_TRAINING_MINUTES, slowdown, training_budget,
)


def test_slowdown_is_the_share_of_the_cores_a_full_job_gets() -> None:
    assert slowdown(0.0, cores=2) == 1.0
    assert slowdown(None, cores=2) == 1.0  # unknown: plan as if idle
    assert slowdown(2.0, cores=2) == 2.0  # two busy loops beside a 2-thread job: half the machine
    assert slowdown(5.0, cores=2) == 3.5


def test_an_idle_machine_with_time_to_spare_trains_what_was_asked_on_every_core() -> None:
    budget = training_budget(9.0, deadline=1000.0 + 12 * 60, now=1000.0, others=0.0, cores=2)
    assert budget.minutes == 9.0 and budget.threads == 2 and not budget.busy
    assert training_budget(9.0, deadline=1000.0 + 12 * 60, now=1000.0, others=None, cores=2).threads == 2


def test_a_busy_machine_trains_less_so_the_stages_after_it_fit_before_the_deadline() -> None:
    budget = training_budget(9.0, deadline=1000.0 + 11 * 60, now=1000.0, others=2.0, cores=2)
    assert budget.busy and budget.slowdown == 2.0
    assert budget.minutes == pytest.approx(11 - 2 * IDLE_OTHER_SECONDS / 60)
    line = budget.describe(total_minutes=14)
    assert f"{budget.minutes:.1f} of its 9 minutes and 1 thread," in line and "within 14 minutes" in line
    assert "2.0x" in line and f"expected to take {2 * IDLE_OTHER_SECONDS:.0f} s" in line


def test_a_measured_evaluation_replaces_the_idle_machines_guess_for_it() -> None:
    # A slower machine, idle: its evaluation was timed at 200 s; the other stages keep the load factor.
    budget = training_budget(9.0, deadline=1000.0 + 11 * 60, now=1000.0, others=0.0, cores=2, evaluation_seconds=200.0)
    after = IDLE_NON_EVALUATION_SECONDS + EVALUATION_MARGIN * 200.0
    assert budget.after_training_seconds == pytest.approx(after)
    assert budget.minutes == pytest.approx(11 - after / 60) and budget.busy and budget.threads == 2
    line = budget.describe(total_minutes=14)
    assert line.startswith("time budget: training gets") and f"expected to take {after:.0f} s" in line
    loaded = training_budget(9.0, deadline=10**6, now=0.0, others=2.0, cores=2, evaluation_seconds=200.0)
    assert loaded.after_training_seconds == pytest.approx(2 * IDLE_NON_EVALUATION_SECONDS + EVALUATION_MARGIN * 200.0)


@pytest.mark.parametrize(("others", "cores", "threads"), [(0.4, 2, 2), (0.6, 2, 1), (2.0, 2, 1), (5.0, 2, 1),
                                                         (3.0, 8, 5)])
def test_training_takes_the_cores_the_other_work_leaves_free_and_at_least_one(
        others: float, cores: int, threads: int) -> None:
    assert training_budget(9.0, deadline=10**6, now=0.0, others=others, cores=cores).threads == threads


def test_a_spent_deadline_still_trains_the_minimum_and_a_short_request_is_kept() -> None:
    assert training_budget(9.0, deadline=1000.0, now=1500.0, others=0.0, cores=2).minutes == MIN_TRAINING_MINUTES
    assert training_budget(0.1, deadline=1000.0, now=1500.0, others=0.0, cores=2).minutes == 0.1
