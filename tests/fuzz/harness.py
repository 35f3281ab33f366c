"""Run fuzz cases against the helpers, in process, and keep score.

Every case must end in exit 0 or 1 (never 3, "internal error"), with at most
one error line (and a hint), in under CASE_LIMIT seconds of CPU (its own and
its children's: wall time on a loaded machine says more about the machine than
about the case); a case still running after HANG_LIMIT seconds of wall time is
stopped by SIGALRM and counted as a hang.  At the
end each suite prints cases run, internal errors, its slowest case and the
peak memory of the process, which must stay under MEMORY_LIMIT_MIB.
"""

from __future__ import annotations

import io
import resource
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field

import pytest

CASE_LIMIT = 2.0
HANG_LIMIT = 30  # wall: 2 s of CPU can take this long on a busy 2-core machine
MEMORY_LIMIT_MIB = 1024  # the peak RSS of the whole test process


def cpu_seconds() -> float:
    """User and system time of this process and its waited-for children."""
    own, children = (resource.getrusage(who) for who in
                     (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def peak_rss_mib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10


class Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise Hang()


@dataclass
class Score:
    suite: str
    cases: int = 0
    internal: int = 0
    slowest: tuple[float, str] = (0.0, "")
    failures: list[str] = field(default_factory=list)

    def record(self, label: str, seconds: float, problem: str | None) -> None:
        self.cases += 1
        self.slowest = max(self.slowest, (seconds, label))
        if seconds > CASE_LIMIT:
            problem = problem or f"took {seconds:.2f} s of CPU"
        if problem:
            self.failures.append(f"{label}: {problem}")

    def summary(self) -> str:
        seconds, label = self.slowest
        return (f"fuzz {self.suite}: {self.cases} cases, {self.internal} internal errors, "
                f"{len(self.failures)} failures, slowest {seconds:.3f} s of CPU ({label}), "
                f"peak RSS {peak_rss_mib()} MiB")


def judge(code: int | None, stderr: str) -> str | None:
    """What is wrong with a helper's outcome, or None."""
    lines = stderr.strip().splitlines()
    if code not in (0, 1):
        return f"exit {code}: {stderr.strip()[:300]}"
    if len(lines) > 2 or (len(lines) == 2 and not lines[1].startswith("hint: ")):
        return f"{len(lines)} error lines: {stderr[:300]}"
    return None


@contextmanager
def scored(suite: str, capsys: pytest.CaptureFixture[str]) -> Iterator[Score]:
    """A Score for SUITE; its summary printed past pytest's capture, then
    every failure asserted away."""
    score = Score(suite)
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        yield score
    finally:
        signal.signal(signal.SIGALRM, previous)
        with capsys.disabled():
            print("\n" + score.summary())
    assert score.internal == 0 and not score.failures, "\n".join(score.failures[:20])
    assert peak_rss_mib() < MEMORY_LIMIT_MIB, score.summary()


def as_run(main: Callable[[list[str]], int], args: list[str]) -> tuple[int, str]:
    """MAIN(ARGS) with standard streams as a helper has them under ninja: a
    strict UTF-8 stdout, a stderr that escapes what it cannot encode."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
    with redirect_stdout(out), redirect_stderr(err):
        code = main(args)
    err.seek(0)
    return code, err.read()


def run_case(score: Score, label: str, body: Callable[[], tuple[int | None, str]]) -> None:
    """Run BODY (returning exit code and stderr) as one case of SCORE."""
    start = cpu_seconds()
    signal.alarm(HANG_LIMIT)
    try:
        code, stderr = body()
        problem = judge(code, stderr)
    except Hang:
        code, problem = None, f"still running after {HANG_LIMIT} s"
    except Exception as exc:
        code, problem = 3, f"raised {type(exc).__name__}: {exc}"[:300]
    finally:
        signal.alarm(0)
    if code == 3:
        score.internal += 1
    score.record(label, cpu_seconds() - start, problem)
