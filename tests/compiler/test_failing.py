"""Bad manifests: each gives its exact one-line error, exit 1, and writes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from acigen import cli

CASES = sorted(p for p in (Path(__file__).parent.parent / "failing").iterdir() if p.is_dir())


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_failing_manifest(case: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    work = tmp_path / case.name
    shutil.copytree(case, work)
    (work / "expected_error.txt").unlink()
    before = sorted(p.name for p in work.iterdir())
    monkeypatch.chdir(work)

    code = cli.main(["manifest.json"])

    err = capsys.readouterr().err.splitlines()
    expected = (case / "expected_error.txt").read_text().rstrip("\n")
    assert (code, err[0]) == (1, expected)
    assert sorted(p.name for p in work.iterdir()) == before, "a failing run wrote files"
