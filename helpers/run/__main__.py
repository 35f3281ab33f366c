"""`acigen run IMAGE.aci [OPTIONS] [-- ARGS...]`: run an ACI's app, as an App
Container executor would, through an OCI runtime (runc or crun).

    --net host              share the host's network (default: a private
                            network namespace with only loopback)
    --volume NAME:HOSTPATH  bind HOSTPATH at the app's mount point NAME
    --exec PROGRAM          run PROGRAM instead of the app's exec
    --env NAME=VALUE        set or override an environment variable
    --cap-add CAP           grant CAP beyond the containers default set
                            (with a warning); the image's isolators can
                            only narrow that set
    --runtime NAME|PATH     runc or crun (default: $ACIGEN_RUNTIME, else
                            whichever is installed, runc first)
    -- ARGS                 appended to the app's exec (appc lets the
                            executor append; `docker run` does the same)

The image is unpacked once per image ID into $XDG_CACHE_HOME/acigen/run
(helpers/run/cache.py) and each run sees it through a throw-away overlay
(helpers/chroot_run/container.py); the runtime config comes from the app section
(helpers/run/config.py).  Started by an ordinary user, it first enters the
user namespace a rootless build uses (helpers/core/userns.py) and the runtime
runs rootless there.  Exit status: the app's; 125 when acigen run itself
fails (the convention of chroot, env and docker run: the app's own 1 stays
distinguishable), 130 when interrupted (Ctrl-C), 143 on SIGTERM (129 on
SIGHUP): the container is stopped first, TERM then KILL after STOP_GRACE
seconds, or KILL at once when the app's PID 1 has no TERM handler (the
kernel would drop TERM for it).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
from collections.abc import Sequence

from acigen.errors import ExitCode, HelperError, Interrupted, handle_exit
from acigen.helpers.chroot_run.container import (
    STOP_GRACE,
    Container,
    find_runtime,
    scratch_dir,
    write_bundle,
)
from acigen.helpers.chroot_run.container import writable_root as throwaway_root
from acigen.helpers.core import userns
from acigen.helpers.core.common import install_signal_handlers
from acigen.helpers.layers import layers
from acigen.helpers.rootfs.root import Root
from acigen.helpers.run.cache import cache_dir, cached_image
from acigen.helpers.run.config import RunOptions, runtime_config

PROG = "acigen run"
FAILED = ExitCode.RUN_FAILED
HOSTS = b"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Run an ACI's app through runc or "
                                "crun, as an App Container executor would.")
    p.add_argument("image", metavar="IMAGE.aci")
    p.add_argument("--net", choices=("default", "host"), default="default")
    p.add_argument("--volume", action="append", default=[], metavar="NAME:HOSTPATH")
    p.add_argument("--exec", dest="exec_override", metavar="PROGRAM")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--runtime", metavar="NAME|PATH")
    p.add_argument("--cap-add", action="append", default=[], metavar="CAP",
                   help="grant a capability beyond the containers default set (the "
                        "image's own isolators can only narrow it)")
    return p


def split_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(acigen run's own arguments, the app's ARGS after `--`)."""
    args = list(argv)
    if "--" in args:
        cut = args.index("--")
        return args[:cut], args[cut + 1:]
    return args, []


def pairs(values: list[str], sep: str, what: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, found, rest = value.partition(sep)
        if not found or not key or not rest:
            form = "NAME:HOSTPATH" if sep == ":" else "NAME=VALUE"
            raise HelperError(f"{what} {value!r}: expected {form}")
        out[key] = rest
    return out


def options(args: argparse.Namespace, app_args: list[str]) -> RunOptions:
    return RunOptions(
        args=app_args, exec_override=args.exec_override, net_host=args.net == "host",
        volumes=pairs(args.volume, ":", "--volume"), env=pairs(args.env, "=", "--env"),
        terminal=sys.stdin.isatty() and sys.stdout.isatty(), cap_add=args.cap_add)


def provide_etc(rootfs: str, net_host: bool) -> None:
    """/etc/hosts when the image has none (appc: the executor MAY provide
    it, and leaves the image's own alone); with the host's network, the
    host's resolver config when the image has none.  Written into the
    throw-away view only."""
    wanted = {"etc/hosts": HOSTS}
    if net_host and os.path.isfile("/etc/resolv.conf"):
        with open("/etc/resolv.conf", "rb") as src:
            wanted["etc/resolv.conf"] = src.read()
    with Root(rootfs) as root:
        for path, data in wanted.items():
            if root.lstat(path) is not None:
                continue
            try:
                parent, name = root.parent(path, create=True)
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                             0o644, dir_fd=parent)
            except OSError:
                continue  # an image whose /etc is not a directory gets none
            with os.fdopen(fd, "wb") as out:
                out.write(data)


def enter_user_namespace() -> bool:
    """As an ordinary user, enter the user namespace a rootless build uses
    (helpers/core/userns.py): the image's owners are the user's subordinate
    ids there, and the runtime runs in its rootless mode.  Whether we did."""
    if userns.mode() == "single":
        raise HelperError("acigen run as an ordinary user needs a subordinate id range (the "
                          f"image's owners are mapped into it); {userns.add_range_hint()}")
    userns.enter()
    return userns.in_user_namespace()


def run_image(image: str, opts: RunOptions, runtime: str | None) -> int:
    opts = dataclasses.replace(opts, rootless=enter_user_namespace())
    if not os.path.isfile(image):
        raise HelperError(f"{image}: no such file")
    program = find_runtime(runtime)
    for cap in opts.cap_add:
        print(f"{PROG}: warning: --cap-add {cap}: the app holds more than the containers "
              "default capabilities, and can do more to the host", file=sys.stderr)
    layers.enter_private_mount_namespace()  # our mounts vanish with us
    with cached_image(image) as cached, \
            scratch_dir(os.path.join(cache_dir(), "scratch")) as scratch, \
            throwaway_root(cached.rootfs, scratch) as rootfs:
        config, warnings = runtime_config(cached.manifest, rootfs, opts)
        for warning in warnings:
            print(f"{PROG}: warning: {warning}", file=sys.stderr)
        provide_etc(rootfs, opts.net_host)
        bundle = write_bundle(scratch, config, rootfs)
        ended = Container(program, bundle, grace=STOP_GRACE).run(0, 1, 2)
    if ended.error is not None:  # the runtime's failure, not the app's status
        raise HelperError(f"the container did not start: {ended.error}")
    return ended.status


def main(argv: Sequence[str] | None = None) -> int:
    own, app_args = split_args(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(own)
    install_signal_handlers()
    try:
        return run_image(args.image, options(args, app_args), args.runtime)
    except Interrupted as exc:  # SIGTERM or SIGHUP: 128+N, as a shell reports it
        print(f"{PROG}: stopped by {exc}", file=sys.stderr)
        return 128 + signal.Signals[str(exc)]
    except BaseException as exc:  # acigen run's own failure: 125, never the app's codes
        code = handle_exit(PROG, exc, "rerun with ACIGEN_DEBUG=1 for a traceback",
                           bool(os.environ.get("ACIGEN_DEBUG")))
        return code if code == ExitCode.INTERRUPTED else FAILED

if __name__ == "__main__":
    raise SystemExit(main())
