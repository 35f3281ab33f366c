"""The escape suite (tests/chroot/test_escape.py) from a rootless build's
cmd step: every attack is blocked, and the user's own file and process, which
the user's ids could reach, are as they were."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
from pathlib import Path

from tests.chroot.test_escape import ATTACKS, SENTINEL_TEXT, SOURCE, Host, hostile_tree, verdicts
from tests.rootless.conftest import USER
from tests.support import rootless
from tests.support.cprogram import static_program
from tests.support.leaks import mounts_under, processes_under
from tests.support.rootfs import tar_of

STEPS = "-aci-packer-build-steps-"


class UsersHost(Host):
    """The attacks' targets, owned by the building user: a file the user
    may write and a process the user may trace and signal."""

    def __init__(self, area: Path, user: str) -> None:
        entry = pwd.getpwnam(user)
        self.sentinel = area / "host-sentinel"
        self.sentinel.write_text(SENTINEL_TEXT)
        os.chown(self.sentinel, entry.pw_uid, entry.pw_gid)
        self.victim = subprocess.Popen(["setpriv", f"--reuid={entry.pw_uid}",
                                        f"--regid={entry.pw_gid}", "--clear-groups",
                                        "sleep", "3600"])
        dev = self.sentinel.stat().st_dev
        pid = str(self.victim.pid)
        self.args = {"proc1root": [str(self.sentinel)], "procroots": [str(self.sentinel)],
                     "doublechroot": [str(self.sentinel)], "ptrace": [pid], "new-proc": [pid],
                     "signal-host": [pid], "setns-host": [pid],
                     "mknod-mount": [str(os.major(dev)), str(os.minor(dev))]}


def hostile_work_dir(area: Path, host: UsersHost) -> Path:
    """AREA/build holding hostile.tar: an image whose /escape.sh runs every
    attack against HOST's targets and writes the verdicts to /results."""
    work = area / "build"
    work.mkdir()
    tree = work / "hostile"
    hostile_tree(tree, static_program(SOURCE, area / "attacks"), host)
    tar_of(tree, work / "hostile.tar")
    subprocess.run(["rm", "-rf", str(tree)], check=True)
    return work


def _attacked(area: Path, python: str, step: dict) -> None:
    """Build a hostile image whose second step is STEP, as the test user;
    every attack must be blocked and the user's file and process untouched."""
    host = UsersHost(area, USER)
    try:
        work = hostile_work_dir(area, host)
        (work / "hostile.yml").write_text(
            "- hosts: aci\n  gather_facts: false\n  tasks:\n"
            "    - ansible.builtin.raw: /bin/sh /escape.sh\n")
        doc = {"name": "example.com/hostile", "app": {"exec": ["/bin/sh"], "user": "0",
                                                      "group": "0"},
               STEPS: [{"type": "image", "path": "hostile.tar"}, step]}
        (work / "m.json").write_text(json.dumps(doc))
        rootless.give_to(work, USER)
        built = rootless.as_user(USER, [python, "-m", "acigen", "-b", "m.json"], work)
        assert built.returncode == 0, built.stdout + built.stderr
        [results] = (work / ".acigen" / "layers").glob("02-*/tree/results")
        said = verdicts(results.read_text())
        assert [name for name in ATTACKS if said.get(name) != "blocked"] == [], said
        host.untouched()
        assert not mounts_under([area])
        assert not processes_under([area])
    finally:
        host.close()


def test_every_attack_fails_from_a_rootless_cmd_step(area: Path, python: str) -> None:
    _attacked(area, python, {"type": "cmd", "copy": False, "path": "/bin/sh",
                             "args": ["/escape.sh"]})


def test_every_attack_fails_from_a_rootless_ansible_step(area: Path, python: str) -> None:
    _attacked(area, python, {"type": "ansible", "playbook": "hostile.yml"})
