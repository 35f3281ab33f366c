"""Let cleanup finish before a signal unwinds the helper.

Ctrl-C, SIGTERM and SIGHUP normally raise in the middle of whatever runs.
During teardown (unmounting, taking scaffolding out of the image) that
would leave the job half undone, so these signals are held back until the
block ends and then delivered as usual.  SIGKILL cannot be held back; for
that case the private mount namespace and the PID namespace's death signal
clean up instead.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

HELD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may change handlers (and receives them)
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: caught.append(signum))
                for sig in HELD}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            signal.raise_signal(caught[0])
