"""Fixtures of the image step's tests: a server, a cache, runners."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.httpserver import FileServer
from tests.support.privilege import skip_unless_root

REPO = Path(__file__).resolve().parents[2]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Every test here needs root: skip before any fixture runs."""
    skip_unless_root()


@pytest.fixture
def server() -> Iterator[FileServer]:
    with FileServer() as srv:
        yield srv


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_helper(module: str, *args: str, cwd: Path | None = None, check: bool = False,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `python -m acigen.helpers.MODULE ARGS` as ninja would."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-m", f"acigen.helpers.{module}", *args],
                            cwd=cwd, env=env, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def write_spec(path: Path, **fields: Any) -> Path:
    spec = {"locks": [], "offline": False, "cache_dir": None, **fields}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec))
    return path


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The helper's error output, which must be one line (and maybe a hint)."""
    lines = result.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2, result.stderr
    assert len(lines) == 1 or lines[1].startswith("hint: "), result.stderr
    return lines
