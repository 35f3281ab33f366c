"""An ansible connection into a running acigen build-step container.

Every command ansible runs on the "host" (module code, file transfers) is
a process started in the step's container with `RUNTIME exec`, so it is
confined exactly as the step itself is: same root, namespaces,
capabilities, seccomp profile and limits.  Nothing of the image ever runs
on the real host.  The container is named by environment variables that
the ansible step sets (ansible_step.ansible_env).

Files are moved through the container process's standard input and
output (`cat`), so the image needs /bin/sh and cat, as well as the Python
that most modules need.
"""

from __future__ import annotations

import os
import subprocess

from ansible.errors import AnsibleError
from ansible.plugins.connection import ConnectionBase

DOCUMENTATION = """
name: acigen_runc
short_description: run tasks inside an acigen build step's container
description:
  - Runs commands with the OCI runtime's exec in the container of the
    acigen build step that started ansible-playbook (runc or crun).
author: acigen
"""

RUNTIME, STATE, CONTAINER = ("ACIGEN_CONTAINER_RUNTIME", "ACIGEN_CONTAINER_STATE",
                             "ACIGEN_CONTAINER_NAME")


class Connection(ConnectionBase):
    """`RUNTIME exec` into the step's container."""

    transport = "acigen_runc"
    has_pipelining = True

    def _connect(self) -> Connection:
        missing = [name for name in (RUNTIME, STATE, CONTAINER) if not os.environ.get(name)]
        if missing:
            raise AnsibleError(f"acigen_runc: {missing[0]} is not set; this connection is "
                               "for playbooks that an acigen ansible step runs")
        super()._connect()
        self._connected = True
        return self

    def _exec(self, argv: list[str], stdin: int | bytes | None,
              stdout: int = subprocess.PIPE) -> subprocess.CompletedProcess[bytes]:
        env = os.environ
        command = [env[RUNTIME], "--root", env[STATE], "exec", env[CONTAINER], *argv]
        if isinstance(stdin, bytes):
            return subprocess.run(command, input=stdin, stdout=stdout, stderr=subprocess.PIPE)
        return subprocess.run(command, stdin=subprocess.DEVNULL if stdin is None else stdin,
                              stdout=stdout, stderr=subprocess.PIPE)

    def exec_command(self, cmd: str, in_data: bytes | None = None,
                     sudoable: bool = False) -> tuple[int, bytes, bytes]:
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        self._display.vvv(f"EXEC {cmd}", host=self._play_context.remote_addr)
        done = self._exec(["/bin/sh", "-c", cmd], in_data)
        return done.returncode, done.stdout, done.stderr

    def put_file(self, in_path: str, out_path: str) -> None:
        super().put_file(in_path, out_path)
        with open(in_path, "rb") as src:
            done = self._exec(["/bin/sh", "-c", 'cat > "$1"', "put", out_path], src.fileno())
        if done.returncode != 0:
            raise AnsibleError(f"acigen_runc: cannot write {out_path} in the image: "
                               f"{done.stderr.decode(errors='replace').strip()}")

    def fetch_file(self, in_path: str, out_path: str) -> None:
        super().fetch_file(in_path, out_path)
        with open(out_path, "wb") as dst:
            done = self._exec(["/bin/sh", "-c", 'cat "$1"', "fetch", in_path], None,
                              stdout=dst.fileno())
        if done.returncode != 0:
            raise AnsibleError(f"acigen_runc: cannot read {in_path} in the image: "
                               f"{done.stderr.decode(errors='replace').strip()}")

    def close(self) -> None:
        super().close()
        self._connected = False
