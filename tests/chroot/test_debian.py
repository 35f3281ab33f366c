"""Real builds on a Debian bookworm minbase root, packages from Debian's
mirror: the original README's nginx image, and an ansible role."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.chroot.stepkit import Build, Step, cmd, pids_with
from tests.support.rootfs import debian_minbase_tree

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_mount_leaks")]

PLAYBOOKS = Path(__file__).parent / "ansible"
BUILD_TIME_FILES = ("etc/resolv.conf", "etc/hosts", "usr/sbin/policy-rc.d")


@pytest.fixture
def base(build: Build) -> Path:
    return build.base(debian_minbase_tree)


def assert_no_build_time_traces(step: Step) -> None:
    """The layer holds no kernel filesystem content and no build-time file
    (not even a whiteout), so the merged image shows the base's own."""
    for top in ("proc", "dev", "sys", ".acigen-build"):
        where = step.tree / top
        assert not where.exists() or not any(where.iterdir()), f"{top} in {step.name}"
    for name in BUILD_TIME_FILES:
        assert not os.path.lexists(step.tree / name), f"{name} in {step.name}"
    assert not (step.layer / "chroot").exists()


def test_the_readme_nginx_build(build: Build, base: Path) -> None:
    resolv = os.readlink(base / "tree/etc/resolv.conf") \
        if os.path.islink(base / "tree/etc/resolv.conf") \
        else (base / "tree/etc/resolv.conf").read_bytes()
    assert not os.path.lexists(base / "tree/usr/sbin/policy-rc.d")
    policy = {"make_debian_policy_rc": True}
    steps, lower = [], [base]
    for name, args in (("01-update", ["update"]), ("02-nginx", ["install", "-y", "nginx"]),
                       ("03-clean", ["clean"])):
        step = build.step(name, cmd("/usr/bin/apt-get", *args, **policy), list(lower))
        result = step.run(timeout=1200)
        assert result.returncode == 0, result.stderr + step.log()[-3000:]
        steps.append(step)
        lower.insert(0, step.layer)

    nginx = steps[1].tree / "usr/sbin/nginx"
    assert nginx.is_file() and os.access(nginx, os.X_OK)
    assert (steps[1].tree / "etc/nginx/nginx.conf").is_file()
    assert "invoke-rc.d: policy-rc.d denied execution of start." in steps[1].log()
    for step in steps:
        assert_no_build_time_traces(step)
    assert pids_with("nginx: master") == [] and pids_with("nginx: worker") == []
    # the merged root's resolv.conf and policy-rc.d: exactly the base's
    now = os.readlink(base / "tree/etc/resolv.conf") \
        if os.path.islink(base / "tree/etc/resolv.conf") \
        else (base / "tree/etc/resolv.conf").read_bytes()
    assert now == resolv
    assert not os.path.lexists(base / "tree/usr/sbin/policy-rc.d")


def test_an_ansible_role_installs_a_package_and_writes_a_template(
        build: Build, base: Path) -> None:
    build.dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(PLAYBOOKS, build.dir / "playbooks")
    step = build.step("01-ansible", {"type": "ansible", "playbook": "playbooks/site.yml",
                                     "chroot": {"make_debian_policy_rc": True}}, [base])
    result = step.run(timeout=1200)
    assert result.returncode == 0, result.stderr + step.log()[-3000:]
    assert (step.tree / "usr/bin/hello").is_file()
    greeting = step.tree / "etc/greeting"
    assert greeting.read_text() == \
        "Hello from acigen on Debian 12 (acigen_runc)\n"
    assert greeting.stat().st_mode & 0o777 == 0o640
    assert_no_build_time_traces(step)
    assert not (step.tree / "root/.ansible").exists()
