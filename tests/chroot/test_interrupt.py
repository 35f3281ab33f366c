"""Killing ninja (SIGINT, SIGTERM, SIGKILL) or the helper (SIGKILL) while a
chroot step runs leaves no mount, no process, no container in the
runtime's state, no cgroup and no stamp; the next run redoes the step from
a clean layer and succeeds."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from acigen.helpers.chroot_run.container import STATE_ROOT
from tests.chroot.stepkit import (
    Build,
    Step,
    children,
    namespace,
    pids_in,
    pids_with,
    pids_working_in,
    sh,
    wait_until,
)
from tests.support.leaks import mounts_under
from tests.support.rootfs import busybox_tree
from tests.support.tools import ninja

pytestmark = pytest.mark.usefixtures("no_mount_leaks")

# the first run marks its layer and blocks; once /go is in the base layer, a
# run finishes at once: so the rerun is the same step, and must start clean
SLEEP = "sleep 3171.5"
SCRIPT = f"if [ -e /go ]; then echo fast > /done; else echo x > /first-run; {SLEEP}; fi"


def write_ninja_file(build: Build, step: Step) -> None:
    (build.dir / "build.ninja").write_text(
        "ninja_required_version = 1.10\n"
        f"python = {sys.executable}\n"
        "rule chroot_run\n"
        "  command = $python -m acigen.helpers.chroot_run --step $step --stamp $out\n"
        "  description = chroot-run $step\n"
        f"build {step.stamp.relative_to(build.dir)}: chroot_run {step.stepfile}\n"
        f"  step = {step.stepfile}\n")


@dataclass
class Running:
    """A ninja building the step, caught while the step's program sleeps."""

    ninja: subprocess.Popen[bytes]
    helper: int
    runtime: int  # `runc run`
    sleeper: int
    namespaces: dict[str, str]
    container: str

    def gone(self) -> bool:
        pids = [self.helper, self.runtime, self.sleeper]
        return not any(os.path.exists(f"/proc/{pid}") and _alive(pid) for pid in pids) and \
            not any(pids_in(ns, kind) for kind, ns in self.namespaces.items())


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as src:
            return src.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start(build: Build, step: Step, output: Path) -> Running:
    with open(output, "wb") as out:
        proc = subprocess.Popen([ninja(), "-C", str(build.dir)], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    sleeper = wait_until(lambda: pids_with(SLEEP), what="the step's sleep")[0]
    helper = next(p for p in pids_working_in(build.dir)
                  if _cmdline(p).startswith(f"{sys.executable} -m acigen.helpers.chroot_run"))
    runtime = next(p for p in children(helper) if " run --bundle " in _cmdline(p))
    container = _cmdline(runtime).split()[-1]
    namespaces = {"mnt": namespace(helper, "mnt"), "pid": namespace(sleeper, "pid")}
    assert namespaces["mnt"] != namespace(os.getpid(), "mnt")
    assert namespaces["pid"] != namespace(os.getpid(), "pid")
    assert container in runtime_containers()
    assert cgroups_of(container)  # the runtime made them: their removal below means something
    return Running(proc, helper, runtime, sleeper, namespaces,  # type: ignore[arg-type]
                   container)


def runtime_containers() -> list[str]:
    """The runtime's containers (`runc list` of acigen's state directory)."""
    state = Path(STATE_ROOT) / "runc"
    return sorted(p.name for p in state.iterdir()) if state.is_dir() else []


def cgroups_of(container: str) -> list[str]:
    """Cgroup directories named after CONTAINER, under every hierarchy."""
    top = Path("/sys/fs/cgroup")
    return [str(path) for path in top.glob(f"*/**/{container}")] + \
        [str(path) for path in top.glob(f"**/{container}") if path.parent == top]


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as src:
            return src.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.fixture
def build(tmp_path: Path) -> Iterator[Build]:
    made = Build(tmp_path / "build")
    yield made
    # should a test fail half-way, do not leave its processes running
    for pid in pids_with(str(made.dir)) + pids_with(SLEEP):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(("victim", "sig"), [
    ("ninja", signal.SIGINT),
    ("ninja", signal.SIGTERM),
    ("ninja", signal.SIGKILL),
    ("helper", signal.SIGKILL),
])
def test_an_interrupted_step_leaves_nothing_and_reruns_clean(
        build: Build, tmp_path: Path, victim: str, sig: signal.Signals) -> None:
    base = build.base(busybox_tree)
    step = build.step("01-slow", sh(SCRIPT), [base])
    write_ninja_file(build, step)
    running = start(build, step, tmp_path / "ninja-1.out")
    assert (step.tree / "first-run").exists()

    os.kill(running.ninja.pid if victim == "ninja" else running.helper, sig)
    running.ninja.wait(timeout=60)
    wait_until(running.gone, what="the helper, runc, sleep and their namespaces to go")
    wait_until(lambda: running.container not in runtime_containers(),
               what="the runtime to forget the container")
    assert cgroups_of(running.container) == []
    assert pids_with(SLEEP) == []
    assert pids_working_in(build.dir) == []  # no ninja, shell or helper
    assert mounts_under([build.dir]) == set()
    assert not step.stamp.exists()
    if sig != signal.SIGKILL:
        assert "interrupted" in (tmp_path / "ninja-1.out").read_text()

    (base / "tree" / "go").write_text("")
    rerun = subprocess.run([ninja(), "-C", str(build.dir)], capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert step.stamp.exists()
    assert (step.tree / "done").read_text() == "fast\n"
    assert not (step.tree / "first-run").exists()  # the half-done layer was wiped
