"""LargestFirstPool: free threads take the largest waiting job (issue 19's xz pack row)."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError, Future
from typing import Any

import pytest

from acigen.helpers.tar.largest_first import LargestFirstPool


def busy(pool: LargestFirstPool) -> tuple[threading.Event, Future[Any]]:
    """Occupy POOL's one thread until the returned event is set."""
    release, started = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        assert release.wait(10)

    future = pool.submit(1, hold)
    assert started.wait(10)
    return release, future


def test_the_largest_waiting_job_runs_first_ties_in_order() -> None:
    pool = LargestFirstPool(1, "test")
    release, _ = busy(pool)
    ran: list[str] = []
    futures = [pool.submit(size, lambda name=name: ran.append(name))
               for name, size in [("small", 3), ("big", 10), ("mid a", 5), ("mid b", 5)]]
    release.set()
    pool.shutdown(cancel=False)
    assert ran == ["big", "mid a", "mid b", "small"]
    assert all(f.done() and f.exception() is None for f in futures)


def test_results_and_errors_reach_the_futures() -> None:
    pool = LargestFirstPool(2, "test")
    good = pool.submit(1, lambda: 42)

    def fail() -> None:
        raise ValueError("broken chunk")

    bad = pool.submit(2, fail)
    assert good.result(10) == 42
    with pytest.raises(ValueError, match="broken chunk"):
        bad.result(10)
    pool.shutdown(cancel=False)


def test_shutdown_with_cancel_drops_waiting_jobs_and_ends_every_thread() -> None:
    before = threading.active_count()
    pool = LargestFirstPool(1, "test")
    release, running = busy(pool)
    waiting = pool.submit(5, lambda: "never")
    releaser = threading.Timer(0.2, release.set)  # the running job ends during shutdown
    releaser.start()
    pool.shutdown(cancel=True)
    releaser.join()
    assert running.done() and running.exception() is None
    with pytest.raises(CancelledError):
        waiting.result(0)
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(1, lambda: None)
    assert threading.active_count() == before
