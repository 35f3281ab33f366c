"""Hand-made layers and step files for the chroot-run helper, and ways to
look at what a run left behind (layers, processes, namespaces)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.procs import pids_with  # noqa: F401 - the chroot tests take it from here

HELPER = [sys.executable, "-m", "acigen.helpers.chroot_run"]


def cmd(path: str, *args: str, copy: bool = False, env: dict[str, str] | None = None,
        workdir: str = "/", **chroot: bool) -> dict[str, Any]:
    """A cmd step as the compiler writes it (chroot settings: the defaults
    overridden by CHROOT)."""
    settings = {"copy_resolvconf": True, "copy_hosts": True, "mount_proc": True,
                "mount_dev": True, "mount_sys": True, "make_debian_policy_rc": False}
    settings.update(chroot)
    return {"type": "cmd", "path": path, "args": list(args), "copy": copy,
            "env": env or {}, "workdir": workdir, "chroot": settings}


def sh(script: str, **chroot: bool) -> dict[str, Any]:
    return cmd("/bin/sh", "-c", script, **chroot)


@dataclass
class Step:
    build: Build
    name: str
    layer: Path

    @property
    def stepfile(self) -> str:
        return f".acigen/steps/{self.name}.json"

    @property
    def stamp(self) -> Path:
        return self.build.dir / ".acigen" / "stamps" / f"{self.name}.stamp"

    @property
    def tree(self) -> Path:
        return self.layer / "tree"

    def argv(self, depfile: str | None = None) -> list[str]:
        return [*HELPER, "--step", self.stepfile, "--stamp",
                str(self.stamp.relative_to(self.build.dir)),
                *(["--depfile", depfile] if depfile else [])]

    def run(self, timeout: float = 900, env: dict[str, str] | None = None,
            depfile: str | None = None,
            wrapper: list[str] | None = None) -> subprocess.CompletedProcess[str]:
        """The helper, started through WRAPPER (a command that execs its arguments)."""
        return subprocess.run([*(wrapper or []), *self.argv(depfile)], cwd=self.build.dir,
                              capture_output=True, text=True, timeout=timeout, env=env)

    def log(self) -> str:
        return (self.build.dir / ".acigen" / "logs" / f"{self.name}.log").read_text()

    def layer_entries(self) -> list[str]:
        """Every path the step's own layer holds."""
        return sorted(str(p.relative_to(self.tree)) for p in self.tree.rglob("*"))

    def changes(self, lower: Path) -> list[str]:
        """What the layer changes over LOWER's tree: every entry except
        directories that overlayfs copied up unchanged (same mode, owner
        and times as below)."""
        changed = []
        for rel in self.layer_entries():
            mine, theirs = self.tree / rel, lower / "tree" / rel
            if mine.is_dir() and not mine.is_symlink() and theirs.is_dir() \
                    and not theirs.is_symlink() and _same_dir(mine.stat(), theirs.stat()):
                continue
            changed.append(rel)
        return changed


@dataclass
class Build:
    """A build directory: what ninja's working directory would be."""

    dir: Path

    def layer_dir(self, name: str) -> Path:
        return self.dir / ".acigen" / "layers" / name

    def base(self, fill: Callable[[Path], object], name: str = "00-base") -> Path:
        """A bottom layer made by FILL(tree)."""
        layer = self.layer_dir(name)
        (layer / "tree").mkdir(parents=True)
        fill(layer / "tree")
        return layer

    def step(self, name: str, step: dict[str, Any], lower: list[Path],
             layer_mode: str = "auto", runtime: str | None = None) -> Step:
        layer = self.layer_dir(name)
        spec = {"acigen": "0.1.0", "label": f"test: {name}",
                "layer": str(layer.relative_to(self.dir)),
                "lower": [str(p.relative_to(self.dir)) for p in lower],
                "layer_mode": layer_mode, "log": f".acigen/logs/{name}.log", "step": step,
                **({"runtime": runtime} if runtime else {})}
        path = self.dir / ".acigen" / "steps" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(spec, indent=1))
        return Step(self, name, layer)


def _same_dir(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_mode, a.st_uid, a.st_gid, a.st_mtime_ns) == \
        (b.st_mode, b.st_uid, b.st_gid, b.st_mtime_ns)


# -- processes and namespaces on the host ------------------------------------

def pids_working_in(directory: Path) -> list[int]:
    """Processes whose working directory is DIRECTORY (ninja and its jobs)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and os.readlink(f"/proc/{entry}/cwd") == str(directory):
                found.append(int(entry))
        except OSError:
            continue
    return found


def namespace(pid: int, kind: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


def pids_in(ns: str, kind: str) -> list[int]:
    """Processes in namespace NS (as namespace() names it)."""
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and namespace(int(e), kind) == ns]


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as src:
            return [int(p) for p in src.read().split()]
    except OSError:
        return []


def wait_until(check: Callable[[], Any], timeout: float = 60, what: str = "") -> Any:
    """Poll CHECK until it returns something true (not a timing assertion:
    a generous bound so a broken build fails instead of hanging)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or check}")
