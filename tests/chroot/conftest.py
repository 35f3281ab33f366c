"""The chroot tests' build directory and busybox base layer (a test module
may override either, e.g. with a Debian base)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chroot.stepkit import Build
from tests.support.privilege import skip_unless_root
from tests.support.rootfs import busybox_tree


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Every test here needs root: skip before any fixture runs."""
    skip_unless_root()


@pytest.fixture
def build(tmp_path: Path) -> Build:
    return Build(tmp_path / "build")


@pytest.fixture
def base(build: Build) -> Path:
    return build.base(busybox_tree)
