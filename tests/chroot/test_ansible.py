"""ansible steps on a busybox root (raw tasks only: no Python there)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.chroot.stepkit import Build, pids_with, wait_until
from tests.support.rootfs import busybox_tree

pytestmark = pytest.mark.usefixtures("no_mount_leaks")

PLAYBOOKS = Path(__file__).parent / "ansible"


def ansible(playbook: str, **chroot: bool) -> dict[str, Any]:
    return {"type": "ansible", "playbook": playbook, "chroot": chroot}


def home_ansible() -> list[str]:
    """What ansible keeps in root's home: a step must not add to it."""
    top = Path(os.path.expanduser("~root")) / ".ansible"
    return sorted(str(p) for p in top.rglob("*")) if top.exists() else []


@pytest.fixture
def build(tmp_path: Path) -> Build:
    made = Build(tmp_path / "build")
    made.dir.mkdir(parents=True)
    shutil.copytree(PLAYBOOKS, made.dir / "playbooks")
    return made


@pytest.fixture
def base(build: Build) -> Path:
    return build.base(busybox_tree)


def test_a_playbook_runs_in_the_steps_container_and_leaves_no_traces(
        build: Build, base: Path) -> None:
    before = home_ansible()
    step = build.step("01-ansible", ansible("playbooks/raw.yml"), [base])
    result = step.run(depfile="01-ansible.d")
    assert result.returncode == 0, result.stderr + step.log()
    inputs = (build.dir / "01-ansible.d").read_text().split()
    assert "playbooks/raw.yml" in inputs
    assert "playbooks/roles/greeting/templates/greeting.j2" in inputs
    ran = (step.tree / "raw-ran").read_text().split("\n")
    assert ran[0] == "/bin/sh -c read -r _ "  # PID 1 is the step container's own
    assert ran[1] == "resolv-ok"
    assert step.changes(base) == ["raw-ran"]  # no ~/.ansible, no /.acigen-build
    # the daemon a task left dies with the container (its exit is reaped a moment later)
    wait_until(lambda: pids_with("sleep 1003.5") == [], what="the daemon to die")
    assert not os.path.exists(step.layer / "chroot")  # inventory and temp dirs removed
    assert home_ansible() == before
    assert "PLAY RECAP" in step.log()


def test_a_failing_playbook_shows_the_log_tail(build: Build, base: Path) -> None:
    step = build.step("01-ansible", ansible("playbooks/fails.yml"), [base])
    result = step.run()
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == ("acigen-chroot-run: error: test: 01-ansible: ansible-playbook "
                        "playbooks/fails.yml exited with status 2")
    assert any("PLAY RECAP" in line for line in lines[1:])
    assert lines[-1] == "hint: the whole output is in .acigen/logs/01-ansible.log"
    assert not step.stamp.exists()


def test_a_missing_playbook_is_a_clear_error(build: Build, base: Path) -> None:
    step = build.step("01-ansible", ansible("playbooks/nope.yml"), [base])
    result = step.run()
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        "acigen-chroot-run: error: ansible: playbook playbooks/nope.yml does not exist "
        f"(paths are relative to {build.dir})")


def test_a_missing_ansible_playbook_program_is_a_clear_error(build: Build, base: Path) -> None:
    step = build.step("01-ansible", ansible("playbooks/raw.yml"), [base])
    result = step.run(env={**os.environ, "ACIGEN_ANSIBLE_PLAYBOOK": "/nonexistent/ansible"})
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == ("acigen-chroot-run: error: ACIGEN_ANSIBLE_PLAYBOOK="
                                             "/nonexistent/ansible is not an executable file")
    assert not step.stamp.exists()
