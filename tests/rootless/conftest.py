"""Rootless builds (issue 20): acigen and ninja run as an ordinary user.

CI runs as root; these fixtures make two test users, one with a
subordinate id range and one without, and a Python they can run
(tests/support/rootless.py)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import rootless
from tests.support.privilege import skip_unless_root

USER = "acigen-t"        # with a subordinate range
SINGLE_USER = "acigen-t1"  # without one


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Every test here makes users or runs builds as root first: skip before
    any fixture runs."""
    skip_unless_root()


@pytest.fixture(scope="session")
def user_home() -> Iterator[Path]:
    """A directory both test users can reach, holding their Python."""
    if os.geteuid() != 0:
        pytest.skip("makes test users: run the tests as root, as CI does")
    for tool in ("runuser", "useradd", "usermod", "newuidmap", "newgidmap"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install uidmap util-linux passwd)")
    if not rootless.same_python_version():
        pytest.skip(f"{rootless.SYSTEM_PYTHON} is not this Python's version: the test users "
                    "cannot load this venv's compiled modules")
    rootless.ensure_user(USER, subordinate=True)
    rootless.ensure_user(SINGLE_USER, subordinate=False)
    home = Path(tempfile.mkdtemp(prefix="acigen-rootless-"))
    try:
        home.chmod(0o755)
        rootless.user_python(home)
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def python(user_home: Path) -> str:
    return str(user_home / "venv" / "bin" / "python3")


@pytest.fixture
def area(user_home: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A fresh directory for one test's builds, under the users' home."""
    path = Path(tempfile.mkdtemp(prefix=request.node.name[:40] + "-", dir=user_home))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
