"""cmd steps on a small busybox root: what runs, with what, and what the
layer holds afterwards."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.chroot.stepkit import Build, cmd, sh
from tests.support.cprogram import static_program

pytestmark = pytest.mark.usefixtures("no_mount_leaks")


def test_a_command_changes_only_its_own_layer(build: Build, base: Path) -> None:
    step = build.step("01-cmd", sh("echo built > /hello; mkdir -p /srv/www; echo said-hello"),
                      [base])
    result = step.run()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "01-cmd: /bin/sh: done in " + \
        result.stdout.split("done in ")[1].strip()
    assert (step.tree / "hello").read_text() == "built\n"
    assert step.changes(base) == ["hello", "srv", "srv/www"]
    assert not (base / "tree" / "hello").exists()
    assert "said-hello" in step.log()
    stamp = json.loads(step.stamp.read_text())
    assert stamp["layer"] == "01-cmd"


def test_the_environment_is_clean_and_env_is_merged_over_it(build: Build, base: Path) -> None:
    step = build.step("01-env", cmd("/usr/bin/env", env={"LANG": "de_DE.UTF-8", "EXTRA": "x y"},
                                    workdir="/"), [base])
    (base / "tree" / "usr" / "bin").mkdir(parents=True)
    os.symlink("/bin/busybox", base / "tree" / "usr" / "bin" / "env")
    result = step.run(env={**os.environ, "ACIGEN_TEST_HOST_SECRET": "leak"})
    assert result.returncode == 0, result.stderr
    env = dict(line.split("=", 1) for line in step.log().splitlines()
               if "=" in line and not line.startswith("acigen:"))
    assert env == {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root", "LANG": "de_DE.UTF-8", "TERM": "dumb",
        "DEBIAN_FRONTEND": "noninteractive", "EXTRA": "x y",
    }


def test_workdir_is_where_the_command_starts(build: Build, base: Path) -> None:
    (base / "tree" / "srv").mkdir()
    step = build.step("01-wd", cmd("/bin/sh", "-c", "pwd > /where; umask >> /where",
                                   workdir="/srv"), [base])
    assert step.run().returncode == 0
    assert (step.tree / "where").read_text() == "/srv\n0022\n"


def test_a_missing_workdir_is_a_clear_error(build: Build, base: Path) -> None:
    step = build.step("01-wd", cmd("/bin/true", workdir="/nowhere"), [base])
    result = step.run()
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == \
        "acigen-chroot-run: error: cmd: workdir /nowhere: no such file or directory in the image"
    assert not step.stamp.exists()


def test_a_copied_script_runs_and_stays_out_of_the_layer(build: Build, base: Path) -> None:
    scripts = build.dir / "scripts"
    scripts.mkdir(parents=True)
    (scripts / "setup.sh").write_text("#!/bin/sh\necho \"$0 $*\" > /ran\n")
    step = build.step("01-copy", cmd("scripts/setup.sh", "a", "b c", copy=True), [base])
    result = step.run(depfile="01-copy.d")
    assert result.returncode == 0, result.stderr
    # the script is an input of the step: editing it reruns the step
    depfile = (build.dir / "01-copy.d").read_text()
    assert depfile.startswith(".acigen/stamps/01-copy.stamp: \\\n  scripts/setup.sh")
    assert (step.tree / "ran").read_text() == "/.acigen-build/setup.sh a b c\n"
    assert step.changes(base) == ["ran"]
    assert (scripts / "setup.sh").stat().st_mode & 0o777 == 0o644  # host file untouched


def test_a_missing_host_script_is_an_error_not_the_images_file(build: Build, base: Path
                                                                ) -> None:
    # the original tool quietly ran the image's file of the same name instead
    script = "/usr/local/bin/acigen-test-setup.sh"
    assert not os.path.lexists(script)
    in_image = base / "tree" / script.lstrip("/")
    in_image.parent.mkdir(parents=True)
    in_image.write_text("#!/bin/sh\necho image > /ran\n")
    in_image.chmod(0o755)
    step = build.step("01-copy", cmd(script, copy=True), [base])
    result = step.run()
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        f"acigen-chroot-run: error: cmd: script {script} does not exist "
        f"(paths are relative to {build.dir})")
    assert not step.stamp.exists()
    assert not (step.tree / "ran").exists()


def test_a_host_program_the_image_cannot_load_is_explained(build: Build, base: Path) -> None:
    # a dynamic host binary copied into a busybox image: no ELF loader there
    (build.dir / "bin").mkdir()
    (build.dir / "bin" / "true").write_bytes(Path("/bin/true").read_bytes())
    step = build.step("01-copy", cmd("bin/true", copy=True), [base])
    result = step.run()
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        "acigen-chroot-run: error: test: 01-copy: bin/true could not run: "
        "/.acigen-build/true: cannot be executed: its interpreter (the #! line, or the ELF "
        "loader) is missing in the image")


def test_a_program_missing_from_the_image_is_a_clear_error(build: Build, base: Path) -> None:
    step = build.step("01-missing", cmd("/usr/bin/apt-get", "update"), [base])
    result = step.run()
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == ("acigen-chroot-run: error: cmd: /usr/bin/apt-get:"
                                             " no such file or directory in the image")


def test_a_bare_name_not_on_path_fails_with_the_reason(build: Build, base: Path) -> None:
    step = build.step("01-missing", cmd("no-such-program"), [base])
    result = step.run()
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == ("acigen-chroot-run: error: test: 01-missing: "
                                             "no-such-program could not run: no-such-program: "
                                             "No such file or directory")


def test_a_failing_command_shows_its_status_and_the_log_tail(build: Build, base: Path) -> None:
    script = "; ".join(f"echo line {i}" for i in range(1, 31)) + "; exit 7"
    step = build.step("01-fail", sh(script), [base])
    result = step.run()
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "acigen-chroot-run: error: test: 01-fail: /bin/sh exited with status 7"
    assert lines[1:21] == [f"  | line {i}" for i in range(11, 31)]
    assert lines[21] == "hint: the whole output is in .acigen/logs/01-fail.log"
    assert not step.stamp.exists()


def test_a_command_killed_by_a_signal_says_so(build: Build, base: Path) -> None:
    # the program is the container's PID 1, which ignores a `kill -SEGV $$`
    # but not the kernel's own SIGSEGV
    crash = static_program(Path(__file__).parent / "escape" / "crash.c", build.dir / "crash")
    step = build.step("01-segv", cmd("crash", copy=True), [base])
    result = step.run()
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == ("acigen-chroot-run: error: test: 01-segv: crash "
                                             "exited with status 139 (as when killed by SIGSEGV)")
    assert crash.exists()


@pytest.mark.parametrize(("step", "error"), [
    ({"type": "copy_host_files"}, "step: type: acigen-chroot-run runs cmd and ansible steps, "
                                  "not 'copy_host_files'"),
    ({"type": "cmd", "path": ["/bin/sh"]}, "step: path: expected str, got list"),
    ({"type": "cmd", "path": "/bin/sh", "args": "-c"}, "step: args: expected list, got str"),
    ({"type": "cmd", "path": "/bin/sh", "workdir": "srv"},
     "step: workdir: expected an absolute path, got 'srv'"),
    ({"type": "cmd", "path": "bin/sh", "copy": False},
     "step: path: a program in the image needs an absolute path or a bare name, got 'bin/sh'"),
    ({"type": "cmd", "path": "/bin/sh", "chroot": {"mount_proc": "yes"}},
     "step: chroot: mount_proc: expected true or false, got 'yes'"),
    ({"type": "cmd", "path": "/bin/sh", "chroot": {"mount_tmp": True}},
     "step: chroot: unknown setting 'mount_tmp'"),
    ({"type": "ansible"}, "step: playbook: expected the path of a playbook"),
])
def test_bad_steps_get_one_clear_line(build: Build, base: Path, step: dict[str, object],
                                      error: str) -> None:
    made = build.step("01-bad", step, [base])
    result = made.run()
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == f"acigen-chroot-run: error: {error}"
    assert not made.stamp.exists()
    assert made.changes(base) == []


@pytest.mark.parametrize("runtime", ["runc", "crun"])
def test_either_runtime_runs_a_step(build: Build, base: Path, runtime: str) -> None:
    step = build.step("01-rt", sh("grep -c . /proc/self/status > /seen"), [base],
                      runtime=runtime)
    result = step.run()
    if runtime == "crun" and "cgroups in hybrid mode not supported" in result.stderr:
        pytest.skip("crun cannot run containers on this host's hybrid cgroup hierarchy")
    assert result.returncode == 0, result.stderr
    assert int((step.tree / "seen").read_text()) > 10


def test_layer_trees_are_roots_alone(build: Build, base: Path) -> None:
    layers = build.dir / ".acigen" / "layers"
    layers.chmod(0o755)  # as an older acigen left it
    (base / "tree" / "bin" / "busybox").chmod(0o4755)  # a setuid program of the image
    step = build.step("01-any", sh("true"), [base])
    assert step.run().returncode == 0
    assert layers.stat().st_mode & 0o777 == 0o700
    assert (base / "tree" / "bin" / "busybox").stat().st_mode & 0o7777 == 0o4755
