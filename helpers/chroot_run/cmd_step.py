"""The `cmd` step: run one program inside the image.

    {"type": "cmd", "path": "/usr/bin/apt-get", "args": ["install", "-y", "nginx"],
     "copy": false, "env": {"K": "V"}, "workdir": "/", "chroot": {...},
     "network": "none"}

`network` is the host's unless "none" (a network namespace of the step's
own, with only loopback: for steps that must not reach anything).

`copy: false` runs the image's own program (an absolute path is resolved
inside the image; a bare name is looked up on PATH inside it).  `copy: true`
runs a host file (path relative to the build directory): it is copied to
/.acigen-build/ in the image, a tmpfs that vanishes with the step, so the
copy never reaches the layer.  A missing host file is an error; the
original tool silently ran the image's file of that name instead.
"""

from __future__ import annotations

import os
import time
from collections import namedtuple

from acigen.errors import HelperError
from acigen.helpers.chroot_run.job import (
    BASE_ENV,
    Job,
    Process,
    network_of,
    require_host_file,
    require_success,
    run_program,
    summary,
)
from acigen.helpers.chroot_run.sandbox import Sandbox
from acigen.stepspec import ChrootSettings

TYPE_CHECKING = False  # typing costs every step ~2 ms to import (bench/chroot_run.py)
if TYPE_CHECKING:
    from typing import Any


class CmdStep(namedtuple("CmdStep", ("path", "args", "copy", "env", "workdir", "chroot",
                                     "network"))):
    """A cmd step, checked.  (A namedtuple: dataclasses cost every step ~5 ms.)"""

    __slots__ = ()
    path: str
    args: list[str]
    copy: bool
    env: dict[str, str]
    workdir: str
    chroot: ChrootSettings
    network: str

    @classmethod
    def parse(cls, step: dict[str, Any]) -> CmdStep:
        path = _field(step, "path", str, None)
        args = _field(step, "args", list, [])
        env = _field(step, "env", dict, {})
        workdir = _field(step, "workdir", str, "/")
        if not path:
            raise HelperError("step: path: must not be empty")
        if not all(isinstance(a, str) for a in args):
            raise HelperError("step: args: expected a list of strings")
        if not all(isinstance(k, str) and isinstance(v, str) and k and "=" not in k
                   for k, v in env.items()):
            raise HelperError("step: env: expected names (without '=') mapped to strings")
        copy = _field(step, "copy", bool, True)
        if not copy and "/" in path and not path.startswith("/"):
            raise HelperError(f"step: path: a program in the image needs an absolute path "
                              f"or a bare name, got {path!r}")
        if not workdir.startswith("/"):
            raise HelperError(f"step: workdir: expected an absolute path, got {workdir!r}")
        return cls(path, args, copy, env, workdir,
                   ChrootSettings.from_step(step.get("chroot")), network_of(step))


def _field(step: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    value = step.get(name, default)
    if value is None and default is None:
        raise HelperError(f"step: {name}: missing")
    if not isinstance(value, kind):
        raise HelperError(f"step: {name}: expected {kind.__name__}, "
                          f"got {type(value).__name__}")
    return value


def run_cmd(step: dict[str, Any], job: Job) -> str:
    cmd = CmdStep.parse(step)
    if cmd.copy:
        job.inputs.append(require_host_file(cmd.path, "cmd: script"))
    shown = cmd.path if not cmd.args else f"{cmd.path} {' '.join(cmd.args)}"
    job.note(f"acigen: {job.label}: running {shown}")
    start = time.monotonic()
    with Sandbox(job.root, cmd.chroot, job.scratch, job.note) as box:
        program = _program(cmd, box)
        _require_dir(box, cmd.workdir)
        ended = run_program(job, box, Process([program, *cmd.args], {**BASE_ENV, **cmd.env},
                                              cmd.workdir, cmd.network))
    require_success(job, cmd.path, ended)
    return summary(cmd.path, time.monotonic() - start)


def _program(cmd: CmdStep, box: Sandbox) -> str:
    """The program's path inside the root."""
    if cmd.copy:
        return box.add_private_file(os.path.basename(cmd.path), cmd.path, 0o755)
    if "/" in cmd.path:
        try:
            os.close(box.root.open(cmd.path, os.O_PATH))
        except OSError as exc:
            raise HelperError(f"cmd: {cmd.path}: {exc.strerror.lower()} in the image",
                              hint='set "copy": true to run a file from the host') from None
    return cmd.path


def _require_dir(box: Sandbox, path: str) -> None:
    try:
        os.close(box.root.open(path, os.O_PATH | os.O_DIRECTORY))
    except OSError as exc:
        raise HelperError(f"cmd: workdir {path}: {exc.strerror.lower()} in the image") from None
