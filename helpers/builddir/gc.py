"""`acigen gc` and `acigen clean`: remove build state, never what is in use.

gc removes from a build directory what no current build file refers to:
layers with their stamps, locks and logs, step files, download refs and
specs, image specs, and cached compressed chunks that no current image
uses.  "Current" build files are those whose record (acigen writes one per
generated file, in BUILDDIR/generated/) still matches the file's text.

clean removes everything the build made in the build directory (layers,
stamps, logs, download refs, the chunk cache) and keeps the generated
files, so the next build starts from scratch.  Neither touches anything
outside the build directory, not the images, not the download cache, except
the hidden partial images (.NAME.aci.tmp-*) a killed pack left beside them.

Both refuse, removing nothing, while a build runs there: a ninja has its
log open, a make runs beside a build file that uses it, a helper holds the
build directory's lock (helpers/core/buildlock.py), a layer's or the chunk
cache's lock is held, or anything under it is mounted (or a killed build
left a mount behind).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field

from acigen import records
from acigen.errors import AcigenError, ExitCode
from acigen.helpers.core import identity, userns
from acigen.helpers.core.buildlock import lock_path
from acigen.helpers.core.filelock import holding
from acigen.helpers.core.mounts import mounted_under

STATE = ("layers", "logs", "steps", "fetch", "images", "mnt")   # gc looks in these
BUILT = ("layers", "logs", "mnt")                                  # clean empties these
CHUNKS = "chunks"
MIB = 1024 * 1024


@dataclass
class Doomed:
    """What to remove, relative to the build directory."""

    paths: list[str] = field(default_factory=list)
    chunks: list[str] = field(default_factory=list)   # under chunks/, incl. uses/
    temps: list[str] = field(default_factory=list)    # absolute: killed packs' partial images

    def layer_locks(self) -> list[str]:
        return [p for p in self.paths if p.startswith("layers/") and p.endswith(".lock")]


DESCRIPTIONS = {
    "gc": "Remove from the build directory what no current build file refers to: old "
          "layers, stamps, logs, step files, download refs, cached chunks.",
    "clean": "Remove everything the build made in the build directory (layers, stamps, "
             "logs, download refs, cached chunks), keeping the generated files: the next "
             "build starts from scratch.",
}


def parse(prog: str, argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=f"acigen {prog}", description=DESCRIPTIONS[prog]
                                + " Refuses while anything in it is mounted or locked.")
    p.add_argument("-f", "--file", default="build.ninja", metavar="FILE",
                   help="a build file acigen generated; its build directory is cleaned "
                        "(default: build.ninja)")
    p.add_argument("-B", "--builddir", metavar="DIR",
                   help="the build directory (default: .acigen beside FILE)")
    p.add_argument("-n", "--dry-run", action="store_true",
                   help="list what would be removed, remove nothing")
    return p.parse_args(argv)


def builddir_of(args: argparse.Namespace) -> str:
    path = os.path.abspath(args.builddir or os.path.join(
        os.path.dirname(os.path.abspath(args.file)), ".acigen"))
    if os.path.islink(path) or not os.path.isdir(path):
        raise AcigenError(f"{path}: no such build directory",
                          "give the build file with -f, or the build directory with -B")
    if not any(os.path.isdir(os.path.join(path, d)) for d in (*STATE, records.RECORDS)):
        raise AcigenError(f"{path} does not look like an acigen build directory; "
                          "nothing was removed")
    return path


def building(builddir: str) -> str | None:
    """A ninja or make building in BUILDDIR, as "ninja (pid N)".  Between two
    steps no helper holds a lock, but ninja keeps BUILDDIR/.ninja_log open
    until it ends, and make runs in the directory of its Makefile."""
    log = os.path.join(builddir, ".ninja_log")
    make_dirs = {os.path.dirname(r.file) for r in records.all_records(builddir)}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if _is_make(pid) and os.readlink(f"/proc/{pid}/cwd") in make_dirs:
                return f"make (pid {pid})"
            fds = f"/proc/{pid}/fd"
            if any(os.readlink(os.path.join(fds, fd)) == log for fd in os.listdir(fds)):
                return f"ninja (pid {pid})"
    return None


def _is_make(pid: str) -> bool:
    with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as src:
        return src.read().strip() in ("make", "gmake")


def refuse_if_busy(builddir: str) -> None:
    builder = building(builddir)
    if builder is not None:
        raise AcigenError(f"a build is running in {builddir}: {builder}; nothing was removed",
                          "try again when the build has finished")
    mounted = mounted_under(builddir)
    if mounted:
        more = f" (and {len(mounted) - 1} more)" if len(mounted) > 1 else ""
        raise AcigenError(f"{mounted[0]} is mounted{more}; nothing was removed",
                          "wait for the build to finish; if none runs, unmount it")


def current_records(builddir: str, build_file: str) -> tuple[list[records.Record],
                                                              list[records.Record]]:
    """(current, stale): stale ones name build files that no longer exist."""
    current, stale = [], []
    for record in records.all_records(builddir):
        state = records.is_current(record)
        if state is False:
            raise AcigenError(f"{record.file} changed since acigen wrote it; nothing was "
                              "removed", "run acigen (or the build, which reruns it) first")
        (current if state else stale).append(record)
    if os.path.exists(build_file) and build_file not in {r.file for r in current}:
        raise AcigenError(f"{build_file} has no record in {builddir}; nothing was removed",
                          "it was written by an older acigen or for another build "
                          "directory: run acigen again for it first")
    if not current:
        raise AcigenError(f"no current build file uses {builddir}, so gc would remove "
                          "everything; nothing was removed", "`acigen clean` does that")
    return current, stale


def unreferenced(builddir: str, keep: frozenset[str]) -> list[str]:
    return [path for sub in STATE for path in entries(os.path.join(builddir, sub), f"{sub}/")
            if path not in keep]


def unused_chunks(builddir: str, images: set[str]) -> list[str]:
    """Chunk-cache entries no current image's last pack used (see
    acigen.helpers.chunks: uses/X lists an output, then its chunks)."""
    cache = os.path.join(builddir, CHUNKS)
    if not os.path.isdir(os.path.join(cache, "uses")):
        return []
    doomed, live = [], set()
    for name in sorted(os.listdir(os.path.join(cache, "uses"))):
        with open(os.path.join(cache, "uses", name), encoding="utf-8",
                  errors="surrogateescape") as src:
            lines = src.read().splitlines()
        if lines and lines[0] in images:
            live.update(lines[1:])
        else:
            doomed.append(f"uses/{name}")
    doomed += [name for name in sorted(os.listdir(cache))
               if name not in live and name not in ("lock", "uses")]
    return doomed


def entries(directory: str, prefix: str = "") -> list[str]:
    """PREFIX + each name in DIRECTORY (none if it is not a directory)."""
    if not os.path.isdir(directory) or os.path.islink(directory):
        return []
    return [prefix + name for name in sorted(os.listdir(directory))]


def everything_built(builddir: str) -> Doomed:
    paths = [p for sub in BUILT for p in entries(os.path.join(builddir, sub), f"{sub}/")]
    paths += [p for p in entries(os.path.join(builddir, "fetch"), "fetch/")
              if p.endswith(".ref")]
    cache = os.path.join(builddir, CHUNKS)
    chunks = [n for n in entries(cache) if n not in ("lock", "uses")]
    return Doomed(paths, chunks + entries(os.path.join(cache, "uses"), "uses/"))


@contextlib.contextmanager
def held(builddir: str, doomed: Doomed) -> Iterator[None]:
    """Hold the locks of the layers (and chunk cache) being removed."""
    paths = [os.path.join(builddir, p) for p in doomed.layer_locks()]
    paths.append(lock_path(builddir))  # every running helper holds it
    if doomed.chunks:
        paths.append(os.path.join(builddir, CHUNKS, "lock"))
    with contextlib.ExitStack() as stack:
        for path in paths:
            try:
                stack.enter_context(holding(path, fcntl.LOCK_EX, wait=False))
            except BlockingIOError:
                raise AcigenError(f"{path} is locked: a build is using it; nothing was "
                                  "removed", "try again when the build has finished") from None
        yield


def size_of(path: str) -> int:
    if os.path.islink(path) or not os.path.isdir(path):
        return os.lstat(path).st_size
    from acigen.treewalk import iter_tree  # iterative: a layer can be deep
    return sum(st.st_size for _rel, st in iter_tree(path) if not stat.S_ISDIR(st.st_mode))


def remove(path: str) -> None:
    """PATH, a file or a whole tree (a layer), never following a symlink."""
    if os.path.basename(os.path.dirname(path)) == "mnt":
        with contextlib.suppress(OSError):  # a mount point: only ever an empty dir
            os.rmdir(path)
    elif os.path.isdir(path) and not os.path.islink(path):
        from acigen.helpers.layers.layers import wipe  # overlayfs leaves work/work mode 000
        wipe(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def partial_images(images: set[str]) -> list[str]:
    """Hidden partial images (.NAME.aci.tmp-*) that killed packs left beside IMAGES."""
    from acigen.helpers.core.outfile import stale_temps
    return [tmp for image in sorted(images) for tmp in stale_temps(image)]


def carry_out(prog: str, builddir: str, doomed: Doomed, dry_run: bool) -> int:
    paths = [os.path.join(builddir, p) for p in doomed.paths] + \
        [os.path.join(builddir, CHUNKS, c) for c in doomed.chunks] + doomed.temps
    size = sum(size_of(p) for p in paths if os.path.lexists(p))
    layers = len({p.split(".")[0] for p in doomed.paths if p.startswith("layers/")})
    summary = (f"{count(len(doomed.paths), 'entry', 'entries')} "
               f"({count(layers, 'layer', 'layers')}) and "
               f"{count(len(doomed.chunks), 'chunk-cache entry', 'chunk-cache entries')}, "
               f"{size / MIB:.1f} MiB")
    if doomed.temps:
        summary += f", and {count(len(doomed.temps), 'partial image', 'partial images')}"
    if dry_run:
        for path in paths:
            print(path)
        print(f"acigen {prog}: would remove {summary} from {builddir}")
        return ExitCode.OK
    with held(builddir, doomed):
        refuse_if_busy(builddir)  # again, now that no new step can take these locks
        for path in paths:
            remove(path)
    print(f"acigen {prog}: removed {summary} from {builddir}")
    return ExitCode.OK


def as_its_builder(builddir: str) -> None:
    """Rootless, a build directory's layers hold files of the user's
    subordinate ids: remove them from inside the user namespace, as the
    builds that made them (and refuse another builder's directory)."""
    userns.enter()
    if os.path.isdir(builddir):
        identity.check(builddir)


def gc_main(argv: list[str]) -> int:
    args = parse("gc", argv)
    builddir = builddir_of(args)
    as_its_builder(builddir)
    refuse_if_busy(builddir)
    current, stale = current_records(builddir, os.path.abspath(args.file))
    keep = frozenset().union(*(r.keep for r in current))
    doomed = Doomed(unreferenced(builddir, keep),
                    unused_chunks(builddir, {i for r in current for i in r.images}))
    doomed.paths += [os.path.relpath(r.path, builddir) for r in stale]
    doomed.temps = partial_images({i for r in current + stale for i in r.images})
    return carry_out("gc", builddir, doomed, args.dry_run)


def clean_main(argv: list[str]) -> int:
    args = parse("clean", argv)
    builddir = builddir_of(args)
    as_its_builder(builddir)
    refuse_if_busy(builddir)
    doomed = everything_built(builddir)
    doomed.temps = partial_images({i for r in records.all_records(builddir) for i in r.images})
    return carry_out("clean", builddir, doomed, args.dry_run)
