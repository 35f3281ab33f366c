"""How a container is confined: the parts of an OCI runtime config that
keep an image's programs off the host, shared by build steps and
`acigen run`.

They are what podman and buildah give a container by default:

- the containers default capability set (no CAP_SYS_ADMIN, CAP_MKNOD,
  CAP_NET_RAW, CAP_SYS_PTRACE, CAP_SYS_MODULE, ...);
- the containers default seccomp profile (chroot_run/seccomp.py), narrowed where the
  kernel keeps state that namespaces do not separate: the kernel keyring
  (keyctl, add_key, request_key: root's keys on the host would be root's
  keys in the container) and new user namespaces (in one, a process holds
  every capability again, and reaches filesystem and network code that is
  otherwise root's alone);
- /proc and /sys paths that show or change the host masked or read-only;
- new mount, PID, IPC, UTS and cgroup namespaces; the network namespace
  is the caller's choice;
- a limit on the number of processes (root builds only: a rootless build
  runs where cgroups are not delegated to the user, so it has none).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Collection, Iterable

from acigen.helpers.chroot_run import seccomp

TYPE_CHECKING = False  # typing costs every step ~2 ms to import (bench/chroot_run.py)
if TYPE_CHECKING:
    from typing import Any

DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID",
    "CAP_SYS_CHROOT")
MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
    "/proc/timer_stats", "/sys/dev/block", "/sys/devices/virtual/powercap",
    "/sys/firmware", "/sys/fs/selinux")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
NAMESPACES = ("pid", "ipc", "uts", "mount", "cgroup")
PIDS_LIMIT = 4096
KEYRING_CALLS = ("add_key", "keyctl", "request_key")
CLONE_NEWUSER = 0x10000000
# the argument that holds clone's flags: the second on s390, the first elsewhere
CLONE_FLAGS_ARG = {"s390x": 1}


def capability_name(name: str) -> str:
    """'sys_admin', 'SYS_ADMIN' or 'CAP_SYS_ADMIN' -> 'CAP_SYS_ADMIN'."""
    upper = name.strip().upper()
    return upper if upper.startswith("CAP_") else "CAP_" + upper


def capability_sets(names: Iterable[str]) -> dict[str, list[str]]:
    caps = sorted({capability_name(n) for n in names})
    return {"bounding": caps, "effective": caps, "permitted": caps}


def seccomp_profile(capabilities: Collection[str]) -> dict[str, Any]:
    """The containers profile for these capabilities, narrowed as above."""
    profile = seccomp.default_profile(capabilities)
    held = set(capabilities)
    rules = [_without(rule, {*KEYRING_CALLS, "unshare", "clone", "clone3"})
             for rule in profile["syscalls"]]
    rules = [rule for rule in rules if rule["names"]]
    rules.append({"names": list(KEYRING_CALLS), "action": "SCMP_ACT_ERRNO",
                  "errnoRet": errno.EPERM})
    if "CAP_SYS_ADMIN" in held:  # a container that may mount may also nest
        rules.append({"names": ["unshare", "clone", "clone3"], "action": "SCMP_ACT_ALLOW"})
    else:
        rules.extend(_no_user_namespaces())
    return dict(profile, syscalls=rules)


def _without(rule: dict[str, Any], names: set[str]) -> dict[str, Any]:
    return dict(rule, names=[n for n in rule["names"] if n not in names])


def _no_user_namespaces() -> list[dict[str, Any]]:
    """unshare and clone without CLONE_NEWUSER; clone3 (whose flags seccomp
    cannot see) answers ENOSYS, so the C library falls back to clone."""
    index = CLONE_FLAGS_ARG.get(os.uname().machine, 0)

    def flags(arg: int, value: int) -> list[dict[str, Any]]:
        return [{"index": arg, "value": CLONE_NEWUSER, "valueTwo": value,
                 "op": "SCMP_CMP_MASKED_EQ"}]
    rules = []
    for name, arg in (("unshare", 0), ("clone", index)):
        rules.append({"names": [name], "action": "SCMP_ACT_ALLOW", "args": flags(arg, 0)})
        rules.append({"names": [name], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EPERM,
                      "args": flags(arg, CLONE_NEWUSER)})
    rules.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS})
    return rules


# The device cgroup, written out rather than left to the runtime: runc adds
# these defaults itself, crun adds none, so without them a crun container could
# open any device node an image carries.  Deny all, then the nodes the
# runtime's /dev holds (null, zero, full, random, urandom, tty, console, ptmx)
# and the ptys.
ALLOWED_CHAR_DEVICES = ((1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2),
                        (136, None))


def device_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [{"allow": False, "access": "rwm"}]
    for major, minor in ALLOWED_CHAR_DEVICES:
        rule = {"allow": True, "type": "c", "major": major, "access": "rwm"}
        rules.append(rule if minor is None else {**rule, "minor": minor})
    return rules


def linux_section(capabilities: Collection[str], network: bool,
                  pids_limit: int | None = PIDS_LIMIT) -> dict[str, Any]:
    """config.json's `linux`: namespaces (a new network namespace when
    NETWORK is false), masked and read-only paths, seccomp, a pids limit."""
    namespaces = [*NAMESPACES, *(() if network else ("network",))]
    section: dict[str, Any] = {
        "namespaces": [{"type": kind} for kind in namespaces],
        "maskedPaths": list(MASKED_PATHS),
        "readonlyPaths": list(READONLY_PATHS),
        "seccomp": seccomp_profile(capabilities),
    }
    if pids_limit:  # None where no cgroup is ours (rootless): no limits, no device rules
        section["resources"] = {"pids": {"limit": pids_limit}, "devices": device_rules()}
    return section


def mount(dest: str, kind: str, source: str, *options: str) -> dict[str, Any]:
    return {"destination": dest, "type": kind, "source": source, "options": list(options)}


def proc_mounts() -> list[dict[str, Any]]:
    return [mount("/proc", "proc", "proc", "nosuid", "noexec", "nodev")]


def dev_mounts(full: bool = True) -> list[dict[str, Any]]:
    """The runtime's /dev: a tmpfs where it makes the standard nodes (null,
    zero, full, random, urandom, tty, and /dev/ptmx); FULL adds a fresh
    devpts, /dev/shm and /dev/mqueue.  Never a host device."""
    dev = [mount("/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755",
                 "size=65536k")]
    if full:
        dev += [
            mount("/dev/pts", "devpts", "devpts", "nosuid", "noexec", "newinstance",
                  "ptmxmode=0666", "mode=0620", "gid=5"),
            mount("/dev/shm", "tmpfs", "shm", "nosuid", "noexec", "nodev", "mode=1777",
                  "size=65536k"),
            mount("/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev"),
        ]
    return dev


def sys_mounts(bind: bool = False) -> list[dict[str, Any]]:
    """A read-only sysfs; BIND (rootless: a user namespace may not mount
    sysfs for the host's network namespace) the host's /sys bound read-only."""
    if bind:
        return [mount("/sys", "bind", "/sys", "rbind", "nosuid", "noexec", "nodev", "ro")]
    return [mount("/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", "ro")]
