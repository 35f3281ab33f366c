"""acigen-chroot-run: run a cmd or ansible step inside an image's root.

As ninja runs it (the step file names the layer, the layers below it, and
the step with its chroot settings):

    python -m acigen.helpers.chroot_run --step STEPFILE --stamp STAMP [--depfile FILE]

By hand, on a root directory of your own (changes go straight into it; the
program gets the terminal unless --log is given):

    acigen-chroot-run [OPTIONS] ROOT PROGRAM [ARG...]          image's program
    acigen-chroot-run [OPTIONS] --copy ROOT SCRIPT [ARG...]    host script
    acigen-chroot-run [OPTIONS] --playbook PLAYBOOK ROOT        ansible

Each run is a container of an OCI runtime (runc or crun): the program is
its PID 1 (every daemon dies with it), with the runtime's /proc, /dev and
/sys, the containers default capabilities and seccomp profile, and the
host's resolv.conf and hosts while it runs; see job.py, confinement.py,
container.py, sandbox.py and buildfiles.py beside this file.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys

from acigen.errors import ExitCode, HelperError
from acigen.helpers.chroot_run.job import Job
from acigen.helpers.core.common import exit_now, run_main
from acigen.helpers.layers.step import StepContext, step_main

TYPE_CHECKING = False  # typing, argparse and the other step's module cost every step
if TYPE_CHECKING:  # their import time (bench/chroot_run.py): each is loaded when used
    import argparse
    from collections.abc import Callable, Iterator
    from typing import Any, TextIO

PROG = "acigen-chroot-run"
# step type -> (module, function); only the step's own module is imported
RUNNERS = {
    "cmd": ("cmd_step", "run_cmd"),
    "ansible": ("ansible_step", "run_ansible"),
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a == "--step" or a.startswith("--step=") for a in args):
        return step_main(PROG, run_step, args)
    return run_main(PROG, run_by_hand, args)


def run_step(ctx: StepContext) -> str:
    """The step action: ninja's way in (see layers/step.py)."""
    layer = ctx.spec.layer
    job = Job(root=ctx.root, scratch=os.path.join(layer, "chroot"),
              label=ctx.spec.label or os.path.basename(layer),
              log=ctx.log, log_path=ctx.spec.log,
              inputs=ctx.inputs_read, runtime=ctx.spec.runtime)
    return runner_for(ctx.step)(ctx.step, job)


def runner_for(step: Any) -> Callable[[dict[str, Any], Job], str]:
    kind = step.get("type") if isinstance(step, dict) else None
    if kind not in RUNNERS:
        raise HelperError(f"step: type: {PROG} runs cmd and ansible steps, not {kind!r}")
    module, function = RUNNERS[kind]
    runner: Callable[[dict[str, Any], Job], str] = getattr(
        importlib.import_module(f"acigen.helpers.chroot_run.{module}"), function)
    return runner


# -- by hand ----------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    import argparse
    p = argparse.ArgumentParser(prog=PROG, description="Run a program or an ansible "
                                "playbook inside a root directory, isolated and leak-proof.")
    p.add_argument("--copy", action="store_true", help="PROGRAM is a host file to copy in")
    p.add_argument("--playbook", help="run this ansible playbook against ROOT")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--workdir", default="/")
    p.add_argument("--log", help="send the output here instead of the terminal")
    for name in ("proc", "dev", "sys"):
        p.add_argument(f"--no-{name}", action="store_true", help=f"do not mount /{name}")
    p.add_argument("--no-resolvconf", action="store_true")
    p.add_argument("--no-hosts", action="store_true")
    p.add_argument("--policy-rc-d", action="store_true",
                   help="stop Debian packages from starting services")
    p.add_argument("--network", choices=("host", "none"), default="host",
                   help="none: only loopback (default: the host's network)")
    p.add_argument("--runtime", metavar="NAME|PATH",
                   help="runc or crun (default: $ACIGEN_RUNTIME, else runc, else crun)")
    p.add_argument("root")
    p.add_argument("command", nargs=argparse.REMAINDER)
    return p


def step_from_args(ns: argparse.Namespace) -> dict[str, Any]:
    chroot = {"mount_proc": not ns.no_proc, "mount_dev": not ns.no_dev,
              "mount_sys": not ns.no_sys, "copy_resolvconf": not ns.no_resolvconf,
              "copy_hosts": not ns.no_hosts, "make_debian_policy_rc": ns.policy_rc_d}
    if ns.playbook:
        if ns.command:
            raise HelperError("--playbook takes no PROGRAM")
        return {"type": "ansible", "playbook": ns.playbook, "chroot": chroot,
                "network": ns.network}
    if not ns.command:
        raise HelperError("no PROGRAM to run", hint=f"{PROG} ROOT PROGRAM [ARG...]")
    env = dict(item.partition("=")[::2] for item in ns.env)
    return {"type": "cmd", "path": ns.command[0], "args": ns.command[1:], "copy": ns.copy,
            "env": env, "workdir": ns.workdir, "chroot": chroot, "network": ns.network}


def run_by_hand(argv: list[str]) -> int:
    import shutil
    import tempfile

    from acigen.helpers.layers import layers
    ns = _parser().parse_args(argv)
    step = step_from_args(ns)
    if not os.path.isdir(ns.root):
        raise HelperError(f"{ns.root}: not a directory")
    layers.enter_private_mount_namespace()
    scratch = tempfile.mkdtemp(prefix="acigen-chroot-run-")
    try:
        with _output(ns.log) as log:
            job = Job(root=ns.root, scratch=scratch, label=ns.root, log=log,
                      log_path=ns.log, interactive=ns.log is None, runtime=ns.runtime)
            text = runner_for(step)(step, job)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{ns.root}: {text}")
    return ExitCode.OK


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stderr
        return
    with open(path, "w", encoding="utf-8", errors="replace") as log:
        yield log


if __name__ == "__main__":
    exit_now(main())
