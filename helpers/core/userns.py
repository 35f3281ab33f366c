"""Rootless builds: a helper started by an ordinary user enters a user
namespace first, where it is root over the user's own ids.

Three privilege modes:

    root    started as root: nothing to do (as every build before).
    userns  a user with a subordinate id range (/etc/subuid, /etc/subgid)
            and newuidmap/newgidmap: in-image id 0 is the user, ids 1.. are
            the user's subordinate ranges, in file order.  Images unpack
            with their owners, and a tree read inside shows in-image ids,
            so images are the same as a root build's.
    single  a user without a range: only id 0 (the user) exists inside;
            an image holding any other owner cannot be built.

Entered in-process (no re-exec: ninja keeps signalling the pid it started):
we fork a child that waits until we have unshared, runs newuidmap and
newgidmap on us, and exits.  Must run before any thread starts.
"""

from __future__ import annotations

import functools
import os
import pwd
import subprocess

from acigen.errors import HelperError
from acigen.helpers.core import linux

CLONE_NEWUSER = 0x10000000
SUBUID, SUBGID = "/etc/subuid", "/etc/subgid"

_mode: str | None = None  # set once this process has decided (enter())
_outside_uid: int = os.getuid()
_outside_gid: int = os.getgid()


def subordinate_ranges(path: str, user: str, uid: int) -> list[tuple[int, int]]:
    """(start, count) of USER's (or UID's) lines in PATH, in file order."""
    ranges = []
    try:
        with open(path, encoding="utf-8", errors="replace") as src:
            lines = src.read().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.strip().split(":")
        if len(fields) != 3 or fields[0] not in (user, str(uid)):
            continue
        if fields[1].isdigit() and fields[2].isdigit() and int(fields[2]) > 0:
            ranges.append((int(fields[1]), int(fields[2])))
    return ranges


def id_map_args(own: int, ranges: list[tuple[int, int]]) -> list[str]:
    """newuidmap's triples: 0 -> OWN, then RANGES from inside id 1 on."""
    args, inside = ["0", str(own), "1"], 1
    for start, count in ranges:
        args += [str(inside), str(start), str(count)]
        inside += count
    return args


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def mode() -> str:
    """This process's mode, root, userns or single (before enter(): the one
    it would enter)."""
    if _mode is not None:
        return _mode
    if os.geteuid() == 0:
        return "root"
    import shutil  # rootless only: not imported at every root build step
    uid, user = os.getuid(), _user_name(os.getuid())
    full = (subordinate_ranges(SUBUID, user, uid) and
            subordinate_ranges(SUBGID, user, uid) and
            shutil.which("newuidmap") and shutil.which("newgidmap"))
    return "userns" if full else "single"


def in_user_namespace() -> bool:
    """Whether this process entered a user namespace of ours."""
    return _mode in ("userns", "single")


def outside_uid() -> int:
    """The uid that started this process, as the host sees it."""
    return _outside_uid


def add_range_hint() -> str:
    user = _user_name(_outside_uid)
    return (f"add a range to {SUBUID} and {SUBGID}: sudo usermod "
            f"--add-subuids 100000-165535 --add-subgids 100000-165535 {user}")


def enter() -> str:
    """Enter the user namespace this user may have (nothing as root); the mode."""
    global _mode
    if _mode is not None:
        return _mode
    chosen = mode()
    if chosen == "userns":
        _enter_mapped()
    elif chosen == "single":
        _enter_single()
    _mode = chosen
    return chosen


def _unshare_user() -> None:
    try:
        linux.unshare(CLONE_NEWUSER)
    except OSError as exc:
        raise HelperError(f"cannot create a user namespace: {os.strerror(exc.errno or 0)}",
                          hint="unprivileged user namespaces are disabled on this host "
                               "(sysctl user.max_user_namespaces, or an AppArmor policy): "
                               "build with sudo") from None


def _become_root() -> None:
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def _enter_mapped() -> None:
    uid, gid, user = os.getuid(), os.getgid(), _user_name(os.getuid())
    uids = id_map_args(uid, subordinate_ranges(SUBUID, user, uid))
    gids = id_map_args(gid, subordinate_ranges(SUBGID, user, uid))  # keyed by user too
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the mapper: waits for our unshare, maps us, exits
        try:
            os.close(go_w)
            os.close(done_r)
            if os.read(go_r, 1) != b"x":
                os._exit(0)  # the unshare failed: nothing to map
            target = str(os.getppid())
            failed = b""
            for tool, triples in (("newuidmap", uids), ("newgidmap", gids)):
                result = subprocess.run([tool, target, *triples], capture_output=True)
                if result.returncode != 0:
                    failed = f"{tool}: {result.stderr.decode(errors='replace').strip()}".encode()
                    break
            os.write(done_w, failed or b"ok")
        finally:
            os._exit(0)
    os.close(go_r)
    os.close(done_w)
    try:
        _unshare_user()
    except BaseException:
        os.close(go_w)
        os.close(done_r)
        os.waitpid(pid, 0)
        raise
    os.write(go_w, b"x")
    os.close(go_w)
    answer = os.read(done_r, 4096)
    os.close(done_r)
    os.waitpid(pid, 0)
    if answer != b"ok":
        raise HelperError("cannot map the subordinate ids into the user namespace: "
                          + (answer.decode(errors="replace") or "newuidmap ended early"),
                          hint=f"check this user's lines in {SUBUID} and {SUBGID}")
    _become_root()
    os.setgroups([])


def _enter_single() -> None:
    uid, gid = os.getuid(), os.getgid()
    _unshare_user()
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"),
                       ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as out:
            out.write(text)
    _become_root()


@functools.cache
def _mapped_counts(path: str) -> list[tuple[int, int]]:
    with open(path, encoding="ascii") as src:
        return [(int(f[0]), int(f[2])) for f in (line.split() for line in src) if len(f) == 3]


def is_mapped(uid: int, gid: int) -> bool:
    """Whether in-image UID and GID exist in this process's namespace."""
    return (_inside(uid, _mapped_counts("/proc/self/uid_map")) and
            _inside(gid, _mapped_counts("/proc/self/gid_map")))


def _inside(value: int, ranges: list[tuple[int, int]]) -> bool:
    return any(start <= value < start + count for start, count in ranges)


def unmapped_ids_error(what: str, uid: int, gid: int) -> HelperError:
    """The one line for an owner this namespace cannot hold."""
    if mode() == "single":
        return HelperError(f"{what}: needs ids other than 0 (uid {uid}, gid {gid}) and this "
                           f"user has no subordinate ids; {add_range_hint()}")
    return HelperError(f"{what}: uid {uid} gid {gid} lies beyond this user's subordinate "
                       f"ids; {add_range_hint()}")


def _overflow_id(kind: str) -> int:
    try:
        with open(f"/proc/sys/kernel/overflow{kind}", encoding="ascii") as src:
            return int(src.read())
    except (OSError, ValueError):
        return 65534


def host_owner(st: os.stat_result) -> tuple[int, int]:
    """The owner a host file's copy gets: its host ids, as a root build
    records them.  In our user namespace, the user (0 inside) is given back
    their host ids, and an owner the namespace cannot see (shown as the
    overflow id) is taken as host root's, which nearly every host file is."""
    if _mode == "single":  # only 0 exists: every copy is the user's (root's inside)
        return 0, 0
    if _mode != "userns":
        return st.st_uid, st.st_gid
    return (_host_id(st.st_uid, _outside_uid, _overflow_id("uid")),
            _host_id(st.st_gid, _outside_gid, _overflow_id("gid")))


def _host_id(inside: int, own: int, overflow: int) -> int:
    if inside == 0:
        return own
    return 0 if inside == overflow else inside
