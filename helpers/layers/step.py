"""Running one build step as a layer: the part every step helper shares.

Ninja calls `python -m acigen.helpers.X --step STEPFILE --stamp STAMP`.
The step file (written by acigen) says which layer to build, which layers
lie below it, and the step itself.  This module removes the old stamp,
enters a private mount namespace, rebuilds the layer from scratch over the
merged view of the layers below, and writes the stamp last.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence

from acigen.errors import ExitCode, UsageError
from acigen.fileio import atomic_write, json_bytes, remove_file, write_depfile
from acigen.helpers.core import buildlock
from acigen.helpers.core.common import run_main, watch_for_orphaning
from acigen.helpers.layers import layerrecord, layers
from acigen.stepspec import StepSpec, load_spec

TYPE_CHECKING = False  # typing costs every step ~2 ms to import
if TYPE_CHECKING:
    from typing import Any, TextIO


class StepContext:
    """What a step's action gets: its definition, its root, its log.  (A
    plain class, as StepArgs: dataclasses cost every step ~5 ms to import.)"""

    def __init__(self, spec: StepSpec, root: str, log: TextIO) -> None:
        self.spec = spec
        self.root = root
        self.log = log
        self.inputs_read: list[str] = []  # host files, for the depfile

    @property
    def step(self) -> dict[str, Any]:
        return self.spec.step

    def say(self, line: str) -> None:
        """Write a line to the step's log."""
        print(line, file=self.log, flush=True)


Action = Callable[[StepContext], str]  # returns the one-line summary


class StepArgs:
    """What ninja passes a step helper: --step FILE --stamp FILE [--depfile FILE]."""

    __slots__ = ("depfile", "stamp", "step")

    def __init__(self, step: str, stamp: str, depfile: str | None = None) -> None:
        self.step, self.stamp, self.depfile = step, stamp, depfile


STEP_OPTIONS = ("--step", "--stamp", "--depfile")


def _parse(argv: Sequence[str]) -> StepArgs:
    """Read by hand: argparse would cost every step its import time, and
    ninja always passes these three the same way."""
    given: dict[str, str] = {}
    words = list(argv)
    while words:
        name, equals, value = words.pop(0).partition("=")
        if name not in STEP_OPTIONS or name in given:
            raise UsageError(f"unexpected argument {name!r}",
                             hint="usage: --step FILE --stamp FILE [--depfile FILE]")
        if not equals:
            if not words:
                raise UsageError(f"{name} needs a file name")
            value = words.pop(0)
        given[name] = value
    for name in STEP_OPTIONS[:2]:
        if not given.get(name):
            raise UsageError(f"{name} FILE is required")
    return StepArgs(given["--step"], given["--stamp"], given.get("--depfile"))


@contextlib.contextmanager
def _log(path: str | None) -> Iterator[TextIO]:
    if not path:
        yield sys.stderr
        return
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8", errors="replace") as log:
        yield log


def run_layer_step(action: Action, args: StepArgs) -> int:
    started = time.time_ns()
    spec = load_spec(StepSpec, args.step)
    layer, lower = spec.layer, spec.lower
    if spec.cache is not None:  # --cache-repo: helpers/registry/layercache.py
        from acigen.helpers.registry.layercache import with_layer_cache
        action = with_layer_cache(action, spec.to_json())
    buildlock.hold_for(layer)
    mode = layers.choose_mode(spec.layer_mode, os.path.dirname(layer))
    layers.enter_private_mount_namespace()
    watch_for_orphaning()
    with layers.locked(layer, lower):
        done = built_meanwhile(args.stamp, started)
        if done is not None:  # by another build, while we waited for the lock
            if args.depfile:
                write_depfile(args.depfile, args.stamp, done.get("inputs", []))
            print(f"{os.path.basename(layer)}: built meanwhile by another build")
            return ExitCode.OK
        remove_file(args.stamp)  # a failed or interrupted run must not look done
        with _log(spec.log) as log, \
                layers.writable_view(layer, lower, mode) as root:
            ctx = StepContext(spec, root, log)
            summary = action(ctx)
        layerrecord.write(layer, layers.tree(layer))  # what pack and verify check
        if args.depfile:
            write_depfile(args.depfile, args.stamp, ctx.inputs_read)
        stamp = {"layer": os.path.basename(layer), "mode": mode, "summary": summary,
                 "inputs": sorted(set(ctx.inputs_read))}
        atomic_write(args.stamp, json_bytes(stamp))
    rootless = f" (layers: {layers.describe_mode(mode)})" if layers.in_user_namespace() else ""
    print(f"{os.path.basename(layer)}: {summary}{rootless}")
    return ExitCode.OK


def built_meanwhile(stamp: str, started: int) -> dict[str, Any] | None:
    """The stamp another build wrote after STARTED (ns), if any: that layer is
    finished and maybe in use; doing it again would wipe it under its user."""
    try:
        if os.stat(stamp).st_mtime_ns < started:
            return None
        with open(stamp, encoding="utf-8") as src:
            done = json.load(src)
    except (FileNotFoundError, ValueError):
        return None
    return done if isinstance(done, dict) else None


def step_main(prog: str, action: Action, argv: Sequence[str] | None) -> int:
    return run_main(prog, lambda a: run_layer_step(action, _parse(a)), argv)
