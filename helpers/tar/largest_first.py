"""A pool of threads whose idle threads take the largest queued job first.

ChunkedCompressor's chunks differ in size (xz: 16 MiB in usr/, 4 MiB
elsewhere, and whatever is left where usr/ ends), and with first-in,
first-out the last big chunk can start late and be compressed by one core
while the others wait (issue 19: on the nginx example's root the final ~20
MiB usr/ chunk started after the small ones).  Taking the largest waiting
chunk first ends the pack with the small ones, which fill in around it.
Only the order of the work changes: the output is written in stream order.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

# (-size, submission number, job, its future): the number breaks ties in
# submission order and keeps the heap from ever comparing jobs
_Entry = tuple[int, int, Callable[[], Any], "Future[Any]"]


class LargestFirstPool:
    def __init__(self, workers: int, name: str) -> None:
        self._queue: list[_Entry] = []
        self._changed = threading.Condition()
        self._numbers = itertools.count()
        self._closing = False
        self._threads = [threading.Thread(target=self._work, name=f"{name}_{i}", daemon=True)
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, size: int, job: Callable[[], Any]) -> Future[Any]:
        """Run JOB, of SIZE (larger runs sooner), on a free thread."""
        future: Future[Any] = Future()
        with self._changed:
            if self._closing:
                raise RuntimeError("submit() after shutdown()")
            heapq.heappush(self._queue, (-size, next(self._numbers), job, future))
            self._changed.notify()
        return future

    def _work(self) -> None:
        while True:
            with self._changed:
                while not self._queue and not self._closing:
                    self._changed.wait()
                if not self._queue:
                    return
                _, _, job, future = heapq.heappop(self._queue)
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = job()
            except BaseException as error:  # handed to whoever waits on the future
                future.set_exception(error)
            else:
                future.set_result(result)

    def shutdown(self, cancel: bool) -> None:
        """Wait for the threads to finish the queued jobs (CANCEL: only the
        running ones; the queued ones are cancelled)."""
        with self._changed:
            self._closing = True
            if cancel:
                for *_, future in self._queue:
                    future.cancel()
                self._queue.clear()
            self._changed.notify_all()
        for thread in self._threads:
            thread.join()
