"""Fixtures shared by every test directory."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _require_root() -> None:
    # acigen builds mount and chroot; its tests use real mounts, so they run as root
    if os.geteuid() != 0:
        pytest.exit("the tests need root (real mounts, chroots and runc): run them with sudo",
                    returncode=2)


def mountinfo() -> list[str]:
    with open("/proc/self/mountinfo") as src:
        return sorted(" ".join(line.split()[3:5]) for line in src)


@pytest.fixture
def no_mount_leaks():
    """Fail the test if it leaves a mount behind on the host."""
    before = mountinfo()
    yield
    after = mountinfo()
    assert after == before, f"mounts left behind: {sorted(set(after) - set(before))}"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true",
                     help="rewrite tests/golden/*/expected from the current output")
