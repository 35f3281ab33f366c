"""The `ansible` step: apply a playbook to the image.

    {"type": "ansible", "playbook": "site.yml", "chroot": {...}}

ansible-playbook runs on the host, with the community.general.chroot
connection, inside the step's PID namespace (so daemons it starts in the
image die with the step) and with the step's mounts in place.  Its inventory
(a file in the step's scratch directory, removed afterwards) has one host,
the root's path, in group `aci`: plays must target `aci` or `all`.  The
image needs /bin/sh, and Python for most modules (a play can bootstrap it
with `raw`).

ansible-playbook is $ACIGEN_ANSIBLE_PLAYBOOK if set, else the one next to
the Python running acigen (pip install 'acigen[ansible]'), else the first on
PATH.  Its environment is clean, and says:

    ANSIBLE_HOME, ANSIBLE_LOCAL_TEMP   in the scratch directory (nothing is
                                       written to ~/.ansible)
    ANSIBLE_REMOTE_TMP                 /.acigen-build/ansible-tmp, a tmpfs in
                                       the image, gone after the step
    ANSIBLE_COLLECTIONS_PATH, ANSIBLE_ROLES_PATH
                                       ansible's defaults, spelled out since
                                       ANSIBLE_HOME moved
    ANSIBLE_PYTHON_INTERPRETER=auto_silent   discovery inside the chroot
    ANSIBLE_RETRY_FILES_ENABLED=False, ANSIBLE_HOST_KEY_CHECKING=False,
    ANSIBLE_NOCOLOR=True
    PATH=<ansible-playbook's dir>:<the default PATH>, HOME=<root's home>,
    LANG=C.UTF-8, TERM=dumb, DEBIAN_FRONTEND=noninteractive

An ansible.cfg in the build directory (the working directory) is read as
usual; the settings above override it.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import sys
from typing import Any

from acigen.helpers.chroot_job import (
    DEFAULT_PATH,
    Job,
    require_host_file,
    require_success,
    run_program,
    summary,
)
from acigen.helpers.common import HelperError
from acigen.helpers.sandbox import ChrootSettings, Sandbox

PLAYBOOK_DIRS = ("roles", "templates", "files", "vars", "group_vars", "host_vars")


def run_ansible(step: dict[str, Any], job: Job) -> str:
    playbook = step.get("playbook")
    if not isinstance(playbook, str) or not playbook:
        raise HelperError("step: playbook: expected the path of a playbook")
    settings = ChrootSettings.from_step(step.get("chroot"))
    job.inputs.extend(playbook_inputs(require_host_file(playbook, "ansible: playbook")))
    program = find_ansible_playbook()
    job.note(f"acigen: {job.label}: {program} {playbook}")
    with Sandbox(job.root, settings, job.scratch, job.note) as box:
        remote_tmp = box.add_private_dir("ansible-tmp", 0o1777)
        inventory = write_inventory(job.scratch, box.path)
        env = ansible_env(program, job.scratch, remote_tmp)
        outcome = run_program(job, box, [program, "-i", inventory, os.path.abspath(playbook)],
                              env, os.getcwd(), chrooted=False)
    require_success(job, f"ansible-playbook {playbook}", outcome)
    return summary(f"ansible-playbook {playbook}", outcome)


def find_ansible_playbook() -> str:
    override = os.environ.get("ACIGEN_ANSIBLE_PLAYBOOK")
    if override:
        if os.path.isfile(override) and os.access(override, os.X_OK):
            return override
        raise HelperError(f"ACIGEN_ANSIBLE_PLAYBOOK={override} is not an executable file")
    search = os.pathsep.join([os.path.dirname(sys.executable),
                              os.environ.get("PATH", DEFAULT_PATH)])
    found = shutil.which("ansible-playbook", path=search)
    if not found:
        raise HelperError(f"ansible-playbook not found (looked in {search})",
                          hint="install it where acigen runs: pip install 'acigen[ansible]'")
    return found


def write_inventory(scratch: str, root: str) -> str:
    """One host, the root's path, reached through the chroot connection."""
    path = os.path.join(scratch, "inventory.yml")  # JSON is YAML; any path is safe in it
    hosts = {root: {"ansible_connection": "community.general.chroot"}}
    with open(path, "w", encoding="utf-8") as out:
        json.dump({"aci": {"hosts": hosts}}, out)
    return path


def ansible_env(program: str, scratch: str, remote_tmp: str) -> dict[str, str]:
    home = pwd.getpwuid(os.geteuid()).pw_dir
    return {
        "PATH": f"{os.path.dirname(program)}:{DEFAULT_PATH}",
        "HOME": home,
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "DEBIAN_FRONTEND": "noninteractive",
        "ANSIBLE_HOME": os.path.join(scratch, "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": os.path.join(scratch, "ansible-local-tmp"),
        "ANSIBLE_REMOTE_TMP": remote_tmp,
        "ANSIBLE_COLLECTIONS_PATH": f"{home}/.ansible/collections:/usr/share/ansible/collections",
        "ANSIBLE_ROLES_PATH": f"{home}/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles",
        "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_NOCOLOR": "True",
    }


def playbook_inputs(playbook: str) -> list[str]:
    """The playbook and the files its directory's conventional subdirectories hold."""
    found = [playbook]
    base = os.path.dirname(playbook)
    for sub in PLAYBOOK_DIRS:
        for top, dirs, files in os.walk(os.path.join(base, sub)):
            dirs.sort()
            found.extend(os.path.join(top, name) for name in sorted(files))
    return found
