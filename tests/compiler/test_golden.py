"""Generated files, byte for byte, for several manifests (tests/golden/CASE).

Each case has input/ (manifests and the files they name), an optional
`args` file (acigen's arguments, one per line) and expected/ (build.ninja
and the side files under .acigen/).  `pytest --update-goldens` rewrites
expected/ after a deliberate change; review the diff before committing.
"""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from acigen import cli
from tests.support.tools import ninja

GOLDEN = Path(__file__).parent.parent / "golden"
CASES = sorted(p for p in GOLDEN.iterdir() if p.is_dir())
SKIP = ("build.ninja.stamp", "build.ninja.stamp.d")  # machine-specific: acigen's own paths


def generated(work: Path) -> dict[str, bytes]:
    out = {"build.ninja": (work / "build.ninja").read_bytes()}
    for path in sorted((work / ".acigen").rglob("*")):
        if path.is_file() and path.name not in SKIP:
            out[str(path.relative_to(work))] = path.read_bytes()
    return out


def expected(case: Path) -> dict[str, bytes]:
    top = case / "expected"
    return {str(p.relative_to(top)): p.read_bytes()
            for p in sorted(top.rglob("*")) if p.is_file()}


def generate(case: Path, work: Path, monkeypatch) -> int:
    args_file = case / "args"
    args = args_file.read_text().splitlines() if args_file.exists() else \
        sorted(p.name for p in (case / "input").glob("*.json"))
    monkeypatch.chdir(work)
    monkeypatch.setenv("ACIGEN_PYTHON", "/usr/bin/python3")
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    return cli.main(args)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden(case: Path, tmp_path: Path, monkeypatch, request) -> None:
    work = tmp_path / "w"
    shutil.copytree(case / "input", work)
    assert generate(case, work, monkeypatch) == 0
    got = generated(work)
    if request.config.getoption("--update-goldens"):
        shutil.rmtree(case / "expected", ignore_errors=True)
        for rel, data in got.items():
            (case / "expected" / rel).parent.mkdir(parents=True, exist_ok=True)
            (case / "expected" / rel).write_bytes(data)
    want = expected(case)
    assert sorted(got) == sorted(want), "files generated differ from expected/"
    for rel in want:
        if got[rel] != want[rel]:
            diff = difflib.unified_diff(want[rel].decode().splitlines(),
                                        got[rel].decode().splitlines(),
                                        f"expected/{rel}", f"generated/{rel}", lineterm="")
            pytest.fail("\n".join(diff) + "\n\nIf the change is intended: pytest "
                        "--update-goldens, then review and commit tests/golden.")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_generation_is_stable(case: Path, tmp_path: Path, monkeypatch) -> None:
    """Twice gives the same bytes and touches nothing; ninja accepts it."""
    work = tmp_path / "w"
    shutil.copytree(case / "input", work)
    assert generate(case, work, monkeypatch) == 0
    first = generated(work)
    mtimes = {rel: os.stat(work / rel).st_mtime_ns for rel in first}
    assert generate(case, work, monkeypatch) == 0
    assert generated(work) == first
    assert {rel: os.stat(work / rel).st_mtime_ns for rel in first} == mtimes
    result = subprocess.run([ninja(), "-n"], cwd=work, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
