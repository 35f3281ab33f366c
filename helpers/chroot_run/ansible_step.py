"""The `ansible` step: apply a playbook to the image.

    {"type": "ansible", "playbook": "site.yml", "chroot": {...}}

The image's code runs only inside the step's container, confined as a cmd
step is (chroot_run/job.py): a shell waits there as its PID 1, and every task
ansible runs (module code, file transfers) is started in it by our
connection plugin, `acigen_runc`, over the runtime's `exec`
(ansible_connection/acigen_runc.py).  When the playbook ends, the shell is
told to exit, and the kernel kills whatever the tasks left running (daemons
a package started).  ansible-playbook itself, the controller, runs on the
host: it reads the playbook, its roles, templates and variables there, as
ansible always does.  Running the controller inside the image instead would
need ansible and its Python in every image being built, and would hand the
playbook's lookups and secrets to the image's programs.

Its inventory (a file in the step's scratch directory, removed afterwards)
has one host, the container's name, in group `aci`: plays must target `aci`
or `all`.  The image needs /bin/sh and cat, and Python for most modules (a
play can bootstrap it with `raw`).

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
    ANSIBLE_CONNECTION_PLUGINS         where acigen_runc lives
    ACIGEN_CONTAINER_RUNTIME, ACIGEN_CONTAINER_STATE, ACIGEN_CONTAINER_NAME
                                       the container acigen_runc runs tasks in
    ANSIBLE_PYTHON_INTERPRETER=auto_silent   discovery inside the container
    ANSIBLE_RETRY_FILES_ENABLED=False, ANSIBLE_HOST_KEY_CHECKING=False,
    ANSIBLE_NOCOLOR=True
    PATH=<ansible-playbook's dir>:<the default PATH>, HOME=<root's home>,
    LANG=C.UTF-8, TERM=dumb, DEBIAN_FRONTEND=noninteractive

An ansible.cfg in the build directory (the working directory) is read as
usual; the settings above override it.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import subprocess
import time
from collections.abc import Iterator
from typing import Any

from acigen.errors import HelperError
from acigen.helpers.chroot_run import (
    ansible_connection,  # the package only: the plugin imports ansible
)
from acigen.helpers.chroot_run.container import Container, Ended
from acigen.helpers.chroot_run.job import (
    BASE_ENV,
    Job,
    Process,
    network_of,
    require_host_file,
    require_success,
    start_container,
    summary,
)
from acigen.helpers.chroot_run.sandbox import Sandbox
from acigen.helpers.core import userns
from acigen.hostprograms import find_ansible_playbook
from acigen.stepspec import DEFAULT_PATH, ChrootSettings

PLAYBOOK_DIRS = ("roles", "templates", "files", "vars", "group_vars", "host_vars")


def run_ansible(step: dict[str, Any], job: Job) -> str:
    playbook = step.get("playbook")
    if not isinstance(playbook, str) or not playbook:
        raise HelperError("step: playbook: expected the path of a playbook")
    settings = ChrootSettings.from_step(step.get("chroot"))
    job.inputs.extend(playbook_inputs(require_host_file(playbook, "ansible: playbook")))
    program = find_ansible_playbook()
    job.note(f"acigen: {job.label}: {program} {playbook}")
    start = time.monotonic()
    with Sandbox(job.root, settings, job.scratch, job.note) as box:
        _require_shell(box)
        remote_tmp = box.add_private_dir("ansible-tmp", 0o1777)
        with _step_container(job, box, network_of(step)) as container:
            inventory = write_inventory(job.scratch, container.name)
            env = ansible_env(program, job.scratch, remote_tmp, container)
            ended = run_on_host(job, [program, "-i", inventory, os.path.abspath(playbook)], env)
    require_success(job, f"ansible-playbook {playbook}", ended)
    return summary(f"ansible-playbook {playbook}", time.monotonic() - start)


@contextlib.contextmanager
def _step_container(job: Job, box: Sandbox, network: str) -> Iterator[Container]:
    """The step's container, kept alive by a shell waiting on a pipe while
    ansible runs its tasks in it; closing the pipe ends it (and, with its
    PID 1, everything the tasks left running)."""
    hold_r, hold_w = os.pipe2(os.O_CLOEXEC)
    try:
        container = start_container(job, box, Process(["/bin/sh", "-c", "read -r _"],
                                                      dict(BASE_ENV), "/", network), hold_r)
    except BaseException:
        os.close(hold_w)
        raise
    finally:
        os.close(hold_r)
    try:
        yield container
    finally:
        os.close(hold_w)
        container.wait()


def _require_shell(box: Sandbox) -> None:
    try:
        os.close(box.root.open("/bin/sh", os.O_PATH))
    except OSError as exc:
        raise HelperError(f"ansible: /bin/sh: {exc.strerror.lower()} in the image; ansible "
                          "runs its tasks through it") from None


def run_on_host(job: Job, argv: list[str], env: dict[str, str]) -> Ended:
    """ansible-playbook itself runs on the host, as the controller."""
    stdin, out, err = job.streams()
    status = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL if stdin is None else stdin,
                            stdout=out, stderr=err).returncode
    return Ended(status)


def write_inventory(scratch: str, name: str) -> str:
    """One host, the step's container, reached through our connection plugin."""
    path = os.path.join(scratch, "inventory.yml")  # JSON is YAML
    hosts = {name: {"ansible_connection": "acigen_runc"}}
    with open(path, "w", encoding="utf-8") as out:
        json.dump({"aci": {"hosts": hosts}}, out)
    return path


def ansible_env(program: str, scratch: str, remote_tmp: str,
                container: Container) -> dict[str, str]:
    home = pwd.getpwuid(userns.outside_uid()).pw_dir  # rootless: the user's, not /root
    return {
        "ACIGEN_CONTAINER_RUNTIME": container.runtime,
        "ACIGEN_CONTAINER_STATE": container.state,
        "ACIGEN_CONTAINER_NAME": container.name,
        "ANSIBLE_CONNECTION_PLUGINS": os.path.dirname(ansible_connection.__file__),
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
