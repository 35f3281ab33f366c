"""The tests' leak check sees what a test left under its directories, and
nothing else: a busy machine's own mounts must not fail the suite."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import leaks

pytestmark = pytest.mark.needs_root  # every test here mounts


@pytest.fixture
def elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory outside the session's test directories, unmounted and
    removed only after no_mount_leaks has looked (fixtures unwind in reverse)."""
    place = Path(tempfile.mkdtemp(prefix="acigen-unrelated-", dir="/var/tmp"))
    assert not str(place).startswith(str(tmp_path_factory.getbasetemp()))
    yield place
    subprocess.run(["umount", str(place)], capture_output=True)
    place.rmdir()


def test_an_unrelated_mount_during_a_test_is_not_a_leak(elsewhere: Path,
                                                        no_mount_leaks) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "unrelated", str(elsewhere)], check=True)
    assert leaks.mounts_under([elsewhere]) == {str(elsewhere)}


def test_a_mount_under_the_test_directory_is_a_leak(tmp_path: Path) -> None:
    before = leaks.snapshot([tmp_path])
    target = tmp_path / "mnt"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "leak", str(target)], check=True)
    try:
        message = leaks.left_behind(before, leaks.snapshot([tmp_path]))
    finally:
        subprocess.run(["umount", str(target)], check=True)
    assert message == f"mounts left behind: {[str(target)]}"
    assert leaks.left_behind(before, leaks.snapshot([tmp_path])) == ""


def wait_for_exec(pid: int, program: bytes) -> None:
    """Wait (at most 10 s) until PID's command line starts with PROGRAM."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/cmdline", "rb") as src:
            if src.read().startswith(program):
                return
        time.sleep(0.01)
    raise AssertionError(f"{pid} never ran {program!r}")


def test_a_process_in_another_namespace_working_there_is_a_leak(tmp_path: Path) -> None:
    before = leaks.snapshot([tmp_path])
    target = tmp_path / "private"
    target.mkdir()
    script = f"mount -t tmpfs t '{target}' && cd '{target}' && echo ready && exec sleep 600"
    with subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                          stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
            wait_for_exec(holder.pid, b"sleep\0")  # sh said ready just before its exec
            message = leaks.left_behind(before, leaks.snapshot([tmp_path]))
        finally:
            holder.kill()
    assert message == (f"mounts left behind: {[str(target)]}; "
                       f"processes left behind: {[(holder.pid, 'sleep 600')]}")
