"""bench/run row 12: rootless builds against root's, the nginx example.

The same build both ways: `python -m acigen -b nginx.json` by root and, with
`runuser`, by a test user with a subordinate id range (tests/support/rootless.py
makes the user and a Python it can run; both sides use that Python and its
ninja, with the same plain environment).  Clean builds in empty directories,
then rebuilds after one edit of the last step, pairs interleaved.  (The two
images differ only in the files that hold the time of the run, as two root
builds do: tests/rootless compares them.)  Layers: the auto mode's choice on
each side, overlayfs here (in the user namespace rootless); the row's detail
names the rootless build's.
"""

from __future__ import annotations

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
        self.edits = {"user": 0, "root": 0}

    def build(self, who: str) -> str:
        from tests.support import rootless
        work = self.dirs[who]
        argv = [self.python, "-m", "acigen", "-b", "nginx.json"]
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
        """The next edit of the last step; both sides get the same edits, in turn."""
        self.edits[who] += 1
        workspace.edit_nginx(self.dirs[who] / "nginx.json", self.edits[who])

    def rootless_mode(self) -> str:
        """The layer mode the last rootless build's steps named."""
        found = re.search(r"\(layers: (\w+ \(\w+\))\)", self.output.get("user", ""))
        return found.group(1) if found else "not named"


def _variants(builder: Builder, clean: bool) -> dict[str, Variant]:
    def variant(who: str) -> Variant:
        prepare: Callable[[], object] = (lambda: builder.fresh(who)) if clean else \
            (lambda: builder.edit(who))
        return Variant(lambda: builder.build(who), prepare)
    return {"user": variant("user"), "root": variant("root")}


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
        return _measure(ctx, Builder(home, python, minbase))
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _measure(ctx: Context, builder: Builder) -> list[Row]:
    runs, edits = ctx.plan.clean_nginx, ctx.plan.incremental
    ctx.say(f"12: clean builds of nginx, rootless and as root, {runs} pairs")
    clean = interleaved(_variants(builder, True), runs)
    mode = builder.rootless_mode()
    ctx.say(f"12: edits of nginx's last step, rebuilt rootless and as root, {edits} pairs")
    rebuilt = interleaved(_variants(builder, False), edits)
    return [_row("clean build of the nginx example", clean, mode),
            _row("edit the nginx example's last step, rebuild", rebuilt, mode)]


def _row(what: str, samples: dict[str, list[Sample]], mode: str) -> Row:
    def runs(name: str) -> str:
        return ", ".join(f"{s.wall:.3g}" for s in samples[name])
    detail = (f"`python -m acigen -b nginx.json` as the user (`runuser`, layers: {mode}) "
              f"and as root, the same Python and ninja, interleaved; runs (s): rootless "
              f"{runs('user')}; root {runs('root')}; CPU (user + system): rootless "
              f"{median(samples['user']).cpu:.2f} s, root {median(samples['root']).cpu:.2f} s")
    return Row(12, f"rootless: {what}", "as root (`sudo`)", ours=median(samples["user"]).wall,
               theirs=median(samples["root"]).wall, target=TARGET, detail=detail)
