"""What the benchmark scripts share: timing runs, their medians, and the import path.

Every script times whole programs (interpreter start included) with `timed`, runs
the variants it compares in turns with `interleaved` (so a machine busy with other
work slows all of them alike) and reports medians.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def use_repo_support() -> None:
    """Make `tests.support` importable without shadowing the installed acigen.

    The repository's acigen/ has no helpers/ inside (setuptools maps helpers/ to
    acigen.helpers at install time), so the installed package must be imported
    first and the repository goes to the end of the path."""
    import acigen.helpers  # noqa: F401 - loaded now, from where it is installed

    if str(REPO) not in sys.path:
        sys.path.append(str(REPO))


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds
    cpu: float  # user + system seconds of the child processes


def timed(run: Callable[[], object]) -> Sample:
    """Wall time of RUN and the CPU time of the child processes it waited for."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Sample(wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))


def median(samples: Sequence[Sample]) -> Sample:
    return Sample(statistics.median(s.wall for s in samples),
                  statistics.median(s.cpu for s in samples))


@dataclass(frozen=True)
class Variant:
    """One thing to time; PREPARE runs before each run, untimed."""
    run: Callable[[], object]
    prepare: Callable[[], object] | None = None


def interleaved(variants: Mapping[str, Variant], runs: int,
                warm_up: bool = False) -> dict[str, list[Sample]]:
    """RUNS samples of each variant, taken in turns."""
    if warm_up:
        for variant in variants.values():
            _once(variant)
    samples: dict[str, list[Sample]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, variant in variants.items():
            samples[name].append(_once(variant))
    return samples


def repeated(variant: Variant, runs: int) -> list[Sample]:
    """RUNS samples of one variant, one after another (for variants that must not
    take turns, e.g. a warm cache timed right after the run that warms it)."""
    return [_once(variant) for _ in range(runs)]


def _once(variant: Variant) -> Sample:
    if variant.prepare is not None:
        variant.prepare()
    return timed(variant.run)


def run_quietly(cmd: Sequence[str], cwd: Path | None = None,
                env: Mapping[str, str] | None = None) -> str:
    """Run CMD; its output (for the error) only if it fails."""
    result = subprocess.run(list(cmd), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
        raise RuntimeError(f"{' '.join(cmd)} exited {result.returncode}:\n" + "\n".join(tail))
    return result.stdout
