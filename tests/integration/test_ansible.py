"""The ansible step through acigen + ninja on a Debian root: a role with a
template installs a package and writes a file; editing the template reruns
that step (and only the steps from it on)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from tests.support.build import acigen, is_noop, run_ninja, step_numbers
from tests.support.busybox import image_file
from tests.support.rootfs import debian_minbase_tarball
from tests.support.tools import validate_aci

PLAYBOOKS = Path(__file__).parent.parent / "chroot" / "ansible"
STEPS = "-aci-packer-build-steps-"

pytestmark = pytest.mark.slow


def test_playbook_with_role_and_template_and_rerun_on_edit(tmp_path: Path) -> None:
    shutil.copytree(PLAYBOOKS, tmp_path / "playbooks")
    shutil.copyfile(debian_minbase_tarball(), tmp_path / "base.tar")
    doc = {"name": "example.com/greeting",
           "app": {"exec": ["/usr/bin/hello"], "user": "root", "group": "root"},
           STEPS: [{"type": "image", "path": "base.tar", "devices": "skip"},
                   {"type": "ansible", "playbook": "playbooks/site.yml",
                    "make_debian_policy_rc": True},
                   {"type": "cmd", "copy": False, "path": "/usr/bin/apt-get",
                    "args": ["clean"]}]}
    (tmp_path / "greeting.json").write_text(json.dumps(doc, indent=2))
    acigen(tmp_path, "greeting.json")
    out = run_ninja(tmp_path).stdout
    assert step_numbers(out) == [1, 2, 3]
    image = tmp_path / "greeting.aci"
    validate_aci(image)
    assert image_file(image, "rootfs/etc/greeting") == \
        b"Hello from acigen on Debian 12 (acigen_runc)\n"
    assert image_file(image, "rootfs/usr/bin/hello")
    assert is_noop(tmp_path)

    time.sleep(0.01)
    template = tmp_path / "playbooks/roles/greeting/templates/greeting.j2"
    template.write_text("Hi from {{ greeting_name }}\n")
    out = run_ninja(tmp_path).stdout
    assert step_numbers(out) == [2, 3]
    assert image_file(image, "rootfs/etc/greeting") == b"Hi from acigen\n"
