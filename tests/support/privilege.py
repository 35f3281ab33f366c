"""Which tests need root, and how they are skipped, with one reason, without it.

Most of acigen's tests build for real: they mount, chroot, start runc and
chown, so they need root.  A directory of such tests says so once, in its
conftest.py (`skip_unless_root` from `pytest_runtest_setup`), so a test added
there cannot forget it; the directories in UNPRIVILEGED (the compiler, its
goldens and failing manifests, the ELF reader) run as any user, and a test
among them that needs root is marked `needs_root`.  CI runs everything as root.
"""

from __future__ import annotations

import os

import pytest

REASON = "needs root (real mounts, chroots, runc and chown): run the tests as root, as CI does"

# directories of tests/ that run as any user; every other one gates in its conftest.py
UNPRIVILEGED = frozenset({"compiler", "elf"})


def skip_unless_root() -> None:
    """Skip the test being set up (before any of its fixtures) unless we are root."""
    if os.geteuid() != 0:
        pytest.skip(REASON)
