"""bench/run row 12: rootless builds against root's, the nginx example.

The same build both ways: `python -m acigen -b nginx.json` by root and, with
`runuser`, by a test user with a subordinate id range (tests/support/rootless.py
makes the user and a Python it can run; every side uses that Python and its
ninja, with the same plain environment).  Clean builds in empty directories,
then rebuilds after one edit of the last step, interleaved.  (Rootless and
root images differ only in the files that hold the time of the run, as two
root builds do: tests/rootless compares them.)  Rootless twice: with the auto
mode's layers (kernel overlayfs in the user namespace here; the row's detail
names the mode) and, where fuse-overlayfs is installed, with `--layer-mode
fuse`, the user given /dev/fuse for the row's length (its cost has no target).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import workspace
from common import Sample, Variant, interleaved, median, use_repo_support
from context import Context, Skip
from report import Row, ratio_at_most

USER = "acigen-t"  # the rootless tests' user (tests/rootless/conftest.py)
ENV = ["env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG=C.UTF-8"]
TARGET = ratio_at_most(1.3, "<= 1.3x")
ARGS = {"user": [], "fuse": ["--layer-mode", "fuse"], "root": []}  # the sides, in turn


def _check(done: subprocess.CompletedProcess[str], what: str) -> str:
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
        raise RuntimeError(f"{what} exited {done.returncode}:\n" + "\n".join(tail))
    return done.stdout


class Builder:
    """Builds the nginx example in fresh directories under HOME, as root or as USER."""

    def __init__(self, home: Path, python: str, minbase: Path) -> None:
        self.home, self.python, self.minbase = home, python, minbase
        self.dirs: dict[str, Path] = {}
        self.output: dict[str, str] = {}
        self.edits = dict.fromkeys(ARGS, 0)

    def build(self, who: str) -> str:
        from tests.support import rootless
        work = self.dirs[who]
        argv = [self.python, "-m", "acigen", "-b", *ARGS[who], "nginx.json"]
        if who == "root":
            done = subprocess.run([*ENV, f"HOME={work}", *argv], cwd=work,
                                  capture_output=True, text=True)
        else:
            done = rootless.as_user(USER, argv, work)
        self.output[who] = _check(done, f"the {who} build")
        return self.output[who]

    def fresh(self, who: str) -> None:
        from tests.support import rootless
        work = workspace.fresh_dir(self.home, who)
        work.chmod(0o755)
        (work / workspace.MINBASE).symlink_to(self.minbase)
        workspace.nginx_manifest(work)
        if who != "root":
            rootless.give_to(work, USER)
        self.dirs[who] = work

    def edit(self, who: str) -> None:
        """The next edit of the last step; every side gets the same edits, in turn."""
        self.edits[who] += 1
        workspace.edit_nginx(self.dirs[who] / "nginx.json", self.edits[who])

    def mode(self, who: str) -> str:
        """The layer mode WHO's last build's steps named."""
        found = re.search(r"\(layers: (\w+ \(\w+\))\)", self.output.get(who, ""))
        return found.group(1) if found else "not named"


def _variants(builder: Builder, sides: list[str], clean: bool) -> dict[str, Variant]:
    def variant(who: str) -> Variant:
        prepare: Callable[[], object] = (lambda: builder.fresh(who)) if clean else \
            (lambda: builder.edit(who))
        return Variant(lambda: builder.build(who), prepare)
    return {who: variant(who) for who in sides}


def _fuse_usable() -> bool:
    return all(shutil.which(tool) for tool in ("fuse-overlayfs", "setfacl", "getfacl"))


def rootless_rows(ctx: Context) -> list[Row]:
    use_repo_support()
    from tests.support import rootless
    for tool in ("runuser", "useradd", "usermod", "newuidmap", "newgidmap"):
        if shutil.which(tool) is None:
            raise Skip(f"{tool} is not installed (uidmap, util-linux, passwd)")
    if not rootless.same_python_version():
        raise Skip(f"{rootless.SYSTEM_PYTHON} is not this Python's version")
    rootless.ensure_user(USER, subordinate=True)
    home = Path(tempfile.mkdtemp(prefix="acigen-bench-rootless-"))
    try:
        home.chmod(0o755)
        python = rootless.user_python(home)
        minbase = home / workspace.MINBASE
        shutil.copyfile(ctx.minbase(), minbase)  # root's cache is out of the user's reach
        os.chmod(minbase, 0o644)
        sides = ["user", "fuse", "root"] if _fuse_usable() else ["user", "root"]
        with rootless.fuse_device_for(USER) if "fuse" in sides else contextlib.nullcontext():
            return _measure(ctx, Builder(home, python, minbase), sides)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _measure(ctx: Context, builder: Builder, sides: list[str]) -> list[Row]:
    runs, edits = ctx.plan.clean_nginx, ctx.plan.incremental
    ctx.say(f"12: clean builds of nginx, {' '.join(sides)} in turn, {runs} each")
    clean = interleaved(_variants(builder, sides, True), runs)
    ctx.say(f"12: edits of nginx's last step, rebuilt, {' '.join(sides)} in turn, {edits} each")
    rebuilt = interleaved(_variants(builder, sides, False), edits)
    rows = []
    for who in sides[:-1]:
        mode = builder.mode(who)
        rows += [_row(f"clean build of the nginx example ({mode})", who, clean, mode),
                 _row(f"edit the nginx example's last step, rebuild ({mode})", who, rebuilt,
                      mode)]
    return rows


def _row(what: str, who: str, samples: dict[str, list[Sample]], mode: str) -> Row:
    def runs(name: str) -> str:
        return ", ".join(f"{s.wall:.3g}" for s in samples[name])
    detail = (f"`python -m acigen -b{' ' + ' '.join(ARGS[who]) if ARGS[who] else ''} "
              f"nginx.json` as the user (`runuser`, layers: {mode}) and as root, the same "
              f"Python and ninja, interleaved with the other rootless side; runs (s): rootless "
              f"{runs(who)}; root {runs('root')}; CPU (user + system): rootless "
              f"{median(samples[who]).cpu:.2f} s, root {median(samples['root']).cpu:.2f} s")
    return Row(12, f"rootless: {what}", "as root (`sudo`)", ours=median(samples[who]).wall,
               theirs=median(samples["root"]).wall, target=TARGET if who == "user" else None,
               detail=detail)
