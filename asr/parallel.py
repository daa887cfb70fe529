"""Ordered, bounded parallel maps over worker processes, shared by the corpus and feature-cache builders."""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from types import TracebackType
from typing import Callable, Iterable, Iterator, TypeVar

A = TypeVar("A")
R = TypeVar("R")


class WorkerPool:
    """Worker processes (default: one per core) that run any number of ordered maps.

    workers=1 runs everything in this process, which saves the start-up cost
    (about half a second) for small jobs and tests. Functions passed to `map`
    must be module-level (they are pickled by name), and scripts that use a
    pool need the usual `if __name__ == "__main__":` guard.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        # forkserver: workers start clean even when the caller runs threads (tqdm's monitor, torch).
        self._pool = (
            None if self.workers == 1
            else ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("forkserver"))
        )

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def map(self, fn: Callable[[A], R], items: Iterable[A], ahead: int | None = None) -> Iterator[R]:
        """`fn` over `items`, results in input order.

        At most `ahead` calls (default 4 per worker) run before their results
        are taken, so `items` may be endless; closing the iterator early cancels
        calls not yet started and waits for the running ones.
        """
        if self._pool is None:
            yield from map(fn, items)
            return
        ahead = ahead or 4 * self.workers
        pending: deque[Future[R]] = deque()
        try:
            for item in items:
                pending.append(self._pool.submit(fn, item))
                if len(pending) >= ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
            wait(pending)


def ordered_map(fn: Callable[[A], R], items: Iterable[A], workers: int | None = None) -> Iterator[R]:
    """One `WorkerPool.map` in a pool of its own."""
    with WorkerPool(workers) as pool:
        yield from pool.map(fn, items)
