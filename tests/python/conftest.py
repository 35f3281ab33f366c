"""The python tests use real mounts, chroots, runc or file owners: they run as root."""

from __future__ import annotations

import pytest

from tests.support.privilege import skip_unless_root


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Every test here needs root: skip before any fixture runs."""
    skip_unless_root()
