"""No wrong image: what one build directory shared by several builds, or a
damaged or busy build directory, can do to an image (issue 15)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.build import acigen, run_ninja
from tests.support.busybox import busybox_tar, image_file, shell, write_manifest
from tests.support.httpserver import FileServer, Resource
from tests.support.procs import pids_with
from tests.support.tools import ninja, validate_aci


def base_tar(top: Path) -> Path:
    tar = top / "base.tar"
    if not tar.exists():
        tar.write_bytes(busybox_tar())
    return tar


def copy_data(work: Path, content: str) -> Path:
    """WORK/m.json: the busybox root from ../base.tar, plus WORK/data.txt."""
    work.mkdir(parents=True, exist_ok=True)
    base_tar(work.parent)
    (work / "data.txt").write_text(content)
    return write_manifest(work / "m.json", [
        {"type": "image", "path": "../base.tar"},
        {"type": "copy_host_files", "files": [["data.txt", "/data.txt"]]}])


def sharing_one_builddir(tmp_path: Path) -> tuple[Path, Path]:
    """Two build files, x/ and y/, each copying its own data.txt, one -B."""
    x, y = tmp_path / "x", tmp_path / "y"
    for work in (x, y):
        copy_data(work, f"from {work.name}\n")
        acigen(work, "-B", "../shared", "m.json")
    return x, y


def test_same_relative_input_in_two_directories_gives_two_layers(tmp_path: Path) -> None:
    x, y = sharing_one_builddir(tmp_path)
    run_ninja(x)
    run_ninja(y)
    for work in (x, y):
        validate_aci(work / "m.aci")
        assert image_file(work / "m.aci", "rootfs/data.txt") == f"from {work.name}\n".encode()
    layers = {p.name for p in (tmp_path / "shared" / "layers").iterdir() if p.is_dir()}
    assert len([n for n in layers if "-image-" in n]) == 1  # one base.tar: one layer
    assert len([n for n in layers if "-copy-" in n]) == 2


def image_modes(aci: Path) -> dict[str, int]:
    with tarfile.open(aci) as tar:
        return {m.name: m.mode for m in tar.getmembers()}


def test_the_umask_does_not_change_the_image(tmp_path: Path) -> None:
    ids = []
    for umask in ("022", "077"):
        work = tmp_path / umask
        work.mkdir()
        (work / "data.txt").write_text("data\n")
        write_manifest(work / "m.json", [
            {"type": "copy_host_files", "files": [["data.txt", "/usr/bin/data.txt"]]}])
        acigen(work, "m.json")
        subprocess.run(["sh", "-c", f"umask {umask} && exec {ninja()}"], cwd=work,
                       check=True, capture_output=True)
        validate_aci(work / "m.aci")
        modes = image_modes(work / "m.aci")
        assert [modes[d] for d in ("rootfs", "rootfs/usr", "rootfs/usr/bin")] == [0o755] * 3
        ids.append((work / "m.aci.id").read_text())
    assert ids[0] == ids[1]


def test_the_unpack_fetches_a_damaged_download_again(tmp_path: Path) -> None:
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    with FileServer() as server:
        url = server.add("/base.tar", Resource(busybox_tar()))
        write_manifest(work / "m.json", [{"type": "image", "url": url}])
        acigen(work, "--cache-dir", str(cache), "m.json")
        run_ninja(work)
        first = (work / "m.aci").read_bytes()
        [cached] = (cache / "fetch" / "sha256").iterdir()
        os.truncate(cached, cached.stat().st_size // 2)
        for stamp in (work / ".acigen" / "layers").glob("*.stamp"):
            stamp.unlink()  # the unpack runs again; the fetch's ref is up to date
        run_ninja(work)
        assert len(server.requests) == 2
    assert cached.read_bytes() == busybox_tar()
    validate_aci(work / "m.aci")
    assert (work / "m.aci").read_bytes() == first


def slow_steps(work: Path, seconds: float = 1.0) -> Path:
    """WORK/m.json: the busybox root, then three steps that take SECONDS each."""
    work.mkdir(parents=True, exist_ok=True)
    base_tar(work)
    return write_manifest(work / "m.json", [
        {"type": "image", "path": "base.tar"},
        *(shell(f"sleep {seconds}; echo {n} > /{n}") for n in ("one", "two", "three"))])


def start_ninja(work: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([ninja()], cwd=work, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_for_step(work: Path, number: int, proc: subprocess.Popen[str]) -> None:
    """Until step NUMBER's log exists: ninja is running it."""
    deadline = time.monotonic() + 60
    while not list((work / ".acigen" / "logs").glob(f"{number:02d}-*.log")):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)


def test_two_ninjas_at_once_both_make_the_right_image(tmp_path: Path) -> None:
    work = tmp_path / "work"
    slow_steps(work)
    acigen(work, "m.json")
    first = start_ninja(work)
    wait_for_step(work, 3, first)  # step 2 runs: it reads the first two layers
    second = start_ninja(work)
    outputs = [proc.communicate(timeout=120)[0] for proc in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    # each waited for the layers the other was making: every step ran once
    both = "".join(outputs)
    assert both.count("done in") == 3 and both.count("unpacked base.tar") == 1, outputs
    assert "built meanwhile by another build" in both
    validate_aci(work / "m.aci")
    for n in ("one", "two", "three"):
        assert image_file(work / "m.aci", f"rootfs/{n}") == f"{n}\n".encode()


@pytest.mark.parametrize("tool", ["ninja", "make"])
def test_clean_and_gc_refuse_all_through_a_running_build(tool: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    slow_steps(work, seconds=0.3)
    acigen(work, "--format", tool, "m.json")
    build = subprocess.Popen([ninja() if tool == "ninja" else "make"], cwd=work,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for_step(work, 1, build)
    refusals = set()
    while build.poll() is None:  # during steps and between them
        for command in ("clean", "gc"):
            tried = acigen(work, command, check=False)
            if build.poll() is not None:
                break
            assert tried.returncode == 1, tried.stdout + tried.stderr
            line, hint = tried.stderr.splitlines()
            assert "nothing was removed" in line and hint.startswith("hint: ")
            refusals.add(line.split(":")[0])
    output = build.communicate()[0]
    assert build.returncode == 0, output
    assert refusals
    validate_aci(work / "m.aci")
    assert image_file(work / "m.aci", "rootfs/three") == b"three\n"


def test_a_damaged_layer_never_reaches_the_image(tmp_path: Path) -> None:
    work = tmp_path / "work"
    slow_steps(work, seconds=0)
    acigen(work, "m.json")
    run_ninja(work)
    image_id = (work / "m.aci.id").read_text()
    assert acigen(work, "verify").stdout.endswith(": no problems\n")
    [one] = (work / ".acigen" / "layers").glob("02-cmd-*/tree/one")
    os.truncate(one, 2)  # "one\n" cut short, as by a full disk or a crash
    found = acigen(work, "verify", check=False)
    assert found.returncode == 1
    assert f"layer {one.parent.parent}: changed since its step made it: one has 2 bytes, " \
           "not 4" in found.stdout, found.stdout
    (work / "m.aci").unlink()
    stopped = run_ninja(work, check=False)
    assert stopped.returncode == 1 and "one has 2 bytes, not 4" in stopped.stdout
    assert not (work / "m.aci").exists()
    run_ninja(work)  # the damaged layer lost its stamp: redone, with the ones after it
    validate_aci(work / "m.aci")
    assert (work / "m.aci.id").read_text() == image_id
    assert acigen(work, "verify").returncode == 0


def interrupt_after(work: Path, delay: float) -> tuple[int, str]:
    """Start ninja as a terminal would (its own session), Ctrl-C it after DELAY
    seconds: SIGINT to its whole process group.  (exit code, output)."""
    proc = subprocess.Popen([ninja()], cwd=work, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    time.sleep(delay)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    output = proc.communicate(timeout=60)[0]
    return proc.returncode, output


def test_ctrl_c_during_regeneration_is_a_clean_interruption(tmp_path: Path) -> None:
    work = tmp_path / "work"
    slow_steps(work, seconds=0)
    acigen(work, "m.json")
    interrupted = 0
    for step in range(25):
        os.utime(work / "m.json")  # ninja regenerates build.ninja first
        code, output = interrupt_after(work, 0.01 * step)
        assert "Fatal Python error" not in output and "Traceback" not in output, output
        if "rebuilding 'build.ninja': interrupted" in output:
            interrupted += 1
            assert code == 1, output  # ninja's own exit code for this case
    assert interrupted
    run_ninja(work)  # the build file is whole: the next build goes on
    validate_aci(work / "m.aci")


def start_acigen_b(work: Path) -> subprocess.Popen[str]:
    """`acigen -b m.json` as a user types it (the console script), in its own
    session, once acigen.console.main (which catches a Ctrl-C while the rest
    of acigen loads) runs: a Ctrl-C during Python's own start, or in the few
    lines of the script pip writes, is Python's to report.  Import times
    tell when (the first acigen module main imports); they are left out of
    the output."""
    command = [os.path.join(os.path.dirname(sys.executable), "acigen"), "-b", "m.json"]
    proc = subprocess.Popen(command, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True,
                            env=dict(os.environ, PYTHONPROFILEIMPORTTIME="1"))
    assert proc.stdout is not None
    for line in proc.stdout:  # a line per finished import, the module's name last
        if line.rsplit("|", 1)[-1].strip().startswith("acigen.") and "console" not in line:
            break
    return proc


def ctrl_c(proc: subprocess.Popen[str]) -> tuple[int, str]:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    output = proc.communicate(timeout=120)[0]
    return proc.returncode, "".join(line for line in output.splitlines(keepends=True)
                                    if not line.startswith("import time:"))


def assert_interrupted(code: int, output: str) -> None:
    assert "Traceback" not in output and "Fatal Python error" not in output, output
    assert (code, output.splitlines()[-1]) == (130, "acigen: interrupted"), output


def test_ctrl_c_of_acigen_b_exits_130(tmp_path: Path, no_mount_leaks) -> None:
    """While acigen loads, generates and runs ninja (with nothing to do), and
    while a step runs: one line, exit 130, no traceback."""
    work = tmp_path / "work"
    slow_steps(work, seconds=0)
    acigen(work, "m.json")
    run_ninja(work)
    interrupted = 0
    for delay in (0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8):
        proc = start_acigen_b(work)
        time.sleep(delay)
        code, output = ctrl_c(proc)
        if code != 0:  # else acigen was done before the Ctrl-C
            assert_interrupted(code, output)
            interrupted += 1
    assert interrupted
    write_manifest(work / "m.json", [{"type": "image", "path": "base.tar"},
                                     shell("sleep 3; echo slow > /slow")])
    proc = start_acigen_b(work)
    wait_for_step(work, 2, proc)
    time.sleep(0.5)  # the step's helper is past its start: its command runs
    assert_interrupted(*ctrl_c(proc))
    run_ninja(work)  # the build file is whole and the interrupted step is redone
    assert image_file(work / "m.aci", "rootfs/slow") == b"slow\n"
    validate_aci(work / "m.aci")


def test_ctrl_c_during_make_regeneration_is_a_clean_interruption(tmp_path: Path,
                                                                 no_mount_leaks) -> None:
    """make runs the regeneration command acigen writes, as ninja does.  The
    image is built first, so that make, once its Makefile is remade, has
    nothing to do: every Ctrl-C lands in make or in the regeneration."""
    work = tmp_path / "work"
    slow_steps(work, seconds=0)
    acigen(work, "--format", "make", "-f", "Makefile", "m.json")
    subprocess.run(["make"], cwd=work, capture_output=True, check=True)
    interrupted = 0
    for step in range(25):
        os.utime(work / "m.json")  # make remakes its Makefile first
        proc = subprocess.Popen(["make"], cwd=work, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        time.sleep(0.01 * step)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        output = proc.communicate(timeout=120)[0]
        assert "Traceback" not in output and "Fatal Python error" not in output, output
        if "acigen: interrupted" in output:  # acigen's exit code, as make reports it
            interrupted += 1
            assert "] Error 130" in output, output
    assert interrupted
    done = subprocess.run(["make"], cwd=work, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr  # the Makefile is whole
    validate_aci(work / "m.aci")


def test_kill_9_of_make_stops_the_running_step(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    base_tar(work)
    write_manifest(work / "m.json", [{"type": "image", "path": "base.tar"},
                                     shell("sleep 4; echo late > /late")])
    acigen(work, "--format", "make", "m.json")
    build = subprocess.Popen(["make"], cwd=work, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for_step(work, 2, build)
    time.sleep(0.5)  # the step's command runs
    build.kill()
    build.wait()
    time.sleep(5)  # past the step's own end
    assert not list((work / ".acigen" / "layers").glob("02-*.stamp"))
    assert pids_with(str(work / ".acigen")) == []
    again = subprocess.run(["make"], cwd=work, capture_output=True, text=True)
    assert again.returncode == 0, again.stdout + again.stderr
    assert image_file(work / "m.aci", "rootfs/late") == b"late\n"


def step_helper(work: Path) -> int:
    """The pid of WORK's running step helper, once it is in its own mount
    namespace (it may be between its start and its unshare, or chdir'd)."""
    ours = os.readlink("/proc/self/ns/mnt")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for pid in pids_with("acigen.helpers.chroot_run"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/cwd").startswith(str(work)) and \
                        os.readlink(f"/proc/{pid}/ns/mnt") != ours:
                    return pid
        time.sleep(0.05)
    raise AssertionError("no step helper of this build in its own namespace")


@pytest.fixture
def shared_area(tmp_path: Path) -> Iterator[Path]:
    """A shared mount, as / is on a systemd host, for unrelated filesystems."""
    area = tmp_path / "area"
    area.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(area)], check=True)
    subprocess.run(["mount", "--make-shared", str(area)], check=True)
    try:
        yield area
    finally:
        subprocess.run(["umount", "-R", str(area)], check=True)


def test_a_running_step_lets_the_host_unmount_unrelated_filesystems(
        tmp_path: Path, shared_area: Path) -> None:
    unrelated = shared_area / "usb"
    unrelated.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(unrelated)], check=True)
    work = tmp_path / "work"
    work.mkdir()
    base_tar(work)
    write_manifest(work / "m.json", [{"type": "image", "path": "base.tar"},
                                     shell("sleep 3")])
    acigen(work, "m.json")
    build = start_ninja(work)
    wait_for_step(work, 2, build)
    helper = step_helper(work)
    assert str(unrelated) in Path(f"/proc/{helper}/mountinfo").read_text()
    subprocess.run(["umount", str(unrelated)], check=True)
    time.sleep(0.2)
    held = Path(f"/proc/{helper}/mountinfo").read_text()
    output = build.communicate(timeout=60)[0]
    assert build.returncode == 0, output
    assert str(unrelated) not in held  # released in the step's namespace too


def test_a_regeneration_for_one_build_file_never_hides_anothers_edit(tmp_path: Path) -> None:
    x, y = sharing_one_builddir(tmp_path)
    run_ninja(x)
    run_ninja(y)
    time.sleep(0.01)
    write_manifest(y / "m.json", [
        {"type": "image", "path": "../base.tar"},
        {"type": "copy_host_files", "files": [["data.txt", "/edited.txt"]]}])
    time.sleep(0.01)
    os.utime(x / "m.json")
    run_ninja(x)  # regenerates x's build file
    run_ninja(y)
    validate_aci(y / "m.aci")
    assert image_file(y / "m.aci", "rootfs/edited.txt") == b"from y\n"
