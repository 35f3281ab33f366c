"""Fixtures shared by every test directory."""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest

from helpers.core.treeremove import remove_tree
from tests.support import leaks
from tests.support.privilege import skip_unless_root

# A shell that starts pytest in the background (`pytest &`, a CI runner's
# `sh -c '... &'`) leaves SIGINT ignored, and every program the tests start
# inherits that: their Ctrl-C tests then wait forever for a SIGINT nobody
# takes.  The tests send SIGINT on purpose, so they start from the default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked needs_root, in a directory that runs as any user."""
    if item.get_closest_marker("needs_root"):
        skip_unless_root()


# What a whole run holds at its peak (measured: 4.6 GB under the base temp), with room.
FULL_RUN_NEEDS_GIB = 6


def pytest_sessionstart(session: pytest.Session) -> None:
    """A whole run on a nearly full disk would end in hundreds of errors that name
    anything but the disk: say it in one line instead, before the first test."""
    config = session.config
    if config.args_source != pytest.Config.ArgsSource.TESTPATHS:
        return  # a chosen directory or test needs far less
    where = Path(config.option.basetemp or tempfile.gettempdir())
    while not where.exists():
        where = where.parent
    free = shutil.disk_usage(where).free
    if free < FULL_RUN_NEEDS_GIB << 30:
        pytest.exit(f"the whole test suite needs {FULL_RUN_NEEDS_GIB} GiB free under {where}; "
                    f"it has {free / (1 << 30):.1f} GiB", returncode=1)


# A full run writes tens of GB; a test's directory is removed once it passed, so a
# run needs only what one test and the session's fixtures hold.  Our own remover,
# not pytest's: it never enters a mount a test left behind, it fails on it.
PASSED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    report = yield
    if report.when == "call":
        item.stash[PASSED] = report.passed
    return report


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    tmp_path = getattr(item, "funcargs", {}).get("tmp_path")
    yield  # raises if a fixture's teardown failed: the directory is then kept
    if tmp_path is not None and item.stash.get(PASSED, False) and tmp_path.exists():
        remove_tree(str(tmp_path))


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
