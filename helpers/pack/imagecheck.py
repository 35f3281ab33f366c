"""Checks of the finished root, made when the image is packed: what would
otherwise first fail when the image runs.

- The app's user and group must resolve in the image, by the rule an appc
  executor applies (runconfig.resolve_id): a name from the image's
  /etc/passwd or /etc/group, a number, or a file's owner.
- A root directory others cannot search (mode 0700, as `mktemp -d` makes
  one) lets no process but root's reach any file: a web server's workers
  answer 404 to everything.  Only a warning: an image run as root works.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from acigen.helpers.run.config import resolve_id


def check_app_identity(root: str, manifest: dict[str, Any]) -> None:
    """Raise HelperError when the app's user or group cannot be resolved."""
    app = manifest.get("app")
    if not isinstance(app, dict):
        return
    for what in ("user", "group"):
        if isinstance(app.get(what), str):
            resolve_id(root, app[what], what)


def root_warnings(root: str) -> list[str]:
    mode = stat.S_IMODE(os.stat(root).st_mode)
    if mode & 0o001:
        return []
    return [f"the image's / has mode {mode:04o}: only its owner can reach any file in it "
            "(a server's unprivileged workers cannot); make the base's / 0755 "
            "(in a tarball, the mode of ./)"]
