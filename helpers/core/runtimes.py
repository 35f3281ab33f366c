"""Which OCI runtime runs the containers: runc or crun.

Its own small module so that acigen can check for one at every
regeneration without importing the container machinery (issue 19).
"""

from __future__ import annotations

import os

from acigen.errors import HelperError

RUNTIMES = ("runc", "crun")


def find_runtime(requested: str | None) -> str:
    """The runtime to use: REQUESTED, $ACIGEN_RUNTIME, else runc, else crun."""
    wanted = requested or os.environ.get("ACIGEN_RUNTIME")
    candidates = [wanted] if wanted else list(RUNTIMES)
    for name in candidates:
        found = which(name)
        if found:
            return found
    package = os.path.basename(candidates[0]) if len(candidates) == 1 else "runc"
    package = package if package in RUNTIMES else "runc (or crun)"
    raise HelperError(f"no OCI runtime found (looked for {', '.join(candidates)})",
                      f"install one: apt-get install {package}")


def which(name: str) -> str | None:
    """shutil.which(NAME), which it follows step by step: importing shutil (with
    bz2 and lzma) costs more than the search, and acigen checks for a runtime
    at every regeneration."""
    if os.path.dirname(name):
        return name if _executable(name) else None
    path = os.environ.get("PATH")
    if path is None:
        path = os.confstr("CS_PATH") or os.defpath
    for directory in dict.fromkeys(path.split(os.pathsep)) if path else ():
        candidate = os.path.join(directory, name)
        if _executable(candidate):
            return candidate
    return None


def _executable(path: str) -> bool:
    return os.path.exists(path) and os.access(path, os.X_OK) and not os.path.isdir(path)
