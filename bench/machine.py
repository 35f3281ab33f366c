"""The machine a benchmark ran on, and the Debian tools bench/run needs.

A missing tool is installed with apt-get when allowed (bench/run does so unless
--no-install); what still misses is reported, and the rows that need it are
skipped with that reason.
"""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

# tool -> the Debian package that has it
TOOLS = {"debootstrap": "debootstrap", "lddtree": "pax-utils", "xz": "xz-utils",
         "docker-registry": "docker-registry", "buildah": "buildah"}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 2**20
    return 0.0


def describe() -> str:
    """One line: cores, CPU model, memory, kernel."""
    return (f"{os.cpu_count()} cores ({cpu_model()}), {memory_gib():.1f} GiB memory, "
            f"Linux {platform.release()}")


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def acigen_revision(repo: Path) -> str:
    """The commit measured, marked when the work tree differs from it."""
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + (" with uncommitted changes" if dirty else "")


def missing_tools(install: bool, say: Callable[[str], None],
                  needed: tuple[str, ...] = tuple(TOOLS)) -> dict[str, str]:
    """tool -> why it is missing, after installing what can be (if INSTALL)."""
    absent = [tool for tool in needed if shutil.which(tool) is None]
    if absent and install:
        _apt_install(sorted({TOOLS[tool] for tool in absent}), say)
        absent = [tool for tool in absent if shutil.which(tool) is None]
    how = "install failed" if install else "--no-install given"
    return {tool: f"`{tool}` not found ({how}; apt-get install {TOOLS[tool]})"
            for tool in absent}


def _apt_install(packages: list[str], say: Callable[[str], None]) -> None:
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        say(f"cannot install {' '.join(packages)}: needs apt-get, as root")
        return
    say(f"installing {' '.join(packages)} with apt-get")
    command = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(command, env=env, capture_output=True).returncode != 0:
        # a fresh machine has no package lists yet
        subprocess.run(["apt-get", "update"], env=env, capture_output=True)
        subprocess.run(command, env=env, capture_output=True)
