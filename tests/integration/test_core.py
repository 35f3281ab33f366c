"""End to end: manifest -> build.ninja -> real ninja -> a valid, runnable ACI.

Also what makes the build trustworthy: a rebuild redoes only what changed,
the same inputs give the same bytes, and a killed build leaves nothing
mounted and finishes on the next run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.chroot.stepkit import wait_until
from tests.support import runc
from tests.support.build import acigen, is_noop, run_ninja, step_numbers
from tests.support.leaks import mounts_under
from tests.support.tools import ninja, validate_aci

EXAMPLES = Path(__file__).parent.parent.parent / "examples"
STEPS = "-aci-packer-build-steps-"


def write_manifest(path: Path, steps: list[dict], **extra: object) -> Path:
    doc = {"name": "example.com/test", "app": {"exec": ["/bin/busybox", "true"], "user": "0",
                                               "group": "0"}, **extra, STEPS: steps}
    path.write_text(json.dumps(doc, indent=2))
    return path


@pytest.fixture
def bash_example(tmp_path: Path) -> Path:
    work = tmp_path / "bash"
    shutil.copytree(EXAMPLES / "bash", work)
    return work


def test_bash_example_builds_validates_and_runs(bash_example: Path, no_mount_leaks) -> None:
    acigen(bash_example, "bash.json")
    run_ninja(bash_example)
    image = bash_example / "bash.aci"
    validate_aci(image)
    result = runc.run(image, bash_example, ["/bin/bash", "-c", "echo hello $((6 * 7))"])
    assert (result.returncode, result.stdout) == (0, "hello 42\n"), result.stderr
    assert is_noop(bash_example)


def test_acigen_b_is_one_command(bash_example: Path) -> None:
    result = acigen(bash_example, "-b", "-C", "xz", "-o", "out/bash.aci", "bash.json")
    assert "sha512-" in result.stdout + result.stderr
    validate_aci(bash_example / "out" / "bash.aci")


def test_same_inputs_same_bytes(tmp_path: Path) -> None:
    images = []
    for name in ("one", "two"):
        work = tmp_path / name
        shutil.copytree(EXAMPLES / "bash", work)
        acigen(work, "-C", "xz", "bash.json")
        run_ninja(work)
        images.append((work / "bash.aci").read_bytes())
    assert images[0] == images[1]


def test_manual_rerun_of_acigen_leaves_nothing_to_do(bash_example: Path) -> None:
    acigen(bash_example, "bash.json")
    run_ninja(bash_example)
    acigen(bash_example, "bash.json")
    assert is_noop(bash_example)


@pytest.fixture
def three_steps(tmp_path: Path) -> Path:
    """busybox, then two files, each in its own step."""
    work = tmp_path / "three"
    work.mkdir()
    (work / "conf.txt").write_text("first\n")
    (work / "other.txt").write_text("other\n")
    write_manifest(work / "app.json", [
        {"type": "copy_host_files", "binaries": ["/bin/busybox"]},
        {"type": "copy_host_files", "files": [["conf.txt", "/etc/conf.txt"]]},
        {"type": "copy_host_files", "files": [["other.txt", "/srv/other.txt"]]},
    ])
    acigen(work, "app.json")
    run_ninja(work)
    return work


def clean_build_bytes(work: Path, tmp: Path) -> bytes:
    """The image a clean build of WORK's current inputs gives."""
    clean = tmp / "clean"
    shutil.rmtree(clean, ignore_errors=True)
    shutil.copytree(work, clean, ignore=shutil.ignore_patterns(".acigen", "*.aci",
                                                               "build.ninja"))
    acigen(clean, "app.json")
    run_ninja(clean)
    return (clean / "app.aci").read_bytes()


def test_touching_an_input_file_reruns_from_its_step(three_steps: Path, tmp_path: Path) -> None:
    time.sleep(0.01)
    (three_steps / "conf.txt").write_text("second\n")
    out = run_ninja(three_steps).stdout
    assert step_numbers(out) == [2, 3]
    assert (three_steps / "app.aci").read_bytes() == clean_build_bytes(three_steps, tmp_path)


def test_editing_step_k_reruns_k_to_n_and_reverting_reruns_nothing(
        three_steps: Path, tmp_path: Path) -> None:
    manifest = three_steps / "app.json"
    original = manifest.read_text()
    first_image = (three_steps / "app.aci").read_bytes()
    doc = json.loads(original)
    doc[STEPS][1]["files"][0][1] = "/etc/renamed.txt"
    manifest.write_text(json.dumps(doc, indent=2))

    out = run_ninja(three_steps).stdout
    assert step_numbers(out) == [2, 3]
    assert (three_steps / "app.aci").read_bytes() == clean_build_bytes(three_steps, tmp_path)

    manifest.write_text(original)
    out = run_ninja(three_steps).stdout
    assert step_numbers(out) == []
    assert (three_steps / "app.aci").read_bytes() == first_image


def test_a_directory_deleted_with_its_step_only_regenerates(tmp_path: Path) -> None:
    work = tmp_path / "dirs"
    (work / "conf" / "sub").mkdir(parents=True)
    (work / "conf" / "sub" / "a.txt").write_text("a\n")
    manifest = write_manifest(work / "app.json", [
        {"type": "copy_host_files", "binaries": ["/bin/busybox"]},
        {"type": "copy_host_files", "files": [["conf", "/etc/conf"]]}])
    acigen(work, "app.json")
    run_ninja(work)
    # a file added to a listed directory is seen
    (work / "conf" / "sub" / "b.txt").write_text("b\n")
    assert step_numbers(run_ninja(work).stdout) == [2]
    # deleted alone: acigen runs again and names what is missing, nothing else runs
    shutil.rmtree(work / "conf")
    failed = run_ninja(work, check=False)
    assert failed.returncode == 1
    assert "app.json:/-aci-packer-build-steps-/1/files/0/0: 'conf': no such file" in \
        failed.stderr  # acigen regenerates in the console pool: its stderr is ninja's
    assert step_numbers(failed.stdout) == []
    # deleted with its step: the build goes on from the new manifest
    doc = json.loads(manifest.read_text())
    del doc[STEPS][1]
    manifest.write_text(json.dumps(doc, indent=2))
    run_ninja(work)
    assert is_noop(work)
    assert (work / "app.aci").read_bytes() == clean_build_bytes(work, tmp_path)


def test_killing_ninja_leaves_no_mount_and_next_build_finishes(tmp_path: Path) -> None:
    work = tmp_path / "slow"
    work.mkdir()
    write_manifest(work / "app.json", [
        {"type": "copy_host_files", "binaries": ["/bin/busybox"]},
        {"type": "cmd", "copy": False, "path": "/bin/busybox", "args": ["sleep", "3"]},
    ])
    acigen(work, "app.json")
    # ninja's own output is a pipe nobody reads: like a CI log whose reader died
    proc = subprocess.Popen([ninja()], cwd=work, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    layers = work / ".acigen" / "layers"
    deadline = time.monotonic() + 30
    while not list(layers.glob("02-cmd-*/mnt")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the step is inside its sleep now
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.stdout is not None
    proc.stdout.close()
    wait_until(lambda: not mounts_under([work]), what="the orphaned helper to unwind")
    assert not list(layers.glob("02-cmd-*.stamp"))
    run_ninja(work)
    validate_aci(work / "app.aci")


def test_copy_layer_mode_gives_the_same_image(three_steps: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy-mode"
    shutil.copytree(three_steps, copy, ignore=shutil.ignore_patterns(".acigen", "*.aci",
                                                                     "build.ninja"))
    acigen(copy, "--layer-mode", "copy", "app.json")
    run_ninja(copy)
    # copy mode keeps whole trees per layer, not just the changes
    assert list((copy / ".acigen/layers").glob("03-copy-*/tree/bin/busybox"))
    assert (copy / "app.aci").read_bytes() == (three_steps / "app.aci").read_bytes()
