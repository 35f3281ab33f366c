"""acigen-chroot-run used by hand, on a root directory of one's own."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest

from tests.support.rootfs import busybox_tree

pytestmark = pytest.mark.usefixtures("no_mount_leaks")


def chroot_run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    program = shutil.which("acigen-chroot-run", path=str(Path(sys.executable).parent))
    assert program, "acigen-chroot-run is a console script of the package"
    return subprocess.run([program, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return busybox_tree(tmp_path / "root")


def test_a_program_runs_with_the_terminals_streams(root: Path) -> None:
    before = sorted(p.name for p in (root / "etc").iterdir())
    result = chroot_run("--env", "GREETING=hi there", "--workdir", "/tmp", str(root),
                        "/bin/sh", "-c", 'echo "$GREETING from $(pwd)"; echo made > made')
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["hi there from /tmp",
                                          f"{root}: /bin/sh: done in " +
                                          result.stdout.split("done in ")[1].strip()]
    assert (root / "tmp" / "made").read_text() == "made\n"
    assert sorted(p.name for p in (root / "etc").iterdir()) == before  # no hosts left over


def test_a_host_script_and_a_log(root: Path, tmp_path: Path) -> None:
    script = tmp_path / "hello.sh"
    script.write_text("#!/bin/sh\necho \"hello $1\"\n")
    log = tmp_path / "out.log"
    result = chroot_run("--copy", "--log", str(log), str(root), str(script), "world")
    assert result.returncode == 0, result.stderr
    assert "hello world" in log.read_text()
    assert not (root / ".acigen-build").exists()


@pytest.mark.parametrize(("args", "error"), [
    (["/nonexistent-root", "/bin/true"], "/nonexistent-root: not a directory"),
    (["ROOT"], "no PROGRAM to run"),
    (["--playbook", "x.yml", "ROOT", "/bin/true"], "--playbook takes no PROGRAM"),
])
def test_usage_mistakes_get_one_line(root: Path, args: list[str], error: str) -> None:
    result = chroot_run(*[str(root) if a == "ROOT" else a for a in args])
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == f"acigen-chroot-run: error: {error}"


def read_until(fd: int, marker: bytes, seen: bytearray, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while marker not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"no {marker!r} in {bytes(seen)!r}"
        chunk = os.read(fd, 4096)
        assert chunk, f"output ended without {marker!r}: {bytes(seen)!r}"
        seen.extend(chunk)


def test_ctrl_c_on_a_terminal_is_for_the_program(root: Path) -> None:
    # `script` gives the helper a real terminal, whose ^C goes to the whole
    # foreground process group: it must reach the program (which traps it
    # here), and not end the helper and with it the program's namespace
    program = shutil.which("acigen-chroot-run", path=str(Path(sys.executable).parent))
    # the program waits until its trap has run, however late the ^C lands
    inner = ("trap 'echo got-int; seen=1' INT; echo ready; "
             "until [ \\$seen ]; do sleep 1; done; echo still-here")
    # exec: `script` runs this in $SHELL, and a shell left waiting in between
    # (dash) would itself die of the ^C, as an interactive shell never does
    with subprocess.Popen(["script", "-qec", f"exec {program} {root} /bin/sh -c \"{inner}\"",
                           "/dev/null"], stdin=subprocess.PIPE, stdout=subprocess.PIPE) as term:
        assert term.stdin is not None and term.stdout is not None
        out = bytearray()
        try:
            read_until(term.stdout.fileno(), b"ready\r\n", out)
            type_in(term.stdin, b"\x03")
            read_until(term.stdout.fileno(), b": /bin/sh: done in", out)
            assert term.wait(timeout=60) == 0
        finally:
            term.kill()
    assert b"got-int\r\nstill-here\r\n" in out, bytes(out)


def type_in(stdin: IO[bytes], keys: bytes) -> None:
    stdin.write(keys)
    stdin.flush()
