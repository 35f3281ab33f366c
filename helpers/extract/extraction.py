"""The `extract` step: prune an image to what its programs need at run time.

Keeps the run-time closure of `binaries` (the ELF resolver's answer: the
programs, their interpreter and libraries, every symlink on the way, NSS
modules, libgcc_s, gconv, the files they read), every path `keeps` names
or matches, and the empty mount-point directories (/dev, /proc, /run, /sys,
/tmp); deletes the rest in place (see helpers/extract/prune.py, helpers/extract/keeps.py).
Then resolves the closure again on the pruned tree, which must find the
same files (a fixed point).

Bad input (a missing binary or keep, an unresolved library) is reported
before anything is deleted.

Step keys: binaries (image paths or bare names looked up in the app's
PATH), keeps (paths or globs), allow_missing (library names the programs
may lack), app (the image's app section: exec, user, group, environment,
workingDirectory).

By hand: acigen-extract --root DIR [--binary B]... [--keep K]... [--dry-run]
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from acigen.errors import HelperError
from acigen.helpers import elf
from acigen.helpers.extract.keeps import MOUNT_POINTS, KeepSet, glob, is_glob
from acigen.helpers.extract.prune import prune
from acigen.helpers.rootfs.walk import FILE, Walker
from acigen.specs import DEFAULT_PATH
from acigen.treewalk import iter_tree

PROG = "acigen-extract"

Say = Callable[[str], None]


@dataclass
class Request:
    """One extract, whether from a step file or the command line."""

    binaries: list[str]
    keeps: list[str] = field(default_factory=list)
    allow_missing: list[str] = field(default_factory=list)
    app: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_step(cls, step: dict[str, Any]) -> Request:
        app = step.get("app") or {}
        binaries = list(step.get("binaries") or [])
        if not binaries and app.get("exec"):
            binaries = [app["exec"][0]]
        return cls(binaries, list(step.get("keeps") or []),
                   list(step.get("allow_missing") or []), app)

    def env(self) -> dict[str, str]:
        """The app's environment (appc: a list of {name, value}), PATH defaulted."""
        given = self.app.get("environment") or []
        env = ({e["name"]: e["value"] for e in given} if isinstance(given, list)
               else dict(given))
        env.setdefault("PATH", DEFAULT_PATH)
        return env

    def workdir(self) -> str:
        return self.app.get("workingDirectory") or "/"


@dataclass
class Outcome:
    programs: list[str]
    kept_entries: int
    kept_bytes: int
    removed_entries: int
    removed_bytes: int

    def summary(self) -> str:
        total = self.kept_bytes + self.removed_bytes
        return (f"kept {self.kept_entries} entries ({_mb(self.kept_bytes)} of {_mb(total)}) "
                f"for {', '.join(self.programs)}; removed {self.removed_entries}")


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


# -- finding the programs ---------------------------------------------------------

def find_program(walker: Walker, name: str, env: dict[str, str]) -> str:
    """The image path of binary NAME: as given if it has a slash, else the
    first executable file of that name in the app's PATH (as execvp finds it)."""
    if "/" in name:
        if not name.startswith("/"):
            raise HelperError(f"binary {name!r}: not an absolute path in the image")
        walk = walker.resolve(name)
        if walk.status != FILE:
            what = "a directory" if walk.status == "dir" else "not in the image"
            raise HelperError(f"binary {name}: {what} ({walk.status}: {walk.path})")
        return name
    dirs = [d for d in env["PATH"].split(":") if d.startswith("/")]
    for directory in dirs:
        candidate = directory.rstrip("/") + "/" + name
        walk = walker.resolve(candidate)
        st = walker.lstat(walk.path) if walk.status == FILE else None
        if st is not None and st.st_mode & 0o111:
            return candidate
    raise HelperError(f"binary {name!r}: not found in the image's PATH ({':'.join(dirs)})",
                      hint='give its absolute path in the extract step\'s "binaries"')


# -- the keep set ------------------------------------------------------------------

def resolve_closure(root: str, request: Request, programs: list[str]) -> elf.Closure:
    found = elf.closure(root, programs, env=request.env(), workdir=request.workdir(),
                        allow_unresolved=request.allow_missing)
    if found.problems:
        raise HelperError(f"{', '.join(programs)} cannot run as the image stands: "
                          + "; ".join(found.problems),
                          hint='if they work without a library, list its name in the '
                               'extract step\'s "allow_missing"')
    return found


def build_keep_set(walker: Walker, found: elf.Closure, keeps: Sequence[str],
                   say: Say) -> KeepSet:
    keep_set = KeepSet(walker)
    for path in found.files:
        keep_set.keep_entry(path)
    missing = []
    for keep in keeps:
        if not keep.startswith("/"):
            raise HelperError(f"keep {keep!r}: not an absolute path in the image")
        if is_glob(keep):
            matches = glob(walker, keep)
            if not matches:
                keep_set.warnings.append(f"keep {keep}: the pattern matches nothing")
            for match in matches:
                keep_set.keep(match)
            say(f"keep {keep}: {len(matches)} matches")
        elif not keep_set.keep(keep):
            missing.append(keep)
    if missing:
        raise HelperError(f"keeps not in the image: {', '.join(missing)}",
                          hint="remove them from the extract step, or make an earlier "
                               "step create them")
    for point in MOUNT_POINTS:
        keep_set.keep_mount_point(point)
    return keep_set


# -- after the prune ----------------------------------------------------------------

def check_fixed_point(root: str, request: Request, programs: list[str],
                      before: elf.Closure) -> None:
    """The pruned tree must give the very same closure."""
    after = elf.closure(root, programs, env=request.env(), workdir=request.workdir(),
                        allow_unresolved=request.allow_missing)
    lost = sorted(set(before.files) - set(after.files))
    if lost:
        raise HelperError(f"after pruning, {lost[0]} is missing from the closure"
                          + (f" (and {len(lost) - 1} more)" if len(lost) > 1 else ""),
                          hint="this is an acigen bug: please report it")
    new = sorted(set(after.files) - set(before.files))
    problems = [p for p in after.problems if p not in before.problems]
    if new or problems:
        what = new[0] if new else problems[0]
        raise HelperError(f"after pruning, the programs resolve differently: {what}",
                          hint="this is an acigen bug: please report it")


ACCOUNT_TABLES = (("user", "/etc/passwd"), ("group", "/etc/group"))


def account_ids(walker: Walker, app: dict[str, Any]) -> dict[str, str | None]:
    """The numeric ids of app.user/group where they are names (read before pruning)."""
    return {key: _table_entry(walker, table, str(app[key])) for key, table in ACCOUNT_TABLES
            if str(app.get(key, "")) and not str(app[key]).isdigit()}


def account_warnings(walker: Walker, app: dict[str, Any],
                     ids: dict[str, str | None]) -> list[str]:
    """app.user/group given as names need /etc/passwd and /etc/group in the image."""
    found = []
    for key, table in ACCOUNT_TABLES:
        if key not in ids or _table_entry(walker, table, str(app[key])) is not None:
            continue
        fix = f"set app.{key} to {ids[key]!r}" if ids[key] else f"set app.{key} to a number"
        why = "is not kept" if walker.resolve(table).status != FILE else "has no such entry"
        found.append(f"app.{key} is {app[key]!r}, a name, but {table} {why}: the executor "
                     f"cannot resolve it; keep {table} or {fix}")
    return found


def _table_entry(walker: Walker, table: str, name: str) -> str | None:
    """NAME's id in TABLE (passwd or group) inside the root, if there."""
    walk = walker.resolve(table)
    if walk.status != FILE:
        return None
    with walker.open(walk.path) as src:
        for line in src.read().decode("utf-8", "replace").splitlines():
            fields = line.split(":")
            if len(fields) > 2 and fields[0] == name:
                return fields[2]
    return None


def tree_size(root: str) -> tuple[int, int]:
    """(entries, bytes of regular files) in ROOT."""
    entries = size = 0
    for _rel, st in iter_tree(root):
        entries += 1
        if stat.S_ISREG(st.st_mode):
            size += st.st_size
    return entries, size


# -- the whole step ------------------------------------------------------------------

@dataclass
class Plan:
    """What the step decided before touching anything."""

    programs: list[str]
    closure: elf.Closure
    keeps: KeepSet


def plan(walker: Walker, request: Request, say: Say, warn: Say) -> Plan:
    """Find the programs, their closure and the keep set; every input error here."""
    if not request.binaries:
        raise HelperError("nothing to extract: no binaries, and the app has no exec")
    env = request.env()
    programs = [find_program(walker, name, env) for name in request.binaries]
    found = resolve_closure(walker.root, request, programs)
    keep_set = build_keep_set(walker, found, request.keeps, say)
    for text in found.warnings:
        say(f"closure: {text}")
    for text in keep_set.warnings:
        warn(text)
    for path in sorted(keep_set.entries | keep_set.trees):
        say(f"keep {path}{'/ (tree)' if path in keep_set.trees else ''}")
    return Plan(programs, found, keep_set)


def extract(root: str, request: Request, say: Say, warn: Say,
            dry_run: bool = False) -> Outcome:
    """Prune ROOT to REQUEST; SAY goes to the log, WARN to the user too."""
    if os.path.realpath(root) == "/":
        raise HelperError("refusing to prune the host's own root directory")
    walker = Walker(root)
    decided = plan(walker, request, say, warn)
    if dry_run:
        entries, size = tree_size(root)
        removed = prune(root, decided.keeps, dry_run=True)
        return Outcome(decided.programs, entries - removed.entries, size - removed.bytes,
                       removed.entries, removed.bytes)
    ids = account_ids(walker, request.app)
    removed = prune(root, decided.keeps)
    check_fixed_point(root, request, decided.programs, decided.closure)
    for text in account_warnings(Walker(root), request.app, ids):
        warn(text)
    entries, size = tree_size(root)  # what is left: small
    return Outcome(decided.programs, entries, size, removed.entries, removed.bytes)
