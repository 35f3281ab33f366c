"""Which OCI runtime runs the containers: runc or crun.

Its own small module so that acigen can check for one at every
regeneration without importing the container machinery (issue 19).
"""

from __future__ import annotations

import os
import shutil

from acigen.helpers.common import HelperError

RUNTIMES = ("runc", "crun")


def find_runtime(requested: str | None) -> str:
    """The runtime to use: REQUESTED, $ACIGEN_RUNTIME, else runc, else crun."""
    wanted = requested or os.environ.get("ACIGEN_RUNTIME")
    candidates = [wanted] if wanted else list(RUNTIMES)
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    package = os.path.basename(candidates[0]) if len(candidates) == 1 else "runc"
    package = package if package in RUNTIMES else "runc (or crun)"
    raise HelperError(f"no OCI runtime found (looked for {', '.join(candidates)})",
                      f"install one: apt-get install {package}")
