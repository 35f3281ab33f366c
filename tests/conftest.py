"""Fixtures shared by every test directory."""

from __future__ import annotations

import os
import time

import pytest

from tests.support import leaks


@pytest.fixture(autouse=True, scope="session")
def _require_root() -> None:
    # acigen builds mount and chroot; its tests use real mounts, so they run as root
    if os.geteuid() != 0:
        pytest.exit("the tests need root (real mounts, chroots and runc): run them with sudo",
                    returncode=2)


@pytest.fixture
def no_mount_leaks(tmp_path_factory: pytest.TempPathFactory):
    """Fail the test if it leaves a mount (in any namespace) or a process behind
    under the session's test directories; other programs' mounts do not count."""
    directories = [tmp_path_factory.getbasetemp()]
    before = leaks.snapshot(directories)
    yield
    # a helper may still be unwinding: wait for it, generously, rather than race it
    deadline = time.monotonic() + 60
    while (message := leaks.left_behind(before, leaks.snapshot(directories))) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not message


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true",
                     help="rewrite tests/golden/*/expected from the current output")
