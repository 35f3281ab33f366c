"""An appc app section -> an OCI runtime config.json (runtime-spec 1.0).

What an App Container executor does for a single app, said in the terms
runc and crun understand:
- exec, with the ARGS of `acigen run IMAGE -- ARGS` appended (appc lets the
  executor append to exec; `docker run` does the same with an Entrypoint);
  `--exec PROG` replaces the program;
- user and group resolved in the image's own /etc/passwd and /etc/group,
  then as numbers; "/path" means the owner of that file in the image; a
  name that resolves nowhere is an error;
- supplementaryGIDs, environment (a default PATH, AC_APP_NAME, HOME),
  workingDirectory;
- confined as a build step is (chroot_run/confinement.py): the containers default
  capabilities and seccomp profile, masked and read-only /proc and /sys
  paths, new namespaces, a pids limit;
- the isolators a runtime can enforce: memory and cpu limits, cpu shares,
  no-new-privileges, oom-score-adj, sysctls, and capability and seccomp
  retain/remove sets, which may only narrow the defaults (more
  capabilities take `--cap-add`); the others are reported and ignored, as
  the spec allows;
- mountPoints bound to host paths with `--volume NAME:HOSTPATH`;
- /proc, /sys, /dev (with /dev/pts, /dev/shm, /dev/mqueue) as appc's
  executor section lists them; a private network namespace with only
  loopback (the runtime brings `lo` up), or the host's with --net host.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from acigen.errors import HelperError
from acigen.helpers.chroot_run import confinement
from acigen.helpers.core.common import READ_FLAGS, regular_only
from acigen.helpers.rootfs.root import Root, is_executable
from acigen.specs import DEFAULT_PATH

CAPABILITY_ISOLATORS = ("os/linux/capabilities-retain-set", "os/linux/capabilities-remove-set")
SECCOMP_ISOLATORS = ("os/linux/seccomp-retain-set", "os/linux/seccomp-remove-set")
CGROUP_ISOLATORS = ("resource/memory", "resource/cpu", "os/linux/cpu-shares")
IGNORED_ISOLATORS = ("resource/block-bandwidth", "resource/block-iops",
                     "resource/network-bandwidth", "os/linux/selinux-context",
                     "os/linux/apparmor-profile")
QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|K|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
UNITS = {None: 1, "m": 0.001, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
         "P": 10**15, "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
         "Pi": 2**50, "Ei": 2**60}


@dataclass
class RunOptions:
    """What the user asked `acigen run` for, beyond the image."""

    args: list[str] = field(default_factory=list)
    exec_override: str | None = None
    net_host: bool = False
    volumes: dict[str, str] = field(default_factory=dict)  # mount point name -> host path
    env: dict[str, str] = field(default_factory=dict)
    terminal: bool = False
    cap_add: list[str] = field(default_factory=list)  # beyond the default set: --cap-add
    rootless: bool = False  # in a user namespace of an ordinary user's (helpers/core/userns.py)


# -- names and numbers inside the image -----------------------------------------------

def read_in_root(root: str, path: str) -> str:
    """A text file of the image, resolved inside it ('' when absent)."""
    with Root(root) as confined:
        try:
            # a FIFO must not block us: O_NONBLOCK, then regular files only
            fd = regular_only(confined.open(path, READ_FLAGS), path)
        except (FileNotFoundError, NotADirectoryError):
            return ""
        except OSError as exc:
            raise HelperError(f"{path} in the image: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as src:
            return src.read(1 << 22).decode("utf-8", "replace")


def _table(root: str, path: str) -> dict[str, list[str]]:
    entries: dict[str, list[str]] = {}
    for line in read_in_root(root, path).splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] and not fields[0].startswith(("#", "+", "-")):
            entries.setdefault(fields[0], fields)
    return entries


def owner_in_root(root: str, path: str) -> os.stat_result:
    with Root(root) as confined:
        try:
            fd = confined.open(path, os.O_PATH)
        except OSError as exc:
            raise HelperError(f"app user/group {path}: no such file in the image "
                              f"({exc.strerror})") from None
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)


def resolve_id(root: str, value: str, what: str) -> tuple[int, list[str] | None]:
    """appc's rule for user (WHAT='user') or group: the image's passwd or
    group file first, then a number, or '/path' for the owner of a file."""
    if value.startswith("/"):
        st = owner_in_root(root, value)
        return (st.st_uid if what == "user" else st.st_gid), None
    table = _table(root, "/etc/passwd" if what == "user" else "/etc/group")
    if value in table and table[value][2].isdigit():
        return int(table[value][2]), table[value]
    if value.isdigit():
        return int(value), None
    if value == "root":
        # the original's images (bash: busybox and bash, no /etc at all) name
        # "root", and rkt ran them: root is 0 wherever there is no entry
        return 0, None
    file = "/etc/passwd" if what == "user" else "/etc/group"
    raise HelperError(f"{what} {value!r} is neither in the image's {file} nor a number",
                      "use a numeric id, or add the entry to the image")


def home_of(root: str, uid: int, entry: list[str] | None) -> str:
    if entry is None:
        entry = next((fields for fields in _table(root, "/etc/passwd").values()
                      if fields[2] == str(uid)), None)
    return entry[5] if entry and len(entry) > 5 and entry[5] else "/"


# -- isolators -----------------------------------------------------------------------

def quantity(value: Any, what: str) -> float:
    """A Kubernetes-style quantity ("512Mi", "1G", "500m", 2) as a number."""
    match = QUANTITY.match(str(value))
    if not match:
        raise HelperError(f"isolator {what}: {value!r} is not a quantity (e.g. 512Mi, 1G)")
    return float(match.group(1)) * UNITS[match.group(2)]


def _scalar(value: Any) -> Any:
    return value.get("value") if isinstance(value, dict) else value


def capabilities(isolators: list[dict[str, Any]], cap_add: Sequence[str]
                 ) -> tuple[list[str], list[str]]:
    """(the app's capabilities, warnings).  The containers default set, plus
    what --cap-add grants; an image's retain and remove sets may only narrow
    that: what an image asks for beyond it is refused with a warning."""
    allowed = {*confinement.DEFAULT_CAPABILITIES, *map(confinement.capability_name, cap_add)}
    granted, warnings = set(allowed), []
    for isolator in isolators:
        if isolator["name"] not in CAPABILITY_ISOLATORS:
            continue
        names = {confinement.capability_name(n) for n in _names(isolator)}
        if isolator["name"].endswith("retain-set"):
            for name in sorted(names - allowed):
                warnings.append(f"the image asks to keep {name}, which only --cap-add "
                                f"{name} grants; not granted")
            granted &= names
        else:
            granted -= names
    return sorted(granted), warnings


def _names(isolator: dict[str, Any]) -> list[str]:
    value = isolator["value"]
    names = value.get("set") if isinstance(value, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise HelperError(f"isolator {isolator['name']}: expected {{\"set\": [names]}}, "
                          f"got {value!r}")
    return names


def narrow_seccomp(profile: dict[str, Any], isolator: dict[str, Any]) -> dict[str, Any]:
    """The default PROFILE with fewer system calls: those outside a retain
    set, or inside a remove set, fail with the isolator's errno."""
    names = set(_names(isolator))
    code = isolator["value"].get("errno", "EPERM")
    number = getattr(errno, str(code), None)
    if not isinstance(number, int):
        raise HelperError(f"isolator {isolator['name']}: unknown errno {code!r}")
    retain = isolator["name"].endswith("retain-set")
    rules, denied = [], set()
    for rule in profile["syscalls"]:
        if rule["action"] != "SCMP_ACT_ALLOW":
            rules.append(rule)
            continue
        drop = {n for n in rule["names"] if (n not in names) == retain}
        denied |= drop
        kept = [n for n in rule["names"] if n not in drop]
        if kept:
            rules.append(dict(rule, names=kept))
    if denied:
        rules.append({"names": sorted(denied), "action": "SCMP_ACT_ERRNO", "errnoRet": number})
    return dict(profile, syscalls=rules)


Apply = Callable[[dict[str, Any], Any], None]


def _memory(config: dict[str, Any], value: Any) -> None:
    limit = value.get("limit") if isinstance(value, dict) else None
    if limit is not None:
        resources = config["linux"].setdefault("resources", {})
        resources["memory"] = {"limit": int(quantity(limit, "resource/memory"))}


def _cpu(config: dict[str, Any], value: Any) -> None:
    limit = value.get("limit") if isinstance(value, dict) else None
    if limit is not None:
        period = 100_000
        cores = quantity(limit, "resource/cpu")
        cpu = config["linux"].setdefault("resources", {}).setdefault("cpu", {})
        cpu.update({"quota": max(int(cores * period), 1000), "period": period})


def _shares(config: dict[str, Any], value: Any) -> None:
    cpu = config["linux"].setdefault("resources", {}).setdefault("cpu", {})
    cpu["shares"] = int(_scalar(value))


ISOLATORS: dict[str, Apply] = {
    "resource/memory": _memory,
    "resource/cpu": _cpu,
    "os/linux/cpu-shares": _shares,
    "os/linux/no-new-privileges":
        lambda c, v: c["process"].__setitem__("noNewPrivileges", bool(_scalar(v))),
    "os/linux/oom-score-adj":
        lambda c, v: c["process"].__setitem__("oomScoreAdj", int(_scalar(v))),
    "os/unix/sysctl": lambda c, v: c["linux"].setdefault("sysctl", {}).update(
        {str(k): str(x) for k, x in v.items()}),
}


def apply_isolators(config: dict[str, Any], isolators: list[dict[str, Any]],
                    cgroups: bool = True) -> list[str]:
    """Map what the runtime can enforce; return warnings for the rest.
    Without CGROUPS (rootless: cgroups are seldom delegated to a user, and
    never on cgroup v1), the resource limits are among the rest."""
    warnings = []
    for isolator in isolators:
        if isolator["name"] in CAPABILITY_ISOLATORS:
            continue  # capabilities(): they decide the set before anything else
        if isolator["name"] in CGROUP_ISOLATORS and not cgroups:
            warnings.append(f"isolator {isolator['name']} is not enforced: a rootless run "
                            "has no cgroup of its own; ignored")
            continue
        if isolator["name"] in SECCOMP_ISOLATORS:
            config["linux"]["seccomp"] = narrow_seccomp(config["linux"]["seccomp"], isolator)
            continue
        apply = ISOLATORS.get(isolator["name"])
        if apply is None:
            warnings.append(f"isolator {isolator['name']} is not supported here; ignored")
            continue
        try:
            apply(config, isolator["value"])
        except (AttributeError, TypeError, ValueError) as exc:
            raise HelperError(f"isolator {isolator['name']}: bad value "
                              f"{isolator['value']!r} ({exc})") from None
    return warnings


# -- mounts --------------------------------------------------------------------------------

def kernel_mounts(bind_sys: bool = False) -> list[dict[str, Any]]:
    """/proc, /dev, /sys as appc's executor provides them (the runtime adds
    the standard device nodes and /dev/ptmx).  BIND_SYS: the host's /sys
    bound read-only (see confinement.sys_mounts)."""
    cgroup = confinement.mount("/sys/fs/cgroup", "cgroup", "cgroup", "nosuid", "noexec",
                               "nodev", "relatime", "ro")
    return [*confinement.proc_mounts(), *confinement.dev_mounts(),
            *confinement.sys_mounts(bind=bind_sys), cgroup]


def volume_mounts(app: dict[str, Any], volumes: dict[str, str]) -> tuple[list[dict[str, Any]],
                                                                        list[str]]:
    """Bind mounts for the app's mountPoints; warnings for those left unbound."""
    points = {mp["name"]: mp for mp in app.get("mountPoints", [])}
    unknown = sorted(set(volumes) - set(points))
    if unknown:
        known = ", ".join(sorted(points)) or "none"
        raise HelperError(f"--volume {unknown[0]}: the image has no mount point of that name "
                          f"(it has: {known})")
    mounts, warnings = [], []
    for name, point in sorted(points.items()):
        if name not in volumes:
            warnings.append(f"mount point {name} ({point['path']}) has no --volume: the "
                            "image's own directory is used and changes to it are lost")
            continue
        source = os.path.abspath(volumes[name])
        if not os.path.exists(source):
            raise HelperError(f"--volume {name}:{volumes[name]}: no such file or directory")
        options = ["rbind", "ro" if point.get("readOnly") else "rw"]
        mounts.append({"destination": point["path"], "type": "bind", "source": source,
                       "options": options})
    return mounts, warnings


# -- the whole config -----------------------------------------------------------------------

def app_name(image_name: str) -> str:
    """AC_APP_NAME: the last part of the image name, as an AC Name."""
    last = image_name.rstrip("/").rsplit("/", 1)[-1].lower()
    return re.sub(r"[^a-z0-9]+", "-", last).strip("-") or "app"


def process_args(app: dict[str, Any], opts: RunOptions) -> list[str]:
    program = list(app.get("exec") or [])
    if opts.exec_override:
        program = [opts.exec_override]
    args = program + list(opts.args)
    if not args:
        raise HelperError("the image's app has no exec: nothing to run",
                          "give the command: acigen run IMAGE -- PROGRAM [ARGS...]")
    return args


def environment(app: dict[str, Any], opts: RunOptions, name: str, home: str) -> list[str]:
    env = {"PATH": DEFAULT_PATH, "HOME": home}
    if opts.terminal:
        env["TERM"] = os.environ.get("TERM", "xterm")
    env.update({item["name"]: item["value"] for item in app.get("environment", [])})
    env.update(opts.env)
    env["AC_APP_NAME"] = name
    return [f"{key}={value}" for key, value in env.items()]


def process(app: dict[str, Any], root: str, opts: RunOptions, name: str) -> dict[str, Any]:
    uid, entry = resolve_id(root, str(app.get("user", "0")), "user")
    gid, _ = resolve_id(root, str(app.get("group", "0")), "group")
    gids = app.get("supplementaryGIDs", app.get("supplementaryGids", []))
    return {
        "terminal": opts.terminal,
        "user": {"uid": uid, "gid": gid, "additionalGids": sorted({int(g) for g in gids})},
        "args": process_args(app, opts),
        "env": environment(app, opts, name, home_of(root, uid, entry)),
        "cwd": app.get("workingDirectory") or "/",
        "noNewPrivileges": False,
    }


def check_program(root: str, proc: dict[str, Any]) -> None:
    """Fail before starting anything when the program is not in the image
    (the runtime's own failure would look like the app exiting with 1)."""
    program = proc["args"][0]
    if "/" in program:
        candidates = [os.path.join(proc["cwd"], program)]
    else:
        env = dict(item.split("=", 1) for item in proc["env"])
        candidates = [os.path.join(d or ".", program) for d in env.get("PATH", "").split(":")]
    if not any(is_executable(root, path) for path in candidates):
        raise HelperError(f"{program}: no such executable in the image",
                          "check the app's exec, or give --exec")


def runtime_config(manifest: dict[str, Any], root: str, opts: RunOptions
                   ) -> tuple[dict[str, Any], list[str]]:
    """(config.json for the bundle whose rootfs is ROOT, warnings)."""
    app = manifest.get("app")
    if not isinstance(app, dict):
        raise HelperError("the image has no app section: nothing to run")
    name = app_name(str(manifest.get("name", "app")))
    volumes, warnings = volume_mounts(app, opts.volumes)
    isolators = app.get("isolators", [])
    caps, cap_warnings = capabilities(isolators, opts.cap_add)
    warnings += cap_warnings
    config: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "process": dict(process(app, root, opts, name),
                        capabilities=confinement.capability_sets(caps)),
        "root": {"path": "rootfs", "readonly": False},
        "hostname": name,
        "mounts": kernel_mounts(bind_sys=opts.rootless and opts.net_host) + volumes,
        "linux": confinement.linux_section(
            caps, network=opts.net_host,
            pids_limit=None if opts.rootless else confinement.PIDS_LIMIT),
    }
    check_program(root, config["process"])
    warnings += apply_isolators(config, isolators, cgroups=not opts.rootless)
    for handler in app.get("eventHandlers", []):
        warnings.append(f"event handler {handler['name']} is not run by acigen run")
    if manifest.get("dependencies"):
        warnings.append("the image's dependencies are not fetched: only its own rootfs runs")
    return config, warnings
